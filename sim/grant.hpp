#pragma once

// What `billsync connect <name>` would have stored: a grant a simulator's OAuth2 server issued,
// recorded in a data dir's token store. The vendors' seeders (qbo_grant, xero_grant) fill in the
// credential's identity (id, vendor, account, tenants, scope).

#include <filesystem>
#include <optional>
#include <string>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/oauth2_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

// Stores `c` with a fresh grant of `server` in data_dir's state (created private when missing),
// sealed with `key` when given. Returns an error message, empty on success.
std::string seed_grant(const std::filesystem::path& data_dir,
                       oauth2_server& server,
                       connectors::oauth2::credential c,
                       util::instant now,
                       std::optional<connectors::sealing_key> key);

}  // namespace billsync::simulators
