#include "connectors/runtime/timing.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>
#include <vector>

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

struct skipping_time::sleeper {
    steady_time until;
    std::shared_ptr<net::steady_timer> timer;
};

skipping_time::skipping_time(elapsed_fn business, now_fn real)
    : business_(std::move(business)), real_(std::move(real)) {
    if (!real_) {
        real_ = [] { return std::chrono::steady_clock::now(); };
    }
}

steady_time skipping_time::now() const {
    auto t = real_() + steady_duration{skipped_.load()};
    if (business_) {
        t += std::max(business_(), steady_duration::zero());
    }
    return t;
}

time_source skipping_time::source() {
    time_source t;
    t.now = [this] { return now(); };
    t.sleep = [this](steady_duration d) { return sleep(d); };
    return t;
}

std::size_t skipping_time::sleepers() const {
    std::lock_guard lock(mutex_);
    return sleepers_.size();
}

steady_duration skipping_time::skipped() const noexcept { return steady_duration{skipped_.load()}; }

void skipping_time::on_sleep(std::function<void()> f) {
    std::lock_guard lock(mutex_);
    on_sleep_ = std::move(f);
}

bool skipping_time::skip_to_next_wake() {
    std::vector<std::shared_ptr<net::steady_timer>> wake;
    {
        std::lock_guard lock(mutex_);
        if (sleepers_.empty()) {
            return false;
        }
        steady_time earliest = steady_time::max();
        for (const auto& s : sleepers_) {
            earliest = std::min(earliest, s->until);
        }
        const auto t = now();
        if (earliest > t) {
            skipped_.fetch_add((earliest - t).count());
        }
        const auto after = now();
        // A woken sleep leaves the list now, not when its coroutine resumes: until then it is
        // no longer asleep, and sleepers() must not count it (the pipeline skips again at once
        // when every job sleeps).
        for (auto it = sleepers_.begin(); it != sleepers_.end();) {
            if ((*it)->until <= after) {
                wake.push_back((*it)->timer);
                it = sleepers_.erase(it);
            } else {
                ++it;
            }
        }
    }
    // On the sleeper's own executor: its wait has begun by then (it suspends in the same
    // handler that set the timer), so the wake-up is never lost.
    for (auto& timer : wake) {
        net::post(timer->get_executor(), [timer] { timer->cancel(); });
    }
    return true;
}

net::awaitable<void> skipping_time::sleep(steady_duration d) {
    if (d <= steady_duration::zero()) {
        co_return;
    }
    auto s = std::make_shared<sleeper>();
    s->until = now() + d;
    s->timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor);
    std::function<void()> began;
    {
        std::lock_guard lock(mutex_);
        sleepers_.push_back(s);
        began = on_sleep_;
    }
    if (began) {
        began();
    }
    // Leaves the list however the sleep ends (over, cancelled, or destroyed).
    struct leave_guard {
        skipping_time* self;
        const sleeper* s;
        ~leave_guard() {
            std::lock_guard lock(self->mutex_);
            self->sleepers_.remove_if([this](const auto& p) { return p.get() == s; });
        }
    } guard{this, s.get()};
    for (;;) {
        const auto left = s->until - now();
        if (left <= steady_duration::zero()) {
            co_return;
        }
        s->timer->expires_after(std::min<steady_duration>(left, std::chrono::milliseconds(200)));
        auto [ec] = co_await s->timer->async_wait(as_tuple_awaitable);
        if (ec == net::error::operation_aborted) {
            const auto cs = co_await net::this_coro::cancellation_state;
            if (cs.cancelled() != net::cancellation_type::none) {
                throw boost::system::system_error(ec);  // the caller was cancelled
            }
        }
    }
}

}  // namespace billsync::connectors
