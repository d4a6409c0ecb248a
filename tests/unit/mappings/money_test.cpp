#include "mappings/money.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace billsync::mappings {
namespace {

TEST(money, currency_exponents_follow_iso_4217) {
    EXPECT_EQ(minor_digits("USD"), 2);
    EXPECT_EQ(minor_digits("JPY"), 0);
    EXPECT_EQ(minor_digits("KWD"), 3);
    EXPECT_EQ(minor_digits("NZD"), 2);
}

TEST(money, parses_decimals_exactly) {
    EXPECT_EQ(parse_decimal("1234.56", 2), 123456);
    EXPECT_EQ(parse_decimal("1234.5", 2), 123450);
    EXPECT_EQ(parse_decimal("1234", 2), 123400);
    EXPECT_EQ(parse_decimal("0.1", 2), 10);  // 0.1 has no exact binary float: we never use one
    EXPECT_EQ(parse_decimal("-0.05", 2), -5);
    EXPECT_EQ(parse_decimal("+7.00", 2), 700);
    EXPECT_EQ(parse_decimal(".5", 2), 50);
    EXPECT_EQ(parse_decimal("100", 0), 100);
    EXPECT_EQ(parse_decimal("1.234", 3), 1234);
    EXPECT_EQ(parse_decimal("12.340000", 2), 1234);  // trailing zeros are exact
}

TEST(money, rejects_malformed_and_overflowing_text) {
    EXPECT_EQ(parse_decimal("", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("-", 2), std::nullopt);
    EXPECT_EQ(parse_decimal(".", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("1e2", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("1,000.00", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("12.3.4", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("92233720368547758.08", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("92233720368547758.07", 2), std::numeric_limits<std::int64_t>::max());
}

TEST(money, extra_digits_are_rejected_or_rounded_half_to_even) {
    EXPECT_EQ(parse_decimal("1.005", 2), std::nullopt);
    EXPECT_EQ(parse_decimal("1.005", 2, rounding::half_even), 100);
    EXPECT_EQ(parse_decimal("1.015", 2, rounding::half_even), 102);
    EXPECT_EQ(parse_decimal("1.0051", 2, rounding::half_even), 101);
    EXPECT_EQ(parse_decimal("1.0049", 2, rounding::half_even), 100);
    EXPECT_EQ(parse_decimal("-2.675", 2, rounding::half_even), -268);
    EXPECT_EQ(parse_decimal("0.999", 2, rounding::half_even), 100);
}

TEST(money, formats_minor_units) {
    EXPECT_EQ(format_decimal(123450, 2), "1234.50");
    EXPECT_EQ(format_decimal(-5, 2), "-0.05");
    EXPECT_EQ(format_decimal(0, 2), "0.00");
    EXPECT_EQ(format_decimal(1000, 0), "1000");
    EXPECT_EQ(format_decimal(std::numeric_limits<std::int64_t>::min(), 2), "-92233720368547758.08");
}

}  // namespace
}  // namespace billsync::mappings
