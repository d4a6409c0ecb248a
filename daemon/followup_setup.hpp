#pragma once

// The follow-up workflow as the daemon builds it from its configuration: the planner (firm time
// zone from [followup] time_zone, else [daemon] time_zone) and the channel routes (the configured
// email/sms connector, else the first available one of a matching kind). Shared by the daemon
// and `billsync preview`, so both run exactly the same rule.

#include <memory>
#include <set>
#include <string>

#include "workflows/followup/followup_rule.hpp"

namespace billsync::util {
class metrics_registry;
}

namespace billsync::daemon {

struct app_config;

// available_connectors: the connectors that can take actions (by name). nullptr when the
// workflow is off ([followup] absent or enabled = false; *error stays empty) or cannot be built
// (*error says why).
std::unique_ptr<workflows::followup::followup_rule> make_followup_rule(
    const app_config& cfg,
    const std::set<std::string, std::less<>>& available_connectors,
    util::metrics_registry* metrics,
    std::string* error);

}  // namespace billsync::daemon
