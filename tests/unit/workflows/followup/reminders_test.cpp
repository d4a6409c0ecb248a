// Courtesy reminders before and on the due date, and quiet days (the firm's holidays), on the
// simulated clock: the planner alone, through the harness that plays the caller's part.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <variant>

#include "tests/unit/workflows/followup/test_support.hpp"
#include "workflows/action_key.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::workflows::followup {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Standard clients: 7 days before and on the due date, email only.
settings with_reminders(std::vector<std::int32_t> days = {7, 0}) {
    auto s = test_settings();
    for (const auto d : days) {
        s.reminders[client_class::standard].push_back({.days_before = d});
    }
    return s;
}

std::vector<std::string> summary(const harness& h) {
    std::vector<std::string> out;
    for (const auto& s : h.sent) {
        out.push_back(util::format_rfc3339(s.at) + " " + std::string(to_string(s.action.kind)) +
                      (s.action.reminder != 0 ? " r" + std::to_string(s.action.reminder)
                                              : " t" + std::to_string(s.action.touch)));
    }
    return out;
}

std::vector<std::string> causes(const harness& h, decision_kind k) {
    std::vector<std::string> out;
    for (const auto& d : h.log) {
        if (d.kind == k) {
            out.push_back(d.cause);
        }
    }
    return out;
}

// Due Monday 2026-06-01: 7 days before is Monday May 25, then the due date itself; both at 09:00
// New York (13:00Z). The overdue touches follow as before.
TEST(FollowupReminders, SevenDaysBeforeAndOnTheDueDateThenTheTouches) {
    harness h(make_planner(with_reminders()));
    h.run_days(local(2026, 5, 18, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(summary(h),
                ElementsAre("2026-05-25T13:00:00Z email r1",
                            "2026-06-01T13:00:00Z email r2",
                            "2026-06-02T13:00:00Z email t1",
                            "2026-06-16T13:00:00Z email t2",
                            "2026-06-16T13:00:00Z sms t2",
                            "2026-07-01T13:00:00Z email t3",
                            "2026-07-01T13:00:00Z task t3"));
    const auto& r1 = h.sent[0].action;
    EXPECT_EQ(r1.key, action_key("followup.r1.email", "inv-42", reminder_version(ymd(2026, 6, 1))));
    EXPECT_EQ(r1.template_id, "standard.reminder");
    EXPECT_EQ(r1.touch, 0U);
    EXPECT_EQ(r1.to, "ap@acme.example");
    EXPECT_THAT(r1.subject, HasSubstr("is due on June 1, 2026"));
    EXPECT_THAT(r1.body, HasSubstr("$1,250.00"));
    EXPECT_NE(h.sent[1].action.key, r1.key);
    const auto reminded = causes(h, decision_kind::remind);
    ASSERT_EQ(reminded.size(), 2U);
    EXPECT_THAT(reminded[0], HasSubstr("courtesy reminder 1 (7 days before the due date)"));
    EXPECT_THAT(reminded[0], HasSubstr("via email"));
    EXPECT_THAT(reminded[1], HasSubstr("courtesy reminder 2 (on the due date)"));
    EXPECT_EQ(h.st.reminders_done, 2U);
}

TEST(FollowupReminders, PlannedOnFirstSightWithATimerAndACause) {
    auto p = make_planner(with_reminders());
    auto r = p.observe({}, test_invoice(), local(2026, 5, 20, 10));
    EXPECT_THAT(r.timers,
                ElementsAre(timer_change{false, "followup/inv-42/remind1", local(2026, 5, 25, 9)}));
    ASSERT_EQ(r.decisions.size(), 1U);
    EXPECT_EQ(r.decisions[0].kind, decision_kind::wait);
    EXPECT_THAT(r.decisions[0].cause, HasSubstr("courtesy reminder 1"));
    EXPECT_EQ(r.state.next_reminder, 1U);
    // Observing again changes nothing and logs nothing.
    auto again = p.observe(r.state, test_invoice(), local(2026, 5, 21, 10));
    EXPECT_THAT(again.decisions, IsEmpty());
    EXPECT_THAT(again.timers, IsEmpty());
    // The state survives encode/decode with the reminder fields.
    sequence_state back;
    ASSERT_TRUE(decode(encode(r.state), back));
    EXPECT_EQ(back, r.state);
}

TEST(FollowupReminders, SkippedForAutoPayClients) {
    auto inv = test_invoice();
    inv.autopay = true;
    harness h(make_planner(with_reminders()), inv);
    h.run_days(local(2026, 5, 18, 8), local(2026, 6, 3, 8));
    EXPECT_THAT(summary(h), ElementsAre("2026-06-02T13:00:00Z email t1"));
    EXPECT_THAT(causes(h, decision_kind::skip),
                ElementsAre(HasSubstr("courtesy reminders not sent: client Acme LLC (client-7) is "
                                      "on auto-pay")));
}

TEST(FollowupReminders, SkippedOncePaidAndTheTimerCancelled) {
    harness h(make_planner(with_reminders()));
    h.run_days(local(2026, 5, 18, 8), local(2026, 5, 27, 8));
    EXPECT_THAT(summary(h), ElementsAre("2026-05-25T13:00:00Z email r1"));
    EXPECT_EQ(h.timers.count("followup/inv-42/remind2"), 1U);
    h.inv.balance = 0;
    h.inv.status = invoice_status::paid;
    h.run_days(local(2026, 5, 28, 8), local(2026, 7, 31, 8));
    EXPECT_THAT(summary(h), ElementsAre("2026-05-25T13:00:00Z email r1"));
    EXPECT_THAT(h.timers, IsEmpty());
    EXPECT_THAT(causes(h, decision_kind::cancel),
                ElementsAre(HasSubstr("invoice 1042 paid in full; no follow-up needed")));
}

TEST(FollowupReminders, PaidRightBeforeTheTimerFiresSendsNothing) {
    auto p = make_planner(with_reminders({0}));
    auto inv = test_invoice();
    auto planned = p.observe({}, inv, local(2026, 5, 29, 10));
    ASSERT_EQ(planned.state.timer, "followup/inv-42/remind1");
    // The caller re-reads the invoice before the timer: it was paid.
    inv.status = invoice_status::paid;
    inv.balance = 0;
    auto fired = p.on_timer(planned.state, inv, local(2026, 6, 1, 9));
    EXPECT_THAT(fired.actions, IsEmpty());
    EXPECT_EQ(fired.state.reminders_done, 0U);
}

// Days before the due date that land on a weekend move to the next opening like touches do; a
// due-date reminder whose next opening is after the due date is skipped, with its cause.
TEST(FollowupReminders, WeekendMovesAndSkipsWhenTheWindowOpensOnlyAfterTheDueDate) {
    // Due Monday June 1: 2 days before is Saturday May 30 -> Monday June 1 09:00.
    harness monday(make_planner(with_reminders({2})));
    monday.run_days(local(2026, 5, 25, 8), local(2026, 6, 1, 20));
    EXPECT_THAT(summary(monday), ElementsAre("2026-06-01T13:00:00Z email r1"));

    // Due Saturday June 6: on-the-due-date would be Monday June 8, after entry: skipped.
    auto inv = test_invoice();
    inv.due_date = ymd(2026, 6, 6);
    harness saturday(make_planner(with_reminders({0})), inv);
    saturday.run_days(local(2026, 6, 1, 8), local(2026, 6, 7, 20));
    EXPECT_THAT(summary(saturday), IsEmpty());
    EXPECT_THAT(causes(saturday, decision_kind::skip),
                ElementsAre(HasSubstr("courtesy reminder 1 (on the due date) not planned: the "
                                      "sending window does not open")));
}

// An invoice first seen after a reminder's day: that reminder is skipped, not sent late; the
// next one still goes out on its day.
TEST(FollowupReminders, FirstSeenLateSkipsPastRemindersWithoutABurst) {
    harness h(make_planner(with_reminders({10, 7, 0})));
    h.run_days(local(2026, 5, 27, 11), local(2026, 6, 1, 20));
    EXPECT_THAT(summary(h), ElementsAre("2026-06-01T13:00:00Z email r3"));
    EXPECT_THAT(causes(h, decision_kind::skip),
                ElementsAre(HasSubstr("courtesy reminder 1 not sent: a later reminder is due"),
                            HasSubstr("courtesy reminder 2 (7 days before the due date) not "
                                      "sent: its day 2026-05-25 passed")));
}

TEST(FollowupReminders, PerCadenceRetainerClientsUseTheirOwnList) {
    auto s = with_reminders({7});
    s.reminders[client_class::retainer] = {{.days_before = 3, .email = true, .sms = true}};
    auto inv = test_invoice();
    inv.client_class = client_class::retainer;
    harness h(make_planner(s), inv);
    h.run_days(local(2026, 5, 18, 8), local(2026, 5, 31, 8));
    // 3 days before Monday June 1 is Friday May 29.
    EXPECT_THAT(summary(h),
                ElementsAre("2026-05-29T13:00:00Z email r1", "2026-05-29T13:00:00Z sms r1"));
    EXPECT_EQ(h.sent[0].action.template_id, "retainer.reminder");
    EXPECT_THAT(h.sent[1].action.body, HasSubstr("retainer invoice 1042"));
}

// The due date moves later before it passes: the reminders are planned again for the new date,
// under new idempotency keys (one set per due date).
TEST(FollowupReminders, DueDateMovedLaterReplansTheReminders) {
    harness h(make_planner(with_reminders({0})));
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 1, 20));
    ASSERT_THAT(summary(h), ElementsAre("2026-06-01T13:00:00Z email r1"));
    h.inv.due_date = ymd(2026, 6, 8);
    h.run_days(local(2026, 6, 2, 8), local(2026, 6, 8, 20));
    EXPECT_THAT(summary(h),
                ElementsAre("2026-06-01T13:00:00Z email r1", "2026-06-08T13:00:00Z email r1"));
    EXPECT_NE(h.sent[0].action.key, h.sent[1].action.key);
}

// Quiet days: a firm holiday moves a touch like a weekend does. Touch 1 of an invoice due Monday
// June 1 falls on Tuesday June 2; with June 2 and 3 as holidays it goes out Thursday June 4.
TEST(FollowupQuietDays, AHolidayMovesATouchToTheNextBusinessDay) {
    auto s = test_settings();
    s.window.holidays = {date::sys_days(ymd(2026, 6, 2)), date::sys_days(ymd(2026, 6, 3))};
    harness h(make_planner(s));
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 10, 8));
    EXPECT_THAT(h.sent_summary(), ElementsAre("2026-06-04T13:00:00Z email t1"));
}

TEST(FollowupQuietDays, AHolidayMovesACourtesyReminder) {
    auto s = with_reminders({7});
    s.window.holidays = {date::sys_days(ymd(2026, 5, 25))};  // Memorial Day
    harness h(make_planner(s));
    h.run_days(local(2026, 5, 18, 8), local(2026, 5, 31, 8));
    EXPECT_THAT(summary(h), ElementsAre("2026-05-26T13:00:00Z email r1"));
}

// Retainer touch 1 carries the auto-pay enrollment offer when a link is configured (the default
// text the configuration picks then); the other touches and the standard cadence do not.
TEST(FollowupAutopayOffer, RetainerTouchOneCarriesTheLink) {
    auto s = test_settings();
    s.autopay_link = "https://pay.firm.example/autopay";
    auto parsed =
        message_template::parse(default_template_text("retainer.touch1", "email_body", true));
    ASSERT_TRUE(std::holds_alternative<message_template>(parsed));
    s.touches["retainer.touch1"].email_body = std::get<message_template>(std::move(parsed));
    auto inv = test_invoice();
    inv.client_class = client_class::retainer;
    harness h(make_planner(s), inv);
    h.run_days(local(2026, 5, 25, 8), local(2026, 6, 23, 8));
    ASSERT_THAT(h.sent_summary(),
                ElementsAre("2026-06-08T13:00:00Z email t1",
                            "2026-06-22T13:00:00Z email t2",
                            "2026-06-22T13:00:00Z sms t2"));
    EXPECT_THAT(h.sent[0].action.body,
                HasSubstr("enroll in auto-pay at https://pay.firm.example/autopay"));
    EXPECT_THAT(h.sent[1].action.body, Not(HasSubstr("auto-pay")));
    // Without the link the default text has no offer (and no placeholder left to fail).
    EXPECT_EQ(default_template_text("retainer.touch1", "email_body", false),
              default_template_text("retainer.touch1", "email_body"));
    EXPECT_EQ(default_template_text("retainer.touch1", "email_body").find("autopay"),
              std::string_view::npos);
}

}  // namespace
}  // namespace billsync::workflows::followup
