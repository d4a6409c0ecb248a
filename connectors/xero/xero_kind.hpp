#pragma once

#include "connectors/runtime/kind.hpp"

namespace billsync::connectors::xero {

// The xero connector kind: settings schema, limits and factory (registered in
// connectors/builtin.cpp).
connector_kind describe();

oauth2::vendor_rules oauth2_rules();
// 60/min (X-MinLimit-Remaining), 5,000/day, 5 concurrent per tenant.
limit_spec rate_limits();
// The app-wide limit: 10,000 calls per minute over every tenant (X-AppMinLimit-Remaining).
limit_spec app_rate_limits();

}  // namespace billsync::connectors::xero
