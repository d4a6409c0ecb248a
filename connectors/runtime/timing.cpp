#include "connectors/runtime/timing.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

namespace billsync::connectors {

time_source real_time() {
    time_source t;
    t.now = [] { return std::chrono::steady_clock::now(); };
    t.sleep = [](steady_duration d) -> net::awaitable<void> {
        if (d <= steady_duration::zero()) {
            co_return;
        }
        net::steady_timer timer(co_await net::this_coro::executor);
        timer.expires_after(d);
        co_await timer.async_wait(use_awaitable);
    };
    return t;
}

void manual_steady_time::advance(steady_duration d) noexcept {
    if (d > steady_duration::zero()) {
        ticks_.fetch_add(d.count());
    }
}

void manual_steady_time::advance_to(steady_time t) noexcept {
    auto cur = ticks_.load();
    const auto want = t.time_since_epoch().count();
    while (cur < want && !ticks_.compare_exchange_weak(cur, want)) {
    }
}

time_source manual_steady_time::source() {
    time_source t;
    t.now = [this] { return now(); };
    t.sleep = [this](steady_duration d) {
        advance_to(now() + d);
        return []() -> net::awaitable<void> { co_return; }();
    };
    return t;
}

}  // namespace billsync::connectors
