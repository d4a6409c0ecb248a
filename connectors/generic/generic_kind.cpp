#include "connectors/generic/generic_kind.hpp"

#include "connectors/generic/generic_connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors::generic {

namespace {
std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    auto st = from(s);
    // The runtime's HTTP settings (CA bundle, proxy, timeouts): actions go out over HTTPS.
    st.client = rt.http;
    st.client.log = rt.log;
    return std::make_unique<generic_connector>(std::move(st));
}
}  // namespace

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "generic",
        .summary = "any system that signs its webhooks with an HMAC (records, notify/remind)",
        .fields =
            {
                {.key = "secret", .type = secret, .required = true},
                {.key = "signature_header", .fallback = "X-Signature"},
                {.key = "signature_encoding",
                 .type = choice,
                 .fallback = "hex",
                 .choices = {"hex", "base64"}},
                {.key = "signature_prefix", .fallback = ""},
                {.key = "event_id_header"},
                {.key = "action_url", .type = url},
            },
        .actions = {"notify", "remind"},
        .make = make,
    };
}

}  // namespace billsync::connectors::generic
