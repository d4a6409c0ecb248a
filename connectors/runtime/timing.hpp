#pragma once

// Injected monotonic time for the retry policy and the rate limiter. Production reads
// std::chrono::steady_clock and waits on steady timers; tests use manual_steady_time, whose
// sleeper moves time forward instead of waiting, so no test sleeps.

#include <atomic>
#include <chrono>
#include <functional>

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

}  // namespace billsync::connectors
