#include "connectors/harvest/harvest_kind.hpp"

namespace billsync::connectors::harvest {

limit_spec rate_limits() {
    limit_spec s;
    s.windows = {per_window(100, std::chrono::seconds(15))};
    return s;
}

// The settings are known; the connector is not in this build yet, so an enabled section fails
// validation.
connector_kind describe() {
    using enum field_type;
    return {
        .kind = "harvest",
        .summary = "Harvest time tracking (not available in this build yet)",
        .base_url = "https://api.harvestapp.com/v2",
        .token_url = "https://id.getharvest.com/api/v2/oauth2/token",
        .fields =
            {
                {.key = "account_id", .required = true},
                {.key = "access_token", .type = secret, .required = true},
                {.key = "user_agent", .required = true},
            },
        .limits = rate_limits(),
    };
}

}  // namespace billsync::connectors::harvest
