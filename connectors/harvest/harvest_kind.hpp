#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::harvest {

// The harvest connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

limit_spec rate_limits();  // 100 per 15 s per token

}  // namespace billsync::connectors::harvest
