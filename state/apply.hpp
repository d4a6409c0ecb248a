#pragma once

// The one vendor-neutral step that writes canonical entities into the store. Every connector's
// process() maps its payload (mappings/<vendor>) and hands the entities here; an action's
// outcome hands the entities it established (a number found opted out) the same way.
//
// Per entity it reads the stored copy (through the batch, so earlier entities of the same batch
// count), decides whether this copy changes anything, writes the next version and the
// identity-map row into the batch, and returns the change the workflows see:
//   - ledger and practice entities (client, invoice, payment, ledger_item, staff, work_item,
//     time_entry):
//     an older copy than the stored one (by the vendor's update time) is not applied; a delete of
//     something never seen, or already deleted, is nothing; a delete keeps the last known fields;
//     identical copies are nothing; invoices and clients carry their field-level diff;
//   - suppression: only a move between opted out and opted in is a change;
//   - message status: delivery progress only moves forward; an engagement event (progress 0) is
//     recorded beside the status;
//   - inbound message: the first copy is the change, redeliveries are nothing;
//   - record (generic webhook): a copy with other fields than the stored one is a change.

#include <optional>
#include <string_view>

#include "mappings/change.hpp"
#include "mappings/entity.hpp"
#include "state/store.hpp"

namespace billsync::state {

// `source`: the connector that reported the entity. nullopt: nothing changed, nothing written.
result<std::optional<mappings::change>> apply(const store& s,
                                              batch& b,
                                              std::string_view source,
                                              mappings::entity e);

// The stored version of an entity row (0 when absent or unreadable): every row the apply step
// writes carries "version".
std::uint64_t stored_version(const std::optional<std::string>& row);

}  // namespace billsync::state
