#pragma once

// What `billsync connect qbo` would have stored in a data dir: a grant the QBO simulator issued.
// Used by the sandbox and by the end-to-end tests, so both start from the same connected state.

#include <filesystem>
#include <optional>
#include <string>

#include "connectors/runtime/token_store.hpp"
#include "sim/qbo_simulator.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

// Stores a grant for `realm` in data_dir's state (created private when missing), sealed with
// `key` when given. Returns an error message, empty on success.
std::string seed_qbo_grant(const std::filesystem::path& data_dir,
                           qbo_simulator& qbo,
                           const std::string& realm,
                           util::instant now,
                           std::optional<connectors::sealing_key> key = std::nullopt);

}  // namespace billsync::simulators
