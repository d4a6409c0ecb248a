#pragma once

// Retention: deletes what the state no longer needs, in small steps so it never stalls ingest.
//
// What is pruned, and the age each row is judged by:
//   dedup        inbox dedup rows; value = when the delivery was received
//   audit        audit lines; key = when the line was written
//   changes      change records; the key is a sequence number without a time, so every pass
//                leaves a mark in meta ("retention/changes/" be64(time) -> be64(next seq)) and a
//                record is old once a mark older than the retention was set after it
//   outbox       done actions, and dead ones whose dead letter is gone (retried actions are live
//                again and never touched): after `outbox` their row is compacted to a "seen"
//                marker (payload, last error and window cleared; id, state, times and the
//                result, the side effect's remote id, kept), so
//                the id stays known and outbox::enqueue still refuses it; after `outbox_seen`
//                the marker goes too. Age: the later of next_attempt_at and first_attempt_at.
//   expiring     entity rows of a type whose value carries its own time (e.g. the SendGrid
//                events already seen), with an age function supplied by the caller, since state/
//                does not read vendor rows
//
// A pass runs the tables one after another; step() examines at most `chunk` rows and writes
// one batch (unsynced: a lost prune is redone by the next pass), remembering where to go on.
// A retention of zero keeps that table for ever.
//
// Threads: one caller at a time (the pipeline's core strand), which also runs every outbox
// transition, so compacting a terminal action cannot race one.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

struct expiring_rows {
    std::string label;        // for figures: "sendgrid_events"
    std::string entity_type;  // entities rows type '\0' id
    std::chrono::seconds keep{0};
    // The row's time, or nullopt when it has none (such a row is pruned).
    std::function<std::optional<util::instant>(std::string_view value)> time_of;
};

struct retention_policy {
    std::chrono::seconds dedup{std::chrono::days(30)};
    std::chrono::seconds audit{std::chrono::days(400)};
    std::chrono::seconds changes{std::chrono::days(30)};
    std::chrono::seconds outbox{std::chrono::days(30)};
    std::chrono::seconds outbox_seen{std::chrono::days(400)};
    std::vector<expiring_rows> expiring;
};

// Rows removed (or compacted) per table, by label: "dedup", "audit", "changes",
// "outbox_compacted", "outbox_forgotten", then each expiring_rows label.
using prune_counts = std::vector<std::pair<std::string, std::uint64_t>>;

class pruner {
public:
    pruner(store& s, retention_policy policy, std::size_t chunk = 1000);

    // Starts a pass whose cutoffs are `now` minus each retention. False if one is running.
    result<bool> begin_pass(util::instant now);
    bool in_pass() const noexcept { return phase_ < phase_count(); }
    // One bounded step of the running pass (nothing if none runs). Counts what it removed.
    result<prune_counts> step();
    // begin_pass and every step at once (tests and tools).
    result<prune_counts> run_pass(util::instant now);

    const retention_policy& policy() const noexcept { return policy_; }

private:
    std::size_t phase_count() const noexcept { return 4 + policy_.expiring.size(); }
    status step_dedup(batch& b, prune_counts& out);
    status step_audit(batch& b, prune_counts& out);
    status step_changes(batch& b, prune_counts& out);
    status step_outbox(batch& b, prune_counts& out);
    status step_expiring(const expiring_rows& rows, batch& b, prune_counts& out);
    void next_phase() {
        ++phase_;
        resume_.clear();
    }

    store& store_;
    retention_policy policy_;
    std::size_t chunk_;
    std::size_t phase_ = static_cast<std::size_t>(-1) >> 1;  // no pass
    std::string resume_;                                     // first key to look at next
    util::instant now_{};
    std::optional<std::uint64_t> changes_below_;  // records with seq below it are old
};

void add_counts(prune_counts& into, const prune_counts& more);

}  // namespace billsync::state
