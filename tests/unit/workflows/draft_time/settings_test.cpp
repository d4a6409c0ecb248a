#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "daemon/workflows/draft_time_settings.hpp"

namespace billsync::config {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view daemon_table = R"([daemon]
data_dir = "/srv/billsync"
time_zone = "America/Denver"
)";

struct parsed {
    diagnostics diags;
    std::optional<workflows::draft_time::settings> settings;
    bool loaded = false;
};

parsed load(std::string_view text) {
    parsed out;
    section_parsers sections;
    sections["draft_time"] = [&out](reader& r) { out.settings = parse_draft_time(r); };
    const auto cfg = load_string(
        std::string(daemon_table) + std::string(text), "billsync.toml", out.diags, {}, sections);
    out.loaded = cfg.has_value();
    return out;
}

TEST(draft_time_settings, absent_is_disabled) {
    auto p = load("");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    ASSERT_TRUE(p.settings);
    EXPECT_FALSE(p.settings->enabled);
}

TEST(draft_time_settings, a_full_table) {
    auto p = load(R"(
[draft_time]
connector = "time"
review_after_h = 96
completing_statuses = ["Completed"]
[draft_time.work_types."1040 Individual Return"]
project = "2025 Tax Returns"
task = "Tax Preparation"
hours = "3.5"
stages = ["Return Filed"]
[draft_time.work_types."Monthly Bookkeeping"]
project = "14307913"
task = "Bookkeeping"
hours = "0.25"
billable = false
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& s = *p.settings;
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.connector, "time");
    EXPECT_EQ(s.review_after, std::chrono::hours(96));
    ASSERT_EQ(s.work_types.size(), 2U);
    EXPECT_EQ(s.work_types[0].work_type, "1040 Individual Return");
    EXPECT_EQ(s.work_types[0].minutes, 210);
    EXPECT_EQ(s.work_types[0].stages, std::vector<std::string>{"Return Filed"});
    EXPECT_EQ(s.work_types[1].minutes, 15);
    EXPECT_FALSE(s.work_types[1].billable);
}

TEST(draft_time_settings, mapping_errors_point_at_file_line_and_column) {
    auto p = load(R"(
[draft_time]
connector = "time"
[draft_time.work_types."1040"]
project = "P"
tsk = "Tax Preparation"
hours = 3.5
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    // (the [daemon] table takes the first three lines)
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:7:1: error: [draft_time.work_types.1040] missing "
                          "required key 'task'"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:9:1: error: [draft_time.work_types.1040] unknown "
                          "key 'tsk' (did you mean 'task'?)"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:10:1: error: [draft_time.work_types.1040] 'hours' "
                          "must be a string"));
}

TEST(draft_time_settings, hours_must_be_whole_minutes_and_work_types_unique) {
    auto p = load(R"(
[draft_time]
connector = "time"
[draft_time.work_types.A]
project = "P"
task = "T"
hours = "0.33"
[draft_time.work_types.a]
project = "P"
task = "T"
hours = "1"
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    EXPECT_THAT(text, HasSubstr("whole number of minutes"));
    EXPECT_THAT(text, HasSubstr("mapped twice"));
}

TEST(draft_time_settings, connector_is_required_and_no_mapping_warns) {
    auto p = load("[draft_time]\n");
    EXPECT_FALSE(p.loaded);
    EXPECT_THAT(p.diags.render(), HasSubstr("connector"));
    auto q = load("[draft_time]\nconnector = \"time\"\n");
    ASSERT_TRUE(q.loaded) << q.diags.render();
    EXPECT_THAT(q.diags.render(), HasSubstr("warning"));
}

TEST(draft_time_settings, the_missing_time_table) {
    auto p = load(R"(
[draft_time]
connector = "time"
email_connector = "mail"
review_email = true
review_day = "thu"
review_hour = 16
[draft_time.work_types."1040"]
project = "P"
task = "T"
hours = "1"
[draft_time.missing_time]
expected_hours = "6.5"
check_hour = 7
working_days = ["mon", "tue", "wed", "thu"]
holidays = ["2026-12-25"]
staff = ["Kim@Example-CPA.com"]
remind = true
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    ASSERT_TRUE(p.settings);
    const auto& m = p.settings->missing;
    EXPECT_TRUE(m.enabled);
    EXPECT_EQ(m.expected_minutes, 390);
    EXPECT_EQ(m.check_hour, 7);
    EXPECT_TRUE(m.days[4]);   // Thursday
    EXPECT_FALSE(m.days[5]);  // Friday
    EXPECT_EQ(m.holidays.size(), 1U);
    ASSERT_EQ(m.staff.size(), 1U);
    EXPECT_EQ(m.staff[0], "kim@example-cpa.com");
    EXPECT_TRUE(m.remind);
    EXPECT_EQ(p.settings->email_connector, "mail");
    EXPECT_TRUE(p.settings->review_email);
    EXPECT_EQ(p.settings->review_day, 4U);
    EXPECT_EQ(p.settings->review_hour, 16);
}

TEST(draft_time_settings, review_day_by_default_and_the_daily_reconcile) {
    auto p = load(R"(
[draft_time]
connector = "time"
[draft_time.work_types."1040"]
project = "P"
task = "T"
hours = "1"
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    // No review_after_h: the review day decides when a draft joins the review list.
    EXPECT_FALSE(p.settings->review_after);
    EXPECT_EQ(p.settings->review_day, 5U);
    EXPECT_EQ(p.settings->review_hour, 9);
    EXPECT_TRUE(p.settings->reconcile);
    EXPECT_EQ(p.settings->reconcile_hour, 6);

    auto q = load(R"(
[draft_time]
connector = "time"
review_after_h = 48
reconcile = false
reconcile_hour = 22
[draft_time.work_types."1040"]
project = "P"
task = "T"
hours = "1"
)");
    ASSERT_TRUE(q.loaded) << q.diags.render();
    EXPECT_EQ(q.settings->review_after, std::chrono::hours(48));
    EXPECT_FALSE(q.settings->reconcile);
    EXPECT_EQ(q.settings->reconcile_hour, 22);

    auto bad = load("[draft_time]\nconnector = \"time\"\nreconcile_hour = 24\n");
    EXPECT_FALSE(bad.loaded);
    EXPECT_THAT(bad.diags.render(), HasSubstr("reconcile_hour"));
}

TEST(draft_time_settings, missing_time_errors_point_at_file_line_and_column) {
    auto p = load(R"(
[draft_time]
connector = "time"
[draft_time.missing_time]
expected_hours = "6.51"
check_hour = 24
working_days = ["monday", "funday"]
staff = ["kim"]
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:8:1: error: [draft_time.missing_time] "
                          "'expected_hours' must be decimal text"));
    EXPECT_THAT(text, HasSubstr("billsync.toml:9:1: error: [draft_time.missing_time]"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:10:1: error: [draft_time.missing_time] "
                          "'working_days': unknown day 'funday'"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:11:1: error: [draft_time.missing_time] 'staff': "
                          "'kim' is not an email address"));
}

}  // namespace
}  // namespace billsync::config
