#pragma once

// One canonical entity of any kind, as a vendor mapping hands it to the shared apply step
// (state/apply.hpp) and as a change carries it to the workflows.

#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "mappings/generic.hpp"
#include "mappings/model.hpp"

namespace billsync::mappings {

using entity = std::variant<client,
                            invoice,
                            payment,
                            suppression,
                            message_status,
                            inbound_message,
                            generic::record,
                            staff,
                            work_item,
                            time_entry,
                            ledger_item>;

// The entity table it is stored in: "client", "invoice", "payment", "suppression",
// "sms_message"/"email_message", "sms_inbound"/"email_inbound", "record", "staff", "work_item",
// "time_entry", "ledger_item". The overloads name one alternative without wrapping (copying) it in
// an entity.
std::string_view entity_type_of(const entity& e) noexcept;
std::string_view entity_type_of(const client&) noexcept;
std::string_view entity_type_of(const invoice&) noexcept;
std::string_view entity_type_of(const payment&) noexcept;
std::string_view entity_type_of(const suppression&) noexcept;
std::string_view entity_type_of(const message_status& m) noexcept;
std::string_view entity_type_of(const inbound_message& m) noexcept;
std::string_view entity_type_of(const generic::record&) noexcept;
std::string_view entity_type_of(const staff&) noexcept;
std::string_view entity_type_of(const work_item&) noexcept;
std::string_view entity_type_of(const time_entry&) noexcept;
std::string_view entity_type_of(const ledger_item&) noexcept;
// Its canonical id (a suppression's "sms:+1…", a message status's delivery id, …).
std::string entity_id_of(const entity& e);

// The identity-map key of a vendor object: "<account>/<type>/<id>", or "<type>/<id>" where the
// vendor has one account. One canonical id may be linked from several systems (a client known
// by its ledger customer, practice organization, time-tracking client, …).
std::string identity_key(std::string_view type, const source_ref& ref);

// The canonical id of a vendor object the identity map does not link yet:
// "<system>:<account>:<type>:<id>" ("<system>:<type>:<id>" where the vendor has one account).
std::string default_canonical_id(std::string_view type, const source_ref& ref);

// How a mapping names the canonical id of a vendor object (the identity-map row when there is
// one, see state::canonical_ids); every vendor mapping takes one in its options.
using id_resolver = std::function<std::string(std::string_view type, const source_ref& ref)>;

}  // namespace billsync::mappings
