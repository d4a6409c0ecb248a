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
// struct exists. Every known key is present in values or secrets once parsed, defaults included
// (optional keys without a default are left out).
struct connector_settings {
    std::string name;  // the section name, e.g. "qbo" (route /webhooks/<name>)
    std::string kind;  // qbo xero twilio sendgrid smtp karbon harvest taxdome generic
    bool enabled = true;
    std::string base_url;   // vendor API base (default per kind; empty where none applies)
    std::string token_url;  // OAuth2 token endpoint (qbo, xero, harvest); empty otherwise
    std::map<std::string, config::secret, std::less<>> secrets;
    std::map<std::string, std::string, std::less<>> values;  // integers and booleans as text

    // nullptr when absent.
    const std::string* value(std::string_view key) const;
    const config::secret* find_secret(std::string_view key) const;
};

// The connector kinds parse_connector_settings knows, sorted.
std::vector<std::string_view> known_connector_kinds();

// Reads the keys of section's kind from r; problems go to diags (the reader's diagnostics).
// Unknown kind → error with a suggestion. Keys left unread are reported by the loader's finish().
// nullopt when the section had errors.
std::optional<connector_settings> parse_connector_settings(const config::connector_section& section,
                                                           config::reader& r,
                                                           config::diagnostics& diags);

}  // namespace billsync::connectors
