#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::sendgrid {

// The sendgrid connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

}  // namespace billsync::connectors::sendgrid
