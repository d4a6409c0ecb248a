#pragma once

// Settings of the draft_time rule (parsed by daemon/workflows/draft_time_settings.cpp).

#include <date/date.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace billsync::workflows::draft_time {

// What a completed work item of one work type drafts.
struct work_type_mapping {
    std::string work_type;     // compared case-insensitively
    std::string project;       // the time system's project: an id, or a name among the client's
    std::string task;          // the task: an id, or a name assigned to the project
    std::int64_t minutes = 0;  // default duration
    std::string hours;         // the same as decimal text, as configured ("3.5")
    bool billable = true;      // false: a non-billable ("internal only") draft
    std::vector<std::string> stages;  // secondary statuses that also complete this work type
};

// The daily missing-time check: staff with less time recorded than expected on the previous
// working day.
struct missing_time_settings {
    bool enabled = false;               // the [draft_time.missing_time] table exists
    std::int64_t expected_minutes = 0;  // per working day
    std::string expected_hours;         // as configured ("6.5")
    int check_hour = 8;                 // local hour of the check, each working day
    // Working days by date::weekday::c_encoding() (0 = Sunday); Monday to Friday by default.
    std::array<bool, 7> days{false, true, true, true, true, true, false};
    std::set<date::sys_days> holidays;  // civil dates that are not working days
    std::vector<std::string> staff;     // emails (lower case) to check; empty: every active one
    bool remind = false;                // email each staff member who is short
};

struct settings {
    bool enabled = false;
    std::string connector;  // the time connector that performs time_entry.create
    std::vector<std::string> completing_statuses = {"completed"};
    std::vector<work_type_mapping> work_types;
    // Untouched drafts join the review list this long after they were created; nullopt (the
    // default): at the first review moment (review_day at review_hour) after they were created.
    std::optional<std::chrono::hours> review_after;
    std::string time_zone;        // empty: [daemon] time_zone
    std::string email_connector;  // reminders; empty: the first email connector
    // The firm's weekly review moment: review_day (c_encoding, 0 = Sunday) at review_hour, firm
    // time zone. With review_email, each staff member with drafts on the review list gets one
    // list of them then.
    bool review_email = false;
    unsigned review_day = 5;  // Friday
    int review_hour = 9;
    // The daily reconcile: at reconcile_hour (firm time zone) every open draft is re-read from
    // the time system, so one deleted (or changed) there by staff is noticed.
    bool reconcile = true;
    int reconcile_hour = 6;
    missing_time_settings missing;
};

}  // namespace billsync::workflows::draft_time
