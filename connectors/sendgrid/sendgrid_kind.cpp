#include "connectors/sendgrid/sendgrid_kind.hpp"

#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/sendgrid/sendgrid_connector.hpp"

namespace billsync::connectors::sendgrid {

namespace {
std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    auto st = from(s);
    st.log = rt.log;
    return std::make_unique<sendgrid_connector>(std::move(st));
}
}  // namespace

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "sendgrid",
        .summary = "Twilio SendGrid email: email.send, the Event Webhook, Inbound Parse replies",
        .base_url = "https://api.sendgrid.com",
        .fields =
            {
                {.key = "api_key", .type = secret, .required = true},
                {.key = "event_webhook_public_key"},
                {.key = "event_max_age_s",
                 .type = integer,
                 .fallback = "259200",
                 .min = 300,
                 .max = 2'592'000},
                {.key = "from_email", .required = true},
                {.key = "from_name"},
                {.key = "inbound_secret", .type = secret},
            },
        .actions = {"email.send"},
        .make = make,
    };
}

}  // namespace billsync::connectors::sendgrid
