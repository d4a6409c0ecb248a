#include "workflows/followup/window.hpp"

#include <gtest/gtest.h>

#include "tests/unit/workflows/followup/test_support.hpp"

namespace billsync::workflows::followup {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

class SendingWindow : public ::testing::Test {
protected:
    const date::time_zone& tz = *date::locate_zone(new_york);
    sending_window w;  // 09:00-17:00, Monday to Friday
};

TEST_F(SendingWindow, InsideHoursOnAWeekdayIsNow) {
    const auto t = local(2026, 6, 3, 10, 15);  // Wednesday
    EXPECT_TRUE(in_window(w, tz, t));
    EXPECT_EQ(next_opening(w, tz, t), t);
}

TEST_F(SendingWindow, BeforeHoursWaitsForNineAndEndIsExclusive) {
    EXPECT_EQ(next_opening(w, tz, local(2026, 6, 3, 6)), local(2026, 6, 3, 9));
    EXPECT_TRUE(in_window(w, tz, local(2026, 6, 3, 9)));
    EXPECT_TRUE(in_window(w, tz, local(2026, 6, 3, 16, 59)));
    EXPECT_FALSE(in_window(w, tz, local(2026, 6, 3, 17)));
}

TEST_F(SendingWindow, AfterHoursWaitsForTheNextMorning) {
    EXPECT_EQ(next_opening(w, tz, local(2026, 6, 3, 17)), local(2026, 6, 4, 9));
    EXPECT_EQ(next_opening(w, tz, local(2026, 6, 3, 23, 59)), local(2026, 6, 4, 9));
}

TEST_F(SendingWindow, WeekendWaitsForMonday) {
    EXPECT_EQ(next_opening(w, tz, local(2026, 6, 5, 17, 30)), local(2026, 6, 8, 9));  // Fri
    EXPECT_EQ(next_opening(w, tz, local(2026, 6, 6, 12)), local(2026, 6, 8, 9));      // Sat
    EXPECT_EQ(next_opening(w, tz, local(2026, 6, 7, 8)), local(2026, 6, 8, 9));       // Sun
    EXPECT_FALSE(in_window(w, tz, local(2026, 6, 6, 12)));
}

TEST_F(SendingWindow, HolidaysAreSkipped) {
    // Friday 2026-12-25 is a holiday: Thursday evening waits until Monday the 28th.
    w.holidays.insert(date::sys_days(ymd(2026, 12, 25)));
    EXPECT_FALSE(in_window(w, tz, local(2026, 12, 25, 10)));
    EXPECT_EQ(next_opening(w, tz, local(2026, 12, 24, 18)), local(2026, 12, 28, 9));
    // Several in a row.
    w.holidays.insert(date::sys_days(ymd(2026, 12, 28)));
    w.holidays.insert(date::sys_days(ymd(2026, 12, 29)));
    EXPECT_EQ(next_opening(w, tz, local(2026, 12, 24, 18)), local(2026, 12, 30, 9));
}

// Clocks go forward on Sunday 2026-03-08 and back on Sunday 2026-11-01 in New York.
TEST_F(SendingWindow, DstTransitionWeeksKeepNineLocal) {
    // Friday before: 09:00 EST = 14:00Z. After the weekend: Monday 09:00 EDT = 13:00Z.
    EXPECT_EQ(next_opening(w, tz, local(2026, 3, 6, 8)), utc(2026, 3, 6, 14));
    EXPECT_EQ(next_opening(w, tz, local(2026, 3, 6, 18)), utc(2026, 3, 9, 13));
    EXPECT_EQ(next_opening(w, tz, utc(2026, 3, 8, 7, 30)), utc(2026, 3, 9, 13));
    // Fall back: Friday Oct 30 09:00 EDT = 13:00Z, Monday Nov 2 09:00 EST = 14:00Z.
    EXPECT_EQ(next_opening(w, tz, local(2026, 10, 30, 18)), utc(2026, 11, 2, 14));
    EXPECT_TRUE(in_window(w, tz, utc(2026, 11, 2, 14)));
    EXPECT_FALSE(in_window(w, tz, utc(2026, 11, 2, 13, 30)));  // 08:30 EST
}

TEST_F(SendingWindow, NonexistentLocalOpeningMapsToTheTransition) {
    // A window opening at 02:30 on the spring-forward Sunday (02:00-03:00 does not exist).
    w.start = std::chrono::minutes(2 * 60 + 30);
    w.days.fill(true);
    EXPECT_EQ(next_opening(w, tz, utc(2026, 3, 8, 5)), utc(2026, 3, 8, 7));  // 03:00 EDT
}

TEST_F(SendingWindow, LocalDateAndStartOfDay) {
    EXPECT_EQ(local_date(tz, utc(2026, 6, 2, 3, 59)), date::sys_days(ymd(2026, 6, 1)));
    EXPECT_EQ(local_date(tz, utc(2026, 6, 2, 4)), date::sys_days(ymd(2026, 6, 2)));
    EXPECT_EQ(start_of_day(tz, date::sys_days(ymd(2026, 3, 8))), utc(2026, 3, 8, 5));
    EXPECT_EQ(start_of_day(tz, date::sys_days(ymd(2026, 3, 9))), utc(2026, 3, 9, 4));
}

// A touch that falls in the DST week goes out at 09:00 local either side of the change.
TEST(FollowupPlannerDst, CadenceAcrossSpringForward) {
    auto inv = test_invoice();
    inv.due_date = ymd(2026, 2, 21);  // day 15 = Sunday March 8 -> Monday March 9
    harness h(make_planner(), inv);
    h.run_days(local(2026, 2, 20, 8), local(2026, 3, 31, 8));
    ASSERT_GE(h.sent.size(), 3U);
    EXPECT_EQ(h.sent[0].at, utc(2026, 2, 23, 14));  // day 1 = Sunday Feb 22 -> Monday, EST
    EXPECT_EQ(h.sent[1].at, utc(2026, 3, 9, 13));   // Monday after the change, EDT
}

}  // namespace
}  // namespace billsync::workflows::followup
