#pragma once

// SendGrid payloads → canonical messaging entities. Pure: no store; the connector keeps the
// event de-duplication rows and hands the entities to the shared apply step (state/apply.hpp).
// Facts: shared/vendors/sendgrid.md.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/entity.hpp"

namespace billsync::mappings::sendgrid {

// Delivery progress of an event (model.hpp, message_status::progress): processed 1, deferred 2,
// delivered 3, bounce and dropped 4 (final); 0 for engagement events (open, click, …).
std::uint8_t delivery_rank(std::string_view event) noexcept;

// One Event Webhook event.
struct event {
    // sg_event_id, and sg_message_id + event + timestamp (the former is sometimes missing or
    // unstable across retries, sendgrid.md "Duplicates"); a hash of the event without either.
    std::vector<std::string> dedup_keys;
    std::string name;  // "delivered"
    std::string at;    // RFC 3339; empty when the event has no timestamp
    // The delivery status of billsync's message (when the event names its delivery id), then
    // the suppression it implies (bounce, dropped, spamreport, unsubscribe). Empty for event
    // types billsync does not follow.
    std::vector<entity> entities;
};

// An Event Webhook body (a JSON array of objects; other elements are skipped). nullopt with
// `error` when it is not an array or nests too deep.
std::optional<std::vector<event>> map_events(std::string_view body, std::string& error);

// The parts of an Inbound Parse post billsync reads (parsed mode: from, to, subject, text,
// headers; raw mode: the whole MIME message in `email`).
struct inbound_parts {
    std::string from, to, subject, text, headers, email;
    std::string spf;   // the `SPF` field: "pass", "fail", "softfail", "none", ...
    std::string dkim;  // the `dkim` field: "{@example.com : pass}" or "none"
};

// Whether SendGrid's checks vouch for the sender: SPF passed and DKIM passed for the From
// address's domain (or a parent domain of it).
bool sender_verified(std::string_view spf, std::string_view dkim, std::string_view from_address);

// The inbound mail. Its id is the Message-ID, else "sha256:<hex of the whole post>".
inbound_message map_inbound(const inbound_parts& p, std::string_view post_body);

}  // namespace billsync::mappings::sendgrid
