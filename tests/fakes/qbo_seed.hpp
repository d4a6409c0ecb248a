#pragma once

// Helpers shared by the end-to-end tests that run billsync against the QBO simulator.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "connectors/runtime/token_store.hpp"
#include "sim/qbo_simulator.hpp"
#include "util/clock.hpp"

namespace billsync::testing {

// Polls `probe` until it holds or `limit` passes (a condition wait, not a fixed sleep).
bool eventually(const std::function<bool()>& probe,
                std::chrono::seconds limit = std::chrono::seconds(20));

util::instant parse_time(std::string_view rfc3339);

}  // namespace billsync::testing
