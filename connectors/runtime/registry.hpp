#pragma once

#include <memory>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::connectors {

// Builds the connector for one configured section: one explicit line per implemented kind.
// nullptr for a kind whose connector is not implemented in this build (its webhooks answer 404
// and /status shows it as "unavailable").
std::unique_ptr<connector> make_connector(const connector_settings& s);

}  // namespace billsync::connectors
