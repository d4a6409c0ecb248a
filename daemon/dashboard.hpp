#pragma once

// The status listener's dashboard page (GET /): one read-only HTML page rendered on the server,
// with no external assets (inline CSS, inline SVG), readable on a phone, refreshing itself with a
// meta refresh. It shows what the status API already knows; it computes no financial figure of
// its own (the weekly figures come whole from the weekly report).

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/html.hpp"

namespace billsync::daemon {

struct dashboard_input {
    nlohmann::json status;  // the GET /status document (render_status_json)
    // The open follow-up sequences (GET /followups rows): an array; null when the workflow is
    // off. The page shows the first dashboard_max_rows.
    nlohmann::json followups;
    // The open sequences counted by stage (workflows::followup::followup_stages: {"open": N,
    // "stages": [{"phase", "last_touch", "count"}]}); null: counted from `followups`, which
    // then lists every open sequence.
    nlohmann::json followup_stages;
    nlohmann::json approvals;  // GET /approvals: {"approvals": [...]}; null when invoicing is off
    nlohmann::json
        exceptions;  // GET /exceptions: {"exceptions": [...]}; null when invoicing is off
    nlohmann::json identities;  // GET /identities: {"exceptions": [...], "parties": [...]}
    // The weekly report (billsync report weekly --json); null: not available.
    nlohmann::json weekly;
    std::chrono::seconds refresh{30};  // the page reloads itself this often
};

// The weekly figures the page shows: the report (billsync report weekly --json) without its
// per-client rows, which at a large firm are megabytes the page never reads.
nlohmann::json dashboard_weekly(nlohmann::json report);

// Rows per table; the JSON routes list everything.
inline constexpr std::size_t dashboard_max_rows = 50;

// The whole page. Every text taken from the inputs is HTML-escaped.
std::string render_dashboard(const dashboard_input& in);

using util::html_escape;

}  // namespace billsync::daemon
