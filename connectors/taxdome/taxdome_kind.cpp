#include "connectors/taxdome/taxdome_kind.hpp"

#include <string>

#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/taxdome/taxdome_connector.hpp"

namespace billsync::connectors::taxdome {

namespace {

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    auto st = from(s);
    st.log = rt.log;
    return std::make_unique<taxdome_connector>(std::move(st));
}

// The relay is authenticated by its bearer secret alone: it must be long and random.
void check(const connector_settings& s, config::reader& r) {
    for (const char* key : {"relay_secret", "relay_secret_previous"}) {
        const auto* secret = s.find_secret(key);
        if (secret != nullptr && secret->resolved() &&
            secret->reveal().size() < min_secret_length) {
            r.error(key,
                    std::string(key) + " must be at least " + std::to_string(min_secret_length) +
                        " characters (e.g. `openssl rand -hex 32`): the Zap's bearer secret is "
                        "the relay's only proof");
        }
    }
}

}  // namespace

// TaxDome has no public API: account and contact events arrive relayed by a Zap
// ("Webhooks by Zapier") that sends a bearer secret.
connector_kind describe() {
    using enum field_type;
    return {
        .kind = "taxdome",
        .summary = "TaxDome accounts and contacts, relayed by a Zapier Zap with a bearer secret",
        .fields =
            {
                {.key = "relay_secret", .type = secret, .required = true},
                {.key = "relay_secret_previous", .type = secret},
                {.key = "relay_max_age_s",
                 .type = integer,
                 .fallback = "86400",
                 .min = 300,
                 .max = 604'800},
                {.key = "default_calling_code", .fallback = "1"},
            },
        .check = check,
        .make = make,
    };
}

}  // namespace billsync::connectors::taxdome
