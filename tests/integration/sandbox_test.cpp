// `billsync sandbox` (the README's main job) end to end: the simulated firm runs for three weeks
// of business time flat out and the timeline shows what the daemon did.

#include <gtest/gtest.h>

#include "tests/fakes/daemon_process.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

TEST(sandbox, a_simulated_firm_gets_reminders_tasks_and_a_dispute_pause) {
    testing::temp_dir dir;
    testing::daemon_process p({testing::billsync_binary(),
                               "sandbox",
                               "--dir",
                               dir.path().string(),
                               "--days",
                               "21",
                               "--seconds-per-day",
                               "0",
                               "--exit"},
                              {},
                              true);
    const auto rc = p.wait_exit(std::chrono::seconds(120));
    const auto out = p.output();
    ASSERT_TRUE(rc.has_value()) << out;
    EXPECT_EQ(*rc, 0) << out;
    for (const char* needle : {"Timeline",
                               "  email   ",
                               "  sms     ",
                               "  task    Account hold",
                               "replied by SMS",
                               "Billing dispute",
                               "paid half",
                               "Payment received for invoice",
                               "texted STOP",
                               "  karbon  \"2025 Form 1040",
                               "moved to Return Filed",
                               "(Return Filed): blocked: [missing_po]",
                               "[unmatched_client] client karbon:",
                               "--po PO-2025-118",
                               "coordinator linked Karbon",
                               "(Return Filed): pending_approval",
                               "partner approved draft",
                               "created in QuickBooks as Invoice/",
                               "moved to Delivered",
                               "[billsync] escalated: invoice draft",
                               "billsync re-created the Work webhook subscription",
                               "The run is over"}) {
        EXPECT_NE(out.find(needle), std::string::npos) << needle << "\n" << out;
    }
    // The daemon's own log stays quiet at the sandbox's level: no errors.
    EXPECT_EQ(out.find(" error "), std::string::npos) << out;
    EXPECT_EQ(out.find("critical"), std::string::npos) << out;
}

}  // namespace
}  // namespace billsync
