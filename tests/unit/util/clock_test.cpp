#include "util/clock.hpp"

#include <gtest/gtest.h>

namespace billsync::util {
namespace {

using namespace std::chrono_literals;

TEST(clock, parses_rfc3339_with_zone_and_offsets) {
    instant t;
    ASSERT_TRUE(parse_rfc3339("2026-01-05T08:00:00Z", t));
    EXPECT_EQ(format_rfc3339(t), "2026-01-05T08:00:00Z");
    instant u;
    ASSERT_TRUE(parse_rfc3339("2026-01-05T03:00:00-05:00", u));
    EXPECT_EQ(t, u);
    ASSERT_TRUE(parse_rfc3339("2026-01-05T08:00:00.250Z", u));
    EXPECT_EQ(u - t, 250ms);
    EXPECT_EQ(format_rfc3339(u), "2026-01-05T08:00:00.250Z");
}

TEST(clock, rejects_malformed_instants) {
    instant t;
    EXPECT_FALSE(parse_rfc3339("2026-01-05", t));
    EXPECT_FALSE(parse_rfc3339("2026-01-05 08:00:00Z", t));
    EXPECT_FALSE(parse_rfc3339("2026-13-05T08:00:00Z", t));
    EXPECT_FALSE(parse_rfc3339("2026-01-05T08:00:00Zjunk", t));
    EXPECT_FALSE(parse_rfc3339("yesterday", t));
}

TEST(clock, manual_clock_moves_only_forward_when_told) {
    instant start;
    ASSERT_TRUE(parse_rfc3339("2026-01-05T08:00:00Z", start));
    manual_clock c(start);
    EXPECT_TRUE(c.simulated());
    EXPECT_EQ(c.now(), start);
    EXPECT_EQ(c.advance(std::chrono::hours(24)), start + std::chrono::hours(24));
    EXPECT_EQ(c.advance(-std::chrono::hours(1)), start + std::chrono::hours(24));
    EXPECT_EQ(c.now(), start + std::chrono::hours(24));
}

TEST(clock, system_clock_is_not_simulated) {
    system_clock c;
    EXPECT_FALSE(c.simulated());
    EXPECT_GT(c.now().time_since_epoch().count(), 0);
}

}  // namespace
}  // namespace billsync::util
