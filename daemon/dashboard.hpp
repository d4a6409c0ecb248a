#pragma once

// The status listener's dashboard page (GET /): one read-only HTML page rendered on the server,
// with no external assets (inline CSS, inline SVG), readable on a phone, refreshing itself with a
// meta refresh. It shows what the status API already knows; it computes no financial figure of
// its own (the weekly figures come whole from the weekly report).

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/html.hpp"

namespace billsync::daemon {

struct dashboard_input {
    nlohmann::json status;     // the GET /status document (render_status_json)
    nlohmann::json followups;  // GET /followups: an array; null when the workflow is off
    nlohmann::json approvals;  // GET /approvals: {"approvals": [...]}; null when invoicing is off
    nlohmann::json
        exceptions;  // GET /exceptions: {"exceptions": [...]}; null when invoicing is off
    nlohmann::json identities;  // GET /identities: {"exceptions": [...], "parties": [...]}
    // The weekly report (billsync report weekly --json); null: not available.
    nlohmann::json weekly;
    std::chrono::seconds refresh{30};  // the page reloads itself this often
};

// The whole page. Every text taken from the inputs is HTML-escaped.
std::string render_dashboard(const dashboard_input& in);

using util::html_escape;

}  // namespace billsync::daemon
