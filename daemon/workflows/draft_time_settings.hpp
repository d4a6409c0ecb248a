#pragma once

// [draft_time]: the draft-time workflow's settings (docs/configuration.md).
//
//   [draft_time]
//   enabled = true
//   connector = "time"                       # required: the time connector
//   completing_statuses = ["completed"]      # primary statuses that complete work
//   review_after_h = 72                      # untouched drafts join the review list after this
//                                            # (default: at the next review_day/review_hour)
//   review_day = "fri"                       # the firm's weekly review moment
//   review_hour = 9
//   reconcile = true                         # daily re-read of open drafts (deletes by staff)
//   reconcile_hour = 6
//   time_zone = "America/Denver"             # default: [daemon] time_zone
//   [draft_time.work_types."1040 Individual Return"]
//   project = "2025 Tax Returns"             # required: id or name
//   task = "Tax Preparation"                 # required: id or name
//   hours = "3.5"                            # required: default hours, decimal text
//   billable = true
//   stages = ["Return Filed"]                # secondary statuses that also complete it

#include <optional>

#include "config/reader.hpp"
#include "workflows/draft_time/settings.hpp"

namespace billsync::config {

// Problems go to r.diags() at their file:line:col; nullopt when this table reported an error.
// An absent table yields settings with enabled = false.
std::optional<workflows::draft_time::settings> parse_draft_time(reader& r);

}  // namespace billsync::config
