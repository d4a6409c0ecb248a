// `billsync sandbox` (the README's main job) end to end: the simulated firm runs for four weeks
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
                               "29",
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
                               "harvest the manager approved the week's timesheets",
                               "time_and_materials 1787.50 USD (2026-01-12): pending_approval",
                               "partner approved payroll draft",
                               "time_and_materials 1787.50 USD (2026-01-12): created in QuickBooks",
                               "retainer 3352.50 USD (2026-02): pending_approval, needs a person:",
                               "overage_above_tolerance",
                               "The run is over"}) {
        EXPECT_NE(out.find(needle), std::string::npos) << needle << "\n" << out;
    }
    // The firm's other company, booked in Xero: the same follow-up over the second ledger, its
    // lines labelled, its emails carrying the online-invoice link.
    for (const char* needle :
         {"simulated Xero organisation",
          "  xero    Intent to Receive: billsync answered 200 to a signed delivery and 401 to a "
          "wrongly signed one",
          "Kauri Cafe paid Xero invoice INV-0001 (850.00) before touch 1 was due",
          "[Xero] Invoice INV-0002 from Smith & Lee CPA is past due | pay online: "
          "https://in.xero.com/",
          "[Xero] Second notice: invoice INV-0002 is 15 days past due | pay online: "
          "https://in.xero.com/",
          "  sms     +14155550190                       [Xero] Smith & Lee CPA: invoice INV-0002",
          "[Xero] Account on hold: invoice INV-0002 is 30 days past due | pay online: "
          "https://in.xero.com/",
          "  task    [Xero] Account hold: Rimu Architects - Invoice INV-0002",
          "coordinator@smithlee.example       [Xero] Account hold: Rimu Architects - Invoice "
          "INV-0002",
          "Totara Tech was charged by auto-pay for Xero invoice INV-0003 (399.00)",
          // Kauri Cafe in Xero and its owner's group in Karbon: another name, another email, the
          // same client code.
          "  karbon  organization \"Kauri Hospitality Group\" (client code KAURI01) joined the "
          "identity map: one client with xero:",
          "(by client_code: both carry KAURI01)"}) {
        EXPECT_NE(out.find(needle), std::string::npos) << needle << "\n" << out;
    }
    // Paid before touch 1, and on auto-pay: no reminder ever reached them.
    EXPECT_EQ(out.find("  email   ap@kauricafe.example"), std::string::npos) << out;
    EXPECT_EQ(out.find("  email   ap@totaratech.example"), std::string::npos) << out;
    // The QuickBooks firm's lines carry no label and no link (its invoices have none).
    for (std::size_t at = out.find("  email   "); at != std::string::npos;
         at = out.find("  email   ", at + 1)) {
        const auto line = out.substr(at, out.find('\n', at) - at);
        if (line.find("[Xero]") == std::string::npos) {
            EXPECT_EQ(line.find("pay online"), std::string::npos) << line;
        }
    }
    // The firm's time in Harvest: drafts for completed Karbon work items, one adjusted by staff,
    // one untouched on Friday's review list, and one staff member's missing day.
    for (const char* needle :
         {"staff in a simulated Harvest account",
          "coordinator linked Harvest client ",
          "\" completed by Dana Whitfield",
          "\" completed by Raj Patel (Karbon delivered its webhook twice)",
          "  time    draft created in Harvest: Dana Whitfield <dana.whitfield@smithlee.example>, ",
          "  time    draft created in Harvest: Mei Chen <mei.chen@smithlee.example>, ",
          "  time    draft created in Harvest: Raj Patel <raj.patel@smithlee.example>, ",
          "2026-01-06, 2.50 h: \"December 2025 bookkeeping - ",
          "2026-01-12, 1.50 h: \"Payroll 2026-01-09 - ",
          "  harvest Dana Whitfield changed billsync's draft for \"December 2025 bookkeeping - ",
          "edited by staff in Harvest, billsync leaves it",
          // Mei's untouched draft, locked by Friday's timesheet approval: approved, not edited.
          "  time    draft \"December 2025 bookkeeping - ",
          "\" approved in Harvest as drafted (locked), billsync leaves it",
          "  time    review list, Fri 2026-01-09: \"December 2025 bookkeeping - ",
          "(mei.chen@smithlee.example, 2026-01-07, 2.50 h) untouched since billsync drafted it",
          "  harvest Raj Patel recorded no time for 2026-01-07",
          "  time    missing time for 2026-01-07: Raj Patel <raj.patel@smithlee.example> recorded "
          "0 h of 6 h",
          "Harvest entries drafted by billsync, per completed work item:"}) {
        EXPECT_NE(out.find(needle), std::string::npos) << needle << "\n" << out;
    }
    // TaxDome: a Zap relays a new portal account whose email is a QuickBooks client's; the
    // identity map links it to that client.
    for (const char* needle :
         {"  taxdome Zapier relayed new account 7351024 \"",
          "(accepted)",
          "  taxdome account 7351024 joined the identity map: one client with ",
          "(its billing email matches)"}) {
        EXPECT_NE(out.find(needle), std::string::npos) << needle << "\n" << out;
    }
    EXPECT_EQ(out.find("(refused: "), std::string::npos) << out;
    EXPECT_EQ(out.find(" waits: ["), std::string::npos) << out;
    // The untouched draft joins the review list on the review day (Friday 09:00 in New York): in
    // that business day's lines, not earlier.
    const auto friday = out.find("\nFri 2026-01-09\n");
    const auto saturday = out.find("\nSat 2026-01-10\n");
    const auto reviewed = out.find("  time    review list, Fri 2026-01-09: ");
    ASSERT_NE(friday, std::string::npos) << out;
    EXPECT_GT(reviewed, friday) << out;
    EXPECT_LT(reviewed, saturday) << out;
    // Each day's lines come in time order: the manager's approval that Friday evening comes
    // after the morning's review list, and billsync's reading of the draft it locked after it.
    const auto approval = out.find("  harvest the manager approved the week's timesheets", friday);
    EXPECT_GT(approval, reviewed) << out;
    EXPECT_LT(approval, saturday) << out;
    const auto locked = out.find("\" approved in Harvest as drafted (locked)", friday);
    EXPECT_GT(locked, approval) << out;
    EXPECT_LT(locked, saturday) << out;
    // Dana's draft was edited before the review day: never on the review list.
    EXPECT_EQ(out.find("(dana.whitfield@smithlee.example, 2026-01-06, 2.50 h) untouched"),
              std::string::npos)
        << out;
    // Only Dana edited a draft; the others were approved as drafted.
    std::size_t edited = 0;
    for (auto at = out.find("edited by staff in Harvest"); at != std::string::npos;
         at = out.find("edited by staff in Harvest", at + 1)) {
        ++edited;
    }
    EXPECT_EQ(edited, 1U) << out;
    // Only Raj, only that day: everyone else recorded their working days.
    std::size_t missing = 0;
    for (auto at = out.find("  time    missing time for "); at != std::string::npos;
         at = out.find("  time    missing time for ", at + 1)) {
        ++missing;
    }
    EXPECT_EQ(missing, 1U) << out;
    // Exactly one Harvest entry per completed work item, as the Harvest simulator holds them.
    const auto counts = out.find("Harvest entries drafted by billsync, per completed work item:");
    ASSERT_NE(counts, std::string::npos) << out;
    std::size_t items = 0;
    for (auto at = out.find("\n  \"", counts);
         at != std::string::npos && at < out.find("The run is over");
         at = out.find("\n  \"", at + 1)) {
        const auto line = out.substr(at + 1, out.find('\n', at + 1) - at - 1);
        EXPECT_TRUE(line.ends_with("\": 1")) << line;
        ++items;
    }
    EXPECT_EQ(items, 3U) << out;
    // The daemon's own log stays quiet at the sandbox's level: no errors.
    EXPECT_EQ(out.find(" error "), std::string::npos) << out;
    EXPECT_EQ(out.find("critical"), std::string::npos) << out;
}

}  // namespace
}  // namespace billsync
