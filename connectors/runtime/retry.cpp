#include "connectors/runtime/retry.hpp"

#include <mutex>
#include <random>

#include "state/backoff.hpp"

namespace billsync::connectors {

bool is_idempotent_method(std::string_view method) noexcept {
    for (std::string_view m : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}) {
        if (method == m) {
            return true;
        }
    }
    return false;
}

bool may_retry(const http_request& req) noexcept {
    return is_idempotent_method(req.method) || !req.idempotency_key.empty() || req.reconcilable;
}

send_fn sender(https_client& client) {
    return [&client](http_request req) { return client.send(std::move(req)); };
}

random_fn default_random() {
    return [] {
        static std::mutex mutex;
        static std::mt19937_64 engine{std::random_device{}()};
        std::lock_guard lock(mutex);
        return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
    };
}

std::optional<steady_duration> retry_delay(const retry_policy& p,
                                           const http_request& req,
                                           const call_error& e,
                                           std::uint32_t attempt,
                                           steady_duration elapsed,
                                           double random01) {
    if (attempt >= p.max_attempts || !may_retry(req)) {
        return std::nullopt;
    }
    const bool wanted = (e.cond == condition::rate_limited && p.retry_rate_limited) ||
                        (e.cond == condition::retryable && p.retry_retryable);
    if (!wanted) {
        return std::nullopt;
    }
    std::optional<state::backoff_duration> server_wait;
    if (e.retry_after) {
        if (*e.retry_after > p.max_retry_after) {
            return std::nullopt;  // too long to wait inside a call: let the caller park it
        }
        server_wait = std::chrono::duration_cast<state::backoff_duration>(*e.retry_after);
    }
    const auto wait =
        state::next_backoff(attempt,
                            std::chrono::duration_cast<state::backoff_duration>(p.base),
                            std::chrono::duration_cast<state::backoff_duration>(p.cap),
                            random01,
                            server_wait);
    const auto d = std::chrono::duration_cast<steady_duration>(wait);
    if (elapsed + d > p.max_total) {
        return std::nullopt;
    }
    return d;
}

net::awaitable<call_outcome> send_with_retry(http_request req,
                                             retry_policy policy,
                                             retry_deps deps) {
    call_outcome out;
    if (!deps.classify) {
        deps.classify = [](const http_result& r) { return classify(r); };
    }
    if (!deps.random) {
        deps.random = default_random();
    }
    const auto started = deps.time.now();
    for (;;) {
        ++out.attempts;
        out.last = co_await deps.send(req);
        out.error = deps.classify(out.last);
        if (!out.error) {
            co_return out;
        }
        const auto delay = retry_delay(
            policy, req, *out.error, out.attempts, deps.time.now() - started, deps.random());
        if (!delay) {
            co_return out;
        }
        if (deps.on_retry) {
            deps.on_retry(out.attempts, *out.error, *delay);
        }
        co_await deps.time.sleep(*delay);
    }
}

}  // namespace billsync::connectors
