#pragma once

// The connector kinds built into this binary (connectors/builtin.cpp, one line per vendor), and
// shorthands over them for the daemon and the tests.

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "connectors/runtime/kind.hpp"
#include "state/retention.hpp"

namespace billsync::connectors {

const kind_registry& builtin_kinds();

// builtin_kinds().parse / .make / .kinds().
std::optional<connector_settings> parse_connector_settings(const config::connector_section& section,
                                                           config::reader& r,
                                                           config::diagnostics& diags);
std::unique_ptr<connector> make_connector(const connector_settings& s, const runtime_deps& rt);
std::vector<std::string_view> known_connector_kinds();

// The messages a connector kind carries for the workflows: "email" (it performs "email.send"),
// "sms" (it performs "sms.send"), or "" (none). Rules route by channel, never by vendor.
std::string_view channel_of_kind(std::string_view kind) noexcept;

// The rows connectors keep for themselves whose value carries their own time (e.g. webhook
// events already seen), each kept `keep`: the retention pruner's expiring tables.
std::vector<state::expiring_rows> connector_expiring_rows(std::chrono::seconds keep);

}  // namespace billsync::connectors
