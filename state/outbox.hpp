#pragma once

// The outbox: side effects to perform, each exactly once as far as we can tell.
//
//   "a/" id                    -> action (binary codec, format 1: connector, kind, payload, state,
//                                 attempts, next_attempt_at, last_error, result, then optional
//                                 trailing fields: first_attempt_at, window, deadline; rows
//                                 written before them decode)
//   "p/" be64(next_at) id      -> ""   pending, ordered by when it may next run
//   "i/" id                    -> ""   in_flight: the side effect may be running
//   "u/" id                    -> ""   unknown: was in flight when the process stopped
//
// The id is the idempotency key derived from (rule, entity, version); an action with a known id is
// never added again, in any state (done and dead actions stay as tombstone records).
//
// Lifecycle: enqueue (pending) -> mark_in_flight (synced BEFORE the side effect runs) ->
// complete | retry_later (pending again) | to_dead_letter. At open, every in_flight action becomes
// unknown: its outcome is unknown after a crash, so its connector must reconcile it (look the
// effect up remotely) and then complete or retry it; an unknown action is never re-sent blindly.
//
// Race-freedom of enqueue: an id being enqueued is reserved in memory until the batch that adds it
// commits or is abandoned, and the check reads through the caller's batch and the database. So
// two batches open at once (on any threads) cannot both add the same id; the second enqueue
// reports "already known". Transitions (complete, retry_later, ...) read-modify-write one action;
// they are meant to run on one worker (the async_store thread) for a given action.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "state/backoff.hpp"
#include "state/detail/scan_floor.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

enum class action_state : std::uint8_t { pending, in_flight, unknown, done, dead };

std::string_view to_string(action_state s) noexcept;

struct action {
    std::string id;  // idempotency key derived from (rule, entity, version)
    std::string connector;
    std::string kind;
    std::string payload;
    action_state state = action_state::pending;
    std::uint32_t attempts = 0;  // side effects started (mark_in_flight calls)
    util::instant next_attempt_at{};
    std::string last_error;
    std::string result;
    // When the side effect first started (the first mark_in_flight); zero before that. A
    // connector reconciling a lost outcome looks its effect up from this time on.
    util::instant first_attempt_at{};
    // When a client-facing action may be performed, as its rule decided it. `window`: an opaque
    // sending window (workflows/send_window.hpp encodes it; the outbox only stores it), empty:
    // any time. `deadline`: past it the decision is stale and the action is dropped, never
    // performed; zero: none. A retry, a wait for capacity or a recovery after a crash never
    // performs it outside its window (it is deferred to the next opening) or after its deadline.
    std::string window;
    util::instant deadline{};

    bool operator==(const action&) const = default;
};

// Live actions of one connector, for /status and /metrics. Exact: kept in memory from one scan at
// open, then changed only when a batch that moves an action commits.
struct outbox_stats {
    std::string connector;
    std::uint64_t pending = 0;  // pending or in flight
    std::uint64_t unknown = 0;  // outcome unknown, to reconcile
    // The earliest next_attempt_at of the pending and in-flight ones: how long the oldest has
    // been due (a retry waiting for its backoff is not overdue yet).
    std::optional<util::instant> oldest_due;
};

struct retry_policy {
    std::uint32_t max_attempts = 8;
    backoff_duration base = std::chrono::seconds(30);
    backoff_duration cap = std::chrono::hours(6);
};

class outbox {
public:
    // Turns every in_flight action into unknown (one synced batch).
    static result<std::unique_ptr<outbox>> open(store& s);

    // Adds a as pending (state and attempts are reset) unless its id is already known.
    // value: true if added, false if the id exists.
    result<bool> enqueue(batch& b, action a);

    // Pending actions with next_attempt_at <= now, earliest first.
    result<std::vector<action>> ready(util::instant now, std::size_t limit);
    result<std::optional<action>> get(std::string_view id) const;
    // Actions found in flight at open, to reconcile.
    result<std::vector<action>> unknown(std::size_t limit) const;

    // pending -> in_flight, attempts + 1, first_attempt_at = now on the first attempt; written
    // with sync before returning.
    status mark_in_flight(std::string_view id, util::instant now = {});
    // pending | in_flight | unknown -> done. Completing a done action is a no-op.
    status complete(batch& b, std::string_view id, std::string_view result);
    // pending | in_flight | unknown -> pending at next_at.
    status retry_later(batch& b,
                       std::string_view id,
                       util::instant next_at,
                       std::string_view error);
    // any but done -> dead, plus a dead_letters row "outbox/<id>".
    status to_dead_letter(batch& b, std::string_view id, std::string_view error, util::instant at);
    // A failed attempt: retry after next_backoff(attempts, ...) (or Retry-After), or dead-letter
    // once attempts >= policy.max_attempts. value: true if dead-lettered.
    result<bool> fail(batch& b,
                      std::string_view id,
                      std::string_view error,
                      util::instant now,
                      const retry_policy& policy,
                      double random01,
                      std::optional<backoff_duration> retry_after = std::nullopt);
    // pending -> pending at `at` without counting an attempt: the action may not run yet (its
    // sending window is closed). `why` is kept as last_error.
    status defer(batch& b, std::string_view id, util::instant at, std::string_view why);
    // pending | unknown -> done with result "dropped: <why>": the decision behind it no longer
    // holds (past its deadline, or its rule found it stale). It is never performed.
    status drop(batch& b, std::string_view id, std::string_view why);
    // dead -> pending, attempts 0, due at once (retrying a dead letter).
    status revive(batch& b, std::string_view id);

    // in_flight actions turned unknown by open().
    std::uint64_t recovered_unknown() const noexcept { return recovered_unknown_; }

    // Per connector that has live (pending, in flight or unknown) actions, sorted. Thread-safe.
    std::vector<outbox_stats> stats() const;

private:
    struct live_action {
        std::string connector;
        action_state state = action_state::pending;
        util::instant due{};
    };
    struct live_counts {
        std::uint64_t unknown = 0;
        std::multiset<util::instant> due;  // of the pending and in-flight ones
    };

    explicit outbox(store& s);
    status load(batch& b, std::string_view id, action& out) const;
    void save(batch& b, const action* before, const action& after);
    status load_live();
    // An action's state as committed; terminal states leave the live set. Requires live_mutex_.
    void track(const std::string& id, const action& a);

    mutable std::mutex live_mutex_;
    std::map<std::string, live_action, std::less<>> live_;
    std::map<std::string, live_counts, std::less<>> live_counts_;

    store& store_;
    detail::scan_floor ready_floor_;
    std::mutex mutex_;
    std::unordered_set<std::string> reserved_;
    std::uint64_t recovered_unknown_ = 0;
};

std::string encode_action(const action& a);
bool decode_action(std::string_view value, action& a);

}  // namespace billsync::state
