#include "connectors/runtime/rate_limit.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/karbon/karbon_kind.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/xero/xero_kind.hpp"

namespace billsync::connectors {
namespace {

using namespace std::chrono_literals;

limit_spec exact(std::uint32_t n, steady_duration window, std::uint32_t concurrent = 0) {
    limit_spec s;
    window_limit w;
    w.requests = n;
    w.window = window;
    s.windows = {w};
    s.max_concurrent = concurrent;
    return s;
}

class rate_limit_test : public ::testing::Test {
protected:
    manual_steady_time time_;
    rate_limiter limiter_{time_.source()};
};

TEST_F(rate_limit_test, bucket_refills_one_window_after_use) {
    limiter_.set_limits("harvest", exact(3, 1s));
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(limiter_.try_acquire("harvest", "acct-1"));  // released at once
        time_.advance(100ms);
    }
    steady_duration wait{};
    EXPECT_FALSE(limiter_.try_acquire("harvest", "acct-1", &wait));
    EXPECT_EQ(wait, 700ms);  // the first token returns 1 s after its request finished
    // Another account has its own bucket.
    EXPECT_TRUE(limiter_.try_acquire("harvest", "acct-2"));
    time_.advance(700ms);
    EXPECT_TRUE(limiter_.try_acquire("harvest", "acct-1"));
    EXPECT_FALSE(limiter_.try_acquire("harvest", "acct-1", &wait));
    EXPECT_EQ(wait, 100ms);
}

TEST_F(rate_limit_test, a_request_in_flight_holds_its_token_until_one_window_after_it_ends) {
    limiter_.set_limits("harvest", exact(2, 1s));
    auto slow = limiter_.try_acquire("harvest", "a");
    ASSERT_TRUE(slow);
    EXPECT_TRUE(limiter_.try_acquire("harvest", "a"));  // finishes at t = 0
    steady_duration wait{};
    EXPECT_FALSE(limiter_.try_acquire("harvest", "a", &wait));
    EXPECT_EQ(wait, 1s);  // the fast request's token returns at 1 s
    time_.advance(1500ms);
    auto other = limiter_.try_acquire("harvest", "a");
    ASSERT_TRUE(other);
    // Both tokens are held by requests in flight: nothing until one of them finishes.
    EXPECT_FALSE(limiter_.try_acquire("harvest", "a", &wait));
    EXPECT_EQ(wait, 0s);
    time_.advance(10s);
    EXPECT_FALSE(limiter_.try_acquire("harvest", "a"));
    slow->release();  // finishes at 11.5 s; its token returns at 12.5 s
    EXPECT_FALSE(limiter_.try_acquire("harvest", "a", &wait));
    EXPECT_EQ(wait, 1s);
    time_.advance(1s);
    EXPECT_TRUE(limiter_.try_acquire("harvest", "a"));
}

TEST_F(rate_limit_test, unknown_vendor_is_unlimited) {
    for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(limiter_.try_acquire("nobody", "x"));
    }
}

TEST_F(rate_limit_test, acquire_never_exceeds_n_per_window_and_reaches_the_ceiling) {
    limiter_.set_limits("harvest", exact(3, 1s));
    net::io_context ioc;
    std::vector<steady_time> granted;
    auto drain = [](rate_limiter* l,
                    manual_steady_time* t,
                    std::vector<steady_time>* out) -> net::awaitable<void> {
        for (int i = 0; i < 10; ++i) {
            auto p = co_await l->acquire("harvest", "a");
            out->push_back(t->now());
        }
    };
    auto f = net::co_spawn(ioc, drain(&limiter_, &time_, &granted), net::use_future);
    ioc.run();
    f.get();
    ASSERT_EQ(granted.size(), 10u);
    for (std::size_t i = 3; i < granted.size(); ++i) {
        EXPECT_GE(granted[i] - granted[i - 3], 1s);
    }
    EXPECT_EQ(granted.back() - granted.front(), 3s);  // 10 requests: 4 windows, no idle time
}

TEST_F(rate_limit_test, concurrency_cap_holds_permits_until_released) {
    limiter_.set_limits("qbo", exact(500, 60s, 2));
    auto a = limiter_.try_acquire("qbo", "realm");
    auto b = limiter_.try_acquire("qbo", "realm");
    ASSERT_TRUE(a && b);
    steady_duration wait{1s};
    EXPECT_FALSE(limiter_.try_acquire("qbo", "realm", &wait));
    EXPECT_EQ(wait, 0s);  // only the concurrency cap blocks

    net::io_context ioc;
    bool granted = false;
    auto waiter = [](rate_limiter* l, bool* flag) -> net::awaitable<void> {
        auto p = co_await l->acquire("qbo", "realm");
        *flag = true;
    };
    net::co_spawn(ioc, waiter(&limiter_, &granted), net::detached);
    ioc.poll();
    EXPECT_FALSE(granted);
    EXPECT_EQ(limiter_.stats("qbo", "realm").waiting, 1u);
    a->release();
    for (int i = 0; i < 100 && !granted; ++i) {
        ioc.run_one_for(50ms);
    }
    EXPECT_TRUE(granted);
    EXPECT_EQ(limiter_.stats("qbo", "realm").in_flight, 1u);  // b; the waiter's permit is gone
}

TEST_F(rate_limit_test, permits_are_fifo) {
    limiter_.set_limits("k", exact(100, 1s, 1));
    auto first = limiter_.try_acquire("k", "a");
    ASSERT_TRUE(first);
    net::io_context ioc;
    std::vector<int> order;
    auto waiter = [](rate_limiter* l, std::vector<int>* out, int id) -> net::awaitable<void> {
        auto p = co_await l->acquire("k", "a");
        out->push_back(id);
    };
    for (int id = 0; id < 4; ++id) {
        net::co_spawn(ioc, waiter(&limiter_, &order, id), net::detached);
    }
    ioc.poll();
    EXPECT_TRUE(order.empty());
    first->release();
    for (int i = 0; i < 200 && order.size() < 4; ++i) {
        ioc.run_one_for(50ms);
    }
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(rate_limit_test, retry_after_pauses_the_key) {
    limiter_.set_limits("karbon", karbon::rate_limits());
    http_response r;
    r.status = 429;
    r.headers = {{"Retry-After", "30"}};
    limiter_.observe("karbon", "acct", r);
    steady_duration wait{};
    EXPECT_FALSE(limiter_.try_acquire("karbon", "acct", &wait));
    EXPECT_EQ(wait, 30s);
    EXPECT_TRUE(limiter_.stats("karbon", "acct").paused_until);
    EXPECT_TRUE(limiter_.try_acquire("karbon", "other"));
    time_.advance(30s);
    EXPECT_TRUE(limiter_.try_acquire("karbon", "acct"));
}

TEST_F(rate_limit_test, throttle_without_retry_after_pauses_briefly) {
    limiter_.set_limits("qbo", qbo::rate_limits());
    http_response r;
    r.status = 429;  // QBO's 003001 carries no Retry-After
    limiter_.observe("qbo", "realm", r);
    steady_duration wait{};
    EXPECT_FALSE(limiter_.try_acquire("qbo", "realm", &wait));
    EXPECT_EQ(wait, 5s);
}

TEST_F(rate_limit_test, remaining_headers_shrink_the_budget) {
    limiter_.set_limits("xero", xero::rate_limits());
    EXPECT_EQ(limiter_.stats("xero", "tenant").available, (std::vector<std::uint32_t>{60, 5000}));
    http_response r;
    r.status = 200;
    r.headers = {{"X-MinLimit-Remaining", "2"}, {"X-DayLimit-Remaining", "4000"}};
    limiter_.observe("xero", "tenant", r);
    // The daily figure is the connector's (it parks on Xero's own Retry-After rather than
    // blocking a lane for hours in the limiter), so only the minute shrinks here.
    EXPECT_EQ(limiter_.stats("xero", "tenant").available, (std::vector<std::uint32_t>{2, 5000}));
    auto a = limiter_.try_acquire("xero", "tenant");
    auto b = limiter_.try_acquire("xero", "tenant");
    ASSERT_TRUE(a && b);
    steady_duration wait{};
    EXPECT_FALSE(limiter_.try_acquire("xero", "tenant", &wait));
    EXPECT_GT(wait, 59s);
    // A larger figure from the server never grows the local budget.
    r.headers = {{"X-MinLimit-Remaining", "59"}};
    limiter_.observe("xero", "tenant", r);
    EXPECT_EQ(limiter_.stats("xero", "tenant").available[0], 0u);
}

TEST_F(rate_limit_test, daily_cap_is_a_window_too) {
    limit_spec s;
    window_limit minute;
    minute.requests = 60;
    minute.window = 1min;
    window_limit day;
    day.requests = 100;
    day.window = 24h;
    s.windows = {minute, day};
    limiter_.set_limits("xero", s);
    int granted = 0;
    for (int minutes = 0; minutes < 5; ++minutes) {
        while (limiter_.try_acquire("xero", "t")) {
            ++granted;
        }
        time_.advance(1min);
    }
    EXPECT_EQ(granted, 100);
    steady_duration wait{};
    EXPECT_FALSE(limiter_.try_acquire("xero", "t", &wait));
    EXPECT_GT(wait, 23h);
}

TEST_F(rate_limit_test, presets_and_scaling) {
    EXPECT_EQ(qbo::rate_limits().max_concurrent, 10u);
    EXPECT_EQ(qbo::rate_limits().windows[0].requests, 500u);
    EXPECT_EQ(xero::rate_limits().max_concurrent, 5u);
    EXPECT_EQ(harvest::rate_limits().windows[0].window, 15s);
    EXPECT_EQ(karbon::rate_limits().windows[0].requests, 120u);
    const auto h = scaled(harvest::rate_limits(), 10);
    EXPECT_EQ(h.windows[0].window, 1500ms);
    EXPECT_EQ(h.windows[0].margin, 17500us);  // 0.5% + 10 ms
}

TEST_F(rate_limit_test, cancelled_acquire_leaves_the_queue) {
    limiter_.set_limits("k", exact(100, 1s, 1));
    auto first = limiter_.try_acquire("k", "a");
    ASSERT_TRUE(first);
    net::io_context ioc;
    net::cancellation_signal cancel;
    bool threw = false;
    auto waiter = [](rate_limiter* l, bool* flag) -> net::awaitable<void> {
        try {
            auto p = co_await l->acquire("k", "a");
        } catch (const boost::system::system_error&) {
            *flag = true;
        }
    };
    net::co_spawn(
        ioc, waiter(&limiter_, &threw), net::bind_cancellation_slot(cancel.slot(), net::detached));
    ioc.poll();
    EXPECT_EQ(limiter_.stats("k", "a").waiting, 1u);
    cancel.emit(net::cancellation_type::terminal);
    for (int i = 0; i < 100 && !threw; ++i) {
        ioc.run_one_for(50ms);
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(limiter_.stats("k", "a").waiting, 0u);
    first->release();
    EXPECT_TRUE(limiter_.try_acquire("k", "a"));
}

}  // namespace
}  // namespace billsync::connectors
