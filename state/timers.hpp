#pragma once

// Durable timers, keyed by name (e.g. "followup/inv-42/touch2"), each with a due instant and a
// payload. All state lives in the `timers` column family, so timers survive restarts:
//
//   "d/" be64(due) name  -> payload        ordered by (due, name): what is due is a prefix scan
//   "n/" name            -> be64(due)      find and replace a timer by name
//   "f/" name            -> be64(count)    failed attempts to fire it (gone once it fires)
//
// Firing cost depends on the number due, not on the number scheduled: due() seeks to the first
// live "d/" row (a scan_floor skips the tombstones of timers already fired) and stops at `now`.
//
// schedule/cancel/fire only add to the caller's batch; they read through it, so a batch may
// schedule, reschedule and cancel the same name several times and the last operation wins.
// Two batches that are open at the same time must not touch the same name (one worker owns
// timers, e.g. the workflow engine); the last one written would leave a stale "d/" row, which
// fire() then removes without effect.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/detail/scan_floor.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

struct timer {
    std::string name;
    util::instant due{};
    std::string payload;

    bool operator==(const timer&) const = default;
};

class timers {
public:
    explicit timers(store& s);

    // Replaces an existing timer of the same name (= reschedule).
    status schedule(batch& b, std::string_view name, util::instant due, std::string_view payload);
    // Cancelling a timer that does not exist is not an error.
    status cancel(batch& b, std::string_view name);
    // Removes a timer returned by due(). If it was rescheduled in the meantime, only the stale
    // occurrence is removed and the rescheduled one stays. Its failure count goes with it.
    status fire(batch& b, const timer& t);
    // Counts a failed attempt to fire the named timer (in b); value: the failures so far,
    // including this one. The count survives rescheduling and ends when the timer fires or is
    // cancelled.
    result<std::uint32_t> record_failure(batch& b, std::string_view name);

    // Timers with due <= now, in (due, name) order, at most limit.
    result<std::vector<timer>> due(util::instant now, std::size_t limit);
    result<std::optional<util::instant>> next_due();
    result<std::optional<timer>> get(std::string_view name) const;

    // Timers scheduled and not yet fired or cancelled. Exact: counted by one scan at
    // construction, then changed only when a batch that schedules, cancels or fires commits.
    std::uint64_t count() const noexcept {
        const auto n = count_.load(std::memory_order_relaxed);
        return n > 0 ? static_cast<std::uint64_t>(n) : 0;
    }

    // Rows the due()/next_due() scans have visited since construction (a cost probe for tests).
    std::uint64_t rows_visited() const noexcept {
        return rows_visited_.load(std::memory_order_relaxed);
    }

private:
    store& store_;
    detail::scan_floor floor_;
    std::atomic<std::uint64_t> rows_visited_{0};
    std::atomic<std::int64_t> count_{0};
};

}  // namespace billsync::state
