#pragma once

// Civil-date and sending-window arithmetic in the firm's time zone (Howard Hinnant's date/tz over
// the OS tzdata). Local times that do not exist (spring forward) map to the instant of the
// transition; ambiguous ones (fall back) to the earlier instant.

#include <date/date.h>
#include <date/tz.h>

#include "util/clock.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::workflows::followup {

// The firm's civil date at instant t.
date::sys_days local_date(const date::time_zone& tz, util::instant t);
// The instant a civil date starts in the firm's time zone (00:00 local, or the first instant
// after a transition that skips midnight).
util::instant start_of_day(const date::time_zone& tz, date::sys_days day);

// Whether touches may go out at t: an allowed weekday that is not a holiday, inside the hours.
bool in_window(const sending_window& w, const date::time_zone& tz, util::instant t);
// The earliest instant >= t that is inside the window. A window that never opens (no allowed
// day) yields t unchanged; config validation rejects such windows.
util::instant next_opening(const sending_window& w, const date::time_zone& tz, util::instant t);

}  // namespace billsync::workflows::followup
