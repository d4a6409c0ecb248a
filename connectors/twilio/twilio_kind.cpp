#include "connectors/twilio/twilio_kind.hpp"

#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/twilio/twilio_connector.hpp"

namespace billsync::connectors::twilio {

namespace {

void check(const connector_settings& s, config::reader& r) {
    if (s.value("from") == nullptr && s.value("messaging_service_sid") == nullptr) {
        r.error("from", "set 'from' (a sender number) or 'messaging_service_sid'");
    }
}

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    auto st = from(s);
    // The runtime's HTTP settings (CA bundle, proxy, timeouts) and its retry/limiter time.
    st.client = rt.http;
    st.client.log = rt.log;
    if (rt.time.now && rt.time.sleep) {
        st.time = rt.time;
    }
    if (rt.clock != nullptr) {
        const auto* clock = rt.clock;
        st.now = [clock] { return clock->now(); };
    }
    return std::make_unique<twilio_connector>(std::move(st));
}

}  // namespace

limit_spec rate_limits() {
    limit_spec s;
    s.max_concurrent = 10;
    s.throttle_pause = std::chrono::seconds(1);  // 20429: concurrency, safe to retry after a wait
    return s;
}

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "twilio",
        .summary = "Twilio SMS: sms.send, inbound SMS, delivery status callbacks, opt-outs",
        .base_url = "https://api.twilio.com",
        .fields =
            {
                {.key = "account_sid", .required = true},
                {.key = "auth_token", .type = secret, .required = true},
                {.key = "from"},
                {.key = "messaging_service_sid"},
                // The base URL Twilio calls: signatures cover it, StatusCallback is built on it.
                // Required; defaults to [daemon] public_url (daemon/app_config.cpp).
                {.key = "public_url", .type = url, .inbound = true},
            },
        .check = check,
        .limits = rate_limits(),
        .actions = {"sms.send"},
        // Inbound SMS and status callbacks are small forms (a body of at most 1,600 characters
        // plus a few dozen fields).
        .webhook_max_body = std::size_t{64} << 10,
        .make = make,
    };
}

}  // namespace billsync::connectors::twilio
