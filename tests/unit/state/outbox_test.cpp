#include "state/outbox.hpp"

#include <gtest/gtest.h>

#include "state/backoff.hpp"
#include "state/dead_letters.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using namespace std::chrono_literals;
using testing::at_s;
using testing::temp_dir;

class outbox_test : public ::testing::Test {
protected:
    void SetUp() override { reopen(); }

    void reopen() {
        out_.reset();
        store_.reset();
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
        auto r = outbox::open(*store_);
        ASSERT_TRUE(r.ok()) << r.st.message;
        out_ = std::move(r.value);
    }

    static action make(std::string id, std::int64_t at = 0) {
        action a;
        a.id = std::move(id);
        a.connector = "qbo";
        a.kind = "create_invoice";
        a.payload = R"({"amount":12500})";
        a.next_attempt_at = at_s(at);
        return a;
    }

    bool enqueue(action a) {
        batch b(*store_);
        auto r = out_->enqueue(b, std::move(a));
        EXPECT_TRUE(r.ok()) << r.st.message;
        EXPECT_TRUE(store_->write(b, true).ok);
        return r.value;
    }

    action get(std::string_view id) {
        auto r = out_->get(id);
        EXPECT_TRUE(r.ok());
        EXPECT_TRUE(r.value);
        return r.value ? *r.value : action{};
    }

    std::vector<std::string> ready_ids(std::int64_t now, std::size_t limit = 100) {
        auto r = out_->ready(at_s(now), limit);
        EXPECT_TRUE(r.ok()) << r.st.message;
        std::vector<std::string> ids;
        for (const auto& a : r.value) {
            ids.push_back(a.id);
        }
        return ids;
    }

    template <class Fn>
    void in_batch(Fn fn) {
        batch b(*store_);
        fn(b);
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
    std::unique_ptr<outbox> out_;
};

TEST_F(outbox_test, enqueue_is_idempotent) {
    EXPECT_TRUE(enqueue(make("rule1/inv-1/v3")));
    ASSERT_TRUE(out_->mark_in_flight("rule1/inv-1/v3").ok);
    auto again = make("rule1/inv-1/v3");
    again.payload = "different";
    EXPECT_FALSE(enqueue(again));
    auto a = get("rule1/inv-1/v3");
    EXPECT_EQ(a.state, action_state::in_flight);  // not reset by the replayed enqueue
    EXPECT_EQ(a.payload, R"({"amount":12500})");
    EXPECT_EQ(a.attempts, 1u);
}

TEST_F(outbox_test, two_open_batches_cannot_both_add_an_id) {
    batch b1(*store_);
    batch b2(*store_);
    ASSERT_TRUE(out_->enqueue(b1, make("x")).value);
    EXPECT_FALSE(out_->enqueue(b2, make("x")).value);
    EXPECT_FALSE(out_->enqueue(b1, make("x")).value);  // twice in one batch
    ASSERT_TRUE(store_->write(b1, true).ok);
    ASSERT_TRUE(store_->write(b2, true).ok);
    EXPECT_EQ(ready_ids(0), (std::vector<std::string>{"x"}));

    {
        batch abandoned(*store_);
        ASSERT_TRUE(out_->enqueue(abandoned, make("y")).value);
    }  // never written: the id is free again
    EXPECT_TRUE(enqueue(make("y")));
}

TEST_F(outbox_test, ready_in_time_order) {
    enqueue(make("a", 10));
    enqueue(make("b", 5));
    enqueue(make("c", 20));
    EXPECT_EQ(ready_ids(4), (std::vector<std::string>{}));
    EXPECT_EQ(ready_ids(10), (std::vector<std::string>{"b", "a"}));
    EXPECT_EQ(ready_ids(10, 1), (std::vector<std::string>{"b"}));
    ASSERT_TRUE(out_->mark_in_flight("b").ok);
    EXPECT_EQ(ready_ids(30), (std::vector<std::string>{"a", "c"}));
    EXPECT_FALSE(out_->mark_in_flight("b").ok);  // not pending any more
    EXPECT_FALSE(out_->mark_in_flight("nope").ok);
}

TEST_F(outbox_test, in_flight_becomes_unknown_on_reopen) {
    enqueue(make("sms-1"));
    enqueue(make("sms-2"));
    ASSERT_TRUE(out_->mark_in_flight("sms-1").ok);
    reopen();  // as after a crash: the SMS may or may not have gone out
    EXPECT_EQ(out_->recovered_unknown(), 1u);
    EXPECT_EQ(get("sms-1").state, action_state::unknown);
    EXPECT_EQ(ready_ids(100), (std::vector<std::string>{"sms-2"}));  // never re-sent blindly
    EXPECT_FALSE(out_->mark_in_flight("sms-1").ok);
    auto unknown = out_->unknown(10);
    ASSERT_TRUE(unknown.ok());
    ASSERT_EQ(unknown.value.size(), 1u);
    EXPECT_EQ(unknown.value[0].id, "sms-1");

    // the connector reconciles: it did go out
    in_batch([&](batch& b) { ASSERT_TRUE(out_->complete(b, "sms-1", "SM123").ok); });
    EXPECT_EQ(get("sms-1").state, action_state::done);
    EXPECT_EQ(get("sms-1").result, "SM123");
    EXPECT_TRUE(out_->unknown(10).value.empty());
    reopen();
    EXPECT_EQ(out_->recovered_unknown(), 0u);
    EXPECT_EQ(get("sms-1").state, action_state::done);
}

// Issue 18 item 2: the first attempt's time is kept across retries and a crash, so a
// reconcile days later looks the effect up from when it first started.
TEST_F(outbox_test, the_first_attempt_time_is_kept_across_retries_and_reopen) {
    enqueue(make("sms-1"));
    EXPECT_EQ(get("sms-1").first_attempt_at, util::instant{});
    ASSERT_TRUE(out_->mark_in_flight("sms-1", at_s(100)).ok);
    EXPECT_EQ(get("sms-1").first_attempt_at, at_s(100));
    in_batch([&](batch& b) { ASSERT_TRUE(out_->retry_later(b, "sms-1", at_s(200), "x").ok); });
    ASSERT_TRUE(out_->mark_in_flight("sms-1", at_s(300)).ok);
    reopen();
    const auto a = get("sms-1");
    EXPECT_EQ(a.state, action_state::unknown);
    EXPECT_EQ(a.attempts, 2u);
    EXPECT_EQ(a.first_attempt_at, at_s(100));

    // Rows written before the field existed still decode, with no first attempt time.
    auto legacy = make("old");
    const auto encoded = encode_action(legacy);
    action decoded;
    ASSERT_TRUE(decode_action(encoded, decoded));
    EXPECT_EQ(decoded.first_attempt_at, util::instant{});
    legacy.first_attempt_at = at_s(5);
    ASSERT_TRUE(decode_action(encode_action(legacy), decoded));
    EXPECT_EQ(decoded.first_attempt_at, at_s(5));
    EXPECT_FALSE(decode_action(encode_action(legacy) + "x", decoded));
}

TEST_F(outbox_test, retry_with_backoff_and_retry_after) {
    enqueue(make("a", 0));
    retry_policy policy;
    policy.base = 10s;
    policy.cap = 1h;
    ASSERT_TRUE(out_->mark_in_flight("a").ok);
    in_batch([&](batch& b) {
        auto r = out_->fail(b, "a", "503", at_s(100), policy, 0.5);
        ASSERT_TRUE(r.ok());
        EXPECT_FALSE(r.value);
    });
    auto a = get("a");
    EXPECT_EQ(a.state, action_state::pending);
    EXPECT_EQ(a.next_attempt_at, at_s(105));  // attempt 1: half of base
    EXPECT_EQ(a.last_error, "503");
    EXPECT_TRUE(ready_ids(104).empty());
    EXPECT_EQ(ready_ids(105), (std::vector<std::string>{"a"}));

    ASSERT_TRUE(out_->mark_in_flight("a").ok);
    in_batch([&](batch& b) {
        ASSERT_TRUE(out_->fail(b, "a", "429", at_s(200), policy, 0.5, 120s).ok());
    });
    EXPECT_EQ(get("a").next_attempt_at, at_s(320));  // Retry-After wins
    EXPECT_EQ(get("a").attempts, 2u);

    in_batch([&](batch& b) { ASSERT_TRUE(out_->retry_later(b, "a", at_s(50), "manual").ok); });
    EXPECT_EQ(ready_ids(60), (std::vector<std::string>{"a"}));  // moved earlier: still found
}

TEST_F(outbox_test, dead_letter_after_max_attempts) {
    enqueue(make("inv"));
    retry_policy policy;
    policy.max_attempts = 3;
    policy.base = 1s;
    bool dead = false;
    int attempts = 0;
    while (!dead) {
        ASSERT_TRUE(out_->mark_in_flight("inv").ok);
        ++attempts;
        in_batch([&](batch& b) {
            auto r = out_->fail(b, "inv", "400 invalid", at_s(1000), policy, 0.0);
            ASSERT_TRUE(r.ok()) << r.st.message;
            dead = r.value;
        });
        ASSERT_LE(attempts, 3);
    }
    EXPECT_EQ(attempts, 3);
    EXPECT_EQ(get("inv").state, action_state::dead);
    EXPECT_TRUE(ready_ids(100000).empty());
    EXPECT_FALSE(enqueue(make("inv")));  // the id stays known
    auto row = store_->get(cf::dead_letters, outbox_dead_letter_id("inv"));
    ASSERT_TRUE(row.value);
    dead_letter d;
    ASSERT_TRUE(decode_dead_letter(*row.value, d));
    EXPECT_EQ(d.origin, "outbox");
    EXPECT_EQ(d.attempts, 3u);
    EXPECT_EQ(d.error, "400 invalid");
    EXPECT_EQ(d.at, at_s(1000));

    batch b(*store_);
    EXPECT_FALSE(out_->complete(b, "inv", "late").ok);
    EXPECT_FALSE(out_->retry_later(b, "inv", at_s(0), "x").ok);
}

TEST_F(outbox_test, complete_is_idempotent) {
    enqueue(make("a"));
    ASSERT_TRUE(out_->mark_in_flight("a").ok);
    in_batch([&](batch& b) { ASSERT_TRUE(out_->complete(b, "a", "r1").ok); });
    in_batch([&](batch& b) { ASSERT_TRUE(out_->complete(b, "a", "r2").ok); });
    EXPECT_EQ(get("a").result, "r1");
    batch b(*store_);
    EXPECT_FALSE(out_->to_dead_letter(b, "a", "x", at_s(0)).ok);
}

TEST(backoff, full_jitter_within_bounds) {
    const backoff_duration base = 1s;
    const backoff_duration cap = 60s;
    EXPECT_EQ(next_backoff(1, base, cap, 0.0), 0s);
    EXPECT_EQ(next_backoff(1, base, cap, 1.0), 1s);
    EXPECT_EQ(next_backoff(1, base, cap, 0.5), 500ms);
    EXPECT_EQ(next_backoff(3, base, cap, 1.0), 4s);
    EXPECT_EQ(next_backoff(7, base, cap, 1.0), 60s);            // 64s capped
    EXPECT_EQ(next_backoff(4000000000u, base, cap, 1.0), 60s);  // no overflow
    EXPECT_EQ(next_backoff(0, base, cap, 1.0), 1s);
    EXPECT_EQ(next_backoff(2, base, cap, -3.0), 0s);  // clamped
    EXPECT_EQ(next_backoff(2, base, cap, 7.0), 2s);
    for (std::uint32_t attempt = 1; attempt < 40; ++attempt) {
        for (double r : {0.0, 0.1, 0.37, 0.5, 0.99, 0.999999}) {
            auto d = next_backoff(attempt, base, cap, r);
            EXPECT_GE(d, 0s);
            EXPECT_LE(d, cap);
        }
    }
}

TEST(backoff, retry_after_overrides_and_sources_are_called_once) {
    EXPECT_EQ(next_backoff(1, 1s, 60s, 0.5, 300s), 300s);  // not capped: the server decides
    EXPECT_EQ(next_backoff(1, 1s, 60s, 0.5, -5s), 0s);
    int calls = 0;
    auto source = [&] {
        ++calls;
        return 0.25;
    };
    EXPECT_EQ(next_backoff(3, 1s, 60s, source), 1s);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(next_backoff(3, 1s, 60s, source, 10s), 10s);
    EXPECT_EQ(calls, 1);
}

TEST(outbox_codec, action_round_trips) {
    action a;
    a.connector = "twilio";
    a.kind = "sms";
    a.payload = "hi";
    a.state = action_state::unknown;
    a.attempts = 4;
    a.next_attempt_at = at_s(77);
    a.last_error = "e";
    a.result = "r";
    action back;
    ASSERT_TRUE(decode_action(encode_action(a), back));
    EXPECT_EQ(back, a);
    EXPECT_EQ(to_string(action_state::in_flight), "in_flight");
}

// /status and /metrics read these: they must equal what the rows say through every transition
// and after a reopen.
TEST_F(outbox_test, stats_are_exact_through_every_transition_and_a_reopen) {
    auto stats_of = [this](std::string_view connector) {
        for (const auto& st : out_->stats()) {
            if (st.connector == connector) {
                return st;
            }
        }
        return outbox_stats{};
    };
    EXPECT_TRUE(out_->stats().empty());
    ASSERT_TRUE(enqueue(make("a", 10)));
    ASSERT_TRUE(enqueue(make("b", 20)));
    auto other = make("c", 5);
    other.connector = "twilio";
    ASSERT_TRUE(enqueue(other));
    EXPECT_EQ(stats_of("qbo").pending, 2u);
    EXPECT_EQ(stats_of("qbo").oldest_due, at_s(10));
    EXPECT_EQ(stats_of("twilio").pending, 1u);

    // An abandoned batch changes nothing.
    {
        batch b(*store_);
        ASSERT_TRUE(out_->complete(b, "a", "never written").ok);
    }
    EXPECT_EQ(stats_of("qbo").pending, 2u);

    ASSERT_TRUE(out_->mark_in_flight("a", at_s(10)).ok);
    EXPECT_EQ(stats_of("qbo").pending, 2u);  // in flight still counts
    in_batch([&](batch& b) { ASSERT_TRUE(out_->complete(b, "a", "ok").ok); });
    EXPECT_EQ(stats_of("qbo").pending, 1u);
    EXPECT_EQ(stats_of("qbo").oldest_due, at_s(20));
    in_batch([&](batch& b) { ASSERT_TRUE(out_->retry_later(b, "b", at_s(90), "busy").ok); });
    EXPECT_EQ(stats_of("qbo").pending, 1u);
    EXPECT_EQ(stats_of("qbo").oldest_due, at_s(90));
    in_batch([&](batch& b) { ASSERT_TRUE(out_->to_dead_letter(b, "c", "refused", at_s(30)).ok); });
    EXPECT_EQ(stats_of("twilio").pending, 0u);

    // In flight at a crash: unknown after the reopen, counted apart.
    ASSERT_TRUE(out_->mark_in_flight("b", at_s(90)).ok);
    reopen();
    EXPECT_EQ(stats_of("qbo").pending, 0u);
    EXPECT_EQ(stats_of("qbo").unknown, 1u);
    in_batch([&](batch& b) { ASSERT_TRUE(out_->complete(b, "b", "reconciled").ok); });
    EXPECT_TRUE(out_->stats().empty());
    in_batch([&](batch& b) { ASSERT_TRUE(out_->revive(b, "c").ok); });
    EXPECT_EQ(stats_of("twilio").pending, 1u);
    reopen();
    EXPECT_EQ(stats_of("twilio").pending, 1u);
    EXPECT_EQ(out_->stats().size(), 1u);
}

}  // namespace
}  // namespace billsync::state
