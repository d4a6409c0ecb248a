#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/clock.hpp"

namespace billsync::workflows {

// Why a rule queued an action, for the audit log.
struct cause {
    std::string_view rule;
    std::string_view entity;
    std::uint64_t version = 0;
    std::string_view why;  // "created", "timer remind/x", ...
};

// What a rule may touch while deciding: everything goes into one batch that also carries the
// change (or the fired timer) that caused it, so a decision is made exactly once.
struct context {
    state::batch& b;
    state::outbox& outbox;
    state::timers& timers;
    state::audit_log& audit;
    util::instant now;
    // Filled by enqueue: actions this decision added (id, connector), for the caller's
    // bookkeeping once the batch commits.
    std::vector<std::pair<std::string, std::string>> enqueued{};
    // Reads through `b` need the store; set by the pipeline.
    const state::store* store = nullptr;

    // The one way a rule queues a side effect: `a` becomes ready now, in this batch. An id the
    // outbox already knows is left alone (idempotent replays). With a cause, the decision is in
    // the audit log ("action_enqueued" or "action_already_known"). value: the action is new.
    state::result<bool> enqueue(state::action a, std::optional<cause> why = std::nullopt);
};

}  // namespace billsync::workflows
