#include "connectors/runtime/registry.hpp"

#include "connectors/generic/generic_connector.hpp"
#include "connectors/qbo/qbo_connector.hpp"
#include "connectors/sendgrid/sendgrid_connector.hpp"
#include "connectors/smtp/smtp_connector.hpp"
#include "connectors/twilio/twilio_connector.hpp"

namespace billsync::connectors {

std::unique_ptr<connector> make_connector(const connector_settings& s, const runtime_deps& rt) {
    const bool vendor_ready = rt.clock != nullptr && rt.limiter != nullptr && rt.executor;
    if (s.kind == "generic") {
        return std::make_unique<generic::generic_connector>(generic::from(s));
    }
    if (s.kind == "qbo" && vendor_ready && rt.tokens != nullptr) {
        return std::make_unique<qbo::qbo_connector>(qbo::from(s), rt);
    }
    if (s.kind == "sendgrid") {
        auto st = sendgrid::from(s);
        st.log = rt.log;
        return std::make_unique<sendgrid::sendgrid_connector>(std::move(st));
    }
    if (s.kind == "smtp") {
        auto st = smtp::from(s);
        st.clock = rt.clock;
        if (rt.log) {
            st.client.log = rt.log;
        }
        return std::make_unique<smtp::smtp_connector>(std::move(st));
    }
    if (s.kind == "twilio") {
        auto st = twilio::from(s);
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
        return std::make_unique<twilio::twilio_connector>(std::move(st));
    }
    return nullptr;
}

std::unique_ptr<connector> make_connector(const connector_settings& s) {
    return make_connector(s, runtime_deps{});
}

}  // namespace billsync::connectors
