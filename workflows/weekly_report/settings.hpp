#pragma once

// [report]: the weekly report's settings (parsed by daemon/workflows/report_settings.cpp,
// documented in docs/configuration.md and docs/report.md).

#include <cstdint>
#include <string>
#include <vector>

namespace billsync::workflows::weekly_report {

struct settings {
    // The scheduled email (and the weekly snapshot it sends) runs only when enabled; the CLI and
    // GET /reports/weekly answer either way.
    bool enabled = false;
    std::string time_zone;  // IANA zone; empty: [daemon] time_zone
    std::string currency = "USD";
    // The last day of the firm's week, 0 = Sunday … 6 = Saturday (C weekday encoding).
    int week_end_day = 0;
    // When the report of the week just ended is emailed: weekday (0 = Sunday) and local hour.
    int send_day = 1;
    int send_hour = 8;
    std::vector<std::string> to;  // partners' addresses (bare, lower-cased)
    std::string email_connector;  // empty: the first enabled email connector
    // Capture completeness: a staff-day (Monday to Friday) with less recorded time than this is
    // under-captured. 0: not judged.
    std::int64_t expected_minutes = 0;
    std::string subject = "Weekly billing report";
    // Not a [report] setting: false in `billsync preview`, which shows a report email's subject
    // and recipient but never its figures. The snapshot step then stores no snapshot and the send
    // step sends the subject without the report, so neither computes one.
    bool compute_figures = true;
};

}  // namespace billsync::workflows::weekly_report
