#include "connectors/taxdome/taxdome_kind.hpp"

namespace billsync::connectors::taxdome {

// TaxDome has no public API: its events arrive relayed (signed with relay_secret). The settings
// are known; the connector is not in this build yet, so an enabled section fails validation.
connector_kind describe() {
    using enum field_type;
    return {
        .kind = "taxdome",
        .summary =
            "TaxDome practice management via a signed relay (not available in this build yet)",
        .fields =
            {
                {.key = "relay_secret", .type = secret, .required = true},
            },
    };
}

}  // namespace billsync::connectors::taxdome
