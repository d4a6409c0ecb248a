#pragma once

// Client-side rate limiting per (vendor, account): sliding-window budgets, a concurrency cap and
// pauses, so a connector runs at the vendor's ceiling without drawing 429s.
//
// Each budget "N requests per window" is a token bucket whose tokens refill one by one: a token
// is held while its request is in flight and returns exactly one window (plus a small safety
// margin) after the request finished. The server saw the request before its answer arrived, so
// no window on the server's clock ever holds more than N, whatever the latency; a vendor that
// counts fixed windows, sliding windows or buckets is satisfied alike, and steady state still
// reaches N per window (less one response time per window). A daily cap is another window.
//
// `co_await limiter.acquire(vendor, account)` waits in FIFO order for a concurrency slot and a
// token in every window, then returns a permit that holds the concurrency slot until released
// (RAII). `observe()` feeds responses back: a 429's Retry-After pauses the key until then, and
// remaining-quota headers (e.g. X-MinLimit-Remaining / X-DayLimit-Remaining, X-RateLimit-
// Remaining) shrink the local budget to what the server says is left.
//
// Time comes from an injected time_source. Acquire from a strand (or a one-thread context).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "connectors/runtime/timing.hpp"
#include "http/asio.hpp"

namespace billsync::connectors {

struct http_response;

struct window_limit {
    std::uint32_t requests = 0;    // at most this many starts …
    steady_duration window{};      // … in any window of this length
    steady_duration margin{};      // added to the window, to absorb latency jitter
    std::string remaining_header;  // the server's remaining count for this window, if any
};

struct limit_spec {
    std::vector<window_limit> windows;
    std::uint32_t max_concurrent = 0;  // 0: unlimited
    // How long a key pauses after a 429 that carries no Retry-After (some vendors send none).
    steady_duration throttle_pause = std::chrono::seconds(2);
};

// A window with the default safety margin (0.5% of the window plus 10 ms).
window_limit per_window(std::uint32_t requests,
                        steady_duration window,
                        std::string remaining_header = {});

// The same limits with every window divided by `factor` (benchmarks, sandbox). Margins are
// recomputed for the shorter windows.
limit_spec scaled(limit_spec spec, double factor);

class rate_limiter {
    struct key_state;

public:
    // Holds a concurrency slot until released or destroyed.
    class permit {
    public:
        permit() = default;
        permit(permit&& other) noexcept;
        permit& operator=(permit&& other) noexcept;
        permit(const permit&) = delete;
        permit& operator=(const permit&) = delete;
        ~permit();
        void release() noexcept;
        explicit operator bool() const noexcept { return state_ != nullptr; }

    private:
        friend class rate_limiter;
        explicit permit(std::shared_ptr<key_state> s) noexcept : state_(std::move(s)) {}
        std::shared_ptr<key_state> state_;
    };

    struct key_stats {
        std::uint32_t in_flight = 0;
        std::size_t waiting = 0;
        std::optional<steady_time> paused_until;
        std::vector<std::uint32_t> available;  // tokens left now, per window
    };

    explicit rate_limiter(time_source time);
    ~rate_limiter();
    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;

    // Limits for every account of a vendor (keys created later use them; existing keys keep
    // their counts and take the new limits). A vendor without limits is not limited.
    void set_limits(const std::string& vendor, limit_spec spec);

    // Waits for a permit. Throws boost::system::system_error(operation_aborted) if cancelled.
    net::awaitable<permit> acquire(std::string vendor, std::string account);
    // A permit now, or nullopt; `wait` (if given) is set to how long until one could be free
    // (zero when only the concurrency cap blocks).
    std::optional<permit> try_acquire(const std::string& vendor,
                                      const std::string& account,
                                      steady_duration* wait = nullptr);

    // Adapts to a response: Retry-After (on 429/503) pauses the key; remaining headers shrink it.
    void observe(const std::string& vendor, const std::string& account, const http_response& r);
    // Stops granting permits for the key until `until`.
    void pause(const std::string& vendor, const std::string& account, steady_time until);
    // Tells the limiter the server has only `remaining` requests left in window `index`.
    void shrink(const std::string& vendor,
                const std::string& account,
                std::size_t index,
                std::uint32_t remaining);

    key_stats stats(const std::string& vendor, const std::string& account);

private:
    std::shared_ptr<key_state> state_for(const std::string& vendor, const std::string& account);
    static net::awaitable<permit> acquire_impl(std::shared_ptr<key_state> st);

    time_source time_;
    std::mutex mutex_;
    std::map<std::string, limit_spec, std::less<>> specs_;
    std::map<std::string, std::shared_ptr<key_state>, std::less<>> keys_;
};

}  // namespace billsync::connectors
