#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/loader.hpp"
#include "config/reader.hpp"
#include "config/secret.hpp"

namespace billsync::connectors {

// The checked settings of one [connectors.<name>] section, before a vendor-specific settings
// struct exists (the kind's schema: connectors/runtime/kind.hpp). Every known key is present in
// values or secrets once parsed, defaults included (optional keys without a default are left out).
struct connector_settings {
    std::string name;  // the section name, e.g. "qbo" (route /webhooks/<name>)
    std::string kind;  // which implementation (connectors/<kind>/); defaults to the name
    bool enabled = true;
    std::string base_url;   // vendor API base (default per kind; empty where none applies)
    std::string token_url;  // OAuth2 token endpoint for kinds that use one; empty otherwise
    std::map<std::string, config::secret, std::less<>> secrets;
    std::map<std::string, std::string, std::less<>> values;  // integers and booleans as text

    // nullptr when absent.
    const std::string* value(std::string_view key) const;
    const config::secret* find_secret(std::string_view key) const;
};

}  // namespace billsync::connectors
