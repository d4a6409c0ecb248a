#include "connectors/runtime/registry.hpp"

#include "connectors/generic/generic_connector.hpp"
#include "connectors/twilio/twilio_connector.hpp"

namespace billsync::connectors {

std::unique_ptr<connector> make_connector(const connector_settings& s) {
    if (s.kind == "generic") {
        return std::make_unique<generic::generic_connector>(generic::from(s));
    }
    if (s.kind == "twilio") {
        return std::make_unique<twilio::twilio_connector>(twilio::from(s));
    }
    return nullptr;
}

}  // namespace billsync::connectors
