// context::enqueue, the one way a rule queues a side effect.

#include "workflows/context.hpp"

#include <gtest/gtest.h>

#include "tests/unit/workflows/workflows_test_support.hpp"

namespace billsync::workflows {
namespace {

using testing_support::at;

class context_test : public testing_support::state_fixture {
protected:
    static state::action action(std::string id) {
        state::action a;
        a.id = std::move(id);
        a.connector = "mail";
        a.kind = "notify";
        a.payload = "{}";
        return a;
    }
};

TEST_F(context_test, enqueue_makes_the_action_ready_now_and_notes_it) {
    const auto now = at("2026-01-05T15:00:00Z");
    ASSERT_TRUE(step(
                    [&](context& ctx) {
                        auto added = ctx.enqueue(action("notify:e:1"));
                        EXPECT_TRUE(added.value);
                        return added.st;
                    },
                    now)
                    .ok);
    ASSERT_EQ(last_enqueued_.size(), 1u);
    EXPECT_EQ(last_enqueued_[0], std::make_pair(std::string("notify:e:1"), std::string("mail")));
    const auto ready = outbox_->ready(now, 10);
    ASSERT_EQ(ready.value.size(), 1u);
    EXPECT_EQ(ready.value[0].next_attempt_at, now);
    EXPECT_TRUE(audit_text().empty()) << "no cause, no audit line";
}

TEST_F(context_test, a_second_enqueue_of_the_same_key_is_already_known) {
    const cause why{"notify", "e", 1, "created"};
    ASSERT_TRUE(step([&](context& ctx) { return ctx.enqueue(action("notify:e:1"), why).st; }).ok);
    bool second_added = true;
    ASSERT_TRUE(step([&](context& ctx) {
                    auto added = ctx.enqueue(action("notify:e:1"), why);
                    second_added = added.value;
                    return added.st;
                }).ok);
    EXPECT_FALSE(second_added);
    EXPECT_TRUE(last_enqueued_.empty());
    EXPECT_EQ(actions().size(), 1u);
    const auto audit = audit_text();
    EXPECT_NE(
        audit.find(
            R"({"action":"notify:e:1","cause":"created","decision":"action_enqueued","entity":"e","rule":"notify","version":1})"),
        std::string::npos)
        << audit;
    EXPECT_NE(
        audit.find(
            R"({"action":"notify:e:1","cause":"created","decision":"action_already_known","entity":"e","rule":"notify","version":1})"),
        std::string::npos)
        << audit;
}

TEST_F(context_test, the_same_key_twice_in_one_batch_is_added_once) {
    ASSERT_TRUE(step([&](context& ctx) {
                    EXPECT_TRUE(ctx.enqueue(action("k")).value);
                    EXPECT_FALSE(ctx.enqueue(action("k")).value);
                    return state::status::success();
                }).ok);
    EXPECT_EQ(last_enqueued_.size(), 1u);
    EXPECT_EQ(actions().size(), 1u);
}

}  // namespace
}  // namespace billsync::workflows
