#pragma once

// The daily missing-time check of draft_time: on each working day at check_hour (firm time zone),
// the staff of the time connector with less time recorded than expected on the previous working
// day, as a stored report ("draft_time_missing"/<YYYY-MM-DD>) and, when configured, a reminder
// email to each of them.

#include <date/tz.h>

#include <nlohmann/json.hpp>
#include <string>

#include "state/store.hpp"
#include "util/clock.hpp"
#include "workflows/draft_time/settings.hpp"

namespace billsync::workflows::draft_time {

inline constexpr std::string_view missing_timer = "draft_time/missing";
inline constexpr std::string_view missing_row = "draft_time_missing";

bool working_day(const missing_time_settings& m, date::local_days day);
// The last working day strictly before `day` (at most a year back; else the day before).
date::local_days previous_working_day(const missing_time_settings& m, date::local_days day);
// The first `hour`:00 local on one of `days` (by c_encoding) that is not a holiday, strictly
// after `now`.
util::instant next_at(const std::array<bool, 7>& days,
                      const std::set<date::sys_days>& holidays,
                      int hour,
                      const date::time_zone* tz,
                      util::instant now);
// The first check (check_hour on a working day) strictly after `now`.
util::instant next_check(const missing_time_settings& m,
                         const date::time_zone* tz,
                         util::instant now);

// The check of `day` from the committed state: every active staff member of `connector` (or
// those listed) with the minutes recorded on that day, and those short of the expected time.
// {"date", "expected_minutes", "staff_checked", "short": [{"staff", "name", "email", "minutes",
// "missing_minutes"}]}.
state::result<nlohmann::json> check_day(const state::store& s,
                                        const std::string& connector,
                                        const missing_time_settings& m,
                                        date::local_days day);

// "3h 30m", "0m": minutes for people.
std::string hours_text(std::int64_t minutes);

}  // namespace billsync::workflows::draft_time
