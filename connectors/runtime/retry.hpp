#pragma once

// The retry policy: exponential backoff with full jitter, the server's Retry-After honoured, a
// cap on attempts and on total time per request, and no retry of a non-idempotent request
// (POST, PATCH, …) unless it carries an idempotency key or the connector can reconcile it.
// Waits go through an injected sleeper, so tests move a manual clock instead of sleeping.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "connectors/runtime/errors.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/timing.hpp"
#include "http/asio.hpp"

namespace billsync::connectors {

struct retry_policy {
    std::uint32_t max_attempts = 4;  // including the first
    std::chrono::milliseconds base{500};
    std::chrono::milliseconds cap{30'000};         // largest computed backoff
    std::chrono::milliseconds max_total{120'000};  // give up rather than wait past this
    // A Retry-After longer than this is not waited out inside one call: the error is returned
    // (with its retry_after) so the caller can park the work (Xero's daily limit).
    std::chrono::milliseconds max_retry_after{300'000};
    // Conditions worth another attempt. auth_expired is the token manager's business (refresh,
    // then one retry), so it is not here.
    bool retry_rate_limited = true;
    bool retry_retryable = true;
};

// GET, HEAD, OPTIONS, PUT, DELETE, TRACE.
bool is_idempotent_method(std::string_view method) noexcept;
// Idempotent, or carries an idempotency key, or is marked reconcilable.
bool may_retry(const http_request& req) noexcept;

// Sends one request; the retry loop calls it once per attempt.
using send_fn = std::function<net::awaitable<http_result>(http_request)>;
// Turns a result into a failure (nullopt: success). classify() is the default; vendors pass one
// that reads their error bodies.
using classify_fn = std::function<std::optional<call_error>(const http_result&)>;
// Uniform in [0, 1).
using random_fn = std::function<double()>;

// A send_fn over a client, which must outlive it.
send_fn sender(https_client& client);
// A thread-safe random source for jitter.
random_fn default_random();

struct retry_deps {
    send_fn send;
    time_source time;      // real_time() in production
    classify_fn classify;  // empty: classify()
    random_fn random;      // empty: default_random()
    // Called before each wait (attempt number just failed, the error, the wait); for logs and
    // metrics. May be empty.
    std::function<void(std::uint32_t, const call_error&, steady_duration)> on_retry;
};

struct call_outcome {
    http_result last;                 // the last attempt's result
    std::optional<call_error> error;  // nullopt: success
    std::uint32_t attempts = 0;
    bool ok() const noexcept { return !error; }
};

// The delay before the next attempt, or nullopt to stop. Pure: used by send_with_retry and
// tested directly. `attempt` is the number of the attempt that just failed (1 for the first);
// `elapsed` the time spent so far.
std::optional<steady_duration> retry_delay(const retry_policy& p,
                                           const http_request& req,
                                           const call_error& e,
                                           std::uint32_t attempt,
                                           steady_duration elapsed,
                                           double random01);

net::awaitable<call_outcome> send_with_retry(http_request req,
                                             retry_policy policy,
                                             retry_deps deps);

}  // namespace billsync::connectors
