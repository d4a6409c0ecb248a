// The draft_time rule on canonical changes in committed steps: one draft per work item, ever;
// identity and staff exceptions that wait and retry; cancellation before the draft; staff edits
// and the review list.

#include "workflows/draft_time/draft_time_rule.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <sstream>

#include "state/apply.hpp"
#include "state/identity.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/action_key.hpp"
#include "workflows/draft_time/missing_time.hpp"

namespace billsync::workflows::draft_time {
namespace {

using json = nlohmann::json;
using testing_support::at;

class draft_time_test : public testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        settings s;
        s.enabled = true;
        s.connector = "time";
        s.time_zone = "America/Denver";
        s.review_after = std::chrono::hours(72);
        work_type_mapping m;
        m.work_type = "1040 Individual Return";
        m.project = "2025 Tax Return";
        m.task = "Tax Preparation";
        m.minutes = 210;
        m.hours = "3.5";
        m.stages = {"Return Filed"};
        s.work_types.push_back(m);
        m.work_type = "Monthly Bookkeeping";
        m.task = "Bookkeeping";
        m.hours = "2";
        m.minutes = 120;
        m.billable = false;
        m.stages.clear();
        s.work_types.push_back(m);
        rule_ = std::make_unique<draft_time_rule>(s);
    }

    mappings::work_item item(std::string status, std::string work_type = "1040 Individual Return") {
        mappings::work_item w;
        w.id = "karbon:work:W1";
        w.client_id = "client:acme";
        w.title = "2025 1040 - Acme";
        w.work_type = std::move(work_type);
        w.status = std::move(status);
        w.assignee_id = "kim@example-cpa.com";
        w.source.system = "practice";
        w.source.id = "W1";
        return w;
    }

    // Applies an entity the way a connector's process() does and hands its change to the rule.
    state::status feed(mappings::entity e,
                       std::string source,
                       util::instant now = at("2026-01-05T23:30:00Z")) {
        return step(
            [&](context& ctx) {
                auto applied = state::apply(*store_, ctx.b, source, std::move(e));
                if (!applied.ok()) {
                    return applied.st;
                }
                if (!applied.value) {
                    return state::status::success();
                }
                return rule_->on_change(*applied.value, ctx);
            },
            now);
    }

    void link_client() {
        state::batch b(*store_);
        state::put_xref(b, "time", "123456/client/5735774", "client:acme");
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    mappings::staff kim() {
        mappings::staff s;
        s.id = "time:123456:staff:1782959";
        s.name = "Kim Allen";
        s.email = "kim@example-cpa.com";
        s.source = {"time", "123456", "1782959", "", std::nullopt};
        return s;
    }

    json row() {
        auto r = state::get_entity(*store_, "draft_time", "karbon:work:W1");
        EXPECT_TRUE(r.ok());
        return r.value ? json::parse(*r.value) : json();
    }

    mappings::time_entry entry(std::string updated) {
        mappings::time_entry t;
        t.id = "time:123456:time_entry:9001";
        t.staff_id = kim().id;
        t.minutes = 210;
        t.external_reference = action_key("draft_time", "karbon:work:W1", 1);
        t.source = {"time", "123456", "9001", updated, mappings::parse_timestamp(updated)};
        return t;
    }

    std::unique_ptr<draft_time_rule> rule_;
};

TEST_F(draft_time_test, a_completed_work_item_drafts_one_entry_with_the_mapping) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("in_progress"), "practice").ok);
    EXPECT_TRUE(actions().empty());
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    const auto a = actions();
    ASSERT_EQ(a.size(), 1U);
    EXPECT_EQ(a[0].connector, "time");
    EXPECT_EQ(a[0].kind, "time_entry.create");
    const auto p = json::parse(a[0].payload);
    EXPECT_EQ(p["key"], a[0].id);
    EXPECT_EQ(p["client_ref"], "123456/client/5735774");
    EXPECT_EQ(p["user_ref"], "1782959");
    EXPECT_EQ(p["task"], "Tax Preparation");
    EXPECT_EQ(p["hours"], "3.5");
    // 23:30 UTC on the 5th is the 5th in Denver; no completed_date: the day it completed there.
    EXPECT_EQ(p["spent_date"], "2026-01-05");
    EXPECT_NE(p["notes"].get<std::string>().find("drafted by billsync"), std::string::npos);
    EXPECT_NE(p["notes"].get<std::string>().find("karbon:work:W1"), std::string::npos);
    EXPECT_NE(audit_text().find("\"decision\":\"drafted\""), std::string::npos);
}

TEST_F(draft_time_test, the_civil_date_is_the_firms_and_a_stage_can_complete) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    auto w = item("in_progress");
    w.stage = "Return Filed";
    // 03:00 UTC on the 6th is still the 5th in Denver.
    ASSERT_TRUE(feed(w, "practice", at("2026-01-06T03:00:00Z")).ok);
    const auto a = actions();
    ASSERT_EQ(a.size(), 1U);
    EXPECT_EQ(json::parse(a[0].payload)["spent_date"], "2026-01-05");
}

TEST_F(draft_time_test, re_completion_and_repeated_changes_never_draft_twice) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);  // created
    auto reopened = item("in_progress");
    reopened.title = "2025 1040 - Acme (amended)";
    ASSERT_TRUE(feed(reopened, "practice").ok);
    auto again = item("completed");
    again.title = "2025 1040 - Acme (amended)";
    ASSERT_TRUE(feed(again, "practice").ok);
    EXPECT_EQ(actions().size(), 1U);
    EXPECT_NE(audit_text().find("already drafted"), std::string::npos);
}

TEST_F(draft_time_test, an_unlinked_client_waits_as_an_identity_exception_then_drafts) {
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    EXPECT_TRUE(actions().empty());
    EXPECT_EQ(row()["state"], "waiting");
    EXPECT_EQ(row()["exception"], "identity");
    auto review = rule_->view("review", *store_);
    ASSERT_EQ(review.status, 200U);
    EXPECT_EQ(review.body["exceptions"].size(), 1U);
    EXPECT_NE(audit_text().find("\"exception\":\"identity\""), std::string::npos);
    // The link arrives with a client change: the waiting draft is retried.
    link_client();
    mappings::client c;
    c.id = "client:acme";
    c.display_name = "Acme Dental";
    c.source = {"time", "123456", "5735774", "", std::nullopt};
    ASSERT_TRUE(feed(c, "time").ok);
    EXPECT_EQ(actions().size(), 1U);
    EXPECT_EQ(row()["state"], "queued");
}

// The practice system's client and the time system's client are two canonical clients: the
// identity map links them (here by billing email), and the draft goes to the time system's one.
TEST_F(draft_time_test, the_client_is_found_through_the_identity_map_and_waits_visibly_before) {
    ASSERT_TRUE(feed(kim(), "time").ok);
    mappings::client practice;
    practice.id = "client:acme";
    practice.display_name = "Acme Dental";
    practice.contact.billing_email = "ap@acme-dental.example";
    practice.source = {"practice", "", "ORG1", "", std::nullopt};
    ASSERT_TRUE(feed(practice, "practice").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    EXPECT_TRUE(actions().empty());
    auto ex = state::identity::exceptions(*store_);
    ASSERT_TRUE(ex.ok());
    ASSERT_EQ(ex.value.size(), 1U);
    EXPECT_EQ(ex.value[0].kind, "missing");
    EXPECT_EQ(ex.value[0].system, "time");
    EXPECT_EQ(ex.value[0].needed_by, "draft_time work item karbon:work:W1");

    mappings::client harvest;
    harvest.id = "time:123456:client:5735774";
    harvest.display_name = "Acme Dental, Inc.";
    harvest.contact.billing_email = "AP@acme-dental.example";
    harvest.source = {"time", "123456", "5735774", "", std::nullopt};
    ASSERT_TRUE(feed(harvest, "time").ok);
    const auto list = actions();
    ASSERT_EQ(list.size(), 1U);
    EXPECT_EQ(json::parse(list[0].payload)["client_ref"], "123456/client/5735774");
    ex = state::identity::exceptions(*store_);
    ASSERT_TRUE(ex.ok());
    EXPECT_TRUE(ex.value.empty());
}

TEST_F(draft_time_test, an_unknown_assignee_waits_as_a_staff_exception_until_the_user_appears) {
    link_client();
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    EXPECT_EQ(row()["exception"], "staff");
    EXPECT_TRUE(actions().empty());
    ASSERT_TRUE(feed(kim(), "time").ok);  // the Harvest user is synced
    EXPECT_EQ(actions().size(), 1U);
}

TEST_F(draft_time_test, deleted_or_reopened_before_the_draft_drafts_nothing) {
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);  // waits: no client link
    auto gone = item("completed");
    gone.deleted = true;
    ASSERT_TRUE(feed(gone, "practice").ok);
    EXPECT_EQ(row()["state"], "cancelled");
    link_client();
    mappings::client c;
    c.id = "client:acme";
    c.display_name = "Acme";
    ASSERT_TRUE(feed(c, "time").ok);
    EXPECT_TRUE(actions().empty());
    EXPECT_NE(audit_text().find("\"decision\":\"cancelled\""), std::string::npos);
}

TEST_F(draft_time_test, a_queued_draft_is_dropped_when_the_work_item_was_deleted_meanwhile) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    const auto a = actions();
    ASSERT_EQ(a.size(), 1U);
    auto gone = item("completed");
    gone.deleted = true;
    ASSERT_TRUE(feed(gone, "practice").ok);
    std::optional<std::string> cause;
    ASSERT_TRUE(step([&](context& ctx) {
                    cause = rule_->recheck(a[0], ctx);
                    return state::status::success();
                }).ok);
    ASSERT_TRUE(cause);
    EXPECT_NE(cause->find("deleted"), std::string::npos);
}

TEST_F(draft_time_test, no_mapping_for_the_work_type_is_an_audited_exception) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed", "Payroll"), "practice").ok);
    EXPECT_TRUE(actions().empty());
    EXPECT_EQ(row()["exception"], "mapping");
}

TEST_F(draft_time_test, fixed_fee_mappings_draft_non_billable) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("Completed", "monthly bookkeeping"), "practice").ok);
    const auto a = actions();
    ASSERT_EQ(a.size(), 1U);
    const auto p = json::parse(a[0].payload);
    EXPECT_FALSE(p["billable"].get<bool>());
    EXPECT_NE(p["notes"].get<std::string>().find("non-billable"), std::string::npos);
}

TEST_F(draft_time_test, untouched_drafts_join_the_review_list_and_staff_edits_leave_it) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);
    EXPECT_EQ(row()["state"], "created");
    EXPECT_EQ(row()["entry_id"], "9001");
    // The review timer fires after review_after.
    auto due = timers_->due(at("2026-01-09T00:00:00Z"), 10);
    ASSERT_TRUE(due.ok());
    ASSERT_EQ(due.value.size(), 1U);
    EXPECT_TRUE(rule_->owns_timer(due.value[0].name));
    ASSERT_TRUE(step([&](context& ctx) { return rule_->on_timer(due.value[0], ctx); }).ok);
    auto review = rule_->view("review", *store_);
    ASSERT_EQ(review.body["review"].size(), 1U);
    // Staff edit it: out of the list, and never touched again.
    ASSERT_TRUE(feed(entry("2026-01-09T10:00:00Z"), "time").ok);
    EXPECT_EQ(row()["state"], "edited");
    review = rule_->view("review", *store_);
    EXPECT_TRUE(review.body["review"].empty());
    EXPECT_NE(audit_text().find("edited_by_staff"), std::string::npos);
}

TEST_F(draft_time_test, a_draft_locked_as_drafted_is_approved_not_edited_by_staff) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);
    ASSERT_EQ(row()["state"], "created");
    // The manager approves the timesheet: the entry locks, its hours and day as billsync wrote.
    auto locked = entry("2026-01-09T22:00:00Z");
    locked.locked = true;
    ASSERT_TRUE(feed(locked, "time").ok);
    EXPECT_EQ(row()["state"], "approved");
    EXPECT_EQ(row()["approved_at"], "2026-01-09T22:00:00Z");
    EXPECT_TRUE(rule_->view("review", *store_).body["review"].empty());
    const auto audit = audit_text();
    EXPECT_NE(audit.find("approved_in_time_system"), std::string::npos) << audit;
    EXPECT_NE(audit.find("approved (locked) in time as drafted"), std::string::npos) << audit;
    EXPECT_EQ(audit.find("edited_by_staff"), std::string::npos) << audit;
    // Never touched again: a later change is not an edit either.
    auto later = entry("2026-01-10T09:00:00Z");
    later.locked = true;
    later.minutes = 240;
    ASSERT_TRUE(feed(later, "time").ok);
    EXPECT_EQ(row()["state"], "approved");
}

TEST_F(draft_time_test, a_draft_whose_hours_changed_when_it_locked_was_edited_by_staff) {
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);
    auto changed = entry("2026-01-09T22:00:00Z");
    changed.locked = true;
    changed.minutes = 240;
    ASSERT_TRUE(feed(changed, "time").ok);
    EXPECT_EQ(row()["state"], "edited");
    EXPECT_NE(audit_text().find("edited_by_staff"), std::string::npos);
}

TEST_F(draft_time_test, the_weekly_review_email_lists_each_persons_untouched_drafts_once) {
    settings s;
    s.enabled = true;
    s.connector = "time";
    s.time_zone = "America/Denver";
    s.review_after = std::chrono::hours(72);
    work_type_mapping m;
    m.work_type = "1040 Individual Return";
    m.project = "2025 Tax Return";
    m.task = "Tax Preparation";
    m.minutes = 210;
    m.hours = "3.5";
    s.work_types.push_back(m);
    s.review_email = true;  // Fridays at 09:00
    rule_ = std::make_unique<draft_time_rule>(s, "mail");
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-01-05T23:00:00Z")).ok);
    auto weekly = timers_->get("draft_time/review_email");
    ASSERT_TRUE(weekly.ok() && weekly.value);
    EXPECT_EQ(weekly.value->due, at("2026-01-09T16:00:00Z"));  // Friday 09:00 in Denver

    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);
    auto due = timers_->due(at("2026-01-09T00:00:00Z"), 10);
    ASSERT_TRUE(due.ok());
    for (const auto& t : due.value) {
        ASSERT_TRUE(step([&](context& ctx) { return rule_->on_timer(t, ctx); }).ok);
    }
    ASSERT_EQ(row()["state"], "in_review");
    const auto fire = [&] {
        return step([&](context& ctx) { return rule_->on_timer(*weekly.value, ctx); },
                    at("2026-01-09T16:00:00Z"));
    };
    ASSERT_TRUE(fire().ok);
    std::vector<state::action> mails;
    for (auto& a : actions()) {
        if (a.kind == "email.send") {
            mails.push_back(std::move(a));
        }
    }
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].connector, "mail");
    const auto p = json::parse(mails[0].payload);
    EXPECT_EQ(p["to"], "kim@example-cpa.com");
    EXPECT_EQ(p["subject"], "1 drafted time entry to review");
    EXPECT_NE(p["text"].get<std::string>().find("2026-01-05  2025 1040 - Acme (1040 Individual "
                                                "Return), 3h 30m"),
              std::string::npos)
        << p["text"];
    // Next Friday, and a replayed step sends nothing twice.
    auto next = timers_->get("draft_time/review_email");
    ASSERT_TRUE(next.ok() && next.value);
    EXPECT_EQ(next.value->due, at("2026-01-16T16:00:00Z"));
    ASSERT_TRUE(fire().ok);
    std::size_t count = 0;
    for (const auto& a : actions()) {
        count += a.kind == "email.send" ? 1 : 0;
    }
    EXPECT_EQ(count, 1U);
}

TEST_F(draft_time_test, changes_of_other_connectors_entries_are_ignored) {
    auto t = entry("2026-01-05T23:31:00Z");
    t.source.system = "books";
    ASSERT_TRUE(feed(t, "books").ok);
    EXPECT_TRUE(audit_text().empty());
}

TEST_F(draft_time_test, make_needs_an_enabled_connector) {
    settings s;
    s.enabled = true;
    s.connector = "time";
    rule_deps deps;
    std::string error;
    EXPECT_EQ(make(s, deps, &error), nullptr);
    EXPECT_NE(error.find("time"), std::string::npos);
    // A connector whose kind does not draft time entries (a ledger without time) is refused.
    deps.connectors.push_back({"time", "", false, {"invoice.create"}});
    error.clear();
    EXPECT_EQ(make(s, deps, &error), nullptr);
    EXPECT_NE(error.find("time_entry.create"), std::string::npos) << error;
    // Any kind that performs time_entry.create will do (a time tracker, a ledger with time).
    deps.connectors.back().actions = {"invoice.create", "time_entry.create"};
    error.clear();
    EXPECT_NE(make(s, deps, &error), nullptr) << error;
    s.enabled = false;
    EXPECT_EQ(make(s, deps, &error), nullptr);
}

// The daily reconcile re-reads billsync's open drafts from the time system: polling by update
// time never shows a delete, so a draft staff deleted would otherwise stay open forever.
class draft_time_reconcile_test : public draft_time_test {
protected:
    static constexpr std::string_view reconcile = "draft_time/reconcile";

    std::optional<state::timer> reconcile_timer() {
        auto t = timers_->get(reconcile);
        EXPECT_TRUE(t.ok());
        return t.value;
    }

    // One reconcile firing as the pipeline runs it: the rule names the entities to re-read, the
    // re-read copies (`fresh`) are applied and offered to the rule, then the timer fires, in one
    // batch. Returns the targets named.
    std::vector<refresh_target> fire_reconcile(
        util::instant now,
        const std::function<std::optional<mappings::entity>(const refresh_target&)>& fresh = {}) {
        auto t = reconcile_timer();
        EXPECT_TRUE(t);
        if (!t) {
            return {};
        }
        const auto targets = rule_->before_timer(t->name, *store_);
        EXPECT_TRUE(step(
                        [&](context& ctx) {
                            if (auto st = timers_->fire(ctx.b, *t); !st.ok) {
                                return st;
                            }
                            for (const auto& target : targets) {
                                auto e = fresh ? fresh(target) : std::nullopt;
                                if (!e) {
                                    continue;
                                }
                                auto applied = state::apply(*store_, ctx.b, "time", std::move(*e));
                                if (!applied.ok()) {
                                    return applied.st;
                                }
                                if (applied.value) {
                                    if (auto st = rule_->on_change(*applied.value, ctx); !st.ok) {
                                        return st;
                                    }
                                }
                            }
                            return rule_->on_timer(*t, ctx);
                        },
                        now)
                        .ok);
        return targets;
    }

    // A draft row as the rule keeps it, written directly (many drafts without many work items).
    void put_draft(const std::string& wi, const std::string& state, const std::string& entry) {
        state::batch b(*store_);
        state::put_entity(
            b,
            "draft_time",
            wi,
            json{{"work_item", wi}, {"state", state}, {"entry", entry}, {"entry_id", entry}}
                .dump());
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    // The draft of the fixture's work item, created in the time system and seen by billsync.
    void drafted() {
        link_client();
        ASSERT_TRUE(feed(kim(), "time").ok);
        ASSERT_TRUE(feed(item("completed"), "practice").ok);
        ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);
        ASSERT_EQ(row()["state"], "created");
    }
};

TEST_F(draft_time_reconcile_test, a_draft_deleted_by_staff_is_final_off_the_list_and_never_redone) {
    // Daily at 06:00 in the firm's zone by default.
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-01-05T23:00:00Z")).ok);
    ASSERT_TRUE(rule_->owns_timer(reconcile));
    auto t = reconcile_timer();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->due, at("2026-01-06T13:00:00Z"));  // 06:00 in Denver
    drafted();
    EXPECT_EQ(row()["entry"], "time:123456:time_entry:9001");

    // The pass starts: nothing is re-read by the firing that opens it; the next one re-reads
    // the open draft's entry.
    EXPECT_TRUE(fire_reconcile(at("2026-01-06T13:00:00Z")).empty());
    t = reconcile_timer();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->due, at("2026-01-06T13:00:00Z"));
    // Staff deleted the entry: the re-read answers 404, which arrives as a delete.
    const auto targets = fire_reconcile(at("2026-01-06T13:00:00Z"), [&](const auto& target) {
        EXPECT_EQ(target.type, "time_entry");
        mappings::time_entry gone;
        gone.id = target.id;
        gone.source = {"time", "123456", "9001", "", std::nullopt};
        gone.deleted = true;
        return std::optional<mappings::entity>(gone);
    });
    ASSERT_EQ(targets.size(), 1U);
    EXPECT_EQ(targets[0].id, "time:123456:time_entry:9001");

    const auto r = row();
    EXPECT_EQ(r["state"], "deleted");
    EXPECT_NE(r.value("cause", "").find("deleted in time by staff"), std::string::npos) << r;
    EXPECT_EQ(r["deleted_seen_at"], "2026-01-06T13:00:00Z");
    const auto audit = audit_text();
    EXPECT_NE(audit.find("\"decision\":\"entry_deleted\""), std::string::npos) << audit;
    EXPECT_NE(audit.find("deleted in time by staff"), std::string::npos) << audit;
    // Off the review list, for good: its review timer is gone.
    auto review_timer = timers_->get("draft_time/review/karbon:work:W1");
    ASSERT_TRUE(review_timer.ok());
    EXPECT_FALSE(review_timer.value);
    EXPECT_TRUE(rule_->view("review", *store_).body["review"].empty());
    // The pass is over: the next one tomorrow at 06:00; the view says what it found.
    t = reconcile_timer();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->due, at("2026-01-07T13:00:00Z"));
    const auto list = rule_->view("list", *store_);
    ASSERT_EQ(list.status, 200U);
    ASSERT_EQ(list.body["drafts"].size(), 1U);
    EXPECT_EQ(list.body["drafts"][0]["state"], "deleted");
    EXPECT_EQ(list.body["reconcile"]["last_pass"]["checked"], 1) << list.body;
    EXPECT_EQ(list.body["reconcile"]["last_pass"]["deleted"], 1) << list.body;
    EXPECT_EQ(list.body["reconcile"]["last_pass"]["finished_at"], "2026-01-06T13:00:00Z");
    EXPECT_EQ(list.body["reconcile"]["next_at"], "2026-01-07T13:00:00Z");

    // Re-opened and completed again: nothing is drafted twice.
    ASSERT_TRUE(feed(item("in_progress"), "practice").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    EXPECT_EQ(actions().size(), 1U);
    // Tomorrow's pass re-reads nothing: the draft is final.
    EXPECT_TRUE(fire_reconcile(at("2026-01-07T13:00:00Z")).empty());
    EXPECT_EQ(reconcile_timer()->due, at("2026-01-08T13:00:00Z"));
}

TEST_F(draft_time_reconcile_test, an_entry_changed_by_staff_is_marked_edited_by_the_re_read) {
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-01-05T23:00:00Z")).ok);
    drafted();
    (void)fire_reconcile(at("2026-01-06T13:00:00Z"));
    const auto targets = fire_reconcile(at("2026-01-06T13:00:00Z"), [&](const auto&) {
        return std::optional<mappings::entity>(entry("2026-01-06T02:00:00Z"));
    });
    ASSERT_EQ(targets.size(), 1U);
    EXPECT_EQ(row()["state"], "edited");
    const auto list = rule_->view("list", *store_);
    EXPECT_EQ(list.body["reconcile"]["last_pass"]["edited"], 1) << list.body;
    EXPECT_EQ(list.body["reconcile"]["last_pass"]["deleted"], 0) << list.body;
}

TEST_F(draft_time_reconcile_test, a_pass_re_reads_every_open_draft_once_in_paced_chunks) {
    // 60 open drafts, and final ones that are never re-read.
    std::set<std::string> open;
    for (int i = 0; i < 60; ++i) {
        const auto wi = fmt::format("karbon:work:X{:03}", i);
        const auto entry_id = fmt::format("time:123456:time_entry:{}", 5000 + i);
        put_draft(wi, i % 2 == 0 ? "created" : "in_review", entry_id);
        open.insert(entry_id);
    }
    put_draft("karbon:work:Y1", "edited", "time:123456:time_entry:7001");
    put_draft("karbon:work:Y2", "deleted", "time:123456:time_entry:7002");
    put_draft("karbon:work:Y3", "waiting", "");
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-01-05T23:00:00Z")).ok);
    auto now = at("2026-01-06T13:00:00Z");
    EXPECT_TRUE(fire_reconcile(now).empty());  // the pass starts
    std::multiset<std::string> read;
    std::vector<std::size_t> sizes;
    for (int firing = 0; firing < 10; ++firing) {
        auto t = reconcile_timer();
        ASSERT_TRUE(t);
        if (t->due > now + std::chrono::hours(1)) {
            break;  // the pass ended: tomorrow's
        }
        if (firing > 0) {
            EXPECT_EQ(t->due, now + std::chrono::seconds(30));  // paced
        }
        now = t->due;
        const auto targets = fire_reconcile(now);
        sizes.push_back(targets.size());
        for (const auto& x : targets) {
            read.insert(x.id);
        }
    }
    EXPECT_EQ(sizes, (std::vector<std::size_t>{25, 25, 10}));
    EXPECT_EQ(std::set<std::string>(read.begin(), read.end()), open);
    EXPECT_EQ(read.size(), open.size());  // each once
    EXPECT_EQ(reconcile_timer()->due, at("2026-01-07T13:00:00Z"));
    const auto list = rule_->view("list", *store_);
    EXPECT_EQ(list.body["reconcile"]["last_pass"]["checked"], 60) << list.body["reconcile"];
}

TEST_F(draft_time_reconcile_test, reconcile_off_cancels_the_timer) {
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-01-05T23:00:00Z")).ok);
    ASSERT_TRUE(reconcile_timer());
    settings s;
    s.enabled = true;
    s.connector = "time";
    s.reconcile = false;
    rule_ = std::make_unique<draft_time_rule>(s);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-01-05T23:10:00Z")).ok);
    EXPECT_FALSE(reconcile_timer());
}

// Without review_after_h, the firm's weekly review day decides: a draft still untouched at the
// first review moment (review_day at review_hour) after it was created is on the list.
TEST_F(draft_time_test, by_default_untouched_drafts_join_the_review_list_on_the_review_day) {
    settings s;
    s.enabled = true;
    s.connector = "time";
    s.time_zone = "America/Denver";
    work_type_mapping m;
    m.work_type = "1040 Individual Return";
    m.project = "2025 Tax Return";
    m.task = "Tax Preparation";
    m.minutes = 210;
    m.hours = "3.5";
    s.work_types.push_back(m);
    s.review_email = true;  // Fridays at 09:00, like the review list
    rule_ = std::make_unique<draft_time_rule>(s, "mail");
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    // Completed on Monday evening, seen created at once.
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time", at("2026-01-05T23:40:00Z")).ok);
    auto review_timer = timers_->get("draft_time/review/karbon:work:W1");
    ASSERT_TRUE(review_timer.ok() && review_timer.value);
    EXPECT_EQ(review_timer.value->due, at("2026-01-09T16:00:00Z"));  // Friday 09:00 in Denver
    EXPECT_EQ(row()["review_due"], "2026-01-09T16:00:00Z");
    // Thursday: not yet on the list (72 hours have passed, but they no longer decide).
    EXPECT_TRUE(rule_->view("review", *store_).body["review"].empty());

    // Friday 09:00: the weekly email lists it even when it fires before the draft's own timer.
    ASSERT_TRUE(
        step(
            [&](context& ctx) {
                return rule_->on_timer(
                    state::timer{"draft_time/review_email", at("2026-01-09T16:00:00Z"), "{}"}, ctx);
            },
            at("2026-01-09T16:00:00Z"))
            .ok);
    std::size_t mails = 0;
    for (const auto& a : actions()) {
        mails += a.kind == "email.send" ? 1 : 0;
    }
    EXPECT_EQ(mails, 1U);
    ASSERT_TRUE(step([&](context& ctx) { return rule_->on_timer(*review_timer.value, ctx); },
                     at("2026-01-09T16:00:00Z"))
                    .ok);
    EXPECT_EQ(row()["state"], "in_review");

    // A draft created on Friday after 09:00 waits for the next Friday.
    auto w2 = item("completed");
    w2.id = "karbon:work:W2";
    ASSERT_TRUE(feed(w2, "practice", at("2026-01-09T17:00:00Z")).ok);
    auto e2 = entry("2026-01-09T17:01:00Z");
    e2.id = "time:123456:time_entry:9002";
    e2.source.id = "9002";
    e2.external_reference = action_key("draft_time", "karbon:work:W2", 1);
    ASSERT_TRUE(feed(e2, "time", at("2026-01-09T17:05:00Z")).ok);
    auto second = timers_->get("draft_time/review/karbon:work:W2");
    ASSERT_TRUE(second.ok() && second.value);
    EXPECT_EQ(second.value->due, at("2026-01-16T16:00:00Z"));
}

TEST_F(draft_time_test, the_weekly_email_leaves_out_drafts_deleted_by_staff) {
    settings s;
    s.enabled = true;
    s.connector = "time";
    s.time_zone = "America/Denver";
    s.review_after = std::chrono::hours(72);
    work_type_mapping m;
    m.work_type = "1040 Individual Return";
    m.project = "2025 Tax Return";
    m.task = "Tax Preparation";
    m.minutes = 210;
    m.hours = "3.5";
    s.work_types.push_back(m);
    s.review_email = true;
    rule_ = std::make_unique<draft_time_rule>(s, "mail");
    link_client();
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(item("completed"), "practice").ok);
    ASSERT_TRUE(feed(entry("2026-01-05T23:31:00Z"), "time").ok);
    auto due = timers_->due(at("2026-01-09T00:00:00Z"), 10);
    ASSERT_TRUE(due.ok());
    for (const auto& t : due.value) {
        ASSERT_TRUE(step([&](context& ctx) { return rule_->on_timer(t, ctx); }).ok);
    }
    ASSERT_EQ(row()["state"], "in_review");
    auto gone = entry("2026-01-05T23:31:00Z");
    gone.deleted = true;
    ASSERT_TRUE(feed(gone, "time", at("2026-01-09T13:00:00Z")).ok);
    EXPECT_EQ(row()["state"], "deleted");
    ASSERT_TRUE(
        step(
            [&](context& ctx) {
                return rule_->on_timer(
                    state::timer{"draft_time/review_email", at("2026-01-09T16:00:00Z"), "{}"}, ctx);
            },
            at("2026-01-09T16:00:00Z"))
            .ok);
    for (const auto& a : actions()) {
        EXPECT_NE(a.kind, "email.send") << a.payload;
    }
}

// The daily missing-time check: the previous working day's recorded time per staff member.
class draft_time_missing_test : public draft_time_test {
protected:
    void SetUp() override {
        draft_time_test::SetUp();
        settings s;
        s.enabled = true;
        s.connector = "time";
        s.time_zone = "America/Denver";
        s.missing.enabled = true;
        s.missing.expected_minutes = 360;
        s.missing.check_hour = 8;
        s.missing.holidays = {date::sys_days(date::year{2026} / 1 / 19)};  // a Monday
        s.missing.remind = true;
        rule_ = std::make_unique<draft_time_rule>(s, "mail");
    }

    mappings::staff lee() {
        auto s = kim();
        s.id = "time:123456:staff:1782960";
        s.name = "Lee Park";
        s.email = "lee@example-cpa.com";
        s.source.id = "1782960";
        return s;
    }

    mappings::time_entry spent(const mappings::staff& who,
                               std::string id,
                               std::string day,
                               std::int64_t minutes) {
        mappings::time_entry t;
        t.id = "time:123456:time_entry:" + id;
        t.staff_id = who.id;
        t.minutes = minutes;
        t.date = mappings::parse_civil_date(day);
        t.source = {"time", "123456", id, "1", std::nullopt};
        return t;
    }

    state::status start(util::instant now) {
        return step([&](context& ctx) { return rule_->on_start(ctx); }, now);
    }

    std::optional<state::timer> check_timer() {
        auto t = timers_->get(missing_timer);
        EXPECT_TRUE(t.ok());
        return t.value;
    }

    state::status fire(util::instant now) {
        auto t = check_timer();
        EXPECT_TRUE(t);
        return step([&](context& ctx) { return rule_->on_timer(*t, ctx); }, now);
    }
};

TEST_F(draft_time_missing_test, each_working_day_lists_who_recorded_less_and_reminds_them_once) {
    ASSERT_TRUE(feed(kim(), "time").ok);
    ASSERT_TRUE(feed(lee(), "time").ok);
    // Friday 2026-01-16: Kim 6h (4h + 2h), Lee 1h 30m; Thursday's time does not count.
    ASSERT_TRUE(feed(spent(kim(), "1", "2026-01-16", 240), "time").ok);
    ASSERT_TRUE(feed(spent(kim(), "2", "2026-01-16", 120), "time").ok);
    ASSERT_TRUE(feed(spent(lee(), "3", "2026-01-16", 90), "time").ok);
    ASSERT_TRUE(feed(spent(lee(), "4", "2026-01-15", 480), "time").ok);
    auto deleted = spent(lee(), "5", "2026-01-16", 480);
    deleted.deleted = true;
    ASSERT_TRUE(feed(deleted, "time").ok);

    // Friday 17:00 in Denver: the next check is Tuesday 08:00 (Monday 01-19 is a holiday) and
    // covers Friday, the previous working day.
    ASSERT_TRUE(start(at("2026-01-17T00:00:00Z")).ok);
    auto t = check_timer();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->due, at("2026-01-20T15:00:00Z"));
    ASSERT_TRUE(fire(at("2026-01-20T15:00:00Z")).ok);

    auto row = state::get_entity(*store_, "draft_time_missing", "2026-01-16");
    ASSERT_TRUE(row.ok() && row.value);
    const auto r = json::parse(*row.value);
    EXPECT_EQ(r["staff_checked"], 2);
    ASSERT_EQ(r["short"].size(), 1U) << r.dump();
    EXPECT_EQ(r["short"][0]["email"], "lee@example-cpa.com");
    EXPECT_EQ(r["short"][0]["minutes"], 90);
    EXPECT_EQ(r["short"][0]["missing_minutes"], 270);
    const auto a = actions();
    ASSERT_EQ(a.size(), 1U);
    EXPECT_EQ(a[0].connector, "mail");
    EXPECT_EQ(a[0].kind, "email.send");
    const auto p = json::parse(a[0].payload);
    EXPECT_EQ(p["to"], "lee@example-cpa.com");
    EXPECT_NE(p["text"].get<std::string>().find("1h 30m recorded for 2026-01-16, and 6h is "
                                                "expected"),
              std::string::npos)
        << p["text"];
    EXPECT_NE(audit_text().find("1 of 2 staff recorded less than 6h on 2026-01-16"),
              std::string::npos);
    // The next check: Wednesday 08:00, for Tuesday.
    t = check_timer();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->due, at("2026-01-21T15:00:00Z"));
    // The view lists the day.
    const auto v = rule_->view("missing", *store_);
    ASSERT_EQ(v.status, 200U);
    ASSERT_EQ(v.body["days"].size(), 1U);
    EXPECT_EQ(v.body["days"][0]["date"], "2026-01-16");
    std::ostringstream text;
    std::ostringstream err;
    ASSERT_EQ(rule_->cli_view("missing", {}, *store_, cli_output::text, text, err), cli_result::ok);
    EXPECT_NE(text.str().find("2026-01-16  1 of 2 staff under 6h\n"
                              "    Lee Park <lee@example-cpa.com>  1h 30m recorded, 4h 30m "
                              "missing, reminded\n"),
              std::string::npos)
        << text.str();

    // A check replayed for the same day (a restart mid-step) reminds nobody twice.
    ASSERT_TRUE(
        step(
            [&](context& ctx) {
                return rule_->on_timer(
                    state::timer{std::string(missing_timer), at("2026-01-20T15:00:00Z"), "{}"},
                    ctx);
            },
            at("2026-01-20T15:00:00Z"))
            .ok);
    EXPECT_EQ(actions().size(), 1U);
}

TEST_F(draft_time_missing_test, the_calendar_skips_weekends_and_holidays) {
    missing_time_settings m;
    m.holidays = {date::sys_days(date::year{2026} / 12 / 25)};
    const auto day = [](int y, unsigned mo, unsigned d) {
        return date::local_days(date::year{y} / date::month{mo} / date::day{d});
    };
    EXPECT_EQ(previous_working_day(m, day(2026, 1, 19)), day(2026, 1, 16));    // Mon -> Fri
    EXPECT_EQ(previous_working_day(m, day(2026, 12, 28)), day(2026, 12, 24));  // over Christmas
    const auto* tz = date::locate_zone("America/Denver");
    // Before 08:00 on a working day: today; after: the next working day.
    EXPECT_EQ(next_check(m, tz, at("2026-01-16T14:00:00Z")), at("2026-01-16T15:00:00Z"));
    EXPECT_EQ(next_check(m, tz, at("2026-01-16T15:00:00Z")), at("2026-01-19T15:00:00Z"));
    EXPECT_EQ(hours_text(0), "0m");
    EXPECT_EQ(hours_text(390), "6h 30m");
    EXPECT_EQ(hours_text(120), "2h");
}

TEST_F(draft_time_missing_test, reminders_need_an_email_connector_and_off_cancels_the_check) {
    settings s;
    s.enabled = true;
    s.connector = "time";
    s.missing.enabled = true;
    s.missing.remind = true;
    rule_deps deps;
    deps.connectors.push_back({"time", "", false, {"time_entry.create"}});
    std::string error;
    EXPECT_EQ(make(s, deps, &error), nullptr);
    EXPECT_NE(error.find("no email connector"), std::string::npos) << error;
    deps.connectors.push_back({"mail", "email", false, {}});
    EXPECT_NE(make(s, deps, &error), nullptr);

    ASSERT_TRUE(start(at("2026-01-16T14:00:00Z")).ok);
    ASSERT_TRUE(check_timer());
    settings off;
    off.enabled = true;
    off.connector = "time";
    rule_ = std::make_unique<draft_time_rule>(off);
    ASSERT_TRUE(start(at("2026-01-16T14:30:00Z")).ok);
    EXPECT_FALSE(check_timer());
}

}  // namespace
}  // namespace billsync::workflows::draft_time
