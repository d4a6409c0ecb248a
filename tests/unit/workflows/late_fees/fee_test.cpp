// The late-fee arithmetic: period start dates on the civil calendar, the percentage rounded half
// up in minor units, minimum and cap.

#include "workflows/late_fees/fee.hpp"

#include <gtest/gtest.h>

namespace billsync::workflows::late_fees {
namespace {

using namespace date::literals;

settings percent(std::int64_t e4) {
    settings s;
    s.percent_e4 = e4;
    s.rate_text = "1.5% a month";
    return s;
}

TEST(late_fee_periods, start_after_the_grace_days_then_monthly_clamped_to_the_month_end) {
    EXPECT_EQ(period_start(2026_y / 12 / 21, 10, 1), 2026_y / 12 / 31);
    EXPECT_EQ(period_start(2026_y / 12 / 21, 10, 2), 2027_y / 1 / 31);
    EXPECT_EQ(period_start(2026_y / 12 / 21, 10, 3), 2027_y / 2 / 28);
    EXPECT_EQ(period_start(2026_y / 12 / 21, 10, 4), 2027_y / 3 / 31);
    EXPECT_EQ(period_start(2027_y / 12 / 31, 0, 3), 2028_y / 2 / 29);
    EXPECT_EQ(period_start(2026_y / 11 / 15, 0, 1), 2026_y / 11 / 15);
}

TEST(late_fee_periods, the_first_period_from_a_start_date) {
    const auto due = 2026_y / 8 / 15;
    EXPECT_EQ(first_period_from(due, 0, 2026_y / 1 / 1), 1u);
    EXPECT_EQ(first_period_from(due, 0, 2026_y / 8 / 15), 1u);
    EXPECT_EQ(first_period_from(due, 0, 2026_y / 8 / 16), 2u);
    EXPECT_EQ(first_period_from(due, 0, 2026_y / 12 / 3), 5u);   // Dec 15
    EXPECT_EQ(first_period_from(due, 0, 2026_y / 12 / 15), 5u);  // on the day
    EXPECT_EQ(first_period_from(due, 0, 2026_y / 12 / 16), 6u);
    EXPECT_EQ(first_period_from(due, 10, 2026_y / 12 / 3), 5u);  // Nov 25 < Dec 3 <= Dec 25
    EXPECT_EQ(first_period_from(due, 10, 2026_y / 11 / 25), 4u);
}

TEST(late_fee_assessment, a_percentage_rounds_half_up_to_the_cent) {
    auto a = assess(percent(15000), 120000, 0, 2);  // 1.5% of 1200.00
    EXPECT_EQ(a.fee_minor, 1800);
    EXPECT_EQ(assess(percent(15000), 100, 0, 2).fee_minor, 2);    // 1.5 cents -> 2
    EXPECT_EQ(assess(percent(15000), 99, 0, 2).fee_minor, 1);     // 1.485 -> 1
    EXPECT_EQ(assess(percent(12500), 3333, 0, 2).fee_minor, 42);  // 41.6625 -> 42
    EXPECT_EQ(a.arithmetic, "1.5% a month of 1200.00 = 18.00 -> 18.00");
}

TEST(late_fee_assessment, huge_balances_do_not_overflow) {
    const auto a = assess(percent(1'000'000), 9'000'000'000'000'000'000, 0, 2);
    EXPECT_EQ(a.fee_minor, 9'000'000'000'000'000'000);
}

TEST(late_fee_assessment, minimum_then_cap_on_the_invoice_total) {
    auto s = percent(15000);
    s.minimum_minor = 2500;
    s.cap_minor = 6000;
    auto a = assess(s, 50000, 0, 2);  // 7.50 -> minimum 25.00
    EXPECT_EQ(a.fee_minor, 2500);
    EXPECT_EQ(a.arithmetic, "1.5% a month of 500.00 = 7.50; minimum 25.00 -> 25.00");
    EXPECT_EQ(assess(s, 50000, 5000, 2).fee_minor, 1000);  // 10.00 left under the cap
    EXPECT_EQ(assess(s, 50000, 6000, 2).fee_minor, 0);
}

TEST(late_fee_assessment, a_flat_fee) {
    settings s;
    s.flat_minor = 2500;
    EXPECT_EQ(assess(s, 10, 0, 2).fee_minor, 2500);
    EXPECT_EQ(assess(s, 10, 0, 0).arithmetic, "flat 2500 -> 2500");
}

}  // namespace
}  // namespace billsync::workflows::late_fees
