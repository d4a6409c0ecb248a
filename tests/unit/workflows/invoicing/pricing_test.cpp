// The invoicing arithmetic: exact minor units, one rounding rule, rates by precedence.

#include "workflows/invoicing/pricing.hpp"

#include <gtest/gtest.h>

namespace billsync::workflows::invoicing {
namespace {

TEST(invoicing_pricing, shares_and_time_round_half_away_from_zero_once) {
    EXPECT_EQ(share_of(240000, 5000), 120000);
    EXPECT_EQ(share_of(100001, 5000), 50001);  // 50000.5 -> 50001
    EXPECT_EQ(share_of(-100001, 5000), -50001);
    EXPECT_EQ(share_of(99999, 3333), 33330);  // 33329.6667
    EXPECT_EQ(time_amount(20, 15000), 5000);
    EXPECT_EQ(time_amount(1, 10000), 167);  // 166.67
    EXPECT_EQ(time_amount(0, 10000), 0);
}

TEST(invoicing_pricing, hours_are_exact_decimals_or_nothing) {
    EXPECT_EQ(hours_text(90), "1.5");
    EXPECT_EQ(hours_text(45), "0.75");
    EXPECT_EQ(hours_text(60), "1");
    EXPECT_EQ(hours_text(3), "0.05");
    EXPECT_EQ(hours_text(20), "");  // 0.3333…
}

TEST(invoicing_pricing, money_text_groups_thousands_with_the_currency_digits) {
    EXPECT_EQ(money_text(123456789, "USD"), "1,234,567.89");
    EXPECT_EQ(money_text(-5, "USD"), "-0.05");
    EXPECT_EQ(money_text(1500000, "JPY"), "1,500,000");
    EXPECT_EQ(money_text(1234567, "KWD"), "1,234.567");
}

TEST(invoicing_pricing, milestones_bill_shares_amounts_and_the_remainder_never_above_the_fee) {
    engagement e;
    e.fee = 240001;
    milestone half{"Return Filed", 5000, std::nullopt, false};
    milestone rest{"Delivered", 0, std::nullopt, true};
    milestone fixed{"Kickoff", 0, 50000, false};
    EXPECT_EQ(milestone_amount(e, half, 0), 120001);
    EXPECT_EQ(milestone_amount(e, rest, 120001), 120000);
    EXPECT_EQ(milestone_amount(e, fixed, 0), 50000);
    EXPECT_EQ(milestone_amount(e, rest, 240001), std::nullopt);
    EXPECT_EQ(milestone_amount(e, half, 200000), std::nullopt);  // would pass the fee
}

TEST(invoicing_pricing, the_most_specific_rate_applies) {
    rate_card card;
    card.default_rate = 15000;
    card.by_staff["ann@firm.example"] = 25000;
    card.by_role["manager"] = 20000;
    card.by_service["bookkeeping"] = 9000;
    EXPECT_EQ(rate_for(card, {"1", "ann@firm.example", "Manager", "Bookkeeping", "", 60, ""}),
              25000);
    EXPECT_EQ(rate_for(card, {"2", "bob@firm.example", "manager", "Bookkeeping", "", 60, ""}),
              20000);
    EXPECT_EQ(rate_for(card, {"3", "bob@firm.example", "staff", "BOOKKEEPING", "", 60, ""}), 9000);
    EXPECT_EQ(rate_for(card, {"4", "bob@firm.example", "staff", "Advisory", "", 60, ""}), 15000);
    card.default_rate.reset();
    EXPECT_EQ(rate_for(card, {"5", "bob@firm.example", "staff", "Advisory", "", 60, ""}),
              std::nullopt);
}

TEST(invoicing_pricing, time_is_grouped_per_staff_service_and_rate_and_rounded_per_line) {
    engagement e;
    e.currency = "USD";
    e.rates.default_rate = 15000;
    e.rates.by_staff["ann@firm.example"] = 25000;
    e.rates.by_service["nobody"] = 1;
    std::vector<time_fact> facts{
        {"t1", "ann@firm.example", "", "Advisory", "2026-11-03", 20, ""},
        {"t2", "ann@firm.example", "", "Advisory", "2026-11-04", 20, ""},
        {"t3", "bob@firm.example", "", "Bookkeeping", "2026-11-05", 45, ""},
    };
    auto r = price_time(e, facts);
    ASSERT_EQ(r.lines.size(), 2U);
    // Ann: 40 min at 250.00 = 166.666… -> 166.67, rounded once for the line, not per entry.
    EXPECT_EQ(r.lines[0].amount, 16667);
    EXPECT_EQ(r.lines[0].quantity, "");  // 0.666… h is not exact: the ledger gets 1 x amount
    EXPECT_EQ(r.lines[0].entries, (std::vector<std::string>{"t1", "t2"}));
    EXPECT_EQ(r.lines[1].amount, 11250);
    EXPECT_EQ(r.lines[1].quantity, "0.75");
    EXPECT_EQ(r.lines[1].unit_amount, 15000);
    EXPECT_EQ(r.total, 27917);
    EXPECT_TRUE(r.no_rate.empty());
    EXPECT_EQ(r.arithmetic.size(), 2U);
}

TEST(invoicing_pricing, a_retainer_bills_the_period_and_the_overage_of_the_last_one) {
    engagement e;
    e.currency = "USD";
    e.retainer = 150000;
    e.included_minutes = 600;
    e.overage_rate = 17500;
    auto r = price_retainer(e, "2026-12", 690, {"t2", "t1"});
    ASSERT_EQ(r.lines.size(), 2U);
    EXPECT_EQ(r.lines[0].amount, 150000);
    EXPECT_EQ(r.lines[1].kind, "overage");
    EXPECT_EQ(r.lines[1].amount, 26250);  // 90 min at 175.00
    EXPECT_EQ(r.lines[1].quantity, "1.5");
    EXPECT_EQ(r.lines[1].entries, (std::vector<std::string>{"t1", "t2"}));
    EXPECT_EQ(r.overage, 26250);
    EXPECT_EQ(r.total, 176250);
    auto under = price_retainer(e, "2026-12", 600, {});
    EXPECT_EQ(under.lines.size(), 1U);
    EXPECT_EQ(under.overage, 0);
}

}  // namespace
}  // namespace billsync::workflows::invoicing
