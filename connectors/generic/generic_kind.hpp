#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::generic {

// The generic connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

}  // namespace billsync::connectors::generic
