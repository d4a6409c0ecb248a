// The late-fee rule in committed steps: one fee per period, assessed when the period begins and
// charged only once approved (or at once under auto_approve), exactly once per period; none on a
// paid, disputed, payment-plan or opted-out invoice; periods before the policy's start never
// charged; a fee approved for an invoice disputed since is dropped before it reaches the ledger.

#include "workflows/late_fees/late_fees_rule.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "state/apply.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/action_key.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::workflows::late_fees {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using testing_support::at;

class late_fees_test : public testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        s_.enabled = true;
        s_.percent_e4 = 15000;
        s_.rate_text = "1.5% a month";
        s_.grace_days = 10;
        s_.minimum_minor = 500;
        s_.time_zone = "America/Chicago";
        s_.start = date::year_month_day(date::year(2026), date::month(11), date::day(1));
        rebuild();
        client();
    }

    void rebuild() { rule_ = std::make_unique<late_fees_rule>(s_, "books"); }

    state::status feed(mappings::entity e, util::instant now = at("2026-11-20T16:00:00Z")) {
        return step(
            [&](context& ctx) {
                auto applied = state::apply(*store_, ctx.b, "books", std::move(e));
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

    void client(std::vector<std::string> tags = {}) {
        mappings::client c;
        c.id = "client:acme";
        c.display_name = "Acme";
        c.tags = std::move(tags);
        c.source = {"books", "", "58", std::to_string(++client_version_), std::nullopt};
        ASSERT_TRUE(feed(c).ok);
    }

    void invoice(std::int64_t balance,
                 mappings::invoice_status status = mappings::invoice_status::open,
                 std::string due = "2026-11-15",
                 util::instant now = at("2026-11-20T16:00:00Z"),
                 std::vector<mappings::line_item> lines = {}) {
        mappings::invoice i;
        i.lines = std::move(lines);
        i.id = "inv:130";
        i.number = "1043";
        i.client_id = "client:acme";
        i.client_ref = "58";
        i.currency = "USD";
        i.issue_date = mappings::parse_civil_date("2026-10-16");
        i.due_date = mappings::parse_civil_date(due);
        i.total = {120000, "USD"};
        i.balance = {balance, "USD"};
        i.status = status;
        i.source = {"books", "", "130", std::to_string(++invoice_version_), std::nullopt};
        ASSERT_TRUE(feed(i, now).ok);
    }

    std::optional<state::timer> timer() {
        auto t = timers_->get("late_fees/inv:130");
        EXPECT_TRUE(t.ok());
        return t.value;
    }

    state::status fire(util::instant now) {
        auto t = timer();
        if (!t) {
            return state::status::failure("no late-fee timer");
        }
        return step(
            [&](context& ctx) {
                if (auto st = timers_->fire(ctx.b, *t); !st.ok) {
                    return st;
                }
                return rule_->on_timer(*t, ctx);
            },
            now);
    }

    json row() {
        auto r = state::get_entity(*store_, "late_fee", "inv:130");
        EXPECT_TRUE(r.ok());
        return r.value ? json::parse(*r.value) : json();
    }

    operator_answer command(std::string verb,
                            json args,
                            util::instant now = at("2026-11-25T18:00:00Z")) {
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

    std::vector<state::action> creates() {
        std::vector<state::action> out;
        for (auto& a : actions()) {
            if (a.kind == "invoice.create") {
                out.push_back(a);
            }
        }
        return out;
    }

    void paused_followup() {
        followup::sequence_state st;
        st.invoice_id = "inv:130";
        st.seen = true;
        st.current = followup::phase::paused;
        st.entered = true;
        st.cycle = 1;
        st.due_date = date::year_month_day(date::year(2026), date::month(11), date::day(15));
        st.anchor = st.due_date;
        st.balance = 120000;
        st.paused_at = at("2026-11-21T16:00:00Z");
        followup::sequence_state back;
        ASSERT_TRUE(followup::decode(followup::encode(st), back));
        state::batch b(*store_);
        state::put_entity(b, "followup", "inv:130", followup::encode(st));
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    settings s_;
    std::unique_ptr<late_fees_rule> rule_;
    int client_version_ = 0;
    int invoice_version_ = 0;
};

TEST_F(late_fees_test, a_period_is_assessed_when_it_begins_and_charged_once_approved) {
    invoice(120000);
    auto t = timer();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->due, at("2026-11-25T12:00:00Z"));  // due + 10 days, 06:00 in Chicago
    ASSERT_TRUE(fire(at("2026-11-25T12:00:01Z")).ok);
    auto r = row();
    ASSERT_EQ(r["periods"].size(), 1u);
    const auto& p = r["periods"][0];
    EXPECT_EQ(p["state"], "pending");
    EXPECT_EQ(p["fee_minor"], 1800);
    EXPECT_EQ(p["starts"], "2026-11-25");
    EXPECT_EQ(p["arithmetic"], "1.5% a month of 1200.00 = 18.00 -> 18.00");
    EXPECT_THAT(audit_text(), HasSubstr("\"decision\":\"fee_assessed\""));
    EXPECT_TRUE(creates().empty()) << "nothing reaches the ledger before approval";
    // The next period is planned a month later.
    ASSERT_TRUE(timer());
    EXPECT_EQ(timer()->due, at("2026-12-25T12:00:00Z"));

    const auto fee = p["fee"].get<std::string>();
    auto a = command("approve", json{{"fee", fee}, {"by", "pat@firm.example"}});
    ASSERT_EQ(a.status, 200u) << a.message;
    auto c = creates();
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].id, action_key("late_fees", "inv:130", 1));
    EXPECT_EQ(c[0].connector, "books");
    const auto payload = json::parse(c[0].payload);
    EXPECT_EQ(payload["client_ref"], "58");
    EXPECT_EQ(payload["lines"][0]["amount_minor"], 1800);
    EXPECT_THAT(payload["memo"].get<std::string>(), HasSubstr("1.5% a month"));
    EXPECT_EQ(row()["periods"][0]["state"], "approved");
    // A second approval is refused; nothing is queued twice.
    EXPECT_EQ(command("approve", json{{"fee", fee}, {"by", "pat@firm.example"}}).status, 400u);
    EXPECT_EQ(creates().size(), 1u);
}

// A fee invoice is followed up like any other, but never charged a fee itself: neither one
// billsync created (its "Late fee on invoice …" line) nor, with a fee item configured, one a
// coordinator raised by hand with that item. An ordinary invoice is charged as usual.
TEST_F(late_fees_test, a_late_fee_invoice_is_never_charged_a_fee) {
    mappings::line_item ours;
    ours.description = "Late fee on invoice 1040, period 1 from 2026-10-25";
    ours.amount = {1800, "USD"};
    invoice(1800, mappings::invoice_status::open, "2026-11-15", at("2026-11-20T16:00:00Z"), {ours});
    EXPECT_FALSE(timer());
    EXPECT_TRUE(row().is_null());
}

TEST_F(late_fees_test, an_invoice_of_the_fee_item_is_a_fee_and_others_are_charged) {
    s_.item = "19";
    rebuild();
    mappings::line_item by_hand;
    by_hand.description = "Late charge";
    by_hand.item_ref = "19";
    by_hand.amount = {2500, "USD"};
    invoice(
        2500, mappings::invoice_status::open, "2026-11-15", at("2026-11-20T16:00:00Z"), {by_hand});
    EXPECT_FALSE(timer());
    mappings::line_item work;
    work.description = "2025 Form 1040";
    work.item_ref = "1";
    work.amount = {117500, "USD"};
    invoice(120000,
            mappings::invoice_status::open,
            "2026-11-15",
            at("2026-11-20T16:10:00Z"),
            {work, by_hand});
    EXPECT_TRUE(timer());
}

// A connector whose invoices are read-only facts (it performs no invoice.create, as Karbon's)
// never gets a fee action, even when [sources] invoices names it.
TEST_F(late_fees_test, an_invoice_of_a_read_only_system_is_never_charged) {
    rule_deps deps;
    deps.sources["invoices"] = "books";
    rule_deps::connector practice;
    practice.name = "books";
    practice.actions = {"task.create"};
    deps.connectors.push_back(practice);
    auto made = make(s_, deps, nullptr);
    ASSERT_NE(made, nullptr);
    rule_.reset(static_cast<late_fees_rule*>(made.release()));
    invoice(120000);
    EXPECT_FALSE(timer());
    EXPECT_TRUE(row().is_null());
    EXPECT_TRUE(creates().empty());
    // The same invoice from a ledger that creates invoices is charged as usual.
    deps.connectors.front().actions = {"invoice.create", "task.create"};
    made = make(s_, deps, nullptr);
    rule_.reset(static_cast<late_fees_rule*>(made.release()));
    invoice(119000);
    EXPECT_TRUE(timer());
}

TEST_F(late_fees_test, a_replayed_timer_assesses_its_period_only_once) {
    invoice(120000);
    const auto t = *timer();
    ASSERT_TRUE(fire(at("2026-11-25T12:00:01Z")).ok);
    ASSERT_TRUE(
        step([&](context& ctx) { return rule_->on_timer(t, ctx); }, at("2026-11-25T12:00:02Z")).ok);
    EXPECT_EQ(row()["periods"].size(), 1u);
}

TEST_F(late_fees_test, auto_approval_charges_at_once_and_the_cap_ends_the_fees) {
    s_.auto_approve = true;
    s_.cap_minor = 3000;
    rebuild();
    invoice(120000);
    ASSERT_TRUE(fire(at("2026-11-25T12:00:01Z")).ok);
    ASSERT_EQ(creates().size(), 1u);
    ASSERT_TRUE(fire(at("2026-12-25T12:00:01Z")).ok);  // 18.00 more would pass the 30.00 cap
    auto r = row();
    ASSERT_EQ(r["periods"].size(), 2u);
    EXPECT_EQ(r["periods"][1]["fee_minor"], 1200);
    ASSERT_EQ(creates().size(), 2u);
    ASSERT_TRUE(fire(at("2027-01-25T12:00:01Z")).ok);
    r = row();
    EXPECT_EQ(r["periods"][2]["state"], "skipped");
    EXPECT_EQ(r["periods"][2]["why"], "the cap is reached");
    EXPECT_FALSE(timer()) << "no period after the cap";
    EXPECT_EQ(creates().size(), 2u);
}

TEST_F(late_fees_test, a_paid_invoice_gets_no_fee_and_no_more_periods) {
    invoice(120000);
    ASSERT_TRUE(timer());
    invoice(0, mappings::invoice_status::paid, "2026-11-15", at("2026-11-24T16:00:00Z"));
    EXPECT_FALSE(timer());
    EXPECT_TRUE(row().is_null());
}

TEST_F(late_fees_test, disputed_payment_plan_and_opted_out_invoices_skip_the_period) {
    invoice(120000);
    paused_followup();
    ASSERT_TRUE(fire(at("2026-11-25T12:00:01Z")).ok);
    auto r = row();
    ASSERT_EQ(r["periods"].size(), 1u) << r.dump();
    EXPECT_EQ(r["periods"][0]["state"], "skipped") << r.dump();
    EXPECT_THAT(r["periods"][0]["why"].get<std::string>(), HasSubstr("disputed"));
    ASSERT_TRUE(timer()) << "a dispute skips a period, not the invoice";

    {
        state::batch b(*store_);
        state::delete_entity(b, "followup", "inv:130");
        state::put_entity(b, "followup_plan", "client:acme", "{}");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    ASSERT_TRUE(fire(at("2026-12-25T12:00:01Z")).ok);
    ASSERT_EQ(row()["periods"].size(), 2u) << row().dump();
    EXPECT_THAT(row()["periods"][1]["why"].get<std::string>(), HasSubstr("payment plan"));

    {
        state::batch b(*store_);
        state::delete_entity(b, "followup_plan", "client:acme");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    client({"No-Late-Fee"});
    ASSERT_THAT(*state::get_entity(*store_, "client", "client:acme").value,
                HasSubstr("No-Late-Fee"));
    ASSERT_TRUE(fire(at("2027-01-25T12:00:01Z")).ok);
    ASSERT_EQ(row()["periods"].size(), 3u) << row().dump();
    EXPECT_THAT(row()["periods"][2].value("why", ""), HasSubstr("tagged")) << row().dump();
    EXPECT_TRUE(creates().empty());
    EXPECT_THAT(audit_text(), HasSubstr("\"decision\":\"fee_skipped\""));
}

TEST_F(late_fees_test, periods_before_the_start_are_never_charged) {
    s_.start = date::year_month_day(date::year(2026), date::month(12), date::day(3));
    rebuild();
    invoice(120000, mappings::invoice_status::open, "2026-08-15", at("2026-12-03T16:00:00Z"));
    // Aug 25, Sep 25, Oct 25, Nov 25 began before the start: the first charged is Dec 25.
    ASSERT_TRUE(timer());
    EXPECT_EQ(timer()->due, at("2026-12-25T12:00:00Z"));
    EXPECT_EQ(json::parse(timer()->payload)["period"], 5);
}

TEST_F(late_fees_test, the_policy_start_plans_invoices_already_open) {
    invoice(120000);
    ASSERT_TRUE(step([&](context& ctx) { return timers_->cancel(ctx.b, "late_fees/inv:130"); }).ok);
    ASSERT_FALSE(timer());
    ASSERT_TRUE(step([&](context& ctx) { return rule_->on_start(ctx); }).ok);
    EXPECT_TRUE(timer());
    // A second start with the same policy does not rescan.
    ASSERT_TRUE(step([&](context& ctx) { return timers_->cancel(ctx.b, "late_fees/inv:130"); }).ok);
    ASSERT_TRUE(step([&](context& ctx) { return rule_->on_start(ctx); }).ok);
    EXPECT_FALSE(timer());
}

TEST_F(late_fees_test, an_approved_fee_is_dropped_when_the_invoice_is_disputed_before_it_goes_out) {
    invoice(120000);
    ASSERT_TRUE(fire(at("2026-11-25T12:00:01Z")).ok);
    const auto fee = row()["periods"][0]["fee"].get<std::string>();
    ASSERT_EQ(command("approve", json{{"fee", fee}, {"by", "pat"}}).status, 200u);
    const auto a = creates().at(0);
    std::optional<std::string> why;
    ASSERT_TRUE(step([&](context& ctx) {
                    why = rule_->recheck(a, ctx);
                    return state::status::success();
                }).ok);
    EXPECT_FALSE(why);
    paused_followup();
    ASSERT_TRUE(step([&](context& ctx) {
                    why = rule_->recheck(a, ctx);
                    return state::status::success();
                }).ok);
    ASSERT_TRUE(why);
    EXPECT_THAT(*why, HasSubstr("disputed"));
}

TEST_F(late_fees_test, reject_needs_a_pending_fee_and_the_cli_names_its_arguments) {
    invoice(120000);
    ASSERT_TRUE(fire(at("2026-11-25T12:00:01Z")).ok);
    const auto fee = row()["periods"][0]["fee"].get<std::string>();
    EXPECT_EQ(command("reject", json{{"fee", "f-nope"}, {"by", "pat"}}).status, 404u);
    EXPECT_EQ(command("reject", json{{"fee", fee}}).status, 400u);
    ASSERT_EQ(
        command("reject", json{{"fee", fee}, {"by", "pat"}, {"reason", "good client"}}).status,
        200u);
    EXPECT_EQ(row()["periods"][0]["state"], "rejected");
    EXPECT_EQ(command("approve", json{{"fee", fee}, {"by", "pat"}}).status, 400u);
    EXPECT_TRUE(creates().empty());

    std::ostringstream err;
    EXPECT_FALSE(rule_->cli_request("approve", {fee}, err)) << "--by is required";
    auto req = rule_->cli_request("reject", {fee, "--by", "pat", "--reason", "x"}, err);
    ASSERT_TRUE(req);
    EXPECT_EQ((*req)["reason"], "x");

    std::ostringstream out;
    EXPECT_EQ(rule_->cli_view("list", {}, *store_, cli_output::text, out, err), cli_result::ok);
    EXPECT_THAT(out.str(), HasSubstr("rejected"));
    EXPECT_THAT(out.str(), HasSubstr("1043"));
    std::ostringstream shown;
    EXPECT_EQ(rule_->cli_view("show", {"1043"}, *store_, cli_output::text, shown, err),
              cli_result::ok);
    EXPECT_THAT(shown.str(), HasSubstr("period 1 from 2026-11-25"));
}

}  // namespace
}  // namespace billsync::workflows::late_fees
