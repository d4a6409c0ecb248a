#pragma once

// Twilio payloads → canonical messaging entities. Pure: no store, no clock; the connector hands
// the entities to the shared apply step (state/apply.hpp). Facts: shared/vendors/twilio.md.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mappings/entity.hpp"

namespace billsync::mappings::twilio {

// A form-encoded webhook body, in order (connectors/twilio parses and verifies it).
using form = std::vector<std::pair<std::string, std::string>>;

// Error 21610: the recipient replied STOP; Twilio refuses every message to them.
inline constexpr int opted_out_code = 21610;

// Delivery progress of a message status (model.hpp, message_status::progress): queued, accepted
// and scheduled 1, sending 2, sent 3, delivered/undelivered/failed/canceled 4; "read" and
// anything unknown 0.
std::uint8_t progress_of(std::string_view status) noexcept;
// undelivered, failed: the message did not reach the recipient.
bool failed_status(std::string_view status) noexcept;

// An inbound SMS: the message (keyword from mappings/sms_keywords, or Advanced Opt-Out's
// OptOutType), then the opt-out or opt-in it states. `received_at`: RFC 3339. nullopt with
// `error` when MessageSid or From is missing.
std::optional<std::vector<entity>> map_inbound(const form& f,
                                               std::string_view received_at,
                                               std::string& error);

// A status callback for billsync's delivery `delivery_id`: the message status, then a
// suppression when the error code says the recipient opted out. nullopt with `error` when
// MessageSid or MessageStatus is missing.
std::optional<std::vector<entity>> map_status(const form& f,
                                              std::string_view delivery_id,
                                              std::string_view received_at,
                                              std::string& error);

// The status of a message Twilio accepted (the effect of a send, or of finding it at reconcile).
message_status sent_status(std::string_view delivery_id,
                           std::string_view sid,
                           std::string_view to,
                           std::string_view status);

// A number that must not be messaged (or may be again).
suppression sms_suppression(std::string_view e164,
                            bool opted_out,
                            std::string_view reason,
                            std::string_view at);

}  // namespace billsync::mappings::twilio
