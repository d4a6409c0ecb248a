#pragma once

// The one definition of the SMS opt-out, opt-in and help keywords, for the SMS connector (which
// keeps the suppression list) and for the workflows (which leave such messages alone).
//
// Twilio's default handling on long codes (shared/vendors/twilio.md, "Opt-out keywords"):
// opt-out STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT; opt-in START, YES,
// UNSTOP; help HELP, INFO. Only a message that is the keyword alone counts: ASCII case and
// surrounding whitespace are ignored, anything else (including punctuation: "Stop." or
// "STOP PLEASE") makes it an ordinary message, exactly as the carrier side treats it, so
// billsync's suppression list never drifts from the provider's.

#include <cstdint>
#include <string_view>

namespace billsync::mappings {

enum class sms_keyword : std::uint8_t { none, opt_out, opt_in, help };

sms_keyword classify_sms_keyword(std::string_view body) noexcept;

// "stop", "start", "help"; "" for none.
std::string_view to_string(sms_keyword k) noexcept;

}  // namespace billsync::mappings
