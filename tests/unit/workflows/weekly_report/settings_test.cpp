// [report] in the configuration: every key, and errors at their file:line:col.
#include <gtest/gtest.h>

#include "config/reader.hpp"
#include "daemon/workflows/report_settings.hpp"

namespace billsync::config {
namespace {

struct parsed {
    diagnostics diags;
    std::optional<workflows::weekly_report::settings> s;
};

parsed parse(std::string_view toml) {
    parsed out;
    auto r = reader::parse(toml, "billsync.toml", out.diags);
    EXPECT_TRUE(r);
    if (r) {
        auto sub = r->sub("report");
        out.s = parse_report(sub);
    }
    return out;
}

TEST(report_settings, every_key_is_read) {
    auto p = parse(R"([report]
time_zone = "America/Chicago"
currency = "CAD"
week_end_day = "fri"
send_day = "sat"
send_hour = 7
to = ["Ann <Ann@Firm.test>", "bob@firm.test"]
email_connector = "mail"
expected_hours = "7.5"
subject = "Firm week"
)");
    ASSERT_TRUE(p.s) << p.diags.render();
    EXPECT_TRUE(p.s->enabled);
    EXPECT_EQ(p.s->time_zone, "America/Chicago");
    EXPECT_EQ(p.s->currency, "CAD");
    EXPECT_EQ(p.s->week_end_day, 5);
    EXPECT_EQ(p.s->send_day, 6);
    EXPECT_EQ(p.s->send_hour, 7);
    EXPECT_EQ(p.s->to, (std::vector<std::string>{"ann@firm.test", "bob@firm.test"}));
    EXPECT_EQ(p.s->email_connector, "mail");
    EXPECT_EQ(p.s->expected_minutes, 450);
    EXPECT_EQ(p.s->subject, "Firm week");
}

TEST(report_settings, an_absent_table_is_off) {
    auto p = parse("[daemon]\n");
    ASSERT_TRUE(p.s);
    EXPECT_FALSE(p.s->enabled);
}

TEST(report_settings, bad_values_are_reported_at_their_key) {
    auto p = parse(R"([report]
currency = "usd"
week_end_day = "sunday"
send_hour = 24
to = ["not an address"]
expected_hours = 7
)");
    EXPECT_FALSE(p.s);
    const auto text = p.diags.render();
    EXPECT_NE(text.find("billsync.toml:2:"), std::string::npos) << text;
    EXPECT_NE(text.find("ISO 4217"), std::string::npos) << text;
    EXPECT_NE(text.find("billsync.toml:3:"), std::string::npos) << text;
    EXPECT_NE(text.find("billsync.toml:4:"), std::string::npos) << text;
    EXPECT_NE(text.find("billsync.toml:5:"), std::string::npos) << text;
    EXPECT_NE(text.find("not an email address"), std::string::npos) << text;
    EXPECT_NE(text.find("billsync.toml:6:"), std::string::npos) << text;
}

}  // namespace
}  // namespace billsync::config
