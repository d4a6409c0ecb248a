#pragma once

#include <string>
#include <string_view>

namespace billsync::testing {

// Checks text against the Prometheus text exposition format 0.0.4: HELP/TYPE comments, then
// `name{label="value",...} number` samples whose names belong to a declared family.
bool valid_prometheus_text(std::string_view text, std::string& error);

}  // namespace billsync::testing
