#pragma once

#include <string_view>

namespace billsync::connectors {

// The messages a connector kind carries for the workflows: "email" (takes "email.send"), "sms"
// (takes "sms.send"), or "" (none). The daemon hands this to rules, which route by channel and
// never by vendor.
std::string_view channel_of_kind(std::string_view kind) noexcept;

}  // namespace billsync::connectors
