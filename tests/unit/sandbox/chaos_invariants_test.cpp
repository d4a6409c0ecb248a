// The chaos runner's invariants (sandbox/chaos_invariants.hpp), on hand-made records: each one
// holds for a run that kept it and names the first thing that broke it.

#include "sandbox/chaos_invariants.hpp"

#include <gtest/gtest.h>

#include "workflows/action_key.hpp"

namespace billsync::sandbox {
namespace {

using namespace std::chrono_literals;

util::instant at(const char* text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

// One overdue invoice (due Sunday 2026-01-04, so touch 1 falls due on Monday the 5th and opens
// at 09:00 in New York, 14:00Z) that billsync entered at the start of the run.
chaos_record one_invoice() {
    chaos_record r;
    r.time_zone = "America/New_York";
    r.ready_at_end = true;
    r.cadences["standard"] = {{1, true, false}, {15, true, true}, {30, true, false}};
    chaos_invoice inv;
    inv.id = "qbo:1:invoice:7";
    inv.balance_minor = 10000;
    inv.email = "ap@birchlaw.example";
    inv.mobile = "+14155550101";
    inv.due = std::chrono::sys_days{std::chrono::year{2026} / 1 / 4};
    r.invoices.push_back(inv);
    r.active_sequences.push_back({inv.id, 10000, "active"});
    r.audit.push_back({at("2026-01-05T08:00:00Z"), "followup", inv.id, "enter", 0, "", "entered"});
    r.touches_until = at("2026-01-09T08:00:00Z");
    return r;
}

std::string touch_key(std::uint32_t touch, const char* channel, std::uint64_t cycle = 1) {
    return workflows::action_key(
        "followup.t" + std::to_string(touch) + "." + channel, "qbo:1:invoice:7", cycle);
}

chaos_message email(std::string delivery_id) {
    return {"email", "ap@birchlaw.example", std::move(delivery_id), "Reminder", {}};
}

TEST(chaos_invariants, a_touch_that_fell_due_and_was_sent_once_passes) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    EXPECT_FALSE(check_invariants(r).has_value());
    const auto c = coverage(r);
    EXPECT_EQ(c.touches_due, 1U);
    EXPECT_EQ(c.touches_sent, 1U);
    EXPECT_EQ(c.touches_skipped, 0U);
}

TEST(chaos_invariants, a_touch_that_fell_due_and_never_went_out_is_a_violation) {
    const auto v = check_invariants(one_invoice());
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "touch_due_sent_or_skipped");
    EXPECT_NE(v->detail.find("touch 1 of invoice qbo:1:invoice:7 (cycle 1) by email"),
              std::string::npos)
        << v->detail;
}

TEST(chaos_invariants, a_touch_skipped_with_an_audited_cause_passes) {
    // Paid the morning the touch fell due: the sequence was cancelled.
    auto paid = one_invoice();
    paid.audit.push_back(
        {at("2026-01-05T12:00:00Z"), "followup", paid.invoices[0].id, "cancel", 0, "", "paid"});
    EXPECT_FALSE(check_invariants(paid).has_value());
    // Dropped as stale when it was about to go out.
    auto dropped = one_invoice();
    dropped.audit.push_back({at("2026-01-05T14:00:00Z"),
                             "",
                             "",
                             "action_dropped",
                             0,
                             touch_key(1, "email"),
                             "the decision no longer holds: paid"});
    EXPECT_FALSE(check_invariants(dropped).has_value());
    // SendGrid's answer was lost: recorded as sent, never resent (at most once).
    auto unknown = one_invoice();
    unknown.audit.push_back({at("2026-01-05T14:00:00Z"),
                             "",
                             "",
                             "action_done",
                             0,
                             touch_key(1, "email"),
                             "outcome unknown (reset): the message may have been accepted"});
    EXPECT_FALSE(check_invariants(unknown).has_value());
    // In flight when the daemon was killed: reconciled as sent, for the same reason.
    auto killed = one_invoice();
    killed.audit.push_back({at("2026-01-05T14:00:01Z"),
                            "",
                            "",
                            "reconciled_happened",
                            0,
                            touch_key(1, "email"),
                            "outcome unknown: SendGrid cannot be asked; not resent"});
    EXPECT_FALSE(check_invariants(killed).has_value());
    // Reconciled as sent without that reason: the vendor never had it, nothing explains it.
    killed.audit.back().text.clear();
    EXPECT_TRUE(check_invariants(killed).has_value());
}

TEST(chaos_invariants, a_touch_owed_by_a_late_entry_falls_due_when_the_invoice_enters) {
    // Due 2025-12-24: touch 1's day passed before the run; billsync enters it at the start and
    // finds it paid in full at once.
    auto r = one_invoice();
    r.invoices[0].due = std::chrono::sys_days{std::chrono::year{2025} / 12 / 24};
    r.audit.push_back(
        {at("2026-01-05T08:00:00Z"), "followup", r.invoices[0].id, "cancel", 0, "", "paid"});
    EXPECT_FALSE(check_invariants(r).has_value());
}

TEST(chaos_invariants, a_cause_audited_long_after_the_touch_fell_due_does_not_excuse_it) {
    auto r = one_invoice();
    r.audit.push_back(
        {at("2026-01-08T20:00:00Z"), "followup", r.invoices[0].id, "cancel", 0, "", "paid"});
    const auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "touch_due_sent_or_skipped");
}

TEST(chaos_invariants, a_channel_skipped_in_the_touch_line_is_audited) {
    // Touch 2 (email + SMS) falls due on the 19th; the SMS was skipped (opted out).
    auto r = one_invoice();
    r.touches_until = at("2026-01-21T08:00:00Z");
    r.messages.push_back(email(touch_key(1, "email")));
    r.messages.push_back(email(touch_key(2, "email")));
    auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_NE(v->detail.find("touch 2 of invoice qbo:1:invoice:7 (cycle 1) by sms"),
              std::string::npos)
        << v->detail;
    r.audit.push_back({at("2026-01-19T14:00:00Z"),
                       "followup",
                       r.invoices[0].id,
                       "touch",
                       2,
                       "",
                       "touch 2 via email; not sent: sms: no SMS consent (or opted out)"});
    EXPECT_FALSE(check_invariants(r).has_value());
}

TEST(chaos_invariants, a_restarted_sequence_owes_its_new_touches) {
    // A partial payment on the 6th restarts the cycle: touch 1 of cycle 2 falls due on the 7th.
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.audit.push_back(
        {at("2026-01-06T15:00:00Z"), "followup", r.invoices[0].id, "restart", 0, "", "partial"});
    auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_NE(v->detail.find("(cycle 2)"), std::string::npos) << v->detail;
    r.messages.push_back(email(touch_key(1, "email", 2)));
    EXPECT_FALSE(check_invariants(r).has_value());
}

TEST(chaos_invariants, a_restart_before_the_window_opens_replaces_the_touch_due_that_day) {
    // Touch 2 (day 3) falls due on the 7th at midnight and would go out at 09:00 local (14:00Z);
    // a partial payment at 03:00 local restarts the cadence first: the old touch 2 is not owed,
    // the new cycle's touch 1 (the 8th) is.
    auto r = one_invoice();
    r.cadences["standard"] = {{1, true, false}, {3, true, false}};
    r.messages.push_back(email(touch_key(1, "email")));
    r.messages.push_back(email(touch_key(1, "email", 2)));
    auto night = r;
    night.audit.push_back(
        {at("2026-01-07T08:00:00Z"), "followup", r.invoices[0].id, "restart", 0, "", "partial"});
    EXPECT_FALSE(check_invariants(night).has_value());
    // Paid in part after the window opened: touch 2 was owed that morning.
    auto afternoon = r;
    afternoon.audit.push_back(
        {at("2026-01-07T15:00:00Z"), "followup", r.invoices[0].id, "restart", 0, "", "partial"});
    const auto v = check_invariants(afternoon);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "touch_due_sent_or_skipped");
    EXPECT_NE(v->detail.find("touch 2 of invoice"), std::string::npos) << v->detail;
    EXPECT_NE(v->detail.find("(cycle 1)"), std::string::npos) << v->detail;
}

TEST(chaos_invariants, an_overdue_invoice_that_never_entered_is_a_violation) {
    auto r = one_invoice();
    r.audit.clear();
    auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_NE(v->detail.find("never entered"), std::string::npos) << v->detail;
    // Paid in full at the start of the run, before billsync's first sync saw it overdue.
    auto paid = r;
    paid.run_start = at("2026-01-05T08:00:00Z");
    paid.invoices[0].balance_minor = 0;
    paid.invoices[0].paid_in_full_at = at("2026-01-05T08:00:00Z");
    paid.active_sequences[0].phase = "waiting";
    EXPECT_FALSE(check_invariants(paid).has_value());
    // Paid days after the touch fell due: billsync should have entered it first.
    paid.invoices[0].paid_in_full_at = at("2026-01-08T08:00:00Z");
    EXPECT_TRUE(check_invariants(paid).has_value());
    r.audit.push_back({at("2026-01-05T08:00:00Z"),
                       "followup",
                       r.invoices[0].id,
                       "exclude",
                       0,
                       "",
                       "client is on a payment plan"});
    EXPECT_FALSE(check_invariants(r).has_value());
}

// A client who paid in full gets no touch after it; once billsync invoices them again (an
// invoicing milestone), the new invoice's touches are due like any other's.
TEST(chaos_invariants, a_client_invoiced_again_after_paying_in_full_owes_again) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.paid_in_full["ap@birchlaw.example"] = at("2026-01-06T08:00:00Z");
    r.attempts.push_back({"email",
                          "ap@birchlaw.example",
                          "",
                          "Invoice 1041 is past due",
                          at("2026-01-20T15:00:00Z")});
    auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "no_touch_after_payment_in_full");
    r.owes_again["ap@birchlaw.example"] = at("2026-01-08T08:00:00Z");
    EXPECT_FALSE(check_invariants(r).has_value());
    // Before the new invoice existed the client still owed nothing.
    r.attempts.push_back({"email",
                          "ap@birchlaw.example",
                          "",
                          "Invoice 1007 is past due",
                          at("2026-01-07T15:00:00Z")});
    v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "no_touch_after_payment_in_full");
}

TEST(chaos_invariants, a_paid_invoice_whose_sequence_never_entered_is_not_an_open_followup) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.invoices[0].balance_minor = 0;
    r.active_sequences[0].phase = "waiting";
    EXPECT_FALSE(check_invariants(r).has_value());
    r.active_sequences[0].phase = "excluded";  // a payment-plan client's
    EXPECT_FALSE(check_invariants(r).has_value());
    r.active_sequences[0].phase = "active";
    const auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "acknowledged_webhooks_reflected");
}

TEST(chaos_invariants, every_completed_work_item_has_exactly_one_drafted_entry) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.completed_work_items = {"wi1", "wi2"};
    r.withdrawn_work_items = {"wi3"};
    r.drafted_entries = {{"wi1", 1}, {"wi2", 1}};
    EXPECT_FALSE(check_invariants(r).has_value());

    auto twice = r;
    twice.drafted_entries["wi2"] = 2;
    auto v = check_invariants(twice);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "time_drafted_once");
    EXPECT_NE(v->detail.find("wi2 has 2"), std::string::npos) << v->detail;

    auto missing = r;
    missing.drafted_entries.erase("wi1");
    v = check_invariants(missing);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "time_drafted_once");

    auto withdrawn = r;
    withdrawn.drafted_entries["wi3"] = 1;
    v = check_invariants(withdrawn);
    ASSERT_TRUE(v.has_value());
    EXPECT_NE(v->detail.find("re-opened"), std::string::npos) << v->detail;
}

TEST(chaos_invariants, an_acknowledged_relay_must_have_joined_its_client) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.relayed_clients["taxdome:client:7350004"] = "qbo:1:client:5";
    const std::set<std::string> party = {"taxdome:client:7350004", "qbo:1:client:5"};
    r.party_of = {{"taxdome:client:7350004", party}, {"qbo:1:client:5", party}};
    EXPECT_FALSE(check_invariants(r).has_value());
    EXPECT_EQ(coverage(r).relays, 1U);

    auto alone = r;
    alone.party_of.clear();  // standing alone: the relay's change is not reflected
    auto v = check_invariants(alone);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "acknowledged_webhooks_reflected");
    EXPECT_NE(v->detail.find("taxdome:client:7350004"), std::string::npos) << v->detail;
    EXPECT_NE(v->detail.find("does not have it"), std::string::npos) << v->detail;
    EXPECT_EQ(coverage(alone).relays, 0U);

    auto elsewhere = r;
    const std::set<std::string> other = {"taxdome:client:7350004", "qbo:1:client:9"};
    elsewhere.party_of["taxdome:client:7350004"] = other;
    v = check_invariants(elsewhere);
    ASSERT_TRUE(v.has_value());
    EXPECT_NE(v->detail.find("with others only"), std::string::npos) << v->detail;
}

TEST(chaos_invariants, every_ledger_must_name_its_invoices_as_the_daemon_does) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    chaos_invoice xero;
    xero.id = "xero:t1:invoice:abc";
    xero.balance_minor = 5000;
    xero.email = "ap@kauricafe.example";
    xero.due = std::chrono::sys_days{std::chrono::year{2026} / 2 / 20};  // not due in the run
    r.invoices.push_back(xero);
    r.active_sequences.push_back({xero.id, 5000, "waiting"});
    EXPECT_FALSE(check_invariants(r).has_value());

    // The daemon names the second ledger's invoices otherwise: the first ledger's agreement
    // does not hide it.
    auto apart = r;
    apart.active_sequences.back().invoice = "xero:invoice:abc";
    const auto v = check_invariants(apart);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "acknowledged_webhooks_reflected");
    EXPECT_NE(v->detail.find("ledger xero:t1"), std::string::npos) << v->detail;
}

TEST(chaos_invariants, no_late_fee_on_an_invoice_paid_in_full_before_it_was_assessed) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.invoices[0].balance_minor = 0;
    r.invoices[0].paid_in_full_at = at("2026-01-06T13:00:00Z");
    r.active_sequences.clear();
    r.audit.push_back(
        {at("2026-01-06T13:30:00Z"), "followup", r.invoices[0].id, "cancel", 0, "", "paid"});
    // Assessed the morning the payment came (inside the grace the webhook-or-poll path has).
    r.fees.push_back({r.invoices[0].id, at("2026-01-06T16:00:00Z"), "created"});
    EXPECT_FALSE(check_invariants(r).has_value());
    r.fees.push_back({r.invoices[0].id, at("2026-01-08T11:00:00Z"), "pending"});
    const auto v = check_invariants(r);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "no_touch_after_payment_in_full");
    EXPECT_NE(v->detail.find("late fee (pending)"), std::string::npos) << v->detail;
}

TEST(chaos_invariants, an_object_created_twice_or_not_at_all_is_a_violation) {
    auto r = one_invoice();
    r.messages.push_back(email(touch_key(1, "email")));
    r.created_expected = {"Invoice/41", "Invoice/0000-ab"};
    r.created_objects = {{"Invoice/41", 1}, {"Invoice/0000-ab", 1}, {"Xero invoice BS-1", 1}};
    EXPECT_FALSE(check_invariants(r).has_value());
    EXPECT_EQ(coverage(r).created, 2U);
    EXPECT_EQ(coverage(r).fees, 0U);
    r.fee_invoices = {"Invoice/41"};
    EXPECT_EQ(coverage(r).fees, 1U);

    auto twice = r;
    twice.created_objects["Xero invoice BS-1"] = 2;
    auto v = check_invariants(twice);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "created_exactly_once");
    EXPECT_NE(v->detail.find("Xero invoice BS-1 exists 2 times"), std::string::npos) << v->detail;

    auto missing = r;
    missing.created_objects.erase("Invoice/0000-ab");
    v = check_invariants(missing);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->invariant, "created_exactly_once");
    EXPECT_EQ(coverage(missing).created, 1U);
}

}  // namespace
}  // namespace billsync::sandbox
