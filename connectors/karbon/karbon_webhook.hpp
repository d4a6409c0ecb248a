#pragma once

// Karbon webhook deliveries (shared/vendors/karbon.md, "Webhooks"): the signature and the thin
// payload {"ResourcePermaKey", "ResourceType", "ActionType", "TimeStamp"}. Pure: no I/O.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "util/clock.hpp"

namespace billsync::connectors::karbon {

inline constexpr std::string_view signature_header = "Signature";

// Every WebhookType Karbon knows (the spec's GET schema; its POST enum leaves out CustomField).
inline constexpr std::array<std::string_view, 8> webhook_types = {"Contact",
                                                                  "Work",
                                                                  "Note",
                                                                  "User",
                                                                  "Invoice",
                                                                  "EstimateSummary",
                                                                  "CustomField",
                                                                  "IntegrationTask"};

// The one place that knows Karbon's signing algorithm (the sheet marks it UNCONFIRMED, so it is
// kept here alone to be corrected in one spot): lower-case hex of HMAC-SHA256 with the signing
// key's bytes as the key and the raw body as the message.
std::string sign(std::string_view signing_key, std::string_view body);

enum class signature_check : std::uint8_t { ok, no_key_configured, missing, mismatch };
std::string_view to_string(signature_check c) noexcept;

// Compares the Signature header (hex, either case, surrounding spaces ignored) with sign() in
// constant time.
signature_check verify_signature(std::string_view signing_key,
                                 std::string_view body,
                                 std::string_view header);

// A SigningKey Karbon accepts: at least 16 characters of [A-Za-z0-9-_]. Empty when fine, else why.
std::string signing_key_problem(std::string_view key);

struct notification {
    std::string key;            // ResourcePermaKey
    std::string resource_type;  // "Work", "Contact", "Note", "NoteComment", "Invoice", …
    std::string action_type;    // "Inserted", "Updated", "Deleted", …
    util::instant timestamp{};  // TimeStamp
};

struct parse_result {
    std::optional<notification> value;
    std::string error;  // set when value is empty
    bool ok() const noexcept { return value.has_value(); }
};

// Parses one delivery body strictly: a JSON object (nesting capped) whose ResourcePermaKey,
// ResourceType and ActionType are non-empty strings and whose TimeStamp is an RFC 3339 instant.
parse_result parse_webhook(std::string_view body);

// The WebhookType a ResourceType is delivered under ("Work" -> "Work", "NoteComment" -> "Note",
// "Estimate" -> "EstimateSummary", "CustomFieldValue" -> "CustomField"); empty when unknown.
std::string_view webhook_type_of(std::string_view resource_type) noexcept;

}  // namespace billsync::connectors::karbon
