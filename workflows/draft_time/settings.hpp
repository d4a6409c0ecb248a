#pragma once

// Settings of the draft_time rule (parsed by daemon/workflows/draft_time_settings.cpp).

#include <chrono>
#include <cstdint>
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

struct settings {
    bool enabled = false;
    std::string connector;  // the time connector that performs time_entry.create
    std::vector<std::string> completing_statuses = {"completed"};
    std::vector<work_type_mapping> work_types;
    std::chrono::hours review_after{72};  // untouched drafts join the review list after this
    std::string time_zone;                // empty: [daemon] time_zone
};

}  // namespace billsync::workflows::draft_time
