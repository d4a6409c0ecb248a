#pragma once

#include <string>
#include <utility>
#include <vector>

#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/clock.hpp"

namespace billsync::workflows {

// What a rule may touch while deciding: everything goes into one batch that also carries the
// change (or the fired timer) that caused it, so a decision is made exactly once.
struct context {
    state::batch& b;
    state::outbox& outbox;
    state::timers& timers;
    state::audit_log& audit;
    util::instant now;
    // Filled by the engine: actions this decision added (id, connector), for the caller's
    // bookkeeping once the batch commits.
    std::vector<std::pair<std::string, std::string>> enqueued{};
    // Reads through `b` need the store; set by the pipeline.
    const state::store* store = nullptr;
};

}  // namespace billsync::workflows
