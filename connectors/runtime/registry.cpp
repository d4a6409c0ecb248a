#include "connectors/runtime/registry.hpp"

#include "connectors/generic/generic_connector.hpp"
#include "connectors/sendgrid/sendgrid_connector.hpp"
#include "connectors/smtp/smtp_connector.hpp"

namespace billsync::connectors {

std::unique_ptr<connector> make_connector(const connector_settings& s) {
    if (s.kind == "generic") {
        return std::make_unique<generic::generic_connector>(generic::from(s));
    }
    if (s.kind == "sendgrid") {
        return std::make_unique<sendgrid::sendgrid_connector>(sendgrid::from(s));
    }
    if (s.kind == "smtp") {
        return std::make_unique<smtp::smtp_connector>(smtp::from(s));
    }
    return nullptr;
}

}  // namespace billsync::connectors
