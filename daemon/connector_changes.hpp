#pragma once

#include <map>
#include <string>
#include <vector>

#include "connectors/runtime/settings.hpp"

namespace billsync::daemon {

// A stable text of one connector's settings (kind, enabled, base and token URLs, every value and
// every secret): two sections with equal texts run the same connector. A secret appears as a
// SHA-256 digest of its value, never the value, so the text may be kept; it is still not meant
// for logs.
std::string settings_fingerprint(const connectors::connector_settings& s);

// What a reload does to the running connectors (each list sorted by name). A disabled section
// counts as absent.
struct connector_plan {
    std::vector<std::string> unchanged;  // same settings: left running as they are
    std::vector<std::string> changed;    // rebuilt from the new settings
    std::vector<std::string> added;      // built and started
    std::vector<std::string> removed;    // stopped; their queued work waits
};

// `running`: name -> settings_fingerprint of each connector that runs now.
connector_plan plan_connectors(const std::map<std::string, std::string, std::less<>>& running,
                               const std::vector<connectors::connector_settings>& next);

}  // namespace billsync::daemon
