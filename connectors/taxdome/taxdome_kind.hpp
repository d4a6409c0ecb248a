#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::taxdome {

// The taxdome connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

}  // namespace billsync::connectors::taxdome
