#pragma once

// QBO webhook deliveries: the intuit-signature check on the raw body, and parsing of both
// payload formats (classic eventNotifications and the CloudEvents array) into one flat list of
// events. Pure functions: no I/O, no clock, never throw, bounded work on hostile input.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/model.hpp"

namespace billsync::connectors::qbo {

inline constexpr std::string_view signature_header = "intuit-signature";

enum class signature_check : std::uint8_t {
    ok,
    missing_signature,  // no or empty header
    malformed,          // not base64 of a 32-byte MAC
    mismatch,
    no_verifier_token,  // nothing configured to check against: reject
};

std::string_view to_string(signature_check c) noexcept;

// base64(HMAC-SHA256(verifier_token, raw_body)) compared with the header value in constant time
// (on the decoded 32 bytes, so surrounding whitespace and base64 spelling do not matter).
signature_check verify_signature(std::string_view verifier_token,
                                 std::string_view raw_body,
                                 std::string_view header_value);

enum class webhook_format : std::uint8_t { classic, cloudevents };

enum class operation : std::uint8_t { created, updated, deleted, merged, voided, emailed, unknown };

std::string_view to_string(operation op) noexcept;

struct qbo_event {
    std::string realm_id;
    std::string entity_name;  // QBO spelling: "Invoice", "Customer"; as sent when unknown
    std::string entity_id;
    operation op = operation::unknown;
    std::string operation_text;  // as sent: "Create", "created"
    std::optional<mappings::instant> last_updated;
    std::string time_text;                // lastUpdated / time as sent
    std::optional<std::string> event_id;  // CloudEvents "id"
    std::string deleted_id;               // classic Merge: the id merged away (3rd-party)
    std::string dedup_key;                // see dedup_key()
    bool realm_known = true;              // false: not one of the configured realms
    bool entity_known = true;             // false: an entity type billsync does not map
};

struct webhook_limits {
    std::size_t max_body_bytes = 32 * 1024 * 1024;  // Intuit sets no limit: be generous
    std::size_t max_depth = 16;
    std::size_t max_events = 100'000;
    std::size_t max_field_bytes = 1024;  // ids, names, timestamps
};

struct webhook_parse {
    webhook_format format = webhook_format::classic;
    std::vector<qbo_event> events;
    std::vector<std::string> problems;  // elements skipped, with why ("element 3: no 'id'")
    std::string error;                  // the delivery as a whole is unusable

    bool ok() const noexcept { return error.empty(); }
};

// Parses a verified body. A body starting with '{' is classic, one starting with '[' is
// CloudEvents (after leading whitespace). Elements that lack what routing needs (realm, entity,
// id) are skipped and listed in problems; everything else is kept, flagged where the realm is
// not in known_realms (empty: all realms are known) or the entity is not one billsync maps.
webhook_parse parse_webhook(std::string_view body,
                            const std::vector<std::string>& known_realms = {},
                            const webhook_limits& limits = {});

// The deduplication key of one event: "qbo:ce:<id>" for CloudEvents, and for classic
// "qbo:classic:<realm>:<entity>:<id>:<operation>:<lastUpdated as UTC>" (the raw text when it
// does not parse; components percent-encoded so none can forge a separator). Stable across
// redeliveries and across spellings of the same instant ("-0700" vs "-07:00").
std::string dedup_key(const qbo_event& e);

// True for the entity types billsync maps (Customer, Invoice, Payment, Item, TimeActivity).
bool entity_handled(std::string_view qbo_entity_name) noexcept;

}  // namespace billsync::connectors::qbo
