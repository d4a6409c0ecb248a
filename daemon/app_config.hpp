#pragma once

#include <any>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/loader.hpp"
#include "config/sources.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::daemon {

// The whole validated configuration: daemon settings plus every connector's settings.
struct app_config {
    config::loaded_config loaded;
    std::vector<connectors::connector_settings> connectors;
    config::sources_settings sources;  // [sources]: the source of truth per data type
    // Each built-in workflow's parsed settings (daemon/workflows/builtin.cpp), by rule name;
    // only rules with a settings table have an entry.
    std::map<std::string, std::any, std::less<>> workflow_settings;

    const config::daemon_settings& daemon() const { return loaded.daemon; }
    // An enabled connector's kind uses OAuth2 (its tokens live in the state store).
    bool uses_oauth2() const;
};

// Loads and validates a file; every problem lands in `diags`. nullopt when there are errors.
std::optional<app_config> load_app_config(const std::filesystem::path& file,
                                          config::diagnostics& diags);

}  // namespace billsync::daemon
