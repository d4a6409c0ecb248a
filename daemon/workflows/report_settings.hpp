#pragma once

// [report]: the weekly report's settings (docs/configuration.md, docs/report.md).
//
//   [report]
//   enabled = true                       # the weekly snapshot and email (default true here)
//   time_zone = "America/New_York"       # default: [daemon] time_zone
//   currency = "USD"                     # the firm's reporting currency
//   week_end_day = "sun"                 # last day of the firm's week
//   send_day = "mon"                     # when the week just ended is emailed
//   send_hour = 8                        # local hour, 0-23
//   to = ["partner@firm.test"]           # partners who receive it
//   email_connector = "sendgrid"         # default: the first enabled email connector
//   expected_hours = "7.5"               # per staff-day (Mon-Fri), for capture completeness
//   subject = "Weekly billing report"

#include <optional>

#include "config/reader.hpp"
#include "workflows/weekly_report/settings.hpp"

namespace billsync::config {

// Problems go to r.diags() at their file:line:col; nullopt when this table reported an error.
std::optional<workflows::weekly_report::settings> parse_report(reader& r);

}  // namespace billsync::config
