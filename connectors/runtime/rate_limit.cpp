#include "connectors/runtime/rate_limit.hpp"

#include <algorithm>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>
#include <charconv>
#include <deque>
#include <list>

#include "connectors/runtime/errors.hpp"
#include "connectors/runtime/https_client.hpp"

namespace billsync::connectors {

using namespace std::chrono_literals;

namespace {

// A parked acquirer; woken when it reaches the head of the queue or a slot frees.
struct waiter {
    std::shared_ptr<net::steady_timer> timer;
    bool signaled = false;
};

std::optional<std::uint32_t> parse_count(std::string_view v) {
    std::uint32_t n = 0;
    const auto* end = v.data() + v.size();
    if (v.empty() || std::from_chars(v.data(), end, n).ptr != end) {
        return std::nullopt;
    }
    return n;
}

}  // namespace

struct rate_limiter::key_state {
    struct window_state {
        window_limit lim;
        // When recent requests finished (sorted). A request in flight holds a token in every
        // window; its token returns one window after it finished, because the server saw the
        // request at some point before its answer arrived: counting from there is always safe,
        // whatever the latency.
        std::deque<steady_time> done;
    };

    std::mutex mutex;
    now_fn now;
    sleep_fn sleep;
    std::vector<window_state> windows;
    std::uint32_t max_concurrent = 0;
    steady_duration throttle_pause{};
    std::uint32_t in_flight = 0;
    steady_time paused_until{};
    std::list<std::shared_ptr<waiter>> queue;

    void apply(const limit_spec& spec) {
        std::vector<window_state> next;
        for (const auto& w : spec.windows) {
            window_state ws{w, {}};
            // Keep history from a window of the same length (limits re-applied at runtime).
            for (auto& old : windows) {
                if (old.lim.window == w.window) {
                    ws.done = old.done;
                }
            }
            next.push_back(std::move(ws));
        }
        windows = std::move(next);
        max_concurrent = spec.max_concurrent;
        throttle_pause = spec.throttle_pause;
    }

    void prune(steady_time t) {
        for (auto& w : windows) {
            while (!w.done.empty() && w.done.front() + w.lim.window + w.lim.margin <= t) {
                w.done.pop_front();
            }
            while (w.done.size() > w.lim.requests) {
                w.done.pop_front();
            }
        }
    }

    // The earliest time a token is free in every window (and the key is not paused); nullopt
    // when requests in flight hold every token of a window (a release must come first).
    std::optional<steady_time> ready_at(steady_time t) {
        prune(t);
        steady_time ready = std::max(t, paused_until);
        for (const auto& w : windows) {
            if (w.lim.requests == 0) {
                continue;
            }
            if (in_flight >= w.lim.requests) {
                return std::nullopt;
            }
            const std::size_t left_for_done = w.lim.requests - in_flight;
            if (w.done.size() >= left_for_done) {
                const auto oldest_counted = w.done[w.done.size() - left_for_done];
                ready = std::max(ready, oldest_counted + w.lim.window + w.lim.margin);
            }
        }
        return ready;
    }

    std::uint32_t available(const window_state& w) const {
        const auto used = static_cast<std::size_t>(in_flight) + w.done.size();
        return w.lim.requests > used ? static_cast<std::uint32_t>(w.lim.requests - used) : 0u;
    }

    static void insert_sorted(std::deque<steady_time>& d, steady_time t) {
        auto it = d.end();
        while (it != d.begin() && *(it - 1) > t) {
            --it;
        }
        d.insert(it, t);
    }

    bool concurrency_full() const { return max_concurrent != 0 && in_flight >= max_concurrent; }

    void grant() { ++in_flight; }

    // Wakes the head of the queue (caller holds the mutex).
    void wake_head() {
        if (queue.empty()) {
            return;
        }
        auto& w = queue.front();
        if (w->signaled) {
            return;
        }
        w->signaled = true;
        net::post(w->timer->get_executor(), [timer = w->timer] { timer->cancel(); });
    }

    void release() {
        std::lock_guard lock(mutex);
        if (in_flight > 0) {
            --in_flight;
        }
        const auto t = now();
        for (auto& w : windows) {
            insert_sorted(w.done, t);
        }
        wake_head();
    }
};

window_limit per_window(std::uint32_t requests,
                        steady_duration window,
                        std::string remaining_header) {
    window_limit w;
    w.requests = requests;
    w.window = window;
    w.margin = window / 200 + std::chrono::duration_cast<steady_duration>(10ms);
    w.remaining_header = std::move(remaining_header);
    return w;
}

limit_spec scaled(limit_spec spec, double factor) {
    if (factor <= 0) {
        return spec;
    }
    for (auto& w : spec.windows) {
        const auto shorter = std::chrono::duration_cast<steady_duration>(
            std::chrono::duration<double, steady_duration::period>(
                static_cast<double>(w.window.count()) / factor));
        w = per_window(w.requests, shorter, std::move(w.remaining_header));
    }
    spec.throttle_pause = std::chrono::duration_cast<steady_duration>(
        std::chrono::duration<double, steady_duration::period>(
            static_cast<double>(spec.throttle_pause.count()) / factor));
    return spec;
}

rate_limiter::permit::permit(permit&& other) noexcept : state_(std::move(other.state_)) {}

rate_limiter::permit& rate_limiter::permit::operator=(permit&& other) noexcept {
    if (this != &other) {
        release();
        state_ = std::move(other.state_);
    }
    return *this;
}

rate_limiter::permit::~permit() { release(); }

void rate_limiter::permit::release() noexcept {
    if (state_) {
        state_->release();
        state_.reset();
    }
}

rate_limiter::rate_limiter(time_source time) : time_(std::move(time)) {}

rate_limiter::~rate_limiter() = default;

void rate_limiter::set_limits(const std::string& vendor, limit_spec spec) {
    std::lock_guard lock(mutex_);
    const std::string prefix = vendor + '\0';
    for (auto& [key, st] : keys_) {
        if (key.starts_with(prefix)) {
            std::lock_guard klock(st->mutex);
            st->apply(spec);
            st->wake_head();
        }
    }
    specs_[vendor] = std::move(spec);
}

std::shared_ptr<rate_limiter::key_state> rate_limiter::state_for(const std::string& vendor,
                                                                 const std::string& account) {
    std::lock_guard lock(mutex_);
    std::string key = vendor + '\0' + account;
    auto it = keys_.find(key);
    if (it != keys_.end()) {
        return it->second;
    }
    auto st = std::make_shared<key_state>();
    st->now = time_.now;
    st->sleep = time_.sleep;
    if (auto sit = specs_.find(vendor); sit != specs_.end()) {
        st->apply(sit->second);
    }
    keys_.emplace(std::move(key), st);
    return st;
}

net::awaitable<rate_limiter::permit> rate_limiter::acquire(std::string vendor,
                                                           std::string account) {
    return acquire_impl(state_for(vendor, account));
}

net::awaitable<rate_limiter::permit> rate_limiter::acquire_impl(std::shared_ptr<key_state> st) {
    auto w = std::make_shared<waiter>();
    w->timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor);
    {
        std::lock_guard lock(st->mutex);
        st->queue.push_back(w);
    }
    // Leaves the queue however this coroutine ends (granted, cancelled, or destroyed).
    struct dequeue_guard {
        key_state* st;
        waiter* w;
        ~dequeue_guard() {
            std::lock_guard lock(st->mutex);
            const bool was_head = !st->queue.empty() && st->queue.front().get() == w;
            st->queue.remove_if([this](const auto& p) { return p.get() == w; });
            if (was_head) {
                st->wake_head();
            }
        }
    } guard{st.get(), w.get()};

    for (;;) {
        enum class next { park, sleep, granted } what = next::park;
        steady_duration nap{};
        {
            std::lock_guard lock(st->mutex);
            w->signaled = false;
            if (st->queue.front() == w && !st->concurrency_full()) {
                const auto t = st->now();
                const auto ready = st->ready_at(t);
                if (ready && *ready <= t) {
                    st->grant();
                    what = next::granted;
                } else if (ready) {
                    what = next::sleep;
                    nap = *ready - t;
                }
            }
        }
        if (what == next::granted) {
            co_return permit(st);
        }
        if (what == next::sleep) {
            co_await st->sleep(nap);
            continue;
        }
        // Parked: not the head, or requests in flight must finish first (concurrency cap, or
        // every token of a window held). A bounded wait guards against a lost wake-up; the loop
        // re-checks either way.
        w->timer->expires_after(100ms);
        auto [ec] = co_await w->timer->async_wait(as_tuple_awaitable);
        if (ec == net::error::operation_aborted) {
            const auto cs = co_await net::this_coro::cancellation_state;
            if (cs.cancelled() != net::cancellation_type::none) {
                throw boost::system::system_error(ec);  // the caller was cancelled
            }
        }
    }
}

std::optional<rate_limiter::permit> rate_limiter::try_acquire(const std::string& vendor,
                                                              const std::string& account,
                                                              steady_duration* wait) {
    auto st = state_for(vendor, account);
    std::lock_guard lock(st->mutex);
    const auto t = st->now();
    const auto ready = st->ready_at(t);
    if (!st->queue.empty() || st->concurrency_full() || !ready || *ready > t) {
        if (wait != nullptr) {
            *wait = ready && *ready > t ? *ready - t : steady_duration::zero();
        }
        return std::nullopt;
    }
    st->grant();
    if (wait != nullptr) {
        *wait = steady_duration::zero();
    }
    return permit(st);
}

void rate_limiter::pause(const std::string& vendor, const std::string& account, steady_time until) {
    auto st = state_for(vendor, account);
    std::lock_guard lock(st->mutex);
    st->paused_until = std::max(st->paused_until, until);
}

void rate_limiter::shrink(const std::string& vendor,
                          const std::string& account,
                          std::size_t index,
                          std::uint32_t remaining) {
    auto st = state_for(vendor, account);
    std::lock_guard lock(st->mutex);
    if (index >= st->windows.size()) {
        return;
    }
    const auto t = st->now();
    st->prune(t);
    auto& w = st->windows[index];
    const auto local_left = st->available(w);
    // The server counted requests we did not see (other processes, a restart): pretend they
    // happened now; they age out one window later.
    for (auto extra = local_left > remaining ? local_left - remaining : 0u; extra > 0; --extra) {
        w.done.push_back(t);  // t is now, at least as late as every entry
    }
}

void rate_limiter::observe(const std::string& vendor,
                           const std::string& account,
                           const http_response& r) {
    auto st = state_for(vendor, account);
    std::vector<std::pair<std::size_t, std::uint32_t>> remaining;
    steady_duration pause_for{};
    {
        std::lock_guard lock(st->mutex);
        for (std::size_t i = 0; i < st->windows.size(); ++i) {
            const auto& name = st->windows[i].lim.remaining_header;
            if (name.empty()) {
                continue;
            }
            if (auto n = parse_count(r.header_value(name))) {
                remaining.emplace_back(i, *n);
            }
        }
        if (r.status == 429 || r.status == 503) {
            const auto ra =
                parse_retry_after(r.header_value("Retry-After"), std::chrono::system_clock::now());
            if (ra) {
                pause_for = std::chrono::duration_cast<steady_duration>(*ra);
            } else if (r.status == 429) {
                pause_for = st->throttle_pause;
            }
        }
    }
    for (const auto& [i, n] : remaining) {
        shrink(vendor, account, i, n);
    }
    if (pause_for > steady_duration::zero()) {
        pause(vendor, account, st->now() + pause_for);
    }
}

rate_limiter::key_stats rate_limiter::stats(const std::string& vendor, const std::string& account) {
    auto st = state_for(vendor, account);
    std::lock_guard lock(st->mutex);
    key_stats out;
    const auto t = st->now();
    st->prune(t);
    out.in_flight = st->in_flight;
    out.waiting = st->queue.size();
    if (st->paused_until > t) {
        out.paused_until = st->paused_until;
    }
    for (const auto& w : st->windows) {
        out.available.push_back(st->available(w));
    }
    return out;
}

}  // namespace billsync::connectors
