#pragma once

// Retry delays: exponential backoff with "full jitter" (a uniformly random delay between zero
// and the exponential ceiling), which spreads retries of many clients best. Pure functions; the
// randomness comes in as a number in [0, 1) so tests can pin it.

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>

namespace billsync::state {

using backoff_duration = std::chrono::microseconds;

// attempt: 1 for the first retry. ceiling = min(cap, base * 2^(attempt - 1)); the result is
// random01 * ceiling (random01 clamped to [0, 1]). A server's Retry-After, when given, replaces
// the computed delay: the server knows when it will take the request again.
inline backoff_duration next_backoff(std::uint32_t attempt,
                                     backoff_duration base,
                                     backoff_duration cap,
                                     double random01,
                                     std::optional<backoff_duration> retry_after = std::nullopt) {
    if (retry_after) {
        return std::max(*retry_after, backoff_duration::zero());
    }
    if (base <= backoff_duration::zero() || cap <= backoff_duration::zero()) {
        return backoff_duration::zero();
    }
    auto ceiling = std::min(base, cap);
    for (std::uint32_t i = 1; i < attempt && ceiling < cap; ++i) {
        ceiling = ceiling > cap / 2 ? cap : std::min(ceiling * 2, cap);
    }
    const double r = std::clamp(random01, 0.0, 1.0);
    const auto scaled =
        static_cast<backoff_duration::rep>(static_cast<double>(ceiling.count()) * r);
    return std::clamp(backoff_duration{scaled}, backoff_duration::zero(), ceiling);
}

// The same with a source of uniform numbers in [0, 1), called once.
template <std::invocable Source>
backoff_duration next_backoff(std::uint32_t attempt,
                              backoff_duration base,
                              backoff_duration cap,
                              Source&& random_01_source,
                              std::optional<backoff_duration> retry_after = std::nullopt) {
    if (retry_after) {
        return next_backoff(attempt, base, cap, 0.0, retry_after);
    }
    return next_backoff(attempt, base, cap, static_cast<double>(random_01_source()), retry_after);
}

}  // namespace billsync::state
