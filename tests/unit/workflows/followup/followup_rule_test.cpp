// The follow-up rule inside a pipeline step: canonical invoice and client rows in the store, a
// change or a timer in, and the decisions committed in one batch (sequence state, outbox actions
// with their channel payloads, tasks, timers, audit).

#include "workflows/followup/followup_rule.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "mappings/model.hpp"
#include "state/apply.hpp"
#include "state/entity_index.hpp"
#include "state/identity.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"
#include "workflows/action_key.hpp"
#include "workflows/send_window.hpp"

namespace billsync::workflows::followup {
namespace {

using json = nlohmann::json;

using testing_support::at;

class followup_rule_test : public testing_support::state_fixture {
protected:
    static constexpr std::string_view reply_key = "test-reply-key";

    void SetUp() override {
        state_fixture::SetUp();
        auto settings = default_settings();
        settings.firm_name = "Smith & Lee CPA";
        settings.firm_phone = "+1 555 0100";
        auto p = planner::make(settings, "America/New_York");
        ASSERT_TRUE(p);
        channel_routes routes;
        routes.email = "mail";
        routes.sms = "sms";
        routes.reply_to = "billing@firm.example";
        routes.reply_key = reply_key;
        routes.coordinator_email = "coordinator@firm.example";
        rule_ = std::make_unique<followup_rule>(std::move(*p), routes);

        client_.id = "c-1";
        client_.display_name = "Acme Dental";
        client_.contact.billing_email = "ap@acme.example";
        client_.contact.mobile = "+14155550123";
        client_.contact.sms_consent = true;
        put("client", client_.id, mappings::to_json(client_));

        invoice_.id = "inv-1";
        invoice_.number = "1042";
        invoice_.client_id = client_.id;
        invoice_.currency = "USD";
        invoice_.total = {50000, "USD"};
        invoice_.balance = {50000, "USD"};
        invoice_.due_date = std::chrono::year_month_day{
            std::chrono::year{2026}, std::chrono::month{1}, std::chrono::day{5}};
        invoice_.source = {"qbo", "1", "130", "0", std::nullopt};
    }

    // Stores a row as the apply step does: its indexes (open invoices, ...) follow it.
    void put(std::string_view type, std::string_view id, const json& j) {
        state::batch b(*store_);
        const auto before = state::get_entity(*store_, type, id);
        ASSERT_TRUE(before.ok());
        state::put_entity(b, type, id, j.dump());
        state::entity_index::update(b, type, id, before.value, j.dump());
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    // One pipeline step: `fn` decides into a batch that is then committed.
    template <typename Fn>
    void step(util::instant now, Fn fn) {
        const auto st = state_fixture::step(fn, now);
        ASSERT_TRUE(st.ok) << st.message;
    }

    void invoice_changed(util::instant now) {
        put("invoice", invoice_.id, mappings::to_json(invoice_));
        mappings::change c;
        c.entity_type = "invoice";
        c.entity_id = invoice_.id;
        c.version = 1;
        c.source = "qbo";
        c.fields_json = json{{"entity", mappings::to_json(invoice_)}}.dump();
        step(now, [&](context& ctx) { return rule_->on_change(c, ctx); });
    }

    sequence_state sequence() {
        auto row = state::get_entity(*store_, "followup", invoice_.id);
        sequence_state s;
        EXPECT_TRUE(row.ok() && row.value && decode(*row.value, s));
        return s;
    }

    std::unique_ptr<followup_rule> rule_;
    mappings::client client_;
    mappings::invoice invoice_;
};

TEST_F(followup_rule_test, an_invoice_not_yet_due_waits_for_its_entry_timer) {
    invoice_changed(at("2026-01-02T15:00:00Z"));
    EXPECT_EQ(sequence().current, phase::waiting);
    EXPECT_TRUE(actions().empty());
    auto due = timers_->due(at("2026-01-07T00:00:00Z"), 10);
    ASSERT_EQ(due.value.size(), 1u);
    EXPECT_EQ(due.value[0].name, "followup/inv-1/enter");
    // Midnight New York time on the day after the due date.
    EXPECT_EQ(due.value[0].due, at("2026-01-06T05:00:00Z"));
}

// Observing an invoice again when nothing about it changed (the preview re-observes every open
// invoice) decides nothing and writes nothing: the sequence row is not rewritten.
TEST_F(followup_rule_test, observing_an_unchanged_invoice_again_writes_nothing) {
    invoice_changed(at("2026-01-02T15:00:00Z"));
    const auto before = state::get_entity(*store_, "followup", invoice_.id).value;
    ASSERT_TRUE(before);
    mappings::change c;
    c.entity_type = "invoice";
    c.entity_id = invoice_.id;
    c.version = 1;
    c.source = "qbo";
    c.fields_json = json{{"entity", mappings::to_json(invoice_)}}.dump();
    state::batch b(*store_);
    context ctx{b, *outbox_, *timers_, *audit_, at("2026-01-02T15:00:00Z")};
    ctx.store = store_.get();
    ASSERT_TRUE(rule_->on_change(c, ctx).ok);
    EXPECT_EQ(b.count(), 0u);
    EXPECT_EQ(state::get_entity(*store_, "followup", invoice_.id).value, before);
}

TEST_F(followup_rule_test, touch_one_goes_out_by_email_with_a_per_invoice_reply_address) {
    invoice_changed(at("2026-01-06T15:00:00Z"));  // day 1, 10:00 in New York
    const auto list = actions();
    ASSERT_EQ(list.size(), 1u);
    const auto& a = list[0];
    EXPECT_EQ(a.connector, "mail");
    EXPECT_EQ(a.kind, "email.send");
    const auto p = json::parse(a.payload);
    EXPECT_EQ(p["to"], "ap@acme.example");
    EXPECT_EQ(p["delivery_id"], a.id);
    EXPECT_EQ(p["invoice"], "inv-1");
    EXPECT_EQ(p["touch"], 1);
    EXPECT_EQ(p["reply_to"], reply_address("billing@firm.example", reply_key, "inv-1"));
    EXPECT_NE(p["text"].get<std::string>().find("1042"), std::string::npos);
    EXPECT_EQ(sequence().current, phase::active);
    EXPECT_NE(audit_text().find("\"enter\""), std::string::npos);

    // The same change seen again (a replay of the step) adds nothing.
    invoice_changed(at("2026-01-06T15:00:00Z"));
    EXPECT_EQ(actions().size(), 1u);
}

TEST_F(followup_rule_test, an_opted_out_number_gets_no_sms) {
    put("suppression",
        "sms:+14155550123",
        json{{"channel", "sms"}, {"address", "+14155550123"}, {"opted_out", true}});
    invoice_changed(at("2026-01-20T15:00:00Z"));  // day 15: email + SMS
    const auto list = actions();
    ASSERT_FALSE(list.empty());
    for (const auto& a : list) {
        EXPECT_NE(a.kind, "sms.send") << a.payload;
    }
}

TEST_F(followup_rule_test, touch_two_sends_email_and_sms_when_consented) {
    invoice_changed(at("2026-01-20T15:00:00Z"));
    std::set<std::string> kinds;
    for (const auto& a : actions()) {
        kinds.insert(a.kind);
        if (a.kind == "sms.send") {
            EXPECT_EQ(json::parse(a.payload)["to"], "+14155550123");
            EXPECT_EQ(a.connector, "sms");
        }
    }
    EXPECT_EQ(kinds, (std::set<std::string>{"email.send", "sms.send"}));
}

TEST_F(followup_rule_test, a_dispute_reply_to_the_reply_address_pauses_and_opens_a_task) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    mappings::inbound_message mail;
    mail.via = mappings::channel::email;
    mail.id = "<m1@acme.example>";
    mail.from = "ap@acme.example";
    mail.to = {reply_address("billing@firm.example", reply_key, "inv-1")};
    mail.subject = "Re: invoice";
    mail.text = "We DISPUTE the hours on this one.";
    const auto reply = mappings::make_change(mail, 1, mappings::change::op::created, "mail");
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) { return rule_->on_change(reply, ctx); });
    EXPECT_EQ(sequence().current, phase::paused);
    bool task = false;
    state::for_each_entity(*store_, "task", [&](std::string_view, std::string_view v) {
        const auto t = json::parse(v);
        task = t["title"].get<std::string>().find("1042") != std::string::npos &&
               t["title"].get<std::string>().find("Acme Dental") != std::string::npos;
        return true;
    });
    EXPECT_TRUE(task);
    // The coordinator is told by email too.
    bool told = false;
    for (const auto& a : actions()) {
        told = told || json::parse(a.payload)["to"] == "coordinator@firm.example";
    }
    EXPECT_TRUE(told);

    // Resumed by an operator: the schedule continues from now.
    step(at("2026-01-08T15:00:00Z"),
         [&](context& ctx) { return rule_->resume("inv-1", "test", ctx); });
    EXPECT_EQ(sequence().current, phase::active);
}

// The dispute reaches a person: the reply that pauses the sequence is forwarded in full to the
// coordinator and recorded on the task, and the client's text is never template-expanded.
TEST_F(followup_rule_test, a_dispute_is_forwarded_in_full_with_the_clients_text_verbatim) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    const std::string words =
        "We dispute {invoice_number}: {balance} is wrong, {{twice}} billed {unknown} }{";
    mappings::inbound_message mail;
    mail.via = mappings::channel::email;
    mail.id = "<m2@acme.example>";
    mail.from = "ap@acme.example";
    mail.to = {reply_address("billing@firm.example", reply_key, "inv-1")};
    mail.subject = "Re: invoice 1042";
    mail.text = words;
    const auto reply = mappings::make_change(mail, 1, mappings::change::op::created, "mail");
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) { return rule_->on_change(reply, ctx); });
    ASSERT_EQ(sequence().current, phase::paused);

    json task;
    state::for_each_entity(*store_, "task", [&](std::string_view, std::string_view v) {
        task = json::parse(v);
        return true;
    });
    ASSERT_TRUE(task.is_object());
    const auto body = task["body"].get<std::string>();
    EXPECT_NE(body.find("Re: invoice 1042\n" + words), std::string::npos) << body;
    EXPECT_NE(body.find("From: ap@acme.example\n"), std::string::npos) << body;
    EXPECT_NE(body.find("Channel: email\n"), std::string::npos) << body;
    EXPECT_NE(body.find("Received: 2026-01-07T15:00:00Z\n"), std::string::npos) << body;
    EXPECT_NE(body.find("Invoice: 1042 (inv-1), Acme Dental\n"), std::string::npos) << body;
    EXPECT_NE(body.find("billsync followup resume 1042"), std::string::npos) << body;
    EXPECT_EQ(task["reply"]["text"], "Re: invoice 1042\n" + words);
    EXPECT_EQ(task["reply"]["from"], "ap@acme.example");
    EXPECT_EQ(task["reply"]["channel"], "email");
    EXPECT_EQ(task["reply"]["received_at"], "2026-01-07T15:00:00Z");

    // The coordinator's inbox gets the same, as an email.
    std::optional<json> forwarded;
    for (const auto& a : actions()) {
        const auto p = json::parse(a.payload);
        if (p["to"] == "coordinator@firm.example") {
            EXPECT_EQ(a.kind, "email.send");
            forwarded = p;
        }
    }
    ASSERT_TRUE(forwarded);
    EXPECT_EQ((*forwarded)["text"], body);
    EXPECT_NE((*forwarded)["subject"].get<std::string>().find("1042"), std::string::npos);
    EXPECT_EQ((*forwarded)["invoice"], "inv-1");

    // One command resumes it.
    step(at("2026-01-08T15:00:00Z"), [&](context& ctx) {
        return rule_->command("resume", json{{"invoice", "1042"}, {"who", "ann"}}, ctx).status ==
                       200
                   ? state::status::success()
                   : state::status::failure("resume failed");
    });
    EXPECT_EQ(sequence().current, phase::active);
}

TEST_F(followup_rule_test, an_sms_reply_pauses_the_clients_sequences) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    mappings::inbound_message text;
    text.via = mappings::channel::sms;
    text.id = "SM1";
    text.from = "+14155550123";
    text.text = "This is incorrect";
    const auto sms = mappings::make_change(text, 1, mappings::change::op::created, "sms");
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) { return rule_->on_change(sms, ctx); });
    EXPECT_EQ(sequence().current, phase::paused);
}

TEST_F(followup_rule_test, paid_before_the_touch_timer_cancels_without_sending) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    const auto before = actions().size();
    invoice_.balance = {0, "USD"};
    invoice_.status = mappings::invoice_status::paid;
    put("invoice", invoice_.id, mappings::to_json(invoice_));
    auto due = timers_->due(at("2026-02-01T00:00:00Z"), 10);
    ASSERT_EQ(due.value.size(), 1u);
    step(due.value[0].due, [&](context& ctx) {
        auto st = timers_->fire(ctx.b, due.value[0]);
        return st.ok ? rule_->on_timer(due.value[0], ctx) : st;
    });
    EXPECT_EQ(actions().size(), before);
    EXPECT_EQ(sequence().current, phase::cancelled);
}

TEST_F(followup_rule_test, a_touch_carries_its_window_and_deadline_and_is_rechecked_when_late) {
    invoice_changed(at("2026-01-20T15:00:00Z"));  // day 15, 10:00 in New York: email + SMS
    const auto list = actions();
    ASSERT_EQ(list.size(), 2u);
    for (const auto& a : list) {
        // The outbox can tell, without knowing the rule, when this may reach the client.
        EXPECT_EQ(gate(a, at("2026-01-20T15:00:00Z")).k, send_gate::kind::now);
        const auto night = gate(a, at("2026-01-21T07:00:00Z"));  // 02:00 local
        EXPECT_EQ(night.k, send_gate::kind::later) << a.kind;
        EXPECT_EQ(night.at, at("2026-01-21T14:00:00Z"));
        EXPECT_EQ(a.deadline, at("2026-01-20T15:00:00Z") + followup_rule::touch_deadline);
        EXPECT_EQ(gate(a, a.deadline).k, send_gate::kind::stale);
        // Still wanted right after the decision.
        std::optional<std::string> cause;
        step(at("2026-01-21T14:00:00Z"), [&](context& ctx) {
            cause = rule_->recheck(a, ctx);
            return state::status::success();
        });
        EXPECT_FALSE(cause) << *cause;
    }
    // Paid overnight: a late attempt of either message is stale.
    invoice_.balance = {0, "USD"};
    invoice_.status = mappings::invoice_status::paid;
    put("invoice", invoice_.id, mappings::to_json(invoice_));
    for (const auto& a : list) {
        std::optional<std::string> cause;
        step(at("2026-01-21T14:00:00Z"), [&](context& ctx) {
            cause = rule_->recheck(a, ctx);
            return state::status::success();
        });
        ASSERT_TRUE(cause) << a.kind;
        EXPECT_EQ(*cause, "invoice 1042 was paid meanwhile");
    }
}

TEST_F(followup_rule_test, a_late_touch_of_a_paused_sequence_is_stale) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    const auto list = actions();
    ASSERT_EQ(list.size(), 1u);
    auto s = sequence();
    s.current = phase::paused;
    put("followup", invoice_.id, json::parse(encode(s)));
    std::optional<std::string> cause;
    step(at("2026-01-07T14:00:00Z"), [&](context& ctx) {
        cause = rule_->recheck(list[0], ctx);
        return state::status::success();
    });
    ASSERT_TRUE(cause);
    EXPECT_EQ(*cause, "the follow-up of invoice 1042 is paused");
}

// Courtesy reminders through the rule: a timer per reminder, re-read before it fires, the email
// carrying the sending window, dropped when late and the client went on auto-pay or paid, and
// visible in `followup show`.
TEST_F(followup_rule_test, courtesy_reminders_are_timed_windowed_rechecked_and_shown) {
    auto settings = default_settings();
    settings.firm_name = "Smith & Lee CPA";
    settings.firm_phone = "+1 555 0100";
    settings.reminders[client_class::standard] = {{.days_before = 7}, {.days_before = 0}};
    auto p = planner::make(settings, "America/New_York");
    ASSERT_TRUE(p);
    rule_ = std::make_unique<followup_rule>(std::move(*p), rule_->routes());

    // Due Monday 2026-01-05: reminder 1 on Monday 2025-12-29 at 09:00 New York (14:00Z).
    invoice_changed(at("2025-12-20T15:00:00Z"));
    EXPECT_EQ(sequence().current, phase::waiting);
    EXPECT_EQ(sequence().next_reminder, 1u);
    EXPECT_TRUE(actions().empty());
    auto due = timers_->due(at("2025-12-31T00:00:00Z"), 10);
    ASSERT_EQ(due.value.size(), 1u);
    EXPECT_EQ(due.value[0].name, "followup/inv-1/remind1");
    EXPECT_EQ(due.value[0].due, at("2025-12-29T14:00:00Z"));
    // The invoice is re-read from its ledger before the reminder.
    const auto target = rule_->before_timer(due.value[0].name, *store_);
    ASSERT_EQ(target.size(), 1u);
    EXPECT_EQ(target[0].id, "inv-1");

    std::ostringstream text;
    std::ostringstream err;
    ASSERT_EQ(rule_->cli_view("show", {"1042"}, *store_, cli_output::text, text, err),
              cli_result::ok);
    EXPECT_NE(text.str().find("next courtesy reminder 1 by email at 2025-12-29T14:00:00Z"),
              std::string::npos)
        << text.str();
    const auto listed = rule_->view("", *store_).body;
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0]["next_reminder"], 1);
    EXPECT_EQ(listed[0]["next_reminder_at"], "2025-12-29T14:00:00Z");

    step(due.value[0].due, [&](context& ctx) {
        auto st = timers_->fire(ctx.b, due.value[0]);
        return st.ok ? rule_->on_timer(due.value[0], ctx) : st;
    });
    const auto list = actions();
    ASSERT_EQ(list.size(), 1u);
    const auto& a = list[0];
    EXPECT_EQ(a.kind, "email.send");
    EXPECT_EQ(a.id,
              action_key("followup.r1.email",
                         "inv-1",
                         reminder_version(date::year(2026) / date::January / date::day(5))));
    const auto payload = json::parse(a.payload);
    EXPECT_EQ(payload["reminder"], 1);
    EXPECT_EQ(payload["touch"], 0);
    EXPECT_EQ(payload["to"], "ap@acme.example");
    EXPECT_FALSE(a.window.empty());
    EXPECT_EQ(gate(a, at("2025-12-30T07:00:00Z")).k, send_gate::kind::later);  // 02:00 local
    EXPECT_EQ(sequence().next_reminder, 2u);
    EXPECT_EQ(sequence().reminders_done, 1u);

    const auto recheck = [&]() {
        std::optional<std::string> cause;
        step(at("2025-12-30T14:00:00Z"), [&](context& ctx) {
            cause = rule_->recheck(a, ctx);
            return state::status::success();
        });
        return cause;
    };
    EXPECT_FALSE(recheck());
    // The client was put on auto-pay before a late attempt: the reminder is dropped.
    client_.tags = {"autopay"};
    put("client", client_.id, mappings::to_json(client_));
    auto cause = recheck();
    ASSERT_TRUE(cause);
    EXPECT_EQ(*cause, "the client of invoice 1042 is on auto-pay");
    client_.tags.clear();
    put("client", client_.id, mappings::to_json(client_));
    invoice_.balance = {0, "USD"};
    invoice_.status = mappings::invoice_status::paid;
    put("invoice", invoice_.id, mappings::to_json(invoice_));
    cause = recheck();
    ASSERT_TRUE(cause);
    EXPECT_EQ(*cause, "invoice 1042 was paid meanwhile");
}

TEST_F(followup_rule_test, clients_tagged_autopay_get_no_courtesy_reminders) {
    auto settings = default_settings();
    settings.firm_name = "Smith & Lee CPA";
    settings.firm_phone = "+1 555 0100";
    settings.reminders[client_class::standard] = {{.days_before = 7}, {.days_before = 0}};
    auto p = planner::make(settings, "America/New_York");
    ASSERT_TRUE(p);
    rule_ = std::make_unique<followup_rule>(std::move(*p), rule_->routes());
    client_.tags = {"auto-pay"};  // as a Xero contact group "Auto Pay" or QBO #auto-pay reads
    put("client", client_.id, mappings::to_json(client_));

    invoice_changed(at("2025-12-20T15:00:00Z"));
    EXPECT_EQ(sequence().next_reminder, 0u);
    auto due = timers_->due(at("2026-01-31T00:00:00Z"), 10);
    ASSERT_EQ(due.value.size(), 1u);
    EXPECT_EQ(due.value[0].name, "followup/inv-1/enter");
    EXPECT_NE(audit_text().find("courtesy reminders not sent: client Acme Dental (c-1) is on "
                                "auto-pay"),
              std::string::npos);
}

// A payment plan through the rule: the client's invoices leave the overdue sequence, the plan
// reminds, finds the installment missed (notice, task, coordinator email), then paid late.
TEST_F(followup_rule_test, a_payment_plan_reminds_flags_a_missed_installment_and_sees_it_paid) {
    auto settings = default_settings();
    settings.firm_name = "Smith & Lee CPA";
    settings.firm_phone = "+1 555 0100";
    settings.payment_plans["c-1"].installments = {
        {date::year(2026) / date::January / date::day(20), 20000}};
    auto p = planner::make(settings, "America/New_York");
    ASSERT_TRUE(p);
    rule_ = std::make_unique<followup_rule>(std::move(*p), rule_->routes());

    invoice_changed(at("2026-01-06T15:00:00Z"));
    EXPECT_EQ(sequence().current, phase::excluded);
    EXPECT_TRUE(actions().empty());
    const auto fire_next = [&]() {
        auto due = timers_->due(at("2026-12-31T00:00:00Z"), 10);
        ASSERT_EQ(due.value.size(), 1u);
        const auto t = due.value[0];
        step(t.due, [&](context& ctx) {
            auto st = timers_->fire(ctx.b, t);
            return st.ok ? rule_->on_timer(t, ctx) : st;
        });
    };
    // 3 days before Tuesday 01-20 is Saturday 01-17: Monday 01-19 at 09:00 (14:00Z).
    auto due = timers_->due(at("2026-12-31T00:00:00Z"), 10);
    ASSERT_EQ(due.value.size(), 1u);
    EXPECT_EQ(due.value[0].name, "followup/plan:c-1/installment1-reminder");
    EXPECT_EQ(due.value[0].due, at("2026-01-19T14:00:00Z"));
    fire_next();
    auto list = actions();
    ASSERT_EQ(list.size(), 1u);
    auto payload = json::parse(list[0].payload);
    EXPECT_EQ(payload["installment"], 1);
    EXPECT_EQ(payload["client"], "c-1");
    EXPECT_EQ(payload["to"], "ap@acme.example");
    EXPECT_FALSE(list[0].window.empty());
    // A late attempt of the reminder is re-checked: still unpaid, it goes; paid meanwhile, not.
    const auto reminder = list[0];
    const auto recheck = [&]() {
        std::optional<std::string> cause;
        step(at("2026-01-19T16:00:00Z"), [&](context& ctx) {
            cause = rule_->recheck(reminder, ctx);
            return state::status::success();
        });
        return cause;
    };
    EXPECT_FALSE(recheck());
    invoice_.balance = {30000, "USD"};
    put("invoice", invoice_.id, mappings::to_json(invoice_));
    auto dropped = recheck();
    ASSERT_TRUE(dropped);
    EXPECT_EQ(*dropped, "installment 1 of client c-1 was paid meanwhile");
    invoice_.balance = {50000, "USD"};
    put("invoice", invoice_.id, mappings::to_json(invoice_));

    // The check at 00:00 on 01-21: nothing paid.
    fire_next();
    list = actions();
    ASSERT_EQ(list.size(), 3u);  // + the missed notice and the coordinator's email
    bool notice = false;
    bool coordinator = false;
    for (const auto& a : list) {
        const auto j = json::parse(a.payload);
        notice =
            notice || (j["to"] == "ap@acme.example" &&
                       j["subject"].get<std::string>().find("not received") != std::string::npos);
        coordinator = coordinator || j["to"] == "coordinator@firm.example";
    }
    EXPECT_TRUE(notice);
    EXPECT_TRUE(coordinator);
    json task;
    state::for_each_entity(*store_, "task", [&](std::string_view, std::string_view v) {
        task = json::parse(v);
        return true;
    });
    EXPECT_EQ(task["client"], "c-1");
    EXPECT_EQ(task["installment"], 1);
    EXPECT_NE(audit_text().find("installment 1 ($200.00 due 2026-01-20) missed"),
              std::string::npos);

    // Paid on 01-23: the invoice's balance drops by the installment.
    invoice_.balance = {30000, "USD"};
    invoice_changed(at("2026-01-23T15:00:00Z"));
    EXPECT_NE(audit_text().find("installment 1 ($200.00 due 2026-01-20) paid late"),
              std::string::npos);
    EXPECT_EQ(sequence().current, phase::excluded);

    // Operators see it: GET /workflows/followup/plans and `billsync followup plans`.
    const auto plans = rule_->view("plans", *store_).body;
    ASSERT_EQ(plans.size(), 1u);
    EXPECT_EQ(plans[0]["client"], "c-1");
    EXPECT_EQ(plans[0]["installments"][0]["status"], "checked");
    EXPECT_TRUE(plans[0]["missed"].empty());
    std::ostringstream text;
    std::ostringstream err;
    ASSERT_EQ(rule_->cli_view("plans", {}, *store_, cli_output::text, text, err), cli_result::ok);
    EXPECT_NE(text.str().find("installment 1  due 2026-01-20  200.00 USD  checked"),
              std::string::npos)
        << text.str();
}

TEST_F(followup_rule_test, reply_tokens_are_stable_and_addresses_keep_the_domain) {
    EXPECT_EQ(reply_token(reply_key, "inv-1"), reply_token(reply_key, "inv-1"));
    EXPECT_NE(reply_token(reply_key, "inv-1"), reply_token(reply_key, "inv-2"));
    EXPECT_EQ(reply_address("billing@firm.example", reply_key, "inv-1"),
              "billing+" + reply_token(reply_key, "inv-1") + "@firm.example");
    EXPECT_EQ(reply_address("", reply_key, "inv-1"), "");
}

// Item 12: a token is an HMAC under the daemon's key, not a hash anyone can compute from the
// (guessable) invoice id.
TEST_F(followup_rule_test, reply_tokens_are_keyed) {
    EXPECT_NE(reply_token("key-one", "inv-1"), reply_token("key-two", "inv-1"));
    const auto unkeyed = "inv-" + util::hex_encode(util::sha256("inv-1")).substr(0, 12);
    EXPECT_NE(reply_token(reply_key, "inv-1"), unkeyed);
    EXPECT_EQ(reply_token(reply_key, "inv-1").size(), 26u);  // "r-" + 24 hex
}

TEST_F(followup_rule_test, invoice_numbers_match_on_word_boundaries) {
    EXPECT_TRUE(mentions_number("Re: invoice 10", "10"));
    EXPECT_TRUE(mentions_number("Invoice #10: wrong", "10"));
    EXPECT_FALSE(mentions_number("Re: invoice 1005", "10"));
    EXPECT_FALSE(mentions_number("Re: invoice 210", "10"));
    EXPECT_FALSE(mentions_number("ref A10x", "10"));
    EXPECT_FALSE(mentions_number("anything", ""));
}

class followup_reply_trust : public followup_rule_test {
protected:
    // A dispute mailed to the plain reply address (no token) by the client's billing address.
    void dispute_from_billing(bool verified, std::string subject) {
        invoice_changed(at("2026-01-06T15:00:00Z"));
        mappings::inbound_message mail;
        mail.via = mappings::channel::email;
        mail.id = "<m2@acme.example>";
        mail.from = "ap@acme.example";
        mail.to = {"billing@firm.example"};
        mail.subject = std::move(subject);
        mail.text = "We DISPUTE this.";
        mail.sender_verified = verified;
        const auto reply = mappings::make_change(mail, 1, mappings::change::op::created, "mail");
        step(at("2026-01-07T15:00:00Z"),
             [&](context& ctx) { return rule_->on_change(reply, ctx); });
    }
    bool dispute_task() {
        bool task = false;
        state::for_each_entity(*store_, "task", [&](std::string_view, std::string_view v) {
            task = task ||
                   json::parse(v)["title"].get<std::string>().find("1042") != std::string::npos;
            return true;
        });
        return task;
    }
    bool audit_says(std::string_view words) {
        bool found = false;
        store_->for_each(state::cf::audit, "", [&](std::string_view, std::string_view v) {
            found = found || v.find(words) != std::string_view::npos;
            return true;
        });
        return found;
    }
};

TEST_F(followup_reply_trust, a_dispute_from_a_verified_sender_naming_the_number_pauses) {
    dispute_from_billing(true, "Re: Invoice 1042");
    EXPECT_EQ(sequence().current, phase::paused);
    EXPECT_TRUE(dispute_task());
}

TEST_F(followup_reply_trust, a_dispute_whose_spf_or_dkim_failed_becomes_a_task_not_a_pause) {
    dispute_from_billing(false, "Re: Invoice 1042");
    EXPECT_NE(sequence().current, phase::paused);
    EXPECT_TRUE(dispute_task());
    EXPECT_TRUE(audit_says("unverified sender"));
}

TEST_F(followup_reply_trust, a_number_inside_a_longer_one_names_no_invoice) {
    dispute_from_billing(true, "Re: Invoice 10420");
    EXPECT_NE(sequence().current, phase::paused);
    EXPECT_FALSE(dispute_task());
}

// Tokens already sent in emails in the old unkeyed form: anyone could compute one, so it is
// recognised but treated as unverified (the issue does not allow trusting them).
TEST_F(followup_reply_trust, an_old_unkeyed_token_opens_a_task_but_does_not_pause) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    const auto old_token = "inv-" + util::hex_encode(util::sha256("inv-1")).substr(0, 12);
    {
        state::batch b(*store_);  // as the old code stored it: the bare invoice id
        state::put_entity(b, "followup_reply", old_token, "inv-1");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    mappings::inbound_message mail;
    mail.via = mappings::channel::email;
    mail.id = "<m3@attacker.example>";
    mail.from = "someone@attacker.example";
    mail.to = {"billing+" + old_token + "@firm.example"};
    mail.subject = "Re: invoice";
    mail.text = "dispute";
    const auto reply = mappings::make_change(mail, 1, mappings::change::op::created, "mail");
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) { return rule_->on_change(reply, ctx); });
    EXPECT_NE(sequence().current, phase::paused);
    EXPECT_TRUE(dispute_task());
    EXPECT_TRUE(audit_says("unverified sender"));
}

TEST_F(followup_rule_test, operators_resume_through_the_generic_command_and_view) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    auto answer = operator_answer::ok(nullptr);
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) {
        answer = rule_->command("stop", json{{"invoice", "1042"}, {"who", "ann"}}, ctx);
        return state::status::success();
    });
    ASSERT_EQ(answer.status, 200u) << answer.message;
    EXPECT_EQ(answer.then_view, "show/inv-1");
    EXPECT_EQ(sequence().current, phase::stopped);
    const auto shown = rule_->view(answer.then_view, *store_);
    ASSERT_EQ(shown.status, 200u);
    EXPECT_EQ(shown.body["number"], "1042");
    EXPECT_EQ(rule_->view("", *store_).status, 200u);
    EXPECT_TRUE(rule_->view("tasks", *store_).body.is_array());
    EXPECT_EQ(rule_->view("show/9999", *store_).status, 404u);
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) {
        answer = rule_->command("resume", json{{"invoice", "9999"}}, ctx);
        EXPECT_EQ(answer.status, 404u);
        EXPECT_EQ(answer.message, "no follow-up sequence for invoice 9999");
        answer = rule_->command("resume", json{{"number", "1042"}}, ctx);
        EXPECT_EQ(answer.status, 400u);
        answer = rule_->command("explode", json::object(), ctx);
        EXPECT_EQ(answer.status, 404u);
        return state::status::success();
    });
}

TEST_F(followup_rule_test, show_prints_a_timeline_for_people_and_json_with_the_flag) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    step(at("2026-01-07T15:00:00Z"), [&](context& ctx) {
        return rule_->command("stop", json{{"invoice", "1042"}, {"who", "ann"}}, ctx).status == 200
                   ? state::status::success()
                   : state::status::failure("stop failed");
    });
    // Another rule's line about the invoice (a late fee) is on the timeline in its own words.
    step(at("2026-01-08T15:00:00Z"), [&](context& ctx) {
        ctx.audit.append(ctx.b,
                         ctx.now,
                         json{{"rule", "late_fees"},
                              {"decision", "fee_assessed"},
                              {"invoice", "inv-1"},
                              {"period", 1},
                              {"arithmetic", "1.5% a month of 500.00 = 7.50"}}
                             .dump());
        return state::status::success();
    });
    std::ostringstream text;
    std::ostringstream err;
    ASSERT_EQ(rule_->cli_view("show", {"1042"}, *store_, cli_output::text, text, err),
              cli_result::ok)
        << err.str();
    const auto t = text.str();
    EXPECT_EQ(t.find('{'), std::string::npos) << t;  // not JSON
    EXPECT_NE(t.find("Invoice 1042 (inv-1), Acme Dental (c-1)"), std::string::npos) << t;
    EXPECT_NE(t.find("balance 500.00 USD, due 2026-01-05"), std::string::npos) << t;
    EXPECT_NE(t.find("sequence stopped"), std::string::npos) << t;
    EXPECT_NE(t.find("Timeline:"), std::string::npos) << t;
    // Each decision on its own line, in time order, with its time.
    const auto first = t.find("2026-01-06T15:00:00Z");
    const auto stop = t.find("2026-01-07T15:00:00Z");
    ASSERT_NE(first, std::string::npos) << t;
    ASSERT_NE(stop, std::string::npos) << t;
    EXPECT_LT(first, stop) << t;
    EXPECT_NE(t.find("late_fees fee_assessed"), std::string::npos) << t;
    EXPECT_NE(t.find("period 1: 1.5% a month of 500.00 = 7.50"), std::string::npos) << t;

    std::ostringstream machine;
    ASSERT_EQ(rule_->cli_view("show", {"1042"}, *store_, cli_output::json, machine, err),
              cli_result::ok);
    const auto j = json::parse(machine.str(), nullptr, false);
    ASSERT_TRUE(j.is_object()) << machine.str();
    EXPECT_EQ(j["number"], "1042");
    ASSERT_TRUE(j["audit"].is_array());
    ASSERT_FALSE(j["audit"].empty());
    for (const auto& line : j["audit"]) {
        EXPECT_TRUE(line.contains("at")) << line.dump();
    }

    std::ostringstream none;
    EXPECT_EQ(rule_->cli_view("show", {"9999"}, *store_, cli_output::text, none, err),
              cli_result::not_found);
}

TEST_F(followup_rule_test, finished_deliveries_are_counted_by_channel_touch_and_outcome) {
    util::metrics_registry metrics;
    auto p = planner::make(default_settings(), "America/New_York");
    ASSERT_TRUE(p);
    const followup_rule counted(std::move(*p), channel_routes{}, &metrics);
    state::action sms;
    sms.kind = "sms.send";
    sms.payload = json{{"invoice", "inv-1"}, {"touch", 2}}.dump();
    counted.on_action_done(sms, action_result::done);
    state::action email;
    email.kind = "email.send";
    email.payload = json{{"invoice", "inv-1"}}.dump();  // an acknowledgement: touch 0
    counted.on_action_done(email, action_result::failed);
    state::action other;
    other.kind = "notify";
    other.payload = json{{"invoice", "inv-1"}}.dump();
    counted.on_action_done(other, action_result::done);
    const auto text = metrics.render();
    EXPECT_NE(
        text.find(
            R"(billsync_followup_deliveries_total{channel="sms",touch="2",outcome="sent"} 1)"),
        std::string::npos)
        << text;
    EXPECT_NE(
        text.find(
            R"(billsync_followup_deliveries_total{channel="email",touch="0",outcome="failed"} 1)"),
        std::string::npos)
        << text;
}

TEST(followup_rule_timers, touch_invoice_reads_the_timer_name) {
    EXPECT_EQ(followup_rule::touch_invoice("followup/qbo:1:invoice:130/touch2"),
              "qbo:1:invoice:130");
    EXPECT_EQ(followup_rule::touch_invoice("followup/x/enter"), "x");
    EXPECT_FALSE(followup_rule::touch_invoice("remind/x"));
    EXPECT_FALSE(followup_rule::touch_invoice("followup/x/other"));
}

// [sources] at run time: the follow-up acts on the invoice ledger's invoices only, and reads a
// client's contacts from its linked client in the clients system.
class followup_sources_test : public followup_rule_test {
protected:
    void use_sources(std::string invoices_from, std::string clients_from) {
        auto settings = default_settings();
        settings.firm_name = "Smith & Lee CPA";
        settings.firm_phone = "+1 555 0100";
        auto p = planner::make(settings, "America/New_York");
        ASSERT_TRUE(p);
        channel_routes routes;
        routes.email = "mail";
        routes.sms = "sms";
        routes.invoices_from = std::move(invoices_from);
        routes.clients_from = std::move(clients_from);
        rule_ = std::make_unique<followup_rule>(std::move(*p), routes);
    }
};

TEST_F(followup_sources_test, invoices_of_a_ledger_that_is_not_the_source_are_not_followed) {
    use_sources("books", "");
    invoice_changed(at("2026-01-06T15:00:00Z"));
    EXPECT_TRUE(actions().empty());
    EXPECT_FALSE(state::get_entity(*store_, "followup", invoice_.id).value.has_value());

    use_sources("qbo", "");
    invoice_changed(at("2026-01-06T15:00:00Z"));
    EXPECT_EQ(actions().size(), 1u);
}

TEST_F(followup_sources_test, contacts_come_from_the_linked_client_of_the_clients_source) {
    // The ledger's customer (c-1) and the practice system's organization share a billing email
    // domain and name, so the identity map links them; the practice system owns clients.
    mappings::client ledger = client_;
    ledger.contact.billing_email = "old-ap@acme.example";
    ledger.source = {"qbo", "", "7", "1", std::nullopt};
    mappings::client practice;
    practice.id = "practice:client:ORG1";
    practice.display_name = "Acme Dental";
    practice.contact.billing_email = "billing@acme.example";
    practice.source = {"practice", "", "ORG1", "1", std::nullopt};
    for (auto* c : {&ledger, &practice}) {
        state::batch b(*store_);
        ASSERT_TRUE(state::apply(*store_, b, c->source.system, *c).ok());
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    auto party = state::identity::members_of(*store_, nullptr, "c-1");
    ASSERT_TRUE(party.ok());
    ASSERT_EQ(party.value.size(), 2u);
    use_sources("", "practice");
    invoice_changed(at("2026-01-06T15:00:00Z"));
    const auto list = actions();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(json::parse(list[0].payload)["to"], "billing@acme.example");
}

// [followup] task_connector: every task also goes to the practice system, for the client's
// counterpart there; a client not linked there yet waits and goes once the link arrives.
class followup_task_connector_test : public followup_rule_test {
protected:
    void SetUp() override {
        followup_rule_test::SetUp();
        auto settings = default_settings();
        settings.firm_name = "Smith & Lee CPA";
        settings.firm_phone = "+1 555 0100";
        auto p = planner::make(settings, "America/New_York");
        ASSERT_TRUE(p);
        channel_routes routes;
        routes.email = "mail";
        routes.reply_to = "billing@firm.example";
        routes.reply_key = reply_key;
        routes.tasks = "practice";
        rule_ = std::make_unique<followup_rule>(std::move(*p), routes);
        // The ledger's customer, known to the identity map.
        mappings::client ledger = client_;
        ledger.contact.billing_email = "billing@acme.example";
        ledger.source = {"qbo", "", "7", "1", std::nullopt};
        state::batch b(*store_);
        ASSERT_TRUE(state::apply(*store_, b, "qbo", ledger).ok());
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    void dispute(util::instant now) {
        mappings::inbound_message mail;
        mail.via = mappings::channel::email;
        mail.id = "<m9@acme.example>";
        mail.from = "ap@acme.example";
        mail.to = {reply_address("billing@firm.example", reply_key, "inv-1")};
        mail.subject = "Re: invoice 1042";
        mail.text = "We dispute {invoice_number}: line 2 was never done";
        const auto reply = mappings::make_change(mail, 1, mappings::change::op::created, "mail");
        step(now, [&](context& ctx) { return rule_->on_change(reply, ctx); });
    }

    json only_task() {
        std::vector<json> tasks;
        state::for_each_entity(*store_, "task", [&](std::string_view, std::string_view v) {
            tasks.push_back(json::parse(v));
            return true;
        });
        EXPECT_EQ(tasks.size(), 1u);
        return tasks.empty() ? json() : tasks.front();
    }

    std::vector<state::action> task_creates() {
        std::vector<state::action> out;
        for (auto& a : actions()) {
            if (a.kind == "task.create") {
                out.push_back(std::move(a));
            }
        }
        return out;
    }

    // The practice system's organization for the same client (same name and billing domain:
    // the identity map links it to c-1), seen as a change.
    void practice_client_arrives(util::instant now) {
        mappings::client practice;
        practice.id = "practice:client:ORG1";
        practice.display_name = "Acme Dental";
        practice.contact.billing_email = "office@acme.example";
        practice.source = {"practice", "", "ORG1", "1", std::nullopt};
        mappings::change c;
        c.entity_type = "client";
        c.entity_id = practice.id;
        c.version = 1;
        c.source = "practice";
        step(now, [&](context& ctx) {
            if (auto st = state::apply(*ctx.store, ctx.b, "practice", practice); !st.ok()) {
                return st.st;
            }
            return rule_->on_change(c, ctx);
        });
    }
};

TEST_F(followup_task_connector_test,
       a_dispute_task_of_a_linked_client_goes_to_the_practice_system) {
    practice_client_arrives(at("2026-01-05T15:00:00Z"));
    invoice_changed(at("2026-01-06T15:00:00Z"));
    dispute(at("2026-01-07T15:00:00Z"));
    ASSERT_EQ(sequence().current, phase::paused);
    const auto task = only_task();
    const auto creates = task_creates();
    ASSERT_EQ(creates.size(), 1u);
    const auto& a = creates.front();
    EXPECT_EQ(a.connector, "practice");
    EXPECT_EQ(a.id, task["key"].get<std::string>() + "/task");
    const auto p = json::parse(a.payload);
    EXPECT_EQ(p["client_key"], "ORG1");
    EXPECT_EQ(p["title"], task["title"]);
    // The whole task text, the client's words verbatim among it.
    EXPECT_EQ(p["description"], task["body"]);
    EXPECT_NE(p["description"].get<std::string>().find(
                  "We dispute {invoice_number}: line 2 was never done"),
              std::string::npos);
    EXPECT_FALSE(p.contains("client_type"));  // the connector looks the key up
    EXPECT_EQ(task["external"]["state"], "queued");
    EXPECT_EQ(task["external"]["connector"], "practice");
    EXPECT_NE(audit_text().find("\"task_queued\""), std::string::npos);

    // The same client seen again queues nothing more.
    practice_client_arrives(at("2026-01-07T16:00:00Z"));
    EXPECT_EQ(task_creates().size(), 1u);
}

TEST_F(followup_task_connector_test, a_task_waits_for_the_link_and_then_goes_by_itself) {
    invoice_changed(at("2026-01-06T15:00:00Z"));
    dispute(at("2026-01-07T15:00:00Z"));
    auto task = only_task();
    EXPECT_TRUE(task_creates().empty());
    EXPECT_EQ(task["external"]["state"], "waiting");
    EXPECT_NE(
        task["external"]["cause"].get<std::string>().find("not linked to a client in practice"),
        std::string::npos);
    // Listed with the identity exceptions until someone links it.
    auto ex = state::identity::exceptions(*store_);
    ASSERT_TRUE(ex.ok());
    ASSERT_EQ(ex.value.size(), 1u);
    EXPECT_EQ(ex.value[0].kind, "missing");
    EXPECT_EQ(ex.value[0].system, "practice");
    EXPECT_NE(audit_text().find("\"task_waiting\""), std::string::npos);

    practice_client_arrives(at("2026-01-08T15:00:00Z"));
    auto party = state::identity::members_of(*store_, nullptr, "c-1");
    ASSERT_TRUE(party.ok());
    EXPECT_EQ(party.value.size(), 2u);
    auto peer = state::identity::counterpart(*store_, nullptr, "c-1", "practice");
    ASSERT_TRUE(peer.ok());
    EXPECT_TRUE(peer.value.has_value());
    if (peer.value) {
        auto r = state::remote_id(*store_, *peer.value, "practice");
        EXPECT_TRUE(r.ok() && r.value) << *peer.value;
    }
    const auto creates = task_creates();
    ASSERT_EQ(creates.size(), 1u);
    EXPECT_EQ(json::parse(creates.front().payload)["client_key"], "ORG1");
    task = only_task();
    EXPECT_EQ(task["external"]["state"], "queued");
    EXPECT_EQ(task["status"], "open");  // the internal task stays as it was
}

}  // namespace
}  // namespace billsync::workflows::followup
