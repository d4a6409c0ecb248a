// Exact JSON (mappings/exact_json.hpp): numbers kept as their source text, never a double;
// malformed, deep and oversize input refused; decimals normalised.
#include "mappings/exact_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace billsync::mappings {
namespace {

TEST(exact_json, keeps_number_text_and_integers) {
    std::string error;
    const auto j = parse_exact(R"({"a": 0.1, "b": 100, "c": 1.10, "d": -7, "e": 1e2,
                                   "f": 123456789012345678901234567890})",
                               error);
    ASSERT_TRUE(j) << error;
    EXPECT_EQ((*j)["a"], "0.1");
    EXPECT_EQ((*j)["b"], 100);
    EXPECT_EQ((*j)["c"], "1.10");
    EXPECT_EQ((*j)["d"], -7);
    EXPECT_EQ((*j)["e"], "1e2");
    EXPECT_EQ((*j)["f"], "123456789012345678901234567890");
}

TEST(exact_json, rejects_malformed_deep_and_oversize_input) {
    std::string error;
    EXPECT_FALSE(parse_exact(R"({"a": 1,})", error));
    EXPECT_NE(error.find("malformed"), std::string::npos) << error;
    EXPECT_FALSE(parse_exact("", error));
    EXPECT_FALSE(parse_exact("\"\xff\"", error));  // not UTF-8
    EXPECT_FALSE(parse_exact(std::string(100, '[') + std::string(100, ']'), error));
    EXPECT_NE(error.find("deeper"), std::string::npos) << error;
    json_limits small;
    small.max_bytes = 8;
    EXPECT_FALSE(parse_exact(R"({"abc": 12345})", error, small));
    EXPECT_NE(error.find("exceeds"), std::string::npos) << error;
    EXPECT_TRUE(parse_exact(std::string(60, '[') + std::string(60, ']'), error));
}

TEST(exact_json, normalises_decimals) {
    EXPECT_EQ(normalize_decimal("1.5E2"), "150");
    EXPECT_EQ(normalize_decimal("1.25e-1"), "0.125");
    EXPECT_EQ(normalize_decimal("-0.00"), "0");
    EXPECT_EQ(normalize_decimal("007.500"), "7.5");
    EXPECT_EQ(normalize_decimal("+3"), "3");
    EXPECT_FALSE(normalize_decimal("1e999"));
    EXPECT_FALSE(normalize_decimal("1e"));
    EXPECT_FALSE(normalize_decimal("."));
    EXPECT_FALSE(normalize_decimal("1.2.3"));
    EXPECT_FALSE(normalize_decimal("NaN"));
    EXPECT_FALSE(normalize_decimal("0x10"));
}

}  // namespace
}  // namespace billsync::mappings
