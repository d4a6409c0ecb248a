#include "state/dead_letters.hpp"

#include <gtest/gtest.h>

#include <future>

#include "state/keys.hpp"
#include "state/outbox.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::at_s;
using testing::temp_dir;

class dead_letters_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
        gc_ = std::make_unique<group_commit>(*store_);
        auto in = inbox::open(*store_, *gc_);
        ASSERT_TRUE(in.ok());
        inbox_ = std::move(in.value);
        auto out = outbox::open(*store_);
        ASSERT_TRUE(out.ok());
        outbox_ = std::move(out.value);
        dead_ = std::make_unique<dead_letters>(*store_, *inbox_, *outbox_);
    }

    void append(std::string body) {
        std::promise<append_result> p;
        inbox_->append("karbon",
                       "work_item.completed",
                       "evt-1",
                       "{}",
                       std::move(body),
                       at_s(10),
                       [&](append_result r) { p.set_value(std::move(r)); });
        ASSERT_EQ(p.get_future().get().outcome, append_outcome::stored);
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
    std::unique_ptr<group_commit> gc_;
    std::unique_ptr<inbox> inbox_;
    std::unique_ptr<outbox> outbox_;
    std::unique_ptr<dead_letters> dead_;
};

// Issue 18 item 22: a delivery refused at intake (signed, but its payload check failed) can be
// retried once the cause is fixed, like any other dead letter.
TEST_F(dead_letters_test, an_intake_dead_letter_is_retried_into_the_inbox) {
    inbox_event e;
    e.connector = "demo";
    e.kind = "";
    e.dedup_key = "sha256:abc";
    e.received_at = at_s(5);
    e.headers_json = R"({"content-type":"application/json"})";
    e.body = "not json";
    const auto dl = intake_dead_letter(e, "body is not valid JSON", at_s(5));
    EXPECT_EQ(dl.id, "intake/demo/sha256:abc");
    {
        batch b(*store_);
        b.put(cf::dead_letters, dl.id, encode_dead_letter(dl));
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    ASSERT_TRUE(dead_->retry(dl.id).ok);
    EXPECT_FALSE(dead_->get(dl.id).value);
    const auto events = inbox_->peek("demo", 10).value;
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].body, "not json");
    EXPECT_EQ(events[0].headers_json, e.headers_json);
    EXPECT_EQ(events[0].attempts, 0u);
}

TEST_F(dead_letters_test, inbox_event_goes_to_dead_letters_and_back) {
    append("payload");
    auto events = inbox_->peek("karbon", 10).value;
    ASSERT_EQ(events.size(), 1u);
    ASSERT_TRUE(inbox_->record_failure(events[0], "mapping failed").ok);
    {
        batch b(*store_);
        dead_->from_inbox(b, events[0], "mapping failed", at_s(99));
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(inbox_->pending("karbon"), 0u);
    auto list = dead_->list(10);
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list.value.size(), 1u);
    const auto& d = list.value[0];
    EXPECT_EQ(d.id, inbox_dead_letter_id("karbon", events[0].seq));
    EXPECT_EQ(d.origin, "inbox");
    EXPECT_EQ(d.connector, "karbon");
    EXPECT_EQ(d.kind, "work_item.completed");
    EXPECT_EQ(d.payload, "payload");
    EXPECT_EQ(d.error, "mapping failed");
    EXPECT_EQ(d.attempts, 1u);
    EXPECT_EQ(d.at, at_s(99));

    ASSERT_TRUE(dead_->retry(d.id).ok);
    EXPECT_TRUE(dead_->list(10).value.empty());
    auto back = inbox_->peek("karbon", 10).value;
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].body, "payload");
    EXPECT_EQ(back[0].dedup_key, "evt-1");
    EXPECT_EQ(back[0].attempts, 0u);
    EXPECT_GT(back[0].seq, events[0].seq);  // at the tail
    EXPECT_EQ(inbox_->pending("karbon"), 1u);
}

TEST_F(dead_letters_test, outbox_action_retry_and_drop) {
    action a;
    a.id = "followup/inv-9/touch1";
    a.connector = "email";
    a.kind = "send";
    a.payload = "{}";
    {
        batch b(*store_);
        ASSERT_TRUE(outbox_->enqueue(b, a).value);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    ASSERT_TRUE(outbox_->mark_in_flight(a.id).ok);
    {
        batch b(*store_);
        ASSERT_TRUE(outbox_->to_dead_letter(b, a.id, "550 mailbox unknown", at_s(5)).ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    const std::string id = outbox_dead_letter_id(a.id);
    auto got = dead_->get(id);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(got.value);
    EXPECT_EQ(got.value->origin, "outbox");

    ASSERT_TRUE(dead_->retry(id).ok);
    EXPECT_FALSE(dead_->get(id).value);
    auto revived = outbox_->get(a.id).value;
    ASSERT_TRUE(revived);
    EXPECT_EQ(revived->state, action_state::pending);
    EXPECT_EQ(revived->attempts, 0u);
    auto ready = outbox_->ready(at_s(0), 10).value;
    ASSERT_EQ(ready.size(), 1u);

    ASSERT_TRUE(outbox_->mark_in_flight(a.id).ok);
    {
        batch b(*store_);
        ASSERT_TRUE(outbox_->to_dead_letter(b, a.id, "again", at_s(6)).ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    ASSERT_TRUE(dead_->drop(id).ok);
    EXPECT_FALSE(dead_->get(id).value);
    EXPECT_EQ(outbox_->get(a.id).value->state, action_state::dead);  // stays known
    EXPECT_FALSE(dead_->drop(id).ok);
    EXPECT_FALSE(dead_->retry("nope").ok);
}

}  // namespace
}  // namespace billsync::state
