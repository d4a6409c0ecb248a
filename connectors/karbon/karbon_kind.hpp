#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::karbon {

// The karbon connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

limit_spec rate_limits();  // 120/min per account

}  // namespace billsync::connectors::karbon
