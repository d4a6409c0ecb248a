#include "workflows/followup/planner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/workflows/followup/test_support.hpp"
#include "workflows/action_key.hpp"

namespace billsync::workflows::followup {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Due Monday 2026-06-01 (New York, EDT = UTC-4): day 1 is Tuesday June 2, day 15 Tuesday June 16,
// day 30 Wednesday July 1.
TEST(FollowupPlanner, StandardCadenceDayByDay) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1",
                            "2026-06-16T13:00:00Z email t2",
                            "2026-06-16T13:00:00Z sms t2",
                            "2026-07-01T13:00:00Z email t3",
                            "2026-07-01T13:00:00Z task t3"));
    EXPECT_EQ(h.st.current, phase::completed);
    EXPECT_THAT(h.timers, IsEmpty());
    // Keys: (rule, invoice, cycle).
    EXPECT_EQ(h.sent[0].action.key, action_key("followup.t1.email", "inv-42", 1));
    EXPECT_EQ(h.sent[2].action.key, action_key("followup.t2.sms", "inv-42", 1));
    EXPECT_EQ(h.sent[2].action.to, "+12125550123");
    EXPECT_EQ(h.sent[3].action.template_id, "standard.touch3");
    EXPECT_THAT(h.sent[3].action.subject, HasSubstr("Account on hold"));
    EXPECT_THAT(h.sent[0].action.body, HasSubstr("$1,250.00"));
    EXPECT_THAT(h.sent[0].action.body, HasSubstr("June 1, 2026"));
    EXPECT_THAT(h.sent[1].action.subject, HasSubstr("15 days past due"));
    // Entry happened at 00:00 local on the day after the due date.
    ASSERT_TRUE(h.logged(decision_kind::enter));
    for (const auto& d : h.log) {
        EXPECT_FALSE(d.cause.empty()) << to_string(d.kind);
    }
}

TEST(FollowupPlanner, EntersAtMidnightAfterDueDate) {
    auto p = make_planner();
    const auto inv = test_invoice();
    auto r = p.observe({}, inv, local(2026, 5, 20, 10));
    ASSERT_THAT(r.decisions, SizeIs(1));
    EXPECT_EQ(r.decisions[0].kind, decision_kind::wait);
    ASSERT_THAT(r.timers, SizeIs(1));
    EXPECT_EQ(r.timers[0].name, "followup/inv-42/enter");
    EXPECT_EQ(r.timers[0].due, local(2026, 6, 2, 0));
    // Observing again changes nothing and logs nothing.
    auto again = p.observe(r.state, inv, local(2026, 5, 21, 10));
    EXPECT_THAT(again.decisions, IsEmpty());
    EXPECT_THAT(again.timers, IsEmpty());
    // The entry timer fires: enter, touch 1 at 09:00.
    auto entered = p.on_timer(r.state, inv, local(2026, 6, 2, 0));
    ASSERT_THAT(entered.decisions, SizeIs(1));
    EXPECT_EQ(entered.decisions[0].kind, decision_kind::enter);
    EXPECT_THAT(entered.actions, IsEmpty());
    EXPECT_THAT(entered.timers,
                ElementsAre(timer_change{false, "followup/inv-42/touch1", local(2026, 6, 2, 9)}));
    EXPECT_EQ(entered.state.current, phase::active);
}

// Retainer: day 5 = Saturday June 6 -> Monday June 8; day 20 = Sunday June 21 -> Monday June 22;
// day 35 = Monday July 6, a coordinator task only (no hold notice).
TEST(FollowupPlanner, RetainerCadenceDayByDay) {
    auto inv = test_invoice();
    inv.client_class = client_class::retainer;
    harness h(make_planner(), inv);
    h.run_days(local(2026, 5, 25, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-08T13:00:00Z email t1",
                            "2026-06-22T13:00:00Z email t2",
                            "2026-06-22T13:00:00Z sms t2",
                            "2026-07-06T13:00:00Z task t3"));
    EXPECT_EQ(h.sent[0].action.template_id, "retainer.touch1");
    for (const auto& s : h.sent) {
        EXPECT_THAT(s.action.subject, Not(HasSubstr("hold")));
        EXPECT_THAT(s.action.body, Not(HasSubstr("hold")));
    }
    EXPECT_EQ(h.st.current, phase::completed);
}

TEST(FollowupPlanner, SmsOnlyWithMobileAndConsent) {
    auto inv = test_invoice();
    inv.sms_consent = false;
    harness h(make_planner(), inv);
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 20, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1", "2026-06-16T13:00:00Z email t2"));
    bool explained = false;
    for (const auto& d : h.log) {
        if (d.kind == decision_kind::touch && d.touch == 2) {
            explained = d.cause.find("no SMS consent") != std::string::npos;
        }
    }
    EXPECT_TRUE(explained);
}

// The ledger shows the invoice paid in full, seen at `at`.
void pay_in_full(harness& h, util::instant at) {
    h.inv.balance = 0;
    h.inv.status = invoice_status::paid;
    h.observe(at);
}

// The sequence ended as paid: cancelled, audited "paid in full", no timer left.
void expect_ended_as_paid(harness& h) {
    EXPECT_EQ(h.st.current, phase::cancelled);
    EXPECT_EQ(h.log.back().kind, decision_kind::cancel);
    EXPECT_THAT(h.log.back().cause, HasSubstr("paid in full"));
    EXPECT_THAT(h.timers, IsEmpty());
}

TEST(FollowupPlanner, PaymentInFullBeforeTouch2Cancels) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 10, 8));
    ASSERT_THAT(h.sent_summary(), ElementsAre("2026-06-02T13:00:00Z email t1"));
    pay_in_full(h, local(2026, 6, 10, 11));
    expect_ended_as_paid(h);
    h.run_days(local(2026, 6, 11, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent, SizeIs(1));
}

// A client disputes before the follow-up began (a reply to a reminder before the due date), then
// pays in full: the paused sequence ends as paid, not left paused with nothing owed.
TEST(FollowupPlanner, PaymentInFullEndsASequencePausedBeforeItEntered) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 5, 28, 8));
    h.now = local(2026, 5, 28, 12);
    h.apply(h.p.on_reply(h.st, h.inv, "dispute", "sms", h.now));
    ASSERT_EQ(h.st.current, phase::paused);
    ASSERT_FALSE(h.st.entered);
    const auto sent = h.sent.size();
    pay_in_full(h, local(2026, 5, 29, 11));
    expect_ended_as_paid(h);
    h.run_days(local(2026, 5, 30, 8), local(2026, 7, 31, 8));
    EXPECT_EQ(h.sent.size(), sent);
}

// A dispute about an invoice already paid in full opens the task for a person, but pauses
// nothing: no paused follow-up is left with nothing owed.
TEST(FollowupPlanner, ADisputeAboutAPaidInvoiceOpensATaskAndPausesNothing) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 5, 28, 8));
    pay_in_full(h, local(2026, 5, 28, 11));
    const auto before = h.st.current;
    ASSERT_NE(before, phase::paused);
    h.now = local(2026, 5, 28, 12);
    h.apply(h.p.on_reply(h.st, h.inv, "I dispute this invoice", "sms", h.now));
    EXPECT_EQ(h.st.current, before);
    ASSERT_FALSE(h.sent.empty());
    EXPECT_EQ(h.sent.back().action.kind, action_kind::task);
    EXPECT_THAT(h.log.back().cause, HasSubstr("is settled (nothing owed), not paused"));
}

TEST(FollowupPlanner, PartialPaymentAcknowledgesAndRestartsFromTouch1) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 10, 8));
    h.inv.balance = 40000;  // $850 paid of $1,250
    h.observe(local(2026, 6, 10, 11));
    ASSERT_THAT(h.sent, SizeIs(2));
    const auto& ack = h.sent[1].action;
    EXPECT_EQ(ack.kind, action_kind::ack);
    EXPECT_EQ(ack.to, "ap@acme.example");
    EXPECT_THAT(ack.body, HasSubstr("remaining balance is $400.00"));
    EXPECT_EQ(ack.key, action_key("followup.ack.email", "inv-42", 2));
    EXPECT_EQ(h.log.back().kind, decision_kind::restart);
    EXPECT_THAT(h.log.back().cause, HasSubstr("$1,250.00 -> $400.00"));
    h.run_days(local(2026, 6, 11, 8), local(2026, 7, 31, 8));
    // Restarted from June 10: touch 1 on day 1 (June 11), 2 on day 15 (June 25), 3 on day 30
    // (July 10).
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1",
                            "2026-06-10T15:00:00Z ack t0",
                            "2026-06-11T13:00:00Z email t1",
                            "2026-06-25T13:00:00Z email t2",
                            "2026-06-25T13:00:00Z sms t2",
                            "2026-07-10T13:00:00Z email t3",
                            "2026-07-10T13:00:00Z task t3"));
    EXPECT_EQ(h.sent[2].action.key, action_key("followup.t1.email", "inv-42", 2));
    EXPECT_THAT(h.sent[3].action.body, HasSubstr("$400.00"));
}

// The client's text reaches the coordinator's task in full and verbatim: placeholders in it are
// not expanded, braces are not unescaped, and sender, channel, time and invoice are named.
TEST(FollowupPlanner, DisputeTaskCarriesTheClientsReplyVerbatim) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.now = local(2026, 6, 5, 12);
    const std::string words = "DISPUTE: {invoice_number} says {balance}, {{firm_name}} {nope";
    h.apply(h.p.on_reply(h.st, h.inv, words, "sms", h.now, "+12125550123"));
    ASSERT_THAT(h.sent, SizeIs(2));
    const auto& body = h.sent[1].action.body;
    EXPECT_THAT(body, HasSubstr("Acme LLC replied"));  // the template part, rendered
    EXPECT_THAT(body,
                HasSubstr("From: +12125550123\nChannel: sms\nReceived: 2026-06-05T16:00:00Z\n"
                          "Invoice: 1042 (inv-42), Acme LLC\n\n" +
                          words + "\n"));
    EXPECT_THAT(body, Not(HasSubstr("DISPUTE: 1042")));
    EXPECT_THAT(forwarded_reply(h.inv, words, "sms", "", h.now),
                HasSubstr("From: (unknown sender)\n"));
}

TEST(FollowupPlanner, DisputePausesAndOpensTask) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.now = local(2026, 6, 5, 12);
    h.apply(h.p.on_reply(h.st, h.inv, "I think this invoice is INCORRECT.", "email", h.now));
    EXPECT_EQ(h.st.current, phase::paused);
    ASSERT_THAT(h.sent, SizeIs(2));
    EXPECT_EQ(h.sent[1].action.kind, action_kind::task);
    EXPECT_EQ(h.sent[1].action.subject, "Billing dispute \u2014 Acme LLC \u2014 Invoice 1042");
    EXPECT_EQ(h.sent[1].action.key, action_key("followup.dispute", "inv-42", 1));
    EXPECT_THAT(h.timers, IsEmpty());
    // A second dispute reply: no second task.
    h.apply(h.p.on_reply(h.st, h.inv, "dispute", "sms", h.now));
    EXPECT_THAT(h.sent, SizeIs(2));
    // Nothing goes out while paused, not even the hold notice.
    h.run_days(local(2026, 6, 6, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent, SizeIs(2));
    // A reply without a keyword changes nothing.
    auto r = h.p.on_reply(h.st, h.inv, "Questions? Indisputable!", "email", h.now);
    EXPECT_EQ(r.state, h.st);
    EXPECT_THAT(r.actions, IsEmpty());
}

TEST(FollowupPlanner, ResumeSkipsTouchesDueWhilePausedWithoutBurst) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.now = local(2026, 6, 5, 12);
    h.apply(h.p.on_reply(h.st, h.inv, "We question this bill", "email", h.now));
    ASSERT_EQ(h.st.current, phase::paused);
    // Resumed on June 20: touch 2 (June 16) fell due while paused and is skipped; touch 3 follows
    // on July 1 as planned.
    h.now = local(2026, 6, 20, 10);
    h.apply(h.p.resume(h.st, h.inv, h.now, "operator"));
    EXPECT_EQ(h.st.current, phase::active);
    EXPECT_EQ(h.st.next_touch, 3U);
    EXPECT_EQ(h.sent.size(), 2U);  // touch 1 and the dispute task: nothing on resume
    h.run_days(local(2026, 6, 21, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1",
                            "2026-06-05T16:00:00Z task t0",
                            "2026-07-01T13:00:00Z email t3",
                            "2026-07-01T13:00:00Z task t3"));
    bool skipped = false;
    for (const auto& d : h.log) {
        skipped = skipped || (d.kind == decision_kind::skip &&
                              d.cause.find("fell due while paused") != std::string::npos);
    }
    EXPECT_TRUE(skipped);
}

TEST(FollowupPlanner, ResumeAfterEveryTouchDateCompletesQuietly) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.now = local(2026, 6, 5, 12);
    h.apply(h.p.on_reply(h.st, h.inv, "dispute", "sms", h.now));
    h.now = local(2026, 7, 15, 10);
    h.apply(h.p.resume(h.st, h.inv, h.now, "operator"));
    EXPECT_EQ(h.st.current, phase::completed);
    h.run_days(local(2026, 7, 16, 8), local(2026, 8, 31, 8));
    EXPECT_EQ(h.sent.size(), 2U);
}

TEST(FollowupPlanner, StopEndsTheSequence) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.now = local(2026, 6, 5, 12);
    h.apply(h.p.stop(h.st, h.inv, h.now, "operator"));
    EXPECT_EQ(h.st.current, phase::stopped);
    EXPECT_THAT(h.timers, IsEmpty());
    h.run_days(local(2026, 6, 6, 8), local(2026, 7, 31, 8));
    EXPECT_EQ(h.sent.size(), 1U);
}

TEST(FollowupPlanner, PaymentPlanClientsNeverEnter) {
    auto s = test_settings();
    s.payment_plan_clients.insert("client-7");
    harness h(make_planner(s));
    h.run_days(local(2026, 5, 25, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent, IsEmpty());
    EXPECT_EQ(h.st.current, phase::excluded);
    ASSERT_THAT(h.log, SizeIs(1));
    EXPECT_EQ(h.log[0].kind, decision_kind::exclude);
    EXPECT_THAT(h.log[0].cause, HasSubstr("payment plan"));

    auto inv = test_invoice();
    inv.payment_plan = true;  // flagged by a customer field or tag
    harness flagged(make_planner(), inv);
    flagged.run_days(local(2026, 5, 25, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(flagged.sent, IsEmpty());
}

// Due Wednesday June 3; first seen on Tuesday June 23, day 20: enters at touch 2 and sends only
// touch 2, then touch 3 on day 30 (Friday July 3).
TEST(FollowupPlanner, AlreadyOverdueEntersAtItsStageWithoutBurst) {
    auto inv = test_invoice();
    inv.due_date = ymd(2026, 6, 3);
    harness h(make_planner(), inv);
    h.observe(local(2026, 6, 23, 10, 30));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-23T14:30:00Z email t2", "2026-06-23T14:30:00Z sms t2"));
    ASSERT_GE(h.log.size(), 3U);
    EXPECT_EQ(h.log[0].kind, decision_kind::enter);
    EXPECT_EQ(h.log[1].kind, decision_kind::skip);
    EXPECT_THAT(h.log[1].cause, HasSubstr("20 days overdue"));
    EXPECT_EQ(h.log[2].kind, decision_kind::touch);
    h.run_days(local(2026, 6, 24, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-23T14:30:00Z email t2",
                            "2026-06-23T14:30:00Z sms t2",
                            "2026-07-03T13:00:00Z email t3",
                            "2026-07-03T13:00:00Z task t3"));
}

TEST(FollowupPlanner, AlreadyOverdueOutsideWindowWaitsForIt) {
    auto inv = test_invoice();
    inv.due_date = ymd(2026, 6, 3);
    harness h(make_planner(), inv);
    h.observe(local(2026, 6, 23, 22));  // 22:00, after hours
    EXPECT_THAT(h.sent, IsEmpty());
    EXPECT_EQ(h.timers.at("followup/inv-42/touch2"), local(2026, 6, 24, 9));
    h.run_until(local(2026, 6, 24, 12));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-24T13:00:00Z email t2", "2026-06-24T13:00:00Z sms t2"));
}

TEST(FollowupPlanner, DaemonDownAcrossTwoTouchesSendsOnlyTheLatest) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    // Nothing runs from June 5 to July 2; then the touch-2 timer fires late.
    h.timers.clear();
    h.now = local(2026, 7, 2, 10);
    h.apply(h.p.on_timer(h.st, h.inv, h.now));
    h.run_days(local(2026, 7, 3, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1",
                            "2026-07-02T14:00:00Z email t3",
                            "2026-07-02T14:00:00Z task t3"));
    EXPECT_EQ(h.st.current, phase::completed);
}

TEST(FollowupPlanner, LateTimerOutsideWindowDefers) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 2, 8));
    ASSERT_EQ(h.timers.at("followup/inv-42/touch1"), local(2026, 6, 2, 9));
    h.now = local(2026, 6, 2, 20);  // the 09:00 timer fires at 20:00 (daemon was down)
    h.timers.clear();
    h.apply(h.p.on_timer(h.st, h.inv, h.now));
    EXPECT_THAT(h.sent, IsEmpty());
    EXPECT_EQ(h.log.back().kind, decision_kind::defer);
    EXPECT_EQ(h.timers.at("followup/inv-42/touch1"), local(2026, 6, 3, 9));
}

TEST(FollowupPlanner, DueDateMovedLaterReschedules) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.inv.due_date = ymd(2026, 6, 30);
    h.observe(local(2026, 6, 5, 11));
    EXPECT_EQ(h.st.current, phase::waiting);
    EXPECT_TRUE(h.logged(decision_kind::reschedule));
    EXPECT_EQ(h.timers.at("followup/inv-42/enter"), local(2026, 7, 1, 0));
    EXPECT_FALSE(h.timers.contains("followup/inv-42/touch2"));
    h.run_days(local(2026, 6, 6, 8), local(2026, 7, 20, 8));
    // A new cycle from the new due date: touch 1 on July 1, touch 2 on July 15.
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1",
                            "2026-07-01T13:00:00Z email t1",
                            "2026-07-15T13:00:00Z email t2",
                            "2026-07-15T13:00:00Z sms t2"));
    EXPECT_NE(h.sent[0].action.key, h.sent[1].action.key);
}

TEST(FollowupPlanner, DueDateMovedButStillOverdueMovesTheNextTouch) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.inv.due_date = ymd(2026, 6, 3);  // later, still overdue: touch 2 on day 15 = June 18
    h.observe(local(2026, 6, 5, 11));
    EXPECT_EQ(h.st.current, phase::active);
    EXPECT_EQ(h.timers.at("followup/inv-42/touch2"), local(2026, 6, 18, 9));
    h.run_days(local(2026, 6, 6, 8), local(2026, 6, 30, 8));
    EXPECT_THAT(h.sent_summary(),
                ElementsAre("2026-06-02T13:00:00Z email t1",
                            "2026-06-18T13:00:00Z email t2",
                            "2026-06-18T13:00:00Z sms t2"));
}

TEST(FollowupPlanner, VoidEnds) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.inv.status = invoice_status::voided;
    h.observe(local(2026, 6, 5, 11));
    EXPECT_EQ(h.st.current, phase::cancelled);
    EXPECT_THAT(h.log.back().cause, HasSubstr("voided"));
    EXPECT_THAT(h.timers, IsEmpty());
    h.inv.status = invoice_status::open;  // even if it were reopened: ended stays ended
    h.run_days(local(2026, 6, 6, 8), local(2026, 7, 31, 8));
    EXPECT_EQ(h.sent.size(), 1U);
}

TEST(FollowupPlanner, CreditedToZeroEnds) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.inv.balance = 0;  // a credit memo; status stays open
    h.observe(local(2026, 6, 5, 11));
    EXPECT_EQ(h.st.current, phase::cancelled);
    EXPECT_THAT(h.log.back().cause, HasSubstr("paid or credited"));
}

TEST(FollowupPlanner, BalanceChangedBeforeTouchReplansWithoutSending) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 15, 8));
    ASSERT_EQ(h.sent.size(), 1U);
    // The source of truth shows a payment that the sync has not delivered yet.
    auto fresh = h.inv;
    fresh.balance = 25000;
    EXPECT_TRUE(balance_changed(h.st, fresh));
    EXPECT_FALSE(balance_changed(h.st, h.inv));
    h.timers.clear();
    h.now = local(2026, 6, 16, 9);
    auto r = h.p.on_timer(h.st, fresh, h.now);
    ASSERT_FALSE(r.decisions.empty());
    EXPECT_EQ(r.decisions[0].kind, decision_kind::replan);
    EXPECT_THAT(r.decisions[0].cause, HasSubstr("touch not sent"));
    for (const auto& a : r.actions) {
        EXPECT_EQ(a.kind, action_kind::ack);  // the acknowledgement, never touch 2
    }
    EXPECT_EQ(r.state.next_touch, 1U);
}

TEST(FollowupPlanner, BalanceRoseBeforeTouchSendsOnlyAfterReRead) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 15, 8));
    h.inv.balance = 150000;  // amended upward
    h.run_until(local(2026, 6, 16, 9));
    // The first firing re-planned (no touch); the immediate re-fire with the same balance sent.
    ASSERT_EQ(h.sent.size(), 3U);
    EXPECT_THAT(h.sent[1].action.body, HasSubstr("$1,500.00"));
    EXPECT_TRUE(h.logged(decision_kind::replan));
}

TEST(FollowupPlanner, ReplayingAStepPlansTheSameKeys) {
    auto p = make_planner();
    const auto inv = test_invoice();
    auto r1 = p.observe({}, inv, local(2026, 6, 16, 10));
    auto r2 = p.observe({}, inv, local(2026, 6, 16, 10));
    ASSERT_FALSE(r1.actions.empty());
    EXPECT_EQ(r1.actions, r2.actions);
    EXPECT_EQ(r1.state, r2.state);
}

TEST(FollowupPlanner, StateRoundTrips) {
    harness h(make_planner());
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 5, 8));
    h.now = local(2026, 6, 5, 12);
    h.apply(h.p.on_reply(h.st, h.inv, "dispute", "sms", h.now));
    sequence_state back;
    ASSERT_TRUE(decode(encode(h.st), back));
    EXPECT_EQ(back, h.st);
    EXPECT_FALSE(decode("{}", back));
    EXPECT_FALSE(decode("not json", back));
}

TEST(FollowupPlanner, AuditLineCarriesTheCause) {
    const auto line =
        audit_line("inv-42", {decision_kind::touch, 2, "touch 2 via email"}, utc(2026, 6, 16, 13));
    EXPECT_EQ(line,
              R"({"at":"2026-06-16T13:00:00Z","cause":"touch 2 via email","decision":"touch",)"
              R"("invoice":"inv-42","rule":"followup","touch":2})");
}

TEST(FollowupPlanner, MissingPaymentLinkSkipsTheChannelInsteadOfABlank) {
    auto s = test_settings();
    auto parsed = message_template::parse("Pay here: {payment_link}");
    s.touches["standard.touch1"].email_body = std::get<message_template>(parsed);
    s.touches["standard.touch1"].email_body_with_link = {};  // configured: no default variant
    harness h(make_planner(s));
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 3, 8));
    EXPECT_THAT(h.sent, IsEmpty());
    bool explained = false;
    for (const auto& d : h.log) {
        explained = explained || (d.kind == decision_kind::skip &&
                                  d.cause.find("{payment_link}") != std::string::npos);
    }
    EXPECT_TRUE(explained);
    h.inv.payment_link = "https://pay.example/i/1042";
    harness with_link(make_planner(s), h.inv);
    with_link.run_days(local(2026, 5, 25, 8), local(2026, 6, 3, 8));
    ASSERT_EQ(with_link.sent.size(), 1U);
    EXPECT_EQ(with_link.sent[0].action.body, "Pay here: https://pay.example/i/1042");
}

// The default touch emails say "Pay online: <link>" when the invoice has a payment link (a Xero
// online invoice, a QBO InvoiceLink) and read as before when it has none.
TEST(FollowupPlanner, DefaultTouchEmailCarriesThePaymentLinkOnlyWhenThereIsOne) {
    harness without(make_planner());
    without.run_days(local(2026, 5, 25, 8), local(2026, 6, 3, 8));
    ASSERT_EQ(without.sent.size(), 1U);
    EXPECT_THAT(without.sent[0].action.body, Not(HasSubstr("Pay online")));
    EXPECT_THAT(without.sent[0].action.body, HasSubstr("friendly reminder"));

    auto inv = test_invoice();
    inv.payment_link = "https://in.xero.com/abc";
    harness with_link(make_planner(), inv);
    with_link.run_days(local(2026, 5, 25, 8), local(2026, 6, 3, 8));
    ASSERT_EQ(with_link.sent.size(), 1U);
    EXPECT_THAT(with_link.sent[0].action.body, HasSubstr("Pay online: https://in.xero.com/abc"));
    EXPECT_THAT(with_link.sent[0].action.body, HasSubstr("friendly reminder"));
    EXPECT_EQ(with_link.sent[0].action.subject, without.sent[0].action.subject);
}

TEST(FollowupPlanner, MakeRejectsUnknownZone) {
    auto s = test_settings();
    s.time_zone = "Mars/Olympus";
    std::string error;
    EXPECT_FALSE(planner::make(s, "UTC", &error));
    EXPECT_THAT(error, HasSubstr("Mars/Olympus"));
    s.time_zone.clear();
    EXPECT_TRUE(planner::make(s, "America/Chicago"));
}

}  // namespace
}  // namespace billsync::workflows::followup
