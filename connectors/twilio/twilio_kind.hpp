#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::twilio {

// The twilio connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

limit_spec rate_limits();  // concurrency only (the sheet gives no figure; 10 is our choice)

}  // namespace billsync::connectors::twilio
