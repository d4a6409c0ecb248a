// Payment plans on the simulated clock: an installment reminded, missed (notice + coordinator
// task), then paid late; the next one reminded on the next business day and paid on time.

#include "workflows/followup/plans.hpp"

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

payment_plan two_installments() {
    payment_plan p;
    p.currency = "USD";
    p.installments = {{ymd(2026, 6, 15), 50000}, {ymd(2026, 7, 15), 50000}};
    return p;
}

// Plays the caller: keeps the state, the one timer and the deduplicated outbox.
struct plan_harness {
    settings cfg = test_settings();
    payment_plan plan = two_installments();
    plan_client client{"client-7", "Acme LLC", "ap@acme.example", 150000};
    plan_state st;
    std::map<std::string, util::instant> timers;
    std::vector<std::pair<util::instant, planned_action>> sent;
    std::vector<decision> log;
    std::set<std::string> keys;

    void step(util::instant now) {
        const auto r = plan_installments(cfg, *date::locate_zone(new_york), plan, st, client, now);
        st = r.state;
        for (const auto& t : r.timers) {
            if (t.cancel) {
                timers.erase(t.name);
            } else {
                timers[t.name] = t.due;
            }
        }
        for (const auto& a : r.actions) {
            if (keys.insert(a.key).second) {
                sent.emplace_back(now, a);
            }
        }
        log.insert(log.end(), r.decisions.begin(), r.decisions.end());
    }

    // Fires the timers due up to `until` in order.
    void run_until(util::instant until) {
        for (int guard = 0; guard < 100 && !timers.empty(); ++guard) {
            auto next = std::min_element(
                timers.begin(), timers.end(), [](auto& a, auto& b) { return a.second < b.second; });
            if (next->second > until) {
                break;
            }
            const auto at = next->second;
            timers.erase(next);
            step(at);
        }
    }

    std::vector<std::string> summary() const {
        std::vector<std::string> out;
        for (const auto& [at, a] : sent) {
            out.push_back(util::format_rfc3339(at) + " " + std::string(to_string(a.kind)) + " " +
                          a.template_id + " #" + std::to_string(a.reminder));
        }
        return out;
    }

    std::vector<std::string> causes(decision_kind k) const {
        std::vector<std::string> out;
        for (const auto& d : log) {
            if (d.kind == k) {
                out.push_back(d.cause);
            }
        }
        return out;
    }
};

TEST(FollowupPaymentPlan, InstallmentMissedThenPaidThenTheNextOnTime) {
    plan_harness h;
    h.step(local(2026, 6, 1, 10));  // first seen: the open balance $1,500.00 is the baseline
    EXPECT_EQ(h.st.baseline, 150000);
    EXPECT_THAT(h.causes(decision_kind::note), ElementsAre(HasSubstr("$1,500.00 is the baseline")));
    // Reminder 3 days before June 15 (Friday June 12, 09:00); the check at 00:00 June 16 finds
    // nothing paid: missed, with a notice to the client and a coordinator task.
    h.run_until(local(2026, 6, 19, 12));
    EXPECT_THAT(h.summary(),
                ElementsAre("2026-06-12T13:00:00Z email payment_plan.reminder #1",
                            "2026-06-16T04:00:00Z email payment_plan.missed #1",
                            "2026-06-16T04:00:00Z task payment_plan.missed #1"));
    EXPECT_EQ(h.sent[0].second.key,
              action_key("followup.plan.r1.email", "client-7", reminder_version(ymd(2026, 6, 15))));
    EXPECT_THAT(h.sent[0].second.subject, HasSubstr("$500.00 is due on June 15, 2026"));
    EXPECT_THAT(h.sent[2].second.subject, HasSubstr("Missed installment: Acme LLC"));
    EXPECT_THAT(h.causes(decision_kind::missed),
                ElementsAre(HasSubstr("installment 1 ($500.00 due 2026-06-15) missed: $0.00 of "
                                      "the $500.00 due by then paid")));
    EXPECT_THAT(h.st.missed, ElementsAre(1U));

    // Paid on June 20: the open balance drops by the installment.
    h.client.open_balance = 100000;
    h.step(local(2026, 6, 20, 10));
    EXPECT_THAT(h.st.missed, IsEmpty());
    EXPECT_THAT(h.causes(decision_kind::note).back(),
                HasSubstr("installment 1 ($500.00 due 2026-06-15) paid late"));

    // July 12 is a Sunday: the reminder goes out Monday July 13. Paid July 14: the check notes it.
    h.run_until(local(2026, 7, 14, 8));
    h.client.open_balance = 50000;
    h.step(local(2026, 7, 14, 10));
    h.run_until(local(2026, 7, 31, 12));
    EXPECT_THAT(h.summary(),
                ElementsAre("2026-06-12T13:00:00Z email payment_plan.reminder #1",
                            "2026-06-16T04:00:00Z email payment_plan.missed #1",
                            "2026-06-16T04:00:00Z task payment_plan.missed #1",
                            "2026-07-13T13:00:00Z email payment_plan.reminder #2"));
    EXPECT_THAT(h.causes(decision_kind::note).back(),
                HasSubstr("installment 2 ($500.00 due 2026-07-15) paid: $1,000.00 of the plan"));
    EXPECT_THAT(h.timers, IsEmpty());
    EXPECT_EQ(h.st.checked, 2U);
    // Replaying a step plans the same keys: nothing new goes out.
    const auto before = h.sent.size();
    h.step(local(2026, 7, 31, 12));
    EXPECT_EQ(h.sent.size(), before);
}

// The client syncs before its invoices: the plan starts only once something is open, with that
// balance as its baseline.
TEST(FollowupPaymentPlan, StartsWhenTheClientFirstHasAnOpenBalance) {
    plan_harness h;
    h.client.open_balance = 0;
    h.step(local(2026, 6, 1, 10));
    EXPECT_FALSE(h.st.started);
    EXPECT_THAT(h.timers, IsEmpty());
    EXPECT_THAT(h.log, IsEmpty());
    h.client.open_balance = 150000;
    h.step(local(2026, 6, 1, 11));
    EXPECT_TRUE(h.st.started);
    EXPECT_EQ(h.st.baseline, 150000);
    EXPECT_EQ(h.timers.count("followup/plan:client-7/installment1-reminder"), 1U);
}

TEST(FollowupPaymentPlan, AlreadyPaidInstallmentGetsNoReminderAndStateRoundTrips) {
    plan_harness h;
    h.step(local(2026, 6, 1, 10));
    h.client.open_balance = 100000;  // paid ahead
    h.run_until(local(2026, 6, 20, 12));
    h.step(local(2026, 6, 20, 12));
    EXPECT_THAT(h.summary(), IsEmpty());
    EXPECT_THAT(h.causes(decision_kind::skip),
                ElementsAre(HasSubstr("installment 1 ($500.00 due 2026-06-15): no reminder, "
                                      "already paid")));
    plan_state back;
    ASSERT_TRUE(decode_plan(encode(h.st), back));
    EXPECT_EQ(back, h.st);
    EXPECT_EQ(plan_timer_client("followup/plan:client-7/installment2-reminder"), "client-7");
    EXPECT_FALSE(plan_timer_client("followup/inv-1/touch1"));
}

}  // namespace
}  // namespace billsync::workflows::followup
