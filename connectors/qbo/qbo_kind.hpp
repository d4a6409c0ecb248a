#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::qbo {

// The qbo connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

// From the fact sheet's "Authentication" and "Limits" sections.
oauth2::vendor_rules oauth2_rules();
limit_spec rate_limits();  // 500/min and 10 concurrent per realm

}  // namespace billsync::connectors::qbo
