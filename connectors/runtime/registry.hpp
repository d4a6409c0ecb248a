#pragma once

#include <memory>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::connectors {

// Builds the connector for one configured section: one explicit line per implemented kind.
// nullptr for a kind whose connector is not implemented in this build, or that needs runtime
// pieces `rt` lacks (its webhooks answer 404 and /status shows it as "unavailable").
std::unique_ptr<connector> make_connector(const connector_settings& s, const runtime_deps& rt);
std::unique_ptr<connector> make_connector(const connector_settings& s);

}  // namespace billsync::connectors
