// skipping_time, the connector runtime's time under the daemon's simulated clock: its sleeps are
// registered, a skip ends the earliest one and the time skipped counts as passed. The real clock
// is frozen here, so a sleep ends only when skipped or when the business clock passes its end.

#include "connectors/runtime/timing.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <string>
#include <vector>

namespace billsync::connectors {
namespace {

using namespace std::chrono_literals;

class skipping_time_test : public ::testing::Test {
protected:
    // Starts a sleep of `d` that notes `name` in `woke_` when it ends.
    void sleep(std::string name, steady_duration d) {
        net::co_spawn(
            ioc_,
            [this, name = std::move(name), d]() -> net::awaitable<void> {
                co_await source_.sleep(d);
                woke_.push_back(name);
            },
            [this](const std::exception_ptr& e) {
                if (e) {
                    ++failed_;
                }
            });
    }
    void settle() {
        ioc_.restart();
        ioc_.poll();
    }

    const steady_time start_ = steady_time{} + 1000h;
    steady_duration business_{};
    skipping_time time_{[this] { return business_; }, [this] { return start_; }};
    time_source source_ = time_.source();
    std::vector<std::string> woke_;
    int failed_ = 0;
    net::io_context ioc_;  // last: sleeps left over end before what they use
};

TEST_F(skipping_time_test, a_skip_ends_the_earliest_sleep_and_its_time_counts_as_passed) {
    sleep("ten", 10s);
    sleep("five", 5s);
    sleep("zero", 0s);  // no wait at all
    settle();
    EXPECT_EQ(woke_, std::vector<std::string>{"zero"});
    EXPECT_EQ(time_.sleepers(), 2u);
    EXPECT_EQ(time_.now(), start_);

    ASSERT_TRUE(time_.skip_to_next_wake());
    settle();
    EXPECT_EQ(woke_, (std::vector<std::string>{"zero", "five"}));
    EXPECT_EQ(time_.now(), start_ + 5s);
    EXPECT_EQ(time_.skipped(), 5s);

    ASSERT_TRUE(time_.skip_to_next_wake());
    settle();
    EXPECT_EQ(woke_, (std::vector<std::string>{"zero", "five", "ten"}));
    EXPECT_EQ(time_.now(), start_ + 10s);
    EXPECT_EQ(time_.sleepers(), 0u);
    EXPECT_FALSE(time_.skip_to_next_wake());  // nobody sleeps: nothing moves
    EXPECT_EQ(time_.skipped(), 10s);
    EXPECT_EQ(failed_, 0);
}

// A sleep a skip woke is no longer asleep, though its caller has not resumed yet: whoever
// counts sleepers against the work under way must not skip again on its account.
TEST_F(skipping_time_test, a_woken_sleep_stops_counting_before_its_caller_resumes) {
    sleep("ten", 10s);
    sleep("five", 5s);
    settle();
    ASSERT_EQ(time_.sleepers(), 2u);
    ASSERT_TRUE(time_.skip_to_next_wake());
    EXPECT_EQ(time_.sleepers(), 1u);  // "five" is woken, not resumed yet
    EXPECT_TRUE(woke_.empty());
    settle();
    EXPECT_EQ(woke_, std::vector<std::string>{"five"});
    EXPECT_EQ(time_.sleepers(), 1u);
    EXPECT_EQ(failed_, 0);
}

TEST_F(skipping_time_test, the_business_clock_moving_past_a_sleeps_end_ends_it_without_a_skip) {
    sleep("pause", 10s);
    settle();
    business_ = 1h;  // an advance moved the simulated clock
    EXPECT_EQ(time_.now(), start_ + 1h);
    ASSERT_TRUE(time_.skip_to_next_wake());  // wakes what has ended; nothing to skip
    settle();
    EXPECT_EQ(woke_, std::vector<std::string>{"pause"});
    EXPECT_EQ(time_.skipped(), 0s);
}

TEST_F(skipping_time_test, a_cancelled_sleep_ends_with_its_callers_cancellation) {
    net::cancellation_signal cancel;
    bool aborted = false;
    net::co_spawn(ioc_,
                  source_.sleep(1h),
                  net::bind_cancellation_slot(
                      cancel.slot(), [&](const std::exception_ptr& e) { aborted = e != nullptr; }));
    settle();
    EXPECT_EQ(time_.sleepers(), 1u);
    cancel.emit(net::cancellation_type::terminal);
    settle();
    EXPECT_TRUE(aborted);
    EXPECT_EQ(time_.sleepers(), 0u);
    EXPECT_EQ(time_.now(), start_);
}

TEST_F(skipping_time_test, whoever_skips_hears_of_each_sleep_as_it_begins) {
    std::vector<std::size_t> heard;  // how many slept when each was heard of
    time_.on_sleep([&] { heard.push_back(time_.sleepers()); });
    sleep("zero", 0s);  // no wait: nothing to hear of
    sleep("five", 5s);
    sleep("ten", 10s);
    settle();
    EXPECT_EQ(heard, (std::vector<std::size_t>{1, 2}));  // each heard of once registered
    ASSERT_TRUE(time_.skip_to_next_wake());
    settle();
    EXPECT_EQ(heard.size(), 2u);  // a skip is not a new sleep
    time_.on_sleep({});
    sleep("one", 1s);
    settle();
    EXPECT_EQ(heard.size(), 2u);
    EXPECT_EQ(time_.sleepers(), 2u);
    while (time_.skip_to_next_wake()) {
        settle();
    }
    EXPECT_EQ(failed_, 0);
}

}  // namespace
}  // namespace billsync::connectors
