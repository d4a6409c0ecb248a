#pragma once

// Xero webhook deliveries (shared/vendors/xero.md, "Webhooks"): the x-xero-signature check on
// the raw body, and parsing of the thin events. Pure functions: no I/O, no clock, never throw,
// bounded work on hostile input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace billsync::connectors::xero {

inline constexpr std::string_view signature_header = "x-xero-signature";

enum class signature_check : std::uint8_t {
    ok,
    missing_signature,  // no or empty header
    mismatch,           // anything but the exact base64 of the MAC
    no_webhook_key,     // nothing configured to check against: reject
};

std::string_view to_string(signature_check c) noexcept;

// base64(HMAC-SHA256(webhook_key as its literal bytes, raw_body)), standard alphabet with
// padding, compared with the header value byte for byte in constant time. No decoding, no
// trimming: Intent to Receive sends signatures one character off and expects a 401.
signature_check verify_signature(std::string_view webhook_key,
                                 std::string_view raw_body,
                                 std::string_view header_value);
// The header value a correct delivery carries (for the simulator and tests).
std::string sign(std::string_view webhook_key, std::string_view raw_body);

struct xero_event {
    std::string category;     // "INVOICE", "CONTACT", "CREDITNOTE", "SUBSCRIPTION", …
    std::string type;         // "CREATE", "UPDATE"
    std::string resource_id;  // the invoice's or contact's id
    std::string tenant_id;
    std::string event_date;  // eventDateUtc as sent
    bool tenant_known = true;
};

struct webhook_limits {
    std::size_t max_body_bytes = 4 * 1024 * 1024;
    std::size_t max_depth = 16;
    std::size_t max_events = 10'000;
    std::size_t max_field_bytes = 256;
};

struct webhook_parse {
    std::vector<xero_event> events;
    std::vector<std::string> problems;  // elements skipped, with why
    std::string error;                  // the delivery as a whole is unusable
    bool ok() const noexcept { return error.empty(); }
};

// Parses a verified body {"events":[…],"firstEventSequence":…,"entropy":…}. An empty events
// array (Intent to Receive) is fine. Events lacking category, resource id or tenant are skipped
// into problems; those for a tenant not in known_tenants (empty: all) are flagged.
webhook_parse parse_webhook(std::string_view body,
                            const std::vector<std::string>& known_tenants = {},
                            const webhook_limits& limits = {});

}  // namespace billsync::connectors::xero
