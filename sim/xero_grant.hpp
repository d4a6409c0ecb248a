#pragma once

// What `billsync connect <name>` would have stored for a Xero organisation: a grant the Xero
// simulator issued, recorded as credential "xero/<tenant>" with the scopes the kind asks for.
// Used by the sandbox, so its Xero entity starts connected.

#include <filesystem>
#include <optional>
#include <string>

#include "connectors/runtime/token_store.hpp"
#include "sim/xero_simulator.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

// Stores a grant for `tenant` in data_dir's state (created private when missing), sealed with
// `key` when given; `scope` is recorded as granted. Returns an error message, empty on success.
std::string seed_xero_grant(const std::filesystem::path& data_dir,
                            xero_simulator& xero,
                            const std::string& tenant,
                            const std::string& scope,
                            util::instant now,
                            std::optional<connectors::sealing_key> key = std::nullopt);

}  // namespace billsync::simulators
