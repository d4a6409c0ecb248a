#pragma once

#include "connectors/runtime/kind.hpp"
#include "connectors/runtime/oauth2_rules.hpp"

namespace billsync::connectors::harvest {

// The harvest connector kind: settings schema, OAuth2 rules, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

limit_spec rate_limits();  // 100 per 15 s per token

// Harvest ID's authorization-code flow (`billsync connect`): authorize and token endpoints, the
// accounts endpoint that lists the Harvest accounts a grant reaches.
oauth2::vendor_rules oauth2_rules();

// True when a checked section authenticates with OAuth2 (client_id and client_secret, no
// access_token); false for a Personal Access Token.
bool uses_oauth2(const connector_settings& s);

}  // namespace billsync::connectors::harvest
