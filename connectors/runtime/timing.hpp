#pragma once

// Injected monotonic time for the retry policy and the rate limiter. Production reads
// std::chrono::steady_clock and waits on steady timers; tests use manual_steady_time, whose
// sleeper moves time forward instead of waiting, so no test sleeps. Under the daemon's simulated
// clock the runtime runs on skipping_time, whose waits the daemon skips when nothing else runs.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>

#include "http/asio.hpp"

namespace billsync::connectors {

using steady_time = std::chrono::steady_clock::time_point;
using steady_duration = std::chrono::steady_clock::duration;

using now_fn = std::function<steady_time()>;
// Completes after `d` (or at once when d <= 0). Must be cancellable by the caller's cancellation.
using sleep_fn = std::function<net::awaitable<void>(steady_duration d)>;

struct time_source {
    now_fn now;
    sleep_fn sleep;
};

// steady_clock and a steady_timer on the awaiting coroutine's executor.
time_source real_time();

// Time that moves only when told to, or when a sleeper "sleeps": sleep(d) advances the clock to
// at least (its start + d) and completes at once. Thread-safe.
class manual_steady_time {
public:
    manual_steady_time() = default;
    steady_time now() const noexcept { return steady_time{steady_duration{ticks_.load()}}; }
    void advance(steady_duration d) noexcept;
    void advance_to(steady_time t) noexcept;
    // A time_source over this clock; the clock must outlive it.
    time_source source();

private:
    // Starts well away from zero so subtracting a window never underflows.
    std::atomic<steady_duration::rep> ticks_{
        std::chrono::duration_cast<steady_duration>(std::chrono::hours(1000)).count()};
};

// The connector runtime's time under the daemon's simulated clock (the sandbox, chaos runs):
// steady time, plus how far the simulated business clock has moved, plus the waits skipped.
// Every sleep (a retry's backoff, a rate-limit pause, a token refresh's backoff) is registered,
// so when nothing else is going on the daemon skips to the end of the earliest one instead of
// waiting it out in real time, as a discrete-event simulation does: the waits still end in
// their order and everything that counts time (windows, Retry-After, a retry's total time) sees
// them pass. A sleep also ends once this time reaches its end by itself (it naps at most 200 ms
// of real time between looks). Thread-safe; sleeps wait on their caller's executor and stay
// cancellable by the caller's cancellation.
class skipping_time {
public:
    // How far the business clock has moved since the start (never negative).
    using elapsed_fn = std::function<steady_duration()>;

    // `real`: steady time; empty: std::chrono::steady_clock (tests pass a frozen one).
    explicit skipping_time(elapsed_fn business, now_fn real = {});
    skipping_time(const skipping_time&) = delete;
    skipping_time& operator=(const skipping_time&) = delete;

    steady_time now() const;
    // A time_source over this time; the object must outlive it.
    time_source source();

    // Sleeps in progress (one that skip_to_next_wake woke no longer counts).
    std::size_t sleepers() const;
    // Moves time to the end of the earliest sleep (when it lies ahead) and wakes every sleep that
    // has ended. False when nobody sleeps.
    bool skip_to_next_wake();
    // The total skipped so far.
    steady_duration skipped() const noexcept;
    // Called whenever a sleep begins, once it is registered (on the sleeper's thread, no lock
    // held): whoever waits for work to end, and skips waits when nothing else happens, learns of
    // one that began while it was waiting for something else. Thread-safe.
    void on_sleep(std::function<void()> f);

private:
    struct sleeper;
    net::awaitable<void> sleep(steady_duration d);

    elapsed_fn business_;
    now_fn real_;
    std::atomic<steady_duration::rep> skipped_{0};
    mutable std::mutex mutex_;
    std::list<std::shared_ptr<sleeper>> sleepers_;
    std::function<void()> on_sleep_;
};

}  // namespace billsync::connectors
