// The engine with two rules: changes go to every rule, a timer to the rule that owns it, a timer
// nobody owns is audited and dropped, and one rule's error or exception fails the step without
// ending the caller.

#include "workflows/engine.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "tests/unit/workflows/workflows_test_support.hpp"

namespace billsync::workflows {
namespace {

using testing_support::at;

// A rule that queues one action per change and per owned timer, and counts what it saw.
class counting_rule final : public rule {
public:
    counting_rule(std::string name, std::string timer_prefix)
        : name_(std::move(name)), prefix_(std::move(timer_prefix)) {}

    std::string_view name() const noexcept override { return name_; }

    state::status on_change(const mappings::change& c, context& ctx) const override {
        ++changes;
        if (fail_with) {
            return state::status::failure(*fail_with);
        }
        if (throws) {
            throw std::runtime_error("boom");
        }
        return queue(c.entity_id, ctx);
    }
    bool owns_timer(std::string_view timer_name) const noexcept override {
        return timer_name.starts_with(prefix_);
    }
    state::status on_timer(const state::timer& t, context& ctx) const override {
        ++timers;
        return queue(t.name, ctx);
    }
    std::vector<refresh_target> before_timer(std::string_view timer_name,
                                             const state::store& /*s*/) const override {
        return {refresh_target{"invoice", std::string(timer_name.substr(prefix_.size()))}};
    }
    void on_action_done(const state::action& a, action_result r) const override {
        done.emplace_back(a.id, r);
    }

    mutable int changes = 0;
    mutable int timers = 0;
    mutable std::vector<std::pair<std::string, action_result>> done;
    std::optional<std::string> fail_with;
    bool throws = false;

private:
    state::status queue(const std::string& what, context& ctx) const {
        state::action a;
        a.id = name_ + ":" + what;
        a.connector = "c";
        a.kind = name_;
        return ctx.enqueue(std::move(a)).st;
    }

    std::string name_;
    std::string prefix_;
};

class engine_test : public testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        auto one = std::make_unique<counting_rule>("one", "one/");
        auto two = std::make_unique<counting_rule>("two", "two/");
        one_ = one.get();
        two_ = two.get();
        std::vector<std::unique_ptr<rule>> rules;
        rules.push_back(std::move(one));
        rules.push_back(std::move(two));
        engine_ = engine(std::move(rules));
    }

    static mappings::change change(std::string id) {
        mappings::change c;
        c.entity_type = "invoice";
        c.entity_id = std::move(id);
        c.version = 1;
        return c;
    }

    engine engine_;
    counting_rule* one_ = nullptr;
    counting_rule* two_ = nullptr;
};

TEST_F(engine_test, every_rule_sees_every_change) {
    const auto c = change("inv-1");
    ASSERT_TRUE(step([&](context& ctx) { return engine_.on_change(c, ctx); }).ok);
    EXPECT_EQ(one_->changes, 1);
    EXPECT_EQ(two_->changes, 1);
    EXPECT_EQ(actions().size(), 2u);
    EXPECT_EQ(last_enqueued_.size(), 2u);
}

TEST_F(engine_test, a_timer_goes_to_the_rule_that_owns_it) {
    const state::timer t{"two/inv-1", at("2026-01-05T15:00:00Z"), "{}"};
    ASSERT_TRUE(step([&](context& ctx) { return engine_.on_timer(t, ctx); }).ok);
    EXPECT_EQ(one_->timers, 0);
    EXPECT_EQ(two_->timers, 1);
    ASSERT_EQ(actions().size(), 1u);
    EXPECT_EQ(actions()[0].id, "two:two/inv-1");
    EXPECT_EQ(engine_.timer_owner("one/x"), "one");
    EXPECT_EQ(engine_.timer_owner("two/x"), "two");
    EXPECT_EQ(engine_.timer_owner("three/x"), "");
    ASSERT_EQ(engine_.before_timer("two/inv-9", *store_).size(), 1u);
    EXPECT_EQ(engine_.before_timer("two/inv-9", *store_)[0].id, "inv-9");
    EXPECT_TRUE(engine_.before_timer("three/x", *store_).empty());
}

TEST_F(engine_test, a_timer_nobody_owns_is_audited_and_dropped) {
    const state::timer t{"three/x", at("2026-01-05T15:00:00Z"), "{}"};
    ASSERT_TRUE(step([&](context& ctx) { return engine_.on_timer(t, ctx); }).ok);
    EXPECT_EQ(one_->timers + two_->timers, 0);
    EXPECT_TRUE(actions().empty());
    EXPECT_NE(audit_text().find(R"({"decision":"timer_ignored","timer":"three/x"})"),
              std::string::npos)
        << audit_text();
}

TEST_F(engine_test, an_error_from_one_rule_fails_the_step) {
    one_->fail_with = "cannot decide";
    const auto c = change("inv-1");
    const auto st = step([&](context& ctx) { return engine_.on_change(c, ctx); });
    EXPECT_FALSE(st.ok);
    EXPECT_EQ(st.message, "cannot decide");
    EXPECT_TRUE(actions().empty());  // nothing of the failed step was committed
}

TEST_F(engine_test, an_exception_from_one_rule_fails_the_step_and_the_next_one_runs) {
    two_->throws = true;
    const auto c = change("inv-1");
    const auto st = step([&](context& ctx) { return engine_.on_change(c, ctx); });
    EXPECT_FALSE(st.ok);
    EXPECT_EQ(st.message, "rule two failed: boom");
    EXPECT_TRUE(actions().empty());
    two_->throws = false;
    const auto next = change("inv-2");
    EXPECT_TRUE(step([&](context& ctx) { return engine_.on_change(next, ctx); }).ok);
    EXPECT_EQ(actions().size(), 2u);
}

TEST_F(engine_test, finished_actions_are_reported_to_every_rule) {
    state::action a;
    a.id = "one:inv-1";
    engine_.on_action_done(a, action_result::failed);
    ASSERT_EQ(one_->done.size(), 1u);
    EXPECT_EQ(one_->done[0].second, action_result::failed);
    EXPECT_EQ(two_->done.size(), 1u);
}

TEST_F(engine_test, rules_are_found_by_name) {
    EXPECT_EQ(engine_.find("one"), one_);
    EXPECT_EQ(engine_.find("two"), two_);
    EXPECT_EQ(engine_.find("three"), nullptr);
    EXPECT_EQ(engine_.rules().size(), 2u);
}

}  // namespace
}  // namespace billsync::workflows
