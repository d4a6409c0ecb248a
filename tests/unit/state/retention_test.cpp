#include "state/retention.hpp"

#include <gtest/gtest.h>

#include <future>

#include "state/dead_letters.hpp"
#include "state/inbox.hpp"
#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using namespace std::chrono_literals;
using testing::temp_dir;

constexpr std::int64_t day = 24 * 3600;

util::instant at_day(std::int64_t d) { return testing::at_s(1'000'000'000 + d * day); }

std::uint64_t pruned(const prune_counts& counts, std::string_view label) {
    for (const auto& [name, n] : counts) {
        if (name == label) {
            return n;
        }
    }
    return 0;
}

class retention_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
        gc_ = std::make_unique<group_commit>(*store_);
        auto in = inbox::open(*store_, *gc_);
        ASSERT_TRUE(in.ok()) << in.st.message;
        in_ = std::move(in.value);
        auto out = outbox::open(*store_);
        ASSERT_TRUE(out.ok()) << out.st.message;
        out_ = std::move(out.value);
        auto au = audit_log::open(*store_);
        ASSERT_TRUE(au.ok());
        audit_ = std::move(au.value);
        auto ch = change_log::open(*store_);
        ASSERT_TRUE(ch.ok());
        changes_ = std::move(ch.value);
    }
    void TearDown() override { gc_->stop(); }

    append_outcome append(std::string_view dedup, util::instant at) {
        std::promise<append_result> p;
        auto f = p.get_future();
        in_->append("sendgrid", "events", dedup, "{}", "body", at, [&p](append_result r) {
            p.set_value(std::move(r));
        });
        return f.get().outcome;
    }

    std::uint64_t rows(cf family, std::string_view prefix = "") {
        std::uint64_t n = 0;
        EXPECT_TRUE(store_
                        ->for_each(family,
                                   prefix,
                                   [&n](auto, auto) {
                                       ++n;
                                       return true;
                                   })
                        .ok);
        return n;
    }

    prune_counts pass(util::instant now, retention_policy p = {}, std::size_t chunk = 1000) {
        pruner pr(*store_, std::move(p), chunk);
        auto r = pr.run_pass(now);
        EXPECT_TRUE(r.ok()) << r.st.message;
        return r.value;
    }

    void write(batch& b) { ASSERT_TRUE(store_->write(b, true).ok); }

    temp_dir dir_;
    std::unique_ptr<store> store_;
    std::unique_ptr<group_commit> gc_;
    std::unique_ptr<inbox> in_;
    std::unique_ptr<outbox> out_;
    std::unique_ptr<audit_log> audit_;
    std::unique_ptr<change_log> changes_;
};

TEST_F(retention_test, dedup_rows_older_than_the_retention_go_and_younger_ones_still_reject) {
    ASSERT_EQ(append("old", at_day(0)), append_outcome::stored);
    ASSERT_EQ(append("young", at_day(25)), append_outcome::stored);
    const auto counts = pass(at_day(31));  // 30 days by default
    EXPECT_EQ(pruned(counts, "dedup"), 1u);
    EXPECT_EQ(rows(cf::dedup), 1u);
    // Within the window a redelivery is still a duplicate; past it, it is new again.
    EXPECT_EQ(append("young", at_day(31)), append_outcome::duplicate);
    EXPECT_EQ(append("old", at_day(31)), append_outcome::stored);
}

TEST_F(retention_test, audit_lines_older_than_the_retention_go) {
    batch b(*store_);
    audit_->append(b, at_day(0), R"({"n":1})");
    audit_->append(b, at_day(10), R"({"n":2})");
    audit_->append(b, at_day(100), R"({"n":3})");
    write(b);
    retention_policy p;
    p.audit = std::chrono::days(50);
    EXPECT_EQ(pruned(pass(at_day(101), p), "audit"), 2u);
    auto left = audit_->read(at_day(0), 10);
    ASSERT_TRUE(left.ok());
    ASSERT_EQ(left.value.size(), 1u);
    EXPECT_EQ(left.value[0].line, R"({"n":3})");
}

TEST_F(retention_test, change_records_go_once_a_pass_older_than_the_retention_saw_them) {
    batch b(*store_);
    changes_->append(b, "one");
    changes_->append(b, "two");
    write(b);
    EXPECT_EQ(pruned(pass(at_day(0)), "changes"), 0u);  // leaves a mark: seq < 3 exist at day 0
    batch b2(*store_);
    changes_->append(b2, "three");
    write(b2);
    EXPECT_EQ(pruned(pass(at_day(20)), "changes"), 0u);  // no mark is 30 days old yet
    EXPECT_EQ(pruned(pass(at_day(31)), "changes"), 2u);
    auto left = changes_->read(0, 10);
    ASSERT_TRUE(left.ok());
    ASSERT_EQ(left.value.size(), 1u);
    EXPECT_EQ(left.value[0].second, "three");
}

TEST_F(retention_test, done_actions_become_seen_markers_that_still_refuse_their_id) {
    const auto enqueue = [&](std::string id, util::instant at) {
        action a;
        a.id = std::move(id);
        a.connector = "sendgrid";
        a.kind = "email.send";
        a.payload = std::string(2000, 'x');
        a.next_attempt_at = at;
        batch b(*store_);
        auto r = out_->enqueue(b, std::move(a));
        EXPECT_TRUE(r.ok());
        write(b);
        return r.value;
    };
    ASSERT_TRUE(enqueue("done-old", at_day(0)));
    ASSERT_TRUE(enqueue("done-young", at_day(25)));
    ASSERT_TRUE(enqueue("dead-letter", at_day(0)));
    ASSERT_TRUE(enqueue("pending-old", at_day(0)));
    for (const auto* id : {"done-old", "done-young"}) {
        ASSERT_TRUE(out_->mark_in_flight(id).ok);
        batch b(*store_);
        ASSERT_TRUE(out_->complete(b, id, "msg-1").ok);
        write(b);
    }
    {
        batch b(*store_);
        ASSERT_TRUE(out_->to_dead_letter(b, "dead-letter", "boom", at_day(0)).ok);
        write(b);
    }

    const auto counts = pass(at_day(31));
    EXPECT_EQ(pruned(counts, "outbox_compacted"), 1u);
    EXPECT_EQ(pruned(counts, "outbox_forgotten"), 0u);
    auto old = out_->get("done-old");
    ASSERT_TRUE(old.ok() && old.value);
    EXPECT_EQ(old.value->state, action_state::done);
    EXPECT_TRUE(old.value->payload.empty());
    // The outcome stays: a created invoice's id is what a draft links back to.
    EXPECT_EQ(old.value->result, "msg-1");
    EXPECT_EQ(out_->get("done-young").value->payload.size(), 2000u);
    EXPECT_EQ(out_->get("dead-letter").value->payload.size(), 2000u);  // may still be retried
    EXPECT_EQ(out_->get("pending-old").value->payload.size(), 2000u);  // live: never touched
    // The marker keeps the id known: the same decision is never performed twice.
    EXPECT_FALSE(enqueue("done-old", at_day(31)));

    // Past outbox_seen (400 days) the marker goes too.
    EXPECT_EQ(pruned(pass(at_day(401)), "outbox_forgotten"), 1u);
    EXPECT_FALSE(out_->get("done-old").value.has_value());
    EXPECT_TRUE(out_->get("dead-letter").value.has_value());
}

TEST_F(retention_test, expiring_entity_rows_go_by_their_own_time) {
    batch b(*store_);
    put_entity(b, "seen_event", "a", "0");
    put_entity(b, "seen_event", "b", "20");
    put_entity(b, "seen_event", "c", "junk");
    put_entity(b, "other", "d", "0");
    write(b);
    retention_policy p;
    p.expiring.push_back({"seen_events",
                          "seen_event",
                          std::chrono::days(10),
                          [](std::string_view v) -> std::optional<util::instant> {
                              if (v == "junk") {
                                  return std::nullopt;
                              }
                              return at_day(std::stoll(std::string(v)));
                          }});
    EXPECT_EQ(pruned(pass(at_day(21), p), "seen_events"), 2u);
    EXPECT_EQ(rows(cf::entities, keys::join("seen_event", "")), 1u);
    EXPECT_EQ(rows(cf::entities, keys::join("other", "")), 1u);
}

TEST_F(retention_test, a_pass_goes_in_bounded_steps) {
    for (int i = 0; i < 7; ++i) {
        ASSERT_EQ(append("k" + std::to_string(i), at_day(0)), append_outcome::stored);
    }
    pruner pr(*store_, {}, 3);
    auto begun = pr.begin_pass(at_day(40));
    ASSERT_TRUE(begun.ok() && begun.value);
    EXPECT_FALSE(pr.begin_pass(at_day(40)).value);  // one pass at a time
    std::uint64_t total = 0;
    int steps = 0;
    while (pr.in_pass()) {
        auto r = pr.step();
        ASSERT_TRUE(r.ok());
        EXPECT_LE(pruned(r.value, "dedup"), 3u);
        total += pruned(r.value, "dedup");
        ++steps;
    }
    EXPECT_EQ(total, 7u);
    EXPECT_GE(steps, 3);
    EXPECT_EQ(rows(cf::dedup), 0u);
}

TEST_F(retention_test, zero_keeps_for_ever) {
    ASSERT_EQ(append("old", at_day(0)), append_outcome::stored);
    retention_policy p;
    p.dedup = 0s;
    EXPECT_EQ(pruned(pass(at_day(1000), p), "dedup"), 0u);
    EXPECT_EQ(rows(cf::dedup), 1u);
}

}  // namespace
}  // namespace billsync::state
