// The generic record rules: notify every record of a source that takes actions, remind later.

#include "workflows/records/records_rule.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/workflows/workflows_test_support.hpp"

namespace billsync::workflows::records {
namespace {

using testing_support::at;

class records_rule_test : public testing_support::state_fixture {
protected:
    static mappings::change record(std::string source, std::string fields) {
        mappings::change c;
        c.entity_type = "record";
        c.entity_id = "generic/demo/ev-1";
        c.version = 3;
        c.what = mappings::change::op::created;
        c.source = std::move(source);
        c.fields_json = std::move(fields);
        return c;
    }

    records_rule rule_{{"demo"}};
};

TEST_F(records_rule_test, a_record_of_an_action_source_is_notified_once) {
    const auto c = record("demo", R"({"x":1})");
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }).ok);
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }).ok);
    const auto a = actions();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].id, "notify:generic/demo/ev-1:3");
    EXPECT_EQ(a[0].connector, "demo");
    EXPECT_EQ(a[0].kind, "notify");
    EXPECT_NE(audit_text().find("action_already_known"), std::string::npos);
}

TEST_F(records_rule_test, other_sources_and_entities_are_ignored) {
    auto c = record("elsewhere", "{}");
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }).ok);
    c.source = "demo";
    c.entity_type = "invoice";
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }).ok);
    EXPECT_TRUE(actions().empty());
}

TEST_F(records_rule_test, remind_after_s_schedules_a_timer_that_queues_a_remind) {
    const auto now = at("2026-01-05T15:00:00Z");
    const auto c = record("demo", R"({"remind_after_s":60})");
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }, now).ok);
    auto due = timers_->due(now + std::chrono::seconds(60), 10);
    ASSERT_EQ(due.value.size(), 1u);
    EXPECT_EQ(due.value[0].name, "remind/generic/demo/ev-1");
    EXPECT_TRUE(rule_.owns_timer(due.value[0].name));
    EXPECT_FALSE(rule_.owns_timer("followup/x/touch1"));
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_timer(due.value[0], ctx); }).ok);
    bool remind = false;
    for (const auto& a : actions()) {
        remind = remind || a.id == "remind:generic/demo/ev-1:3";
    }
    EXPECT_TRUE(remind);
}

TEST_F(records_rule_test, a_timer_without_a_known_source_is_audited_and_dropped) {
    const state::timer t{"remind/x", at("2026-01-05T15:00:00Z"), R"({"source":"gone"})"};
    ASSERT_TRUE(step([&](context& ctx) { return rule_.on_timer(t, ctx); }).ok);
    EXPECT_TRUE(actions().empty());
    EXPECT_NE(audit_text().find("timer_ignored"), std::string::npos);
}

}  // namespace
}  // namespace billsync::workflows::records
