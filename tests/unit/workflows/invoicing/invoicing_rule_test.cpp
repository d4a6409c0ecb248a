// The invoicing rule in committed steps: milestone, retainer and time-and-materials drafts billed
// at most once; approval routing (auto-approval, approvers, two approvers, segregation of
// duties, reasons); exceptions that block and are resolved; the SLA on the firm calendar.

#include "workflows/invoicing/invoicing_rule.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "state/apply.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "util/metrics.hpp"

namespace billsync::workflows::invoicing {
namespace {

using json = nlohmann::json;
using testing_support::at;

class invoicing_test : public testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        s_.enabled = true;
        s_.ledger = "books";
        s_.email_connector = "mail";
        s_.time_zone = "America/Denver";
        s_.approval.auto_approve_below = 250000;
        s_.approval.second_approver_from = 2500000;
        s_.approval.approvers = {"pat@firm.example"};
        s_.approval.escalate_to = {"max@firm.example"};
        s_.approval.always_review = {"write_down", "unusual_amount"};
        s_.approval.reasons = {"scope change", "courtesy"};
        engagement fixed;
        fixed.id = "acme-1040";
        fixed.client = "books:58";
        fixed.work_type = "1040 Individual Return";
        fixed.billing = model::fixed_fee;
        fixed.currency = "USD";
        fixed.ledger = "books";
        fixed.fee = 240000;
        fixed.item = "7";
        fixed.milestones = {{"Return Filed", 5000, std::nullopt, false},
                            {"Delivered", 0, std::nullopt, true}};
        s_.engagements.push_back(fixed);
        rebuild();
    }

    void rebuild() { rule_ = std::make_unique<invoicing_rule>(s_); }

    engagement& eng(std::string_view id) {
        for (auto& e : s_.engagements) {
            if (e.id == id) {
                return e;
            }
        }
        s_.engagements.emplace_back();
        s_.engagements.back().id = std::string(id);
        return s_.engagements.back();
    }

    // Acme's bookkeeping retainer: 1,500.00 a month, 10 h included, 175.00/h overage, 200.00
    // tolerance.
    engagement& acme_retainer() {
        auto& r = eng("acme-retainer");
        r.client = "books:58";
        r.work_type = "Monthly Bookkeeping";
        r.billing = model::retainer;
        r.currency = "USD";
        r.ledger = "books";
        r.retainer = 150000;
        r.included_minutes = 600;
        r.overage_rate = 17500;
        r.tolerance = 20000;
        return r;
    }

    state::status feed(mappings::entity e, std::string source, util::instant now) {
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

    void client(std::string id = "client:acme", std::string remote = "58") {
        mappings::client c;
        c.id = std::move(id);
        c.display_name = "Acme";
        c.source = {"books", "", remote, "1", std::nullopt};
        ASSERT_TRUE(feed(c, "books", at("2026-11-30T16:00:00Z")).ok);
    }

    mappings::work_item item(std::string stage, std::string status = "in_progress") {
        mappings::work_item w;
        w.id = "practice:W1";
        w.client_id = "client:acme";
        w.title = "2025 1040 - Acme";
        w.work_type = "1040 Individual Return";
        w.status = std::move(status);
        w.stage = std::move(stage);
        w.source = {"practice",
                    "",
                    "W1",
                    stage_version_++ == 0 ? "1" : std::to_string(stage_version_),
                    std::nullopt};
        return w;
    }

    void staff(std::string id, std::string email, std::string role = "staff") {
        mappings::staff s;
        s.id = std::move(id);
        s.email = std::move(email);
        s.role = std::move(role);
        s.source = {"time", "", s.id, "1", std::nullopt};
        ASSERT_TRUE(feed(s, "time", at("2026-11-30T16:00:00Z")).ok);
    }

    void entry(std::string id,
               std::string staff_id,
               std::string date,
               std::int64_t minutes,
               std::string service = "Advisory",
               bool locked = true,
               bool billed = false,
               std::string version = "1") {
        mappings::time_entry t;
        t.id = std::move(id);
        t.staff_id = std::move(staff_id);
        t.client_id = "client:acme";
        t.service = std::move(service);
        t.date = mappings::parse_civil_date(date);
        t.minutes = minutes;
        t.locked = locked;
        t.billed = billed;
        t.source = {"time", "", t.id, std::move(version), std::nullopt};
        ASSERT_TRUE(feed(t, "time", at("2026-11-30T16:00:00Z")).ok);
    }

    std::vector<json> drafts() {
        std::vector<json> out;
        EXPECT_TRUE(state::for_each_entity(*store_,
                                           "invoicing_draft",
                                           [&](std::string_view, std::string_view v) {
                                               out.push_back(json::parse(v));
                                               return true;
                                           })
                        .ok);
        return out;
    }

    std::vector<state::action> of_kind(std::string_view kind) {
        std::vector<state::action> out;
        for (auto& a : actions()) {
            if (a.kind == kind) {
                out.push_back(a);
            }
        }
        return out;
    }

    operator_answer command(std::string verb,
                            json args,
                            util::instant now = at("2026-12-01T17:00:00Z")) {
        operator_answer out;
        EXPECT_TRUE(step(
                        [&](context& ctx) {
                            out = rule_->command(verb, args, ctx);
                            return state::status::success();
                        },
                        now)
                        .ok);
        return out;
    }

    state::status fire(std::string name, util::instant now) {
        auto t = timers_->get(name);
        EXPECT_TRUE(t.ok());
        if (!t.value) {
            return state::status::failure("no timer " + name);
        }
        return step(
            [&](context& ctx) {
                if (auto st = timers_->fire(ctx.b, *t.value); !st.ok) {
                    return st;
                }
                return rule_->on_timer(*t.value, ctx);
            },
            now);
    }

    settings s_;
    std::unique_ptr<invoicing_rule> rule_;
    int stage_version_ = 0;
};

TEST_F(invoicing_test, a_milestone_is_drafted_once_and_auto_approved_under_the_threshold) {
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    // Duplicate delivery, then the stage re-entered after leaving it.
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:01:00Z")).ok);
    ASSERT_TRUE(feed(item("In Review"), "practice", at("2026-12-02T16:00:00Z")).ok);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-03T16:00:00Z")).ok);
    const auto ds = drafts();
    ASSERT_EQ(ds.size(), 1U);
    EXPECT_EQ(ds[0]["state"], "approved");
    EXPECT_EQ(ds[0]["total_minor"], 120000);
    const auto created = of_kind("invoice.create");
    ASSERT_EQ(created.size(), 1U);
    EXPECT_EQ(created[0].connector, "books");
    const auto p = json::parse(created[0].payload);
    EXPECT_EQ(p["client_ref"], "58");
    EXPECT_EQ(p["currency"], "USD");
    EXPECT_EQ(p["issue_date"], "2026-12-01");
    EXPECT_EQ(p["due_date"], "2026-12-31");
    EXPECT_EQ(p["lines"][0]["amount_minor"], 120000);
    EXPECT_EQ(p["lines"][0]["item_ref"], "7");
    EXPECT_EQ(p["key"], created[0].id);
    EXPECT_NE(audit_text().find("already drafted once"), std::string::npos);
    // The remainder at "Delivered": the fee less what the first milestone billed.
    ASSERT_TRUE(feed(item("Delivered"), "practice", at("2026-12-10T16:00:00Z")).ok);
    ASSERT_EQ(drafts().size(), 2U);
    ASSERT_EQ(of_kind("invoice.create").size(), 2U);
    for (const auto& d : drafts()) {
        EXPECT_EQ(d["total_minor"], 120000);
    }
}

TEST_F(invoicing_test, an_engagement_that_says_so_sends_the_invoice_once_the_ledger_created_it) {
    eng("acme-1040").send_to_client = true;
    eng("acme-1040").billing_contact = "ap@acme.example";
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto d = drafts().at(0);
    const auto id = d["id"].get<std::string>();
    const auto create = of_kind("invoice.create").at(0);
    // Not created yet: the check comes back later; nothing is sent.
    ASSERT_TRUE(fire("invoicing/send/" + id, at("2026-12-01T16:01:00Z")).ok);
    EXPECT_TRUE(of_kind("invoice.send").empty());
    ASSERT_TRUE(outbox_->mark_in_flight(create.id, at("2026-12-01T16:02:00Z")).ok);
    {
        state::batch b(*store_);
        ASSERT_TRUE(outbox_->complete(b, create.id, "Invoice/130 #1041").ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    ASSERT_TRUE(fire("invoicing/send/" + id, at("2026-12-01T16:06:00Z")).ok);
    const auto sends = of_kind("invoice.send");
    ASSERT_EQ(sends.size(), 1U);
    EXPECT_EQ(sends[0].connector, "books");
    EXPECT_EQ(json::parse(sends[0].payload)["id"], "130");
    EXPECT_EQ(json::parse(sends[0].payload)["send_to"], "ap@acme.example");
    EXPECT_FALSE(timers_->get("invoicing/send/" + id).value.has_value());
    EXPECT_EQ(rule_->view("show/" + id, *store_).body["state"], "created");
}

TEST_F(invoicing_test,
       above_the_threshold_the_partner_approves_and_only_then_the_ledger_action_exists) {
    eng("acme-1040").fee = 800000;
    eng("acme-1040").partner = "Lee@Firm.example";
    eng("acme-1040").terms_by = "terms@firm.example";
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "pending_approval");
    EXPECT_TRUE(of_kind("invoice.create").empty());
    // The approver hears of it by email, with the why.
    const auto mails = of_kind("email.send");
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(json::parse(mails[0].payload)["to"], "lee@firm.example");
    EXPECT_NE(json::parse(mails[0].payload)["text"].get<std::string>().find("50.00 %"),
              std::string::npos);
    const auto id = d["id"].get<std::string>();
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "pat@firm.example"}}).error,
              "not_an_approver");
    EXPECT_EQ(command("approve", {{"id", id}}).status, 400U);
    EXPECT_EQ(command("approve", {{"id", "d-nope"}, {"by", "lee@firm.example"}}).status, 404U);
    EXPECT_TRUE(of_kind("invoice.create").empty());
    const auto ok = command("approve", {{"id", id}, {"by", "lee@firm.example"}});
    EXPECT_EQ(ok.status, 200U) << ok.message;
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_EQ(of_kind("invoice.create").size(), 1U);
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "lee@firm.example"}}).error, "not_pending");
    EXPECT_NE(audit_text().find("\"decision\":\"approved\""), std::string::npos);
}

TEST_F(invoicing_test, the_person_who_changed_the_terms_cannot_approve_and_big_drafts_need_two) {
    eng("acme-1040").fee = 6000000;
    eng("acme-1040").partner = "";
    eng("acme-1040").terms_by = "pat@firm.example";
    s_.approval.approvers = {"pat@firm.example", "lee@firm.example", "kim@firm.example"};
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    auto d = drafts().at(0);
    EXPECT_EQ(d["required_approvals"], 2);
    const auto id = d["id"].get<std::string>();
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "pat@firm.example"}}).error,
              "segregation_of_duties");
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "lee@firm.example"}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "pending_approval");
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "lee@firm.example"}}).error,
              "already_approved");
    EXPECT_TRUE(of_kind("invoice.create").empty());
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "kim@firm.example"}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_EQ(of_kind("invoice.create").size(), 1U);
}

TEST_F(invoicing_test, rejections_and_write_downs_need_a_reason_from_the_taxonomy) {
    eng("acme-1040").fee = 800000;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(command("reject", {{"id", id}, {"by", "pat@firm.example"}}).error, "reason_required");
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "pat@firm.example"}, {"write_down", "500.00"}})
                  .error,
              "reason_required");
    EXPECT_EQ(
        command(
            "approve",
            {{"id", id}, {"by", "pat@firm.example"}, {"write_down", "500.00"}, {"reason", "typo"}})
            .error,
        "reason_required");
    const auto ok = command(
        "approve",
        {{"id", id}, {"by", "pat@firm.example"}, {"write_down", "500.00"}, {"reason", "Courtesy"}});
    ASSERT_EQ(ok.status, 200U) << ok.message;
    const auto d = drafts().at(0);
    EXPECT_EQ(d["total_minor"], 350000);
    const auto p = json::parse(of_kind("invoice.create").at(0).payload);
    ASSERT_EQ(p["lines"].size(), 2U);
    EXPECT_EQ(p["lines"][1]["amount_minor"], -50000);
}

TEST_F(invoicing_test, a_rejected_draft_is_never_created_and_its_milestone_stays_billed) {
    eng("acme-1040").fee = 800000;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(
        command("reject", {{"id", id}, {"by", "pat@firm.example"}, {"reason", "scope change"}})
            .status,
        200U);
    EXPECT_EQ(drafts().at(0)["state"], "rejected");
    ASSERT_TRUE(feed(item("In Review"), "practice", at("2026-12-02T16:00:00Z")).ok);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-03T16:00:00Z")).ok);
    EXPECT_EQ(drafts().size(), 1U);
    EXPECT_TRUE(of_kind("invoice.create").empty());
}

TEST_F(invoicing_test, a_rejected_milestone_is_redrafted_from_the_current_book_and_approved_again) {
    eng("acme-1040").fee = 800000;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto old = drafts().at(0)["id"].get<std::string>();
    // Only a rejected draft is redrafted: a pending one is refused and nothing changes.
    auto refused = command("redraft", {{"id", old}, {"by", "pat@firm.example"}});
    EXPECT_EQ(refused.status, 409U);
    EXPECT_EQ(refused.error, "not_rejected");
    EXPECT_EQ(drafts().size(), 1U);
    EXPECT_EQ(
        command("reject", {{"id", old}, {"by", "pat@firm.example"}, {"reason", "scope change"}})
            .status,
        200U);
    // The partner corrects the fee in the book and asks for the milestone again.
    eng("acme-1040").fee = 600000;
    rebuild();
    const auto again =
        command("redraft", {{"id", old}, {"by", "pat@firm.example"}, {"reason", "fee corrected"}});
    ASSERT_EQ(again.status, 200U) << again.message;
    const auto fresh = again.body["draft"].get<std::string>();
    EXPECT_NE(fresh, old);
    json before, after;
    for (const auto& d : drafts()) {
        (d["id"] == old ? before : after) = d;
    }
    ASSERT_EQ(drafts().size(), 2U);
    EXPECT_EQ(before["state"], "rejected");  // stays rejected, and says what replaced it
    EXPECT_EQ(before["redrafted_as"], fresh);
    EXPECT_EQ(after["id"], fresh);
    EXPECT_EQ(after["redraft_of"], old);
    EXPECT_EQ(after["total_minor"], 300000);  // 50 % of the corrected 6,000.00
    EXPECT_EQ(after["state"], "pending_approval");
    EXPECT_NE(after["why"]["trigger"].get<std::string>().find("redraft of the rejected draft"),
              std::string::npos);
    EXPECT_TRUE(of_kind("invoice.create").empty());  // through approval routing again
    EXPECT_NE(audit_text().find("redrafted"), std::string::npos);
    // Once only: the rejected draft cannot be redrafted twice, and the stage re-entered finds the
    // milestone drafted.
    refused = command("redraft", {{"id", old}, {"by", "pat@firm.example"}});
    EXPECT_EQ(refused.status, 409U);
    EXPECT_EQ(refused.error, "already_redrafted");
    ASSERT_TRUE(feed(item("In Review"), "practice", at("2026-12-02T16:00:00Z")).ok);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-03T16:00:00Z")).ok);
    EXPECT_EQ(drafts().size(), 2U);
    ASSERT_EQ(command("approve", {{"id", fresh}, {"by", "pat@firm.example"}}).status, 200U);
    const auto created = of_kind("invoice.create");
    ASSERT_EQ(created.size(), 1U);
    EXPECT_EQ(json::parse(created[0].payload)["lines"][0]["amount_minor"], 300000);
    refused = command("redraft", {{"id", fresh}, {"by", "pat@firm.example"}});
    EXPECT_EQ(refused.error, "not_rejected");
    EXPECT_EQ(command("redraft", {{"id", "d-nope"}}).status, 404U);
    EXPECT_EQ(drafts().size(), 2U);
}

TEST_F(invoicing_test, a_rejected_tm_draft_is_redrafted_from_exactly_its_entries_still_unbilled) {
    auto& tm = eng("acme-advisory");
    tm.client = "books:58";
    tm.work_type = "Advisory";
    tm.billing = model::time_and_materials;
    tm.currency = "USD";
    tm.ledger = "books";
    tm.rates.default_rate = 18000;
    tm.every = schedule::monthly;
    s_.approval.auto_approve_below = 0;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 60);
    entry("t2", "staff:kim", "2026-11-04", 30);
    entry("t3", "staff:kim", "2026-11-05", 45);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2026-12-01T13:00:05Z")).ok);
    const auto old = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(drafts().at(0)["total_minor"], 40500);  // 135 min at 180.00
    // Recorded after the run: not on the rejected draft, so not on its redraft either.
    entry("t4", "staff:kim", "2026-11-28", 60);
    ASSERT_EQ(
        command("reject", {{"id", old}, {"by", "pat@firm.example"}, {"reason", "courtesy"}}).status,
        200U);
    // The rejection gives the draft's time back to the unbilled pool.
    std::set<std::string> unbilled;
    ASSERT_TRUE(state::for_each_entity(*store_,
                                       "invoicing_time_at",
                                       [&](std::string_view id, std::string_view) {
                                           unbilled.emplace(id);
                                           return true;
                                       })
                    .ok);
    EXPECT_EQ(unbilled, (std::set<std::string>{"t1", "t2", "t3", "t4"}));
    // t2 is invoiced in the time system meanwhile; the rate is corrected in the book.
    entry("t2", "staff:kim", "2026-11-04", 30, "Advisory", true, true, "2");
    eng("acme-advisory").rates.default_rate = 20000;
    rebuild();
    const auto again =
        command("redraft", {{"id", old}, {"by", "pat@firm.example"}, {"reason", "rate corrected"}});
    ASSERT_EQ(again.status, 200U) << again.message;
    const auto fresh = again.body["draft"].get<std::string>();
    json before, after;
    for (const auto& d : drafts()) {
        (d["id"] == old ? before : after) = d;
    }
    ASSERT_EQ(drafts().size(), 2U);
    EXPECT_EQ(before["state"], "rejected");
    EXPECT_EQ(before["redrafted_as"], fresh);
    EXPECT_EQ(after["redraft_of"], old);
    EXPECT_EQ(after["state"], "pending_approval");
    EXPECT_EQ(after["period"], before["period"]);
    EXPECT_EQ(after["total_minor"], 35000);  // t1 + t3: 105 min at the corrected 200.00
    ASSERT_EQ(after["lines"].size(), 1U);
    EXPECT_EQ(after["lines"][0]["entries"], json::array({"t1", "t3"}));
    ASSERT_EQ(after["why"]["left_out"].size(), 1U);
    EXPECT_EQ(after["why"]["left_out"][0]["entry"], "t2");
    EXPECT_EQ(after["why"]["left_out"][0]["cause"], "invoiced in its time system");
    const auto why = after["why"]["trigger"].get<std::string>();
    EXPECT_NE(why.find("redraft of the rejected draft " + old), std::string::npos) << why;
    EXPECT_NE(why.find("monthly time and materials run 2026-12"), std::string::npos) << why;
    EXPECT_NE(why.find("t2 (invoiced in its time system)"), std::string::npos) << why;
    // Once only: a second redraft of the rejected draft is refused and changes nothing.
    const auto refused = command("redraft", {{"id", old}, {"by", "pat@firm.example"}});
    EXPECT_EQ(refused.status, 409U);
    EXPECT_EQ(refused.error, "already_redrafted");
    EXPECT_EQ(drafts().size(), 2U);
    // The next run bills t4 alone: t1 and t3 are on the redraft, t2 was invoiced elsewhere.
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2027-01-01T13:00:05Z")).ok);
    ASSERT_EQ(drafts().size(), 3U);
    for (const auto& d : drafts()) {
        if (d["id"] != old && d["id"] != fresh) {
            EXPECT_EQ(d["lines"][0]["entries"], json::array({"t4"}));
        }
    }
    ASSERT_EQ(command("approve", {{"id", fresh}, {"by", "pat@firm.example"}}).status, 200U);
    const auto created = of_kind("invoice.create");
    ASSERT_EQ(created.size(), 1U);
    EXPECT_EQ(json::parse(created[0].payload)["lines"][0]["amount_minor"], 35000);
}

TEST_F(invoicing_test, a_tm_redraft_of_time_a_later_run_billed_is_refused_and_changes_nothing) {
    auto& tm = eng("acme-advisory");
    tm.client = "books:58";
    tm.work_type = "Advisory";
    tm.billing = model::time_and_materials;
    tm.currency = "USD";
    tm.ledger = "books";
    tm.rates.default_rate = 18000;
    tm.every = schedule::monthly;
    s_.approval.auto_approve_below = 0;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 60);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2026-12-01T13:00:05Z")).ok);
    const auto old = drafts().at(0)["id"].get<std::string>();
    ASSERT_EQ(
        command("reject", {{"id", old}, {"by", "pat@firm.example"}, {"reason", "courtesy"}}).status,
        200U);
    // Not redrafted: the next run takes the time back by itself.
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2027-01-01T13:00:05Z")).ok);
    ASSERT_EQ(drafts().size(), 2U);
    std::string later;
    for (const auto& d : drafts()) {
        if (d["id"] != old) {
            later = d["id"].get<std::string>();
            EXPECT_EQ(d["lines"][0]["entries"], json::array({"t1"}));
        }
    }
    const auto audit_before = audit_text();
    const auto refused = command("redraft", {{"id", old}, {"by", "pat@firm.example"}});
    EXPECT_EQ(refused.status, 409U);
    EXPECT_EQ(refused.error, "nothing_to_redraft");
    EXPECT_NE(refused.message.find("t1 (billed on draft " + later + ")"), std::string::npos)
        << refused.message;
    EXPECT_EQ(drafts().size(), 2U);
    for (const auto& d : drafts()) {
        EXPECT_FALSE(d.contains("redrafted_as"));
    }
    EXPECT_EQ(audit_text(), audit_before);
    // An engagement that no longer bills time is refused too.
    eng("acme-advisory").billing = model::fixed_fee;
    rebuild();
    EXPECT_EQ(command("redraft", {{"id", old}, {"by", "pat@firm.example"}}).error,
              "no_time_billing");
    EXPECT_EQ(drafts().size(), 2U);
}

TEST_F(invoicing_test, a_hybrid_tm_redraft_keeps_to_the_scope_and_cap_of_the_book_now) {
    auto& h = eng("acme-cfo");
    h.client = "books:58";
    h.work_type = "Fractional CFO";
    h.billing = model::hybrid;
    h.currency = "USD";
    h.ledger = "books";
    h.retainer = 100000;
    h.included_minutes = 600;
    h.rates.default_rate = 20000;
    h.out_of_scope_services = {"Audit Support", "Tax Research"};
    h.every = schedule::monthly;
    s_.approval.auto_approve_below = 0;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    entry("a1", "staff:kim", "2026-11-03", 60, "Audit Support");
    entry("r1", "staff:kim", "2026-11-04", 30, "Tax Research");
    entry("b1", "staff:kim", "2026-11-05", 120, "Bookkeeping");  // the retainer's scope
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2026-12-01T13:00:05Z")).ok);
    ASSERT_EQ(drafts().size(), 1U);
    const auto old = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(drafts().at(0)["total_minor"], 30000);  // a1 + r1: 90 min at 200.00
    ASSERT_EQ(
        command("reject", {{"id", old}, {"by", "pat@firm.example"}, {"reason", "scope change"}})
            .status,
        200U);
    // The book now counts Tax Research against the retainer, and caps the T&M at 150.00.
    eng("acme-cfo").out_of_scope_services = {"Audit Support"};
    eng("acme-cfo").cap = 15000;
    rebuild();
    const auto again = command("redraft", {{"id", old}, {"by", "pat@firm.example"}});
    ASSERT_EQ(again.status, 200U) << again.message;
    json after;
    for (const auto& d : drafts()) {
        if (d["id"] == again.body["draft"]) {
            after = d;
        }
    }
    ASSERT_TRUE(after.is_object());
    ASSERT_EQ(after["lines"].size(), 2U);
    EXPECT_EQ(after["lines"][0]["entries"], json::array({"a1"}));
    EXPECT_EQ(after["lines"][0]["amount_minor"], 20000);
    EXPECT_EQ(after["lines"][1]["kind"], "write_down");
    EXPECT_EQ(after["lines"][1]["amount_minor"], -5000);
    EXPECT_EQ(after["total_minor"], 15000);
    EXPECT_NE(after["flags"].dump().find("write_down"), std::string::npos);
    ASSERT_EQ(after["why"]["left_out"].size(), 1U);
    EXPECT_EQ(after["why"]["left_out"][0]["entry"], "r1");
}

TEST_F(invoicing_test, a_rejected_retainer_is_redrafted_for_its_period_with_the_overage_now) {
    acme_retainer();
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 400);
    entry("t2", "staff:kim", "2026-11-20", 290);
    entry("t3", "staff:kim", "2026-11-21", 60);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/retainer", at("2026-12-01T13:00:05Z")).ok);
    const auto old = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(drafts().at(0)["total_minor"], 150000 + 43750);  // 150 min over at 175.00
    ASSERT_EQ(command("reject",
                      {{"id", old}, {"by", "pat@firm.example"}, {"reason", "scope change"}},
                      at("2026-12-02T17:00:00Z"))
                  .status,
              200U);
    // Meanwhile: t3 is invoiced in the time system, t5 of November is approved late, and the
    // book's retainer and overage rate change.
    entry("t3", "staff:kim", "2026-11-21", 60, "Advisory", true, true, "2");
    entry("t5", "staff:kim", "2026-11-25", 30);
    // An engagement the book no longer bills a retainer for is refused, unchanged.
    eng("acme-retainer").billing = model::time_and_materials;
    rebuild();
    EXPECT_EQ(command("redraft", {{"id", old}, {"by", "pat@firm.example"}}).error, "no_retainer");
    EXPECT_EQ(drafts().size(), 1U);
    eng("acme-retainer").billing = model::retainer;
    eng("acme-retainer").retainer = 160000;
    eng("acme-retainer").overage_rate = 20000;
    rebuild();
    const auto again = command("redraft",
                               {{"id", old}, {"by", "pat@firm.example"}, {"reason", "new terms"}},
                               at("2026-12-03T17:00:00Z"));
    ASSERT_EQ(again.status, 200U) << again.message;
    const auto fresh = again.body["draft"].get<std::string>();
    json after;
    for (const auto& d : drafts()) {
        if (d["id"] == fresh) {
            after = d;
        }
    }
    ASSERT_TRUE(after.is_object());
    EXPECT_EQ(after["period"], "2026-12");  // the same period
    EXPECT_EQ(after["redraft_of"], old);
    // 400 + 290 + 30 = 720 min: 120 min over the 600 included at 200.00.
    EXPECT_EQ(after["total_minor"], 160000 + 40000);
    ASSERT_EQ(after["lines"].size(), 2U);
    EXPECT_EQ(after["lines"][0]["amount_minor"], 160000);
    EXPECT_EQ(after["lines"][1]["kind"], "overage");
    EXPECT_EQ(after["lines"][1]["entries"], json::array({"t1", "t2", "t5"}));
    EXPECT_EQ(after["state"], "pending_approval");  // overage above the tolerance
    ASSERT_EQ(after["why"]["left_out"].size(), 1U);
    EXPECT_EQ(after["why"]["left_out"][0]["entry"], "t3");
    // The period still bills once: a replayed run finds it drafted, a second redraft is refused.
    ASSERT_TRUE(step(
                    [&](context& ctx) {
                        state::timer replay{"invoicing/retainer", at("2026-12-01T13:00:00Z"), "{}"};
                        return rule_->on_timer(replay, ctx);
                    },
                    at("2026-12-03T18:00:00Z"))
                    .ok);
    EXPECT_EQ(drafts().size(), 2U);
    EXPECT_EQ(command("redraft", {{"id", old}, {"by", "pat@firm.example"}}).error,
              "already_redrafted");
    EXPECT_EQ(command("redraft", {{"id", fresh}, {"by", "pat@firm.example"}}).error,
              "not_rejected");
    // The redraft rejected in turn is redrafted once more, as the period's one live draft.
    ASSERT_EQ(
        command("reject", {{"id", fresh}, {"by", "pat@firm.example"}, {"reason", "scope change"}})
            .status,
        200U);
    const auto third = command("redraft", {{"id", fresh}, {"by", "pat@firm.example"}});
    ASSERT_EQ(third.status, 200U) << third.message;
    EXPECT_EQ(drafts().size(), 3U);
    const auto last = third.body["draft"].get<std::string>();
    for (const auto& d : drafts()) {
        if (d["id"] == last) {
            EXPECT_EQ(d["total_minor"], 160000 + 40000);
            EXPECT_EQ(d["redraft_round"], 2);
        }
    }
    ASSERT_EQ(command("approve", {{"id", last}, {"by", "pat@firm.example"}}).status, 200U);
    EXPECT_EQ(of_kind("invoice.create").size(), 1U);
}

TEST_F(invoicing_test, a_missing_po_blocks_the_draft_until_resolved_with_one) {
    eng("acme-1040").po_required = true;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "blocked");
    EXPECT_EQ(d["exceptions"][0]["type"], "missing_po");
    const auto view = rule_->view("exceptions", *store_);
    ASSERT_EQ(view.body["exceptions"].size(), 1U);
    EXPECT_EQ(view.body["exceptions"][0]["owner"], "billing coordinator");
    EXPECT_TRUE(of_kind("invoice.create").empty());
    const auto id = d["id"].get<std::string>();
    EXPECT_EQ(command("resolve", {{"id", id}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "blocked");
    {
        util::metrics_registry m;
        invoicing_rule::collect_into(m, *store_);
        const auto text = m.render();
        EXPECT_NE(text.find("billsync_invoicing_exceptions{type=\"missing_po\"} 1"),
                  std::string::npos)
            << text;
        EXPECT_NE(
            text.find("billsync_invoicing_exception_oldest_timestamp_seconds{type=\"missing_po\"} "
                      "1796140800"),
            std::string::npos)
            << text;
    }
    EXPECT_EQ(command("resolve", {{"id", id}, {"po", "PO-4471"}}).status, 200U);
    {
        util::metrics_registry m;
        invoicing_rule::collect_into(m, *store_);
        EXPECT_NE(m.render().find("billsync_invoicing_exceptions{type=\"missing_po\"} 0"),
                  std::string::npos);
    }
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    const auto p = json::parse(of_kind("invoice.create").at(0).payload);
    EXPECT_EQ(p["po_number"], "PO-4471");
    EXPECT_TRUE(rule_->view("exceptions", *store_).body["exceptions"].empty());
    // The PO given once is the engagement's from then on: the next milestone is not blocked.
    ASSERT_TRUE(feed(item("Delivered"), "practice", at("2026-12-05T16:00:00Z")).ok);
    for (const auto& x : drafts()) {
        EXPECT_EQ(x["state"], "approved");
        EXPECT_EQ(x["po_number"], "PO-4471");
    }
}

TEST_F(invoicing_test, missing_tax_details_and_missing_time_block_when_the_firm_asks_for_them) {
    s_.require_tax_code = true;
    s_.milestone_needs_time = true;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "blocked");
    std::set<std::string> types;
    for (const auto& x : d["exceptions"]) {
        types.insert(x["type"].get<std::string>());
    }
    EXPECT_EQ(types, (std::set<std::string>{"missing_tax", "missing_time"}));
    const auto id = d["id"].get<std::string>();
    // Time arrives; the tax code is still missing.
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-20", 120);
    EXPECT_EQ(command("resolve", {{"id", id}}).status, 200U);
    d = drafts().at(0);
    ASSERT_EQ(d["exceptions"].size(), 1U);
    EXPECT_EQ(d["exceptions"][0]["type"], "missing_tax");
    eng("acme-1040").tax_code = "TAX";
    rebuild();
    EXPECT_EQ(command("resolve", {{"id", id}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_EQ(json::parse(of_kind("invoice.create").at(0).payload)["lines"][0]["tax_code"], "TAX");
}

TEST_F(invoicing_test, a_partner_may_bill_a_milestone_without_recorded_time_with_a_reason) {
    s_.milestone_needs_time = true;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(drafts().at(0)["exceptions"][0]["type"], "missing_time");
    EXPECT_EQ(command("resolve",
                      {{"id", id}, {"by", "pat@firm.example"}, {"reason", "time kept on paper"}})
                  .status,
              200U);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
}

// ---- check_item_prices ---------------------------------------------------------------------

class item_prices_test : public invoicing_test {
protected:
    void SetUp() override {
        invoicing_test::SetUp();
        s_.check_item_prices = true;
        rebuild();
        client();
    }

    // The ledger's item "7" as "books" last synced it.
    void ledger_item(std::optional<std::int64_t> price,
                     std::string version = "1",
                     std::string code = "7",
                     std::string system = "books") {
        mappings::ledger_item i;
        i.id = system + ":ledger_item:" + code;
        i.code = code;
        i.name = "Tax preparation";
        if (price) {
            i.unit_price = mappings::money{*price, "USD"};
            i.unit_price_text = mappings::format_decimal(*price, 2);
        }
        i.source = {system, "", code, std::move(version), std::nullopt};
        ASSERT_TRUE(feed(i, system, at("2026-11-30T16:00:00Z")).ok);
    }

    std::string cause_of(const json& d) {
        for (const auto& x : d["exceptions"]) {
            if (x["type"] == "pricing_mismatch") {
                return x["cause"].get<std::string>();
            }
        }
        return {};
    }
};

TEST_F(item_prices_test, a_milestone_whose_fee_differs_from_the_item_price_is_blocked) {
    ledger_item(250000);  // the item sells at 2,500.00; the fee is 2,400.00
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "blocked");
    const auto cause = cause_of(d);
    EXPECT_NE(cause.find("item 'Tax preparation' (7) in books sells at 2,500.00"),
              std::string::npos)
        << cause;
    EXPECT_NE(cause.find("line 1 (1040 Individual Return: Return Filed"), std::string::npos)
        << cause;
    EXPECT_NE(cause.find("priced 2,400.00 USD per the terms (the fee)"), std::string::npos)
        << cause;
    EXPECT_TRUE(of_kind("invoice.create").empty());
    const auto open = rule_->view("exceptions", *store_).body["exceptions"];
    ASSERT_EQ(open.size(), 1U);
    EXPECT_EQ(open[0]["type"], "pricing_mismatch");
}

TEST_F(item_prices_test, equal_prices_pass_and_so_does_everything_when_the_check_is_off) {
    ledger_item(240000);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_EQ(of_kind("invoice.create").size(), 1U);
    // Off (the default): a price that differs, or an item never synced, changes nothing.
    s_.check_item_prices = false;
    eng("acme-1040").item = "99";
    rebuild();
    ASSERT_TRUE(feed(item("Delivered"), "practice", at("2026-12-05T16:00:00Z")).ok);
    for (const auto& d : drafts()) {
        EXPECT_EQ(d["state"], "approved");
    }
}

TEST_F(item_prices_test, an_item_never_synced_or_priced_zero_is_told_apart) {
    // Never synced (another connector's item "7" does not count).
    ledger_item(240000, "1", "7", "other");
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "blocked");
    EXPECT_NE(cause_of(d).find("item '7' of engagement acme-1040 is not known to billsync"),
              std::string::npos)
        << cause_of(d);
    // Synced without a price: nothing to compare, the draft goes on once re-checked.
    ledger_item(std::nullopt);
    EXPECT_EQ(command("resolve", {{"id", d["id"]}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
}

TEST_F(item_prices_test, resolve_rechecks_against_the_item_as_corrected_in_the_ledger) {
    ledger_item(250000);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    // Not corrected yet: still blocked.
    EXPECT_EQ(command("resolve", {{"id", id}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "blocked");
    // The price is corrected in the ledger and synced.
    ledger_item(240000, "2");
    EXPECT_EQ(command("resolve", {{"id", id}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_TRUE(rule_->view("exceptions", *store_).body["exceptions"].empty());
}

TEST_F(item_prices_test, terms_corrected_in_the_book_are_billed_by_rejecting_and_redrafting) {
    ledger_item(250000);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    // The book was wrong: the fee is 2,500.00. Resolving alone keeps the draft as priced.
    eng("acme-1040").fee = 250000;
    rebuild();
    EXPECT_EQ(command("resolve", {{"id", id}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "blocked");
    EXPECT_NE(cause_of(drafts().at(0)).find("2,400.00 USD"), std::string::npos);
    // Rejected (a blocked draft may be, when mispriced) and redrafted from the book now.
    EXPECT_EQ(
        command("reject", {{"id", id}, {"by", "pat@firm.example"}, {"reason", "scope change"}})
            .status,
        200U);
    EXPECT_TRUE(rule_->view("exceptions", *store_).body["exceptions"].empty());
    const auto again =
        command("redraft", {{"id", id}, {"by", "pat@firm.example"}, {"reason", "fee corrected"}});
    ASSERT_EQ(again.status, 200U) << again.body.dump();
    const auto fresh = again.body["draft"].get<std::string>();
    for (const auto& d : drafts()) {
        if (d["id"] == fresh) {
            EXPECT_EQ(d["total_minor"], 125000);
            EXPECT_EQ(d["state"], "approved") << d.dump();
        }
    }
    EXPECT_EQ(of_kind("invoice.create").size(), 1U);
}

TEST_F(item_prices_test, a_partner_may_bill_at_the_terms_with_a_reason) {
    ledger_item(250000);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    EXPECT_EQ(
        command("resolve", {{"id", id}, {"by", "pat@firm.example"}, {"reason", "agreed discount"}})
            .status,
        200U);
    const auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "approved");
    EXPECT_EQ(d["prices_waived_by"]["reason"], "agreed discount");
    const auto create = json::parse(of_kind("invoice.create").at(0).payload);
    EXPECT_EQ(create["lines"][0]["unit_amount_minor"], 120000);  // the terms, not the item
    const auto audit = audit_text();
    EXPECT_NE(audit.find("exception_waived"), std::string::npos) << audit;
    EXPECT_NE(audit.find("agreed discount"), std::string::npos) << audit;
}

TEST_F(item_prices_test, retainer_and_overage_lines_compare_their_own_rates) {
    auto& r = acme_retainer();
    r.item = "7";
    s_.retainer_day = 1;
    rebuild();
    ledger_item(17500);  // the overage rate; the retainer line (1,500.00) differs
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 690);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/retainer", at("2026-12-01T13:00:05Z")).ok);
    const auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "blocked");
    const auto cause = cause_of(d);
    EXPECT_NE(cause.find("line 1"), std::string::npos) << cause;
    EXPECT_NE(cause.find("1,500.00 USD per the terms (the retainer)"), std::string::npos) << cause;
    EXPECT_EQ(cause.find("line 2"), std::string::npos) << cause;  // the overage agrees
}

TEST_F(invoicing_test, a_po_limit_blocks_what_would_pass_it) {
    eng("acme-1040").po_number = "PO-1";
    eng("acme-1040").po_limit = 130000;
    rebuild();
    client();
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_TRUE(drafts().at(0).contains("po_warning"));
    ASSERT_TRUE(feed(item("Delivered"), "practice", at("2026-12-05T16:00:00Z")).ok);
    std::set<std::string> states;
    for (const auto& d : drafts()) {
        states.insert(d["state"].get<std::string>());
        if (d["state"] == "blocked") {
            EXPECT_EQ(d["exceptions"][0]["type"], "po_limit");
        }
    }
    EXPECT_EQ(states, (std::set<std::string>{"approved", "blocked"}));
    EXPECT_EQ(of_kind("invoice.create").size(), 1U);
}

TEST_F(invoicing_test, a_client_unknown_to_the_ledger_blocks_until_it_is_linked) {
    eng("acme-1040").client = "client:acme";
    rebuild();
    mappings::client c;
    c.id = "client:acme";
    c.display_name = "Acme";
    c.source = {"practice", "", "ORG1", "1", std::nullopt};
    ASSERT_TRUE(feed(c, "practice", at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    auto d = drafts().at(0);
    EXPECT_EQ(d["state"], "blocked");
    EXPECT_EQ(d["exceptions"][0]["type"], "unmatched_client");
    state::batch b(*store_);
    state::put_xref(b, "books", "58", "client:acme");
    ASSERT_TRUE(store_->write(b, true).ok);
    EXPECT_EQ(command("resolve", {{"id", d["id"]}}).status, 200U);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_EQ(json::parse(of_kind("invoice.create").at(0).payload)["client_ref"], "58");
}

TEST_F(invoicing_test, a_link_that_arrives_later_lets_the_waiting_draft_go_on_by_itself) {
    eng("acme-1040").client = "client:acme";
    rebuild();
    mappings::client c;
    c.id = "client:acme";
    c.display_name = "Acme";
    c.source = {"practice", "", "ORG1", "1", std::nullopt};
    ASSERT_TRUE(feed(c, "practice", at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-01T16:00:00Z")).ok);
    EXPECT_EQ(drafts().at(0)["state"], "blocked");
    // The ledger's record of the same client arrives (or an operator links the two): no command.
    c.display_name = "Acme Inc";
    c.source = {"books", "", "58", "1", std::nullopt};
    ASSERT_TRUE(feed(c, "books", at("2026-12-01T17:00:00Z")).ok);
    EXPECT_EQ(drafts().at(0)["state"], "approved");
    EXPECT_EQ(json::parse(of_kind("invoice.create").at(0).payload)["client_ref"], "58");
    EXPECT_TRUE(rule_->view("exceptions", *store_).body["exceptions"].empty());
}

TEST_F(invoicing_test, the_retainer_run_bills_each_period_once_with_the_overage_awaiting_approval) {
    acme_retainer();
    s_.retainer_day = 1;
    s_.run_hour = 6;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 400);
    entry("t2", "staff:kim", "2026-11-20", 290);
    entry("t3", "staff:kim", "2026-12-02", 300);             // next period
    entry("t4", "staff:kim", "2026-11-21", 60, "x", false);  // not approved
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    auto t = timers_->get("invoicing/retainer");
    ASSERT_TRUE(t.ok() && t.value);
    EXPECT_EQ(util::format_rfc3339(t.value->due), "2026-12-01T13:00:00Z");  // 06:00 in Denver
    ASSERT_TRUE(fire("invoicing/retainer", at("2026-12-01T13:00:05Z")).ok);
    auto ds = drafts();
    ASSERT_EQ(ds.size(), 1U);
    EXPECT_EQ(ds[0]["period"], "2026-12");
    EXPECT_EQ(ds[0]["total_minor"], 150000 + 26250);  // 690 - 600 = 90 min at 175.00
    EXPECT_EQ(ds[0]["state"], "pending_approval");    // overage above the tolerance
    EXPECT_NE(ds[0]["flags"].dump().find("overage_above_tolerance"), std::string::npos);
    // The next run is scheduled; a replayed run of the same period drafts nothing new.
    t = timers_->get("invoicing/retainer");
    ASSERT_TRUE(t.ok() && t.value);
    EXPECT_EQ(util::format_rfc3339(t.value->due), "2027-01-01T13:00:00Z");
    ASSERT_TRUE(step(
                    [&](context& ctx) {
                        state::timer again{"invoicing/retainer", at("2026-12-01T13:00:00Z"), "{}"};
                        return rule_->on_timer(again, ctx);
                    },
                    at("2026-12-01T14:00:00Z"))
                    .ok);
    EXPECT_EQ(drafts().size(), 1U);
}

TEST_F(invoicing_test, a_run_over_many_engagements_goes_in_bounded_steps_and_completes_once) {
    for (int i = 0; i < 103; ++i) {
        auto& r = eng(fmt::format("retainer-{:03}", i));
        r.client = "books:58";
        r.work_type = "Monthly Bookkeeping";
        r.billing = model::retainer;
        r.currency = "USD";
        r.ledger = "books";
        r.retainer = 10000;
    }
    rebuild();
    client();
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/retainer", at("2026-12-01T13:00:05Z")).ok);
    EXPECT_EQ(drafts().size(), 100U);
    auto t = timers_->get("invoicing/retainer");
    ASSERT_TRUE(t.ok() && t.value);
    EXPECT_EQ(t.value->due, at("2026-12-01T13:00:05Z"));  // the rest, at once
    EXPECT_EQ(json::parse(t.value->payload)["period"], "2026-12");
    ASSERT_TRUE(fire("invoicing/retainer", at("2026-12-01T13:00:06Z")).ok);
    EXPECT_EQ(drafts().size(), 103U);
    t = timers_->get("invoicing/retainer");
    ASSERT_TRUE(t.ok() && t.value);
    EXPECT_EQ(util::format_rfc3339(t.value->due), "2027-01-01T13:00:00Z");
    for (const auto& d : drafts()) {
        EXPECT_EQ(d["period"], "2026-12");
    }
    EXPECT_NE(audit_text().find("run_complete"), std::string::npos);
}

TEST_F(invoicing_test, time_and_materials_bills_each_approved_entry_once_and_raises_no_rate) {
    auto& tm = eng("acme-advisory");
    tm.client = "books:58";
    tm.work_type = "Advisory";
    tm.billing = model::time_and_materials;
    tm.currency = "USD";
    tm.ledger = "books";
    tm.rates.by_staff["kim@firm.example"] = 18000;
    tm.every = schedule::monthly;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    staff("staff:bo", "bo@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 90);
    entry("t2", "staff:kim", "2026-11-04", 30);
    entry("t3", "staff:bo", "2026-11-05", 60);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2026-12-01T13:00:05Z")).ok);
    auto ds = drafts();
    ASSERT_EQ(ds.size(), 1U);
    EXPECT_EQ(ds[0]["total_minor"], 36000);  // 2 h at 180.00
    EXPECT_EQ(ds[0]["lines"][0]["entries"], json::array({"t1", "t2"}));
    const auto open = rule_->view("exceptions", *store_).body["exceptions"];
    ASSERT_EQ(open.size(), 1U);
    EXPECT_EQ(open[0]["type"], "no_rate");
    // A new entry next month is billed then; the ones billed are not billed again.
    entry("t5", "staff:kim", "2026-12-08", 60);
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2027-01-01T13:00:05Z")).ok);
    ds = drafts();
    ASSERT_EQ(ds.size(), 2U);
    std::int64_t sum = 0;
    for (const auto& d : ds) {
        sum += d["total_minor"].get<std::int64_t>();
    }
    EXPECT_EQ(sum, 36000 + 18000);
    // Closing the exception by hand.
    EXPECT_EQ(command("resolve", {{"id", open[0]["id"]}, {"by", "pat@firm.example"}}).status, 200U);
    EXPECT_TRUE(rule_->view("exceptions", *store_).body["exceptions"].empty());
}

TEST_F(invoicing_test, time_already_billed_at_its_vendor_is_never_billed_again) {
    auto& tm = eng("acme-advisory");
    tm.client = "books:58";
    tm.work_type = "Advisory";
    tm.billing = model::time_and_materials;
    tm.currency = "USD";
    tm.ledger = "books";
    tm.rates.default_rate = 18000;
    tm.every = schedule::monthly;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    entry("t1", "staff:kim", "2026-11-03", 60);
    // Approved and already invoiced in the time system (Harvest is_billed, QBO HasBeenBilled).
    entry("t2", "staff:kim", "2026-11-04", 120, "Advisory", true, true);
    entry("t3", "staff:kim", "2026-11-05", 30);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    // t3 is invoiced at its vendor after it was indexed: it leaves the index.
    entry("t3", "staff:kim", "2026-11-05", 30, "Advisory", true, true, "2");
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2026-12-01T13:00:05Z")).ok);
    const auto ds = drafts();
    ASSERT_EQ(ds.size(), 1U);
    EXPECT_EQ(ds[0]["total_minor"], 18000);  // t1 alone: 1 h at 180.00
    EXPECT_EQ(ds[0]["lines"][0]["entries"], json::array({"t1"}));
    // Nothing billed at the vendor is on a later draft either.
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2027-01-01T13:00:05Z")).ok);
    EXPECT_EQ(drafts().size(), 1U);
}

TEST_F(invoicing_test, time_billed_at_its_vendor_before_the_index_is_built_is_not_indexed) {
    auto& tm = eng("acme-advisory");
    tm.client = "books:58";
    tm.work_type = "Advisory";
    tm.billing = model::time_and_materials;
    tm.currency = "USD";
    tm.ledger = "books";
    tm.rates.default_rate = 18000;
    tm.every = schedule::monthly;
    rebuild();
    client();
    staff("staff:kim", "kim@firm.example");
    // Stored before the rule was on: only the first start's index build sees them.
    mappings::time_entry t;
    t.id = "t9";
    t.staff_id = "staff:kim";
    t.client_id = "client:acme";
    t.service = "Advisory";
    t.date = mappings::parse_civil_date("2026-11-06");
    t.minutes = 45;
    t.locked = true;
    t.billed = true;
    t.source = {"time", "", "t9", "1", std::nullopt};
    ASSERT_TRUE(step(
                    [&](context& ctx) {
                        return state::apply(*store_, ctx.b, "time", mappings::entity{t}).st;
                    },
                    at("2026-11-30T15:00:00Z"))
                    .ok);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_start(ctx); }, at("2026-11-30T16:00:00Z")).ok);
    ASSERT_TRUE(fire("invoicing/tm/monthly", at("2026-12-01T13:00:05Z")).ok);
    EXPECT_TRUE(drafts().empty());
}

TEST_F(invoicing_test, an_undecided_draft_is_reminded_then_escalated_on_business_days) {
    eng("acme-1040").fee = 800000;
    s_.holidays = {date::sys_days(date::year(2026) / 12 / 25)};
    rebuild();
    client();
    // Wednesday 23 December, 09:00 in Denver: two business days skip the holiday and the weekend.
    ASSERT_TRUE(feed(item("Return Filed"), "practice", at("2026-12-23T16:00:00Z")).ok);
    const auto id = drafts().at(0)["id"].get<std::string>();
    auto t = timers_->get("invoicing/sla/" + id);
    ASSERT_TRUE(t.ok() && t.value);
    EXPECT_EQ(util::format_rfc3339(t.value->due), "2026-12-28T16:00:00Z");  // Thu 24, Mon 28
    ASSERT_TRUE(fire("invoicing/sla/" + id, at("2026-12-28T16:00:00Z")).ok);
    EXPECT_EQ(drafts().at(0)["reminders"], 1);
    ASSERT_TRUE(fire("invoicing/sla/" + id, at("2026-12-30T16:00:00Z")).ok);
    const auto d = drafts().at(0);
    EXPECT_TRUE(d["escalated"].get<bool>());
    EXPECT_NE(d["approvers"].dump().find("max@firm.example"), std::string::npos);
    // The escalation reached the new approver, who may now decide.
    bool mailed = false;
    for (const auto& a : of_kind("email.send")) {
        mailed = mailed || json::parse(a.payload)["to"] == "max@firm.example";
    }
    EXPECT_TRUE(mailed);
    EXPECT_EQ(command("approve", {{"id", id}, {"by", "max@firm.example"}}).status, 200U);
    EXPECT_FALSE(timers_->get("invoicing/sla/" + id).value.has_value());
}

}  // namespace
}  // namespace billsync::workflows::invoicing
