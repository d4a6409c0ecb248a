#pragma once

// `billsync connect NAME --config FILE`: the OAuth2 authorization-code flow for onboarding, for
// any connector whose kind declares OAuth2 rules (connectors/<kind>/). Prints the authorize URL
// (with a random state, and PKCE S256 where the kind's rules ask for it), listens on a loopback
// redirect URI (http://127.0.0.1:<redirect_port>/callback, default port 8765), checks the state,
// exchanges the code at the token endpoint, finds the account (from a redirect parameter, or
// from the kind's connections endpoint), stores the tokens sealed in the state store in one
// synced write, and reports what it connected.
//
// Endpoints come from the connector section, each with the vendor's default: token_url, and
// (read through connector_settings::value) authorize_url, connections_url, revoke_url, scope,
// redirect_port.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/settings.hpp"
#include "connectors/runtime/token_store.hpp"
#include "util/clock.hpp"

namespace billsync::daemon {

struct connect_options {
    connectors::connector_settings settings;     // the vendor's [connectors.<name>] section
    std::filesystem::path data_dir;              // the state store lives in data_dir / "state"
    std::optional<connectors::sealing_key> key;  // nullopt: tokens are stored unsealed
    std::string redirect_host = "127.0.0.1";
    std::optional<std::uint16_t> redirect_port;  // nullopt: the setting, else 8765; 0: any (tests)
    std::chrono::seconds wait{600};              // for the browser to come back
    connectors::client_settings http;            // CA bundle, proxy, timeouts
    const util::clock* clock = nullptr;          // nullptr: the system clock
    // Called with the authorize URL once the redirect listener is up (tests play the browser).
    std::function<void(const std::string&)> on_authorize_url;
};

// Exit codes: 0 connected; 69 the flow failed (denied, timeout, token endpoint); 78 settings.
int run_connect(connect_options options, std::ostream& out, std::ostream& err);

// Loads the configuration, picks the connector named `vendor` (else the one connector of that
// kind), and runs the flow.
int cmd_connect(const std::string& config_file,
                const std::string& vendor,
                std::ostream& out,
                std::ostream& err);

}  // namespace billsync::daemon
