#include "connectors/channels.hpp"

namespace billsync::connectors {

std::string_view channel_of_kind(std::string_view kind) noexcept {
    if (kind == "sendgrid" || kind == "smtp") {
        return "email";
    }
    if (kind == "twilio") {
        return "sms";
    }
    return {};
}

}  // namespace billsync::connectors
