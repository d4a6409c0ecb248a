#include "connectors/builtin.hpp"

#include "connectors/generic/generic_kind.hpp"
#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/karbon/karbon_kind.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/connector.hpp"
#include "connectors/sendgrid/sendgrid_connector.hpp"
#include "connectors/sendgrid/sendgrid_kind.hpp"
#include "connectors/smtp/smtp_kind.hpp"
#include "connectors/taxdome/taxdome_kind.hpp"
#include "connectors/twilio/twilio_kind.hpp"
#include "connectors/xero/xero_kind.hpp"

namespace billsync::connectors {

const kind_registry& builtin_kinds() {
    static const kind_registry registry = [] {
        kind_registry r;
        r.add(generic::describe());
        r.add(harvest::describe());
        r.add(karbon::describe());
        r.add(qbo::describe());
        r.add(sendgrid::describe());
        r.add(smtp::describe());
        r.add(taxdome::describe());
        r.add(twilio::describe());
        r.add(xero::describe());
        return r;
    }();
    return registry;
}

std::optional<connector_settings> parse_connector_settings(const config::connector_section& section,
                                                           config::reader& r,
                                                           config::diagnostics& diags) {
    return builtin_kinds().parse(section, r, diags);
}

std::unique_ptr<connector> make_connector(const connector_settings& s, const runtime_deps& rt) {
    return builtin_kinds().make(s, rt);
}

std::vector<std::string_view> known_connector_kinds() { return builtin_kinds().kinds(); }

std::string_view channel_of_kind(std::string_view kind) noexcept {
    const auto& kinds = builtin_kinds();
    if (kinds.performs(kind, "email.send")) {
        return "email";
    }
    if (kinds.performs(kind, "sms.send")) {
        return "sms";
    }
    return {};
}

std::vector<state::expiring_rows> connector_expiring_rows(std::chrono::seconds keep) {
    return {{"sendgrid_events",
             std::string(sendgrid::seen_event_type),
             keep,
             sendgrid::seen_event_time}};
}

}  // namespace billsync::connectors
