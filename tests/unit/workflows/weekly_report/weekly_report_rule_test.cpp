// The scheduled weekly report: a snapshot at the week's end, one email per partner per week.
#include "workflows/weekly_report/weekly_report_rule.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mappings/model.hpp"
#include "state/entity_index.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/action_key.hpp"
#include "workflows/weekly_report/report.hpp"

namespace billsync::workflows::weekly_report {
namespace {

using json = nlohmann::json;
using testing_support::at;

rule_deps deps_with_email() {
    rule_deps d;
    d.time_zone = "America/New_York";
    d.connectors.push_back({"ledger", "", false, {}});
    d.connectors.push_back({"mail", "email", false, {}});
    return d;
}

settings partners() {
    settings s;
    s.enabled = true;
    s.week_end_day = 0;
    s.send_day = 1;
    s.send_hour = 8;
    s.to = {"ann@firm.test", "bob@firm.test"};
    return s;
}

class weekly_report_rule_test : public testing_support::state_fixture {
protected:
    std::unique_ptr<rule> r_ = [] {
        std::string error;
        auto r = make(partners(), deps_with_email(), &error);
        EXPECT_TRUE(r) << error;
        return r;
    }();

    std::optional<state::timer> timer(std::string_view name) {
        auto t = timers_->get(name);
        EXPECT_TRUE(t.ok());
        return t.value;
    }
    // Fires a timer the way the pipeline does: fired and decided in one batch.
    void fire(const state::timer& t, util::instant now) {
        ASSERT_TRUE(step(
                        [&](context& ctx) {
                            if (auto st = timers_->fire(ctx.b, t); !st.ok) {
                                return st;
                            }
                            return r_->on_timer(t, ctx);
                        },
                        now)
                        .ok);
    }
};

TEST_F(weekly_report_rule_test, off_without_the_table_and_refused_without_an_email_connector) {
    std::string error;
    EXPECT_FALSE(make(settings{}, deps_with_email(), &error));
    EXPECT_TRUE(error.empty());
    rule_deps none;
    none.time_zone = "UTC";
    EXPECT_FALSE(make(partners(), none, &error));
    EXPECT_NE(error.find("no email connector"), std::string::npos) << error;
    auto s = partners();
    s.email_connector = "ledger";
    EXPECT_FALSE(make(s, deps_with_email(), &error));
    EXPECT_NE(error.find("'ledger' is not an enabled email connector"), std::string::npos);
}

TEST_F(weekly_report_rule_test, snapshot_at_the_weeks_end_then_one_email_per_partner) {
    {
        mappings::invoice i;
        i.id = "i1";
        i.number = "1001";
        i.client_id = "c1";
        i.issue_date = mappings::parse_civil_date("2026-11-01");
        i.due_date = mappings::parse_civil_date("2026-11-15");
        i.currency = "USD";
        i.total = i.balance = {12345, "USD"};
        state::batch b(*store_);
        const auto row = mappings::to_json(i).dump();
        state::put_entity(b, "invoice", "i1", row);
        state::entity_index::update(b, "invoice", "i1", std::nullopt, row);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    ASSERT_TRUE(
        step([&](context& ctx) { return r_->on_start(ctx); }, at("2026-12-02T15:00:00Z")).ok);
    auto snap = timer(snapshot_timer);
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->due, at("2026-12-07T05:00:00Z"));  // Monday 00:00 in New York
    // Starting again changes nothing.
    ASSERT_TRUE(
        step([&](context& ctx) { return r_->on_start(ctx); }, at("2026-12-03T15:00:00Z")).ok);
    EXPECT_EQ(timer(snapshot_timer)->due, snap->due);

    fire(*snap, at("2026-12-07T05:00:00Z"));
    auto stored = state::get_entity(*store_, snapshot_type, "2026-W49");
    ASSERT_TRUE(stored.ok() && stored.value);
    EXPECT_EQ(json::parse(*stored.value)["aging"]["total"]["open"]["amount_minor"], 12345);
    EXPECT_EQ(timer(snapshot_timer)->due, at("2026-12-14T05:00:00Z"));
    auto send = timer("weekly_report/send/2026-W49");
    ASSERT_TRUE(send);
    EXPECT_EQ(send->due, at("2026-12-07T13:00:00Z"));  // Monday 08:00 in New York
    EXPECT_TRUE(actions().empty());

    // An invoice paid after the snapshot does not change what is sent for week 49.
    {
        state::batch b(*store_);
        state::put_entity(b, "invoice", "i1", R"({"id":"i1"})");
        state::entity_index::update(b,
                                    "invoice",
                                    "i1",
                                    state::get_entity(*store_, "invoice", "i1").value,
                                    R"({"id":"i1"})");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    fire(*send, at("2026-12-07T13:00:00Z"));
    const auto sent = actions();
    ASSERT_EQ(sent.size(), 2u);
    for (const auto& a : sent) {
        EXPECT_EQ(a.connector, "mail");
        EXPECT_EQ(a.kind, "email.send");
        const auto p = json::parse(a.payload);
        EXPECT_NE(p["subject"].get<std::string>().find("2026-W49"), std::string::npos);
        EXPECT_NE(p["text"].get<std::string>().find("123.45 (1)"), std::string::npos);
        EXPECT_EQ(p["html"].get<std::string>().rfind("<!DOCTYPE html>", 0), 0u);
        EXPECT_EQ(p["delivery_id"], a.id);
    }
    EXPECT_EQ(json::parse(sent[0].payload)["to"], "ann@firm.test");
    EXPECT_EQ(json::parse(sent[1].payload)["to"], "bob@firm.test");
    EXPECT_FALSE(timer("weekly_report/send/2026-W49"));

    // The same timer fired again (a replay after a crash): the outbox knows both ids.
    fire(*send, at("2026-12-07T13:05:00Z"));
    EXPECT_EQ(actions().size(), 2u);
    EXPECT_NE(audit_text().find("\"decision\":\"report_sent\""), std::string::npos);
}

TEST_F(weekly_report_rule_test, a_late_snapshot_is_still_for_the_week_that_ended) {
    ASSERT_TRUE(
        step([&](context& ctx) { return r_->on_start(ctx); }, at("2026-12-02T15:00:00Z")).ok);
    auto snap = timer(snapshot_timer);
    ASSERT_TRUE(snap);
    // The daemon was down for ten days.
    fire(*snap, at("2026-12-17T12:00:00Z"));
    auto stored = state::get_entity(*store_, snapshot_type, "2026-W49");
    ASSERT_TRUE(stored.ok() && stored.value);
    EXPECT_EQ(json::parse(*stored.value)["week"], "2026-W49");
    // Next: the end of the week running now (week 51 ends Sunday 20 Dec).
    EXPECT_EQ(timer(snapshot_timer)->due, at("2026-12-21T05:00:00Z"));
    EXPECT_TRUE(timer("weekly_report/send/2026-W49"));
}

// The preview's settings (compute_figures = false): the timers run and the partners' emails have
// the same ids and subject, but no report is computed or stored.
TEST_F(weekly_report_rule_test,
       without_figures_the_timers_and_subjects_run_and_nothing_is_computed) {
    auto s = partners();
    s.compute_figures = false;
    std::string error;
    r_ = make(s, deps_with_email(), &error);
    ASSERT_TRUE(r_) << error;
    EXPECT_FALSE(dynamic_cast<const weekly_report_rule&>(*r_).config().compute_figures);
    ASSERT_TRUE(
        step([&](context& ctx) { return r_->on_start(ctx); }, at("2026-12-02T15:00:00Z")).ok);
    fire(*timer(snapshot_timer), at("2026-12-07T05:00:00Z"));
    EXPECT_FALSE(state::get_entity(*store_, snapshot_type, "2026-W49").value);
    EXPECT_EQ(timer(snapshot_timer)->due, at("2026-12-14T05:00:00Z"));
    auto send = timer("weekly_report/send/2026-W49");
    ASSERT_TRUE(send);
    fire(*send, at("2026-12-07T13:00:00Z"));
    const auto sent = actions();
    ASSERT_EQ(sent.size(), 2u);
    const auto p = json::parse(sent[0].payload);
    EXPECT_EQ(p["subject"], "Weekly billing report 2026-W49 (2026-11-30 to 2026-12-06)");
    EXPECT_EQ(p["text"], "");
    EXPECT_EQ(sent[0].id, action_key("weekly_report", "2026-W49/ann@firm.test", 1));
}

}  // namespace
}  // namespace billsync::workflows::weekly_report
