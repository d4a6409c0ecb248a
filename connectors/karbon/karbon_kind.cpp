#include "connectors/karbon/karbon_kind.hpp"

namespace billsync::connectors::karbon {

limit_spec rate_limits() {
    limit_spec s;
    s.windows = {per_window(120, std::chrono::minutes(1))};
    return s;
}

// The settings are known; the connector is not in this build yet, so an enabled section fails
// validation.
connector_kind describe() {
    using enum field_type;
    return {
        .kind = "karbon",
        .summary = "Karbon practice management (not available in this build yet)",
        .base_url = "https://api.karbonhq.com",
        .fields =
            {
                {.key = "bearer_token", .type = secret, .required = true},
                {.key = "access_key", .type = secret, .required = true},
                {.key = "webhook_signing_key", .type = secret},
            },
        .limits = rate_limits(),
    };
}

}  // namespace billsync::connectors::karbon
