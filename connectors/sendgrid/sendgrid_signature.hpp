#pragma once

// SendGrid Event Webhook signatures (sendgrid.md, "Signature"): ECDSA P-256 with SHA-256 over the
// X-Twilio-Email-Event-Webhook-Timestamp header's value immediately followed by the raw body
// bytes; the X-Twilio-Email-Event-Webhook-Signature header is base64 of the DER signature; the
// verification key is base64 of a DER SubjectPublicKeyInfo (no PEM armour).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::connectors::sendgrid {

inline constexpr std::string_view signature_header = "X-Twilio-Email-Event-Webhook-Signature";
inline constexpr std::string_view timestamp_header = "X-Twilio-Email-Event-Webhook-Timestamp";

class event_verifier {
public:
    // Decodes and checks the key once (base64, DER SPKI, an EC key on P-256). nullopt with a
    // reason in *error otherwise.
    static std::optional<event_verifier> from_base64_der(std::string_view public_key,
                                                         std::string* error = nullptr);

    // True only for a valid signature over timestamp + body. Malformed base64 or DER is false.
    bool verify(std::string_view timestamp,
                std::string_view body,
                std::string_view signature_base64) const;

private:
    struct key;
    explicit event_verifier(std::shared_ptr<const key> k) : key_(std::move(k)) {}
    std::shared_ptr<const key> key_;  // immutable; copies share it
};

// One-shot form of the above.
bool verify_event_signature(std::string_view public_key_base64,
                            std::string_view timestamp,
                            std::string_view body,
                            std::string_view signature_base64);

}  // namespace billsync::connectors::sendgrid
