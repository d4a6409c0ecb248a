#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "daemon/workflows/late_fees_settings.hpp"

namespace billsync::config {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view daemon_table = R"([daemon]
data_dir = "/srv/billsync"
time_zone = "America/Denver"
)";

struct parsed {
    diagnostics diags;
    std::optional<workflows::late_fees::settings> settings;
    bool loaded = false;
};

parsed load(std::string_view text) {
    parsed out;
    section_parsers sections;
    sections["late_fees"] = [&out](reader& r) { out.settings = parse_late_fees(r); };
    const auto cfg = load_string(
        std::string(daemon_table) + std::string(text), "billsync.toml", out.diags, {}, sections);
    out.loaded = cfg.has_value();
    return out;
}

TEST(late_fees_settings, absent_is_disabled) {
    auto p = load("");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    ASSERT_TRUE(p.settings);
    EXPECT_FALSE(p.settings->enabled);
}

TEST(late_fees_settings, a_full_table) {
    auto p = load(R"(
[late_fees]
percent_per_month = "1.5"
grace_days = 10
minimum = "5.00"
cap = "100.00"
auto_approve = true
opt_out_clients = ["client:acme"]
item = "19"
terms_days = 15
run_hour = 7
start = "2027-01-01"
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& s = *p.settings;
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.percent_e4, 15000);
    EXPECT_FALSE(s.flat_minor);
    EXPECT_EQ(s.rate_text, "1.5% a month");
    EXPECT_EQ(s.grace_days, 10);
    EXPECT_EQ(s.minimum_minor, 500);
    EXPECT_EQ(s.cap_minor, 10000);
    EXPECT_TRUE(s.auto_approve);
    EXPECT_TRUE(s.opt_out_clients.contains("client:acme"));
    EXPECT_EQ(s.item, "19");
    EXPECT_EQ(s.terms_days, 15);
    EXPECT_EQ(s.run_hour, 7);
    ASSERT_TRUE(s.start);
    EXPECT_EQ(*s.start, date::year_month_day(date::year(2027), date::month(1), date::day(1)));
}

TEST(late_fees_settings, exactly_one_rate) {
    auto both = load("[late_fees]\npercent_per_month = \"1\"\nflat = \"25.00\"\n");
    EXPECT_FALSE(both.loaded);
    EXPECT_THAT(both.diags.render(), HasSubstr("exactly one of 'percent_per_month'"));
    auto none = load("[late_fees]\ngrace_days = 3\n");
    EXPECT_FALSE(none.loaded);
    EXPECT_THAT(none.diags.render(), HasSubstr("billsync.toml:4:1"));
}

TEST(late_fees_settings, amounts_and_percentages_are_exact_text_with_a_position) {
    auto p = load("[late_fees]\npercent_per_month = \"1.23456\"\n");
    EXPECT_FALSE(p.loaded);
    EXPECT_THAT(p.diags.render(), HasSubstr("billsync.toml:5:1"));
    EXPECT_THAT(p.diags.render(), HasSubstr("at most 4 decimals"));
    auto q = load("[late_fees]\nflat = \"25.001\"\n");
    EXPECT_FALSE(q.loaded);
    EXPECT_THAT(q.diags.render(), HasSubstr("'flat' must be an amount in USD"));
    auto r = load("[late_fees]\nflat = \"25\"\nminimum = \"30\"\ncap = \"20\"\n");
    EXPECT_FALSE(r.loaded);
    EXPECT_THAT(r.diags.render(), HasSubstr("'cap' is below 'minimum'"));
    auto t = load("[late_fees]\nflat = \"25\"\nstart = \"2027-02-30\"\n");
    EXPECT_FALSE(t.loaded);
    EXPECT_THAT(t.diags.render(), HasSubstr("'start' must be a civil date"));
}

TEST(late_fees_settings, an_unknown_key_is_an_error) {
    auto p = load("[late_fees]\nflat = \"25\"\ngrace = 3\n");
    EXPECT_FALSE(p.loaded);
    EXPECT_THAT(p.diags.render(), HasSubstr("grace"));
}

}  // namespace
}  // namespace billsync::config
