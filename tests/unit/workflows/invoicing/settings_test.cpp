// The engagement book and [invoicing]: every model read exactly, and every mistake reported at
// its file:line:col.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/loader.hpp"
#include "daemon/workflows/invoicing_settings.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync::config {
namespace {

using ::testing::HasSubstr;
namespace inv = workflows::invoicing;

constexpr std::string_view book = R"([engagement."acme-1040"]
client = "books:58"
work_type = "1040 Individual Return"
model = "fixed_fee"
fee = "2400.00"
partner = "Pat@Firm.example"
po_required = true
po_limit = "10000.00"

[engagement."acme-1040".milestones]
"Return Filed" = "50%"
"Delivered" = "remainder"

[engagement."acme-books"]
client = "books:58"
work_type = "Monthly Bookkeeping"
model = "retainer"
retainer = "1500.00"
included_hours = "10"
overage_rate = "175.00"
tolerance = "500.00"

[engagement."acme-advisory"]
client = "books:58"
work_type = "Advisory"
model = "time_and_materials"
currency = "JPY"
schedule = "weekly"
cap = "500000"

[engagement."acme-advisory".rates]
default = "15000"
staff = { "Kim@Firm.example" = "25000" }
service = { "Bookkeeping" = "9000" }
)";

TEST(invoicing_settings, every_model_is_read_in_minor_units) {
    diagnostics diags;
    inv::settings s;
    ASSERT_TRUE(parse_engagement_book(book, "engagements.toml", s, diags)) << diags.render();
    ASSERT_EQ(s.engagements.size(), 3U);
    const auto& f = s.engagements[0];
    EXPECT_EQ(f.id, "acme-1040");
    EXPECT_EQ(f.fee, 240000);
    EXPECT_EQ(f.partner, "pat@firm.example");
    EXPECT_TRUE(f.po_required);
    EXPECT_EQ(f.po_limit, 1000000);
    ASSERT_EQ(f.milestones.size(), 2U);
    const auto& r = s.engagements[1];
    EXPECT_EQ(r.billing, inv::model::retainer);
    EXPECT_EQ(r.retainer, 150000);
    EXPECT_EQ(r.included_minutes, 600);
    EXPECT_EQ(r.overage_rate, 17500);
    EXPECT_EQ(r.tolerance, 50000);
    const auto& t = s.engagements[2];
    EXPECT_EQ(t.currency, "JPY");
    EXPECT_EQ(t.rates.default_rate, 15000);
    EXPECT_EQ(t.rates.by_staff.at("kim@firm.example"), 25000);
    EXPECT_EQ(t.rates.by_service.at("bookkeeping"), 9000);
    EXPECT_EQ(t.every, inv::schedule::weekly);
    EXPECT_EQ(t.cap, 500000);
}

TEST(invoicing_settings, mistakes_are_reported_at_file_line_and_column) {
    diagnostics diags;
    inv::settings s;
    EXPECT_FALSE(parse_engagement_book(R"([engagement."x"]
client = "books:1"
work_type = "Tax"
model = "fixed_fee"
fee = 2400
retainer = "10.00"
[engagement."x".milestones]
"Filed" = "150%"
"A" = "remainder"
"B" = "remainder"
[engagement."y"]
model = "barter"
colour = "blue"
)",
                                       "engagements.toml",
                                       s,
                                       diags));
    const auto text = diags.render();
    EXPECT_THAT(text, HasSubstr("engagements.toml:5:"));  // fee not quoted text
    EXPECT_THAT(text, HasSubstr("engagements.toml:6:"));  // retainer on a fixed fee
    EXPECT_THAT(text, HasSubstr("engagements.toml:8:"));  // 150%
    EXPECT_THAT(text, HasSubstr("at most one milestone"));
    EXPECT_THAT(text, HasSubstr("engagements.toml:12:"));  // unknown model
    EXPECT_THAT(text, HasSubstr("'client'"));              // missing client in y
    EXPECT_THAT(text, HasSubstr("colour"));                // unknown key
}

TEST(invoicing_settings, the_main_table_names_the_book_relative_to_itself) {
    testing::temp_dir dir;
    {
        std::ofstream(dir.path() / "engagements.toml") << book;
    }
    diagnostics diags;
    std::optional<inv::settings> got;
    section_parsers sections;
    sections["invoicing"] = [&](reader& r) { got = parse_invoicing(r); };
    const auto text = std::string(R"([daemon]
data_dir = "/srv/billsync"
time_zone = "America/Denver"
[invoicing]
ledger = "books"
engagements = "engagements.toml"
weekly_day = "fri"
holidays = ["2026-12-25"]
[invoicing.approval]
auto_approve_below = "2500.00"
second_approver_from = "25000.00"
approvers = ["Pat@Firm.example"]
always_review = ["first_invoice", "write_down"]
)");
    const auto main = (dir.path() / "billsync.toml").string();
    const auto cfg = load_string(text, main, diags, {}, sections);
    ASSERT_TRUE(cfg.has_value()) << diags.render();
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->enabled);
    EXPECT_EQ(got->engagements.size(), 3U);
    EXPECT_EQ(got->weekly_day, 5);
    EXPECT_EQ(got->holidays.size(), 1U);
    EXPECT_EQ(got->approval.auto_approve_below, 250000);
    EXPECT_EQ(got->approval.second_approver_from, 2500000);
    EXPECT_EQ(got->approval.approvers, std::vector<std::string>{"pat@firm.example"});
    EXPECT_EQ(got->approval.always_review.size(), 2U);

    diagnostics bad;
    std::optional<inv::settings> none;
    sections["invoicing"] = [&](reader& r) { none = parse_invoicing(r); };
    EXPECT_FALSE(load_string(std::string(R"([daemon]
data_dir = "/srv/billsync"
[invoicing]
ledger = "books"
engagements = "missing.toml"
)"),
                             main,
                             bad,
                             {},
                             sections)
                     .has_value());
    EXPECT_THAT(bad.render(), HasSubstr("cannot read the engagement book"));
}

TEST(invoicing_settings, check_item_prices_is_off_unless_set_and_must_be_a_boolean) {
    testing::temp_dir dir;
    {
        std::ofstream(dir.path() / "engagements.toml") << book;
    }
    const auto main = (dir.path() / "billsync.toml").string();
    const auto load = [&](std::string_view extra, diagnostics& diags) {
        std::optional<inv::settings> got;
        section_parsers sections;
        sections["invoicing"] = [&](reader& r) { got = parse_invoicing(r); };
        const auto ok = load_string(std::string(R"([daemon]
data_dir = "/srv/billsync"
time_zone = "America/Denver"
[invoicing]
ledger = "books"
engagements = "engagements.toml"
)") + std::string(extra),
                                    main,
                                    diags,
                                    {},
                                    sections)
                            .has_value();
        return ok ? got : std::nullopt;
    };
    diagnostics d1;
    auto off = load("", d1);
    ASSERT_TRUE(off) << d1.render();
    EXPECT_FALSE(off->check_item_prices);
    diagnostics d2;
    auto on = load("check_item_prices = true\n", d2);
    ASSERT_TRUE(on) << d2.render();
    EXPECT_TRUE(on->check_item_prices);
    diagnostics d3;
    EXPECT_FALSE(load("check_item_prices = \"yes\"\n", d3));
    EXPECT_THAT(d3.render(), HasSubstr("billsync.toml:7:"));
    EXPECT_THAT(d3.render(), HasSubstr("check_item_prices"));
}

TEST(invoicing_settings, the_sample_book_and_every_example_in_the_docs_are_valid) {
    const auto read = [](const char* name) {
        std::ifstream in(std::string(BILLSYNC_SOURCE_DIR) + "/" + name);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    };
    diagnostics diags;
    inv::settings s;
    EXPECT_TRUE(
        parse_engagement_book(read("packaging/engagements.toml"), "engagements.toml", s, diags))
        << diags.render();
    EXPECT_EQ(s.engagements.size(), 3U);
    // Every ```toml block of docs/invoicing.md that holds an engagement.
    const auto doc = read("docs/invoicing.md");
    std::size_t at = 0;
    int blocks = 0;
    while ((at = doc.find("```toml\n", at)) != std::string::npos) {
        const auto end = doc.find("```\n", at + 8);
        const auto block = doc.substr(at + 8, end - at - 8);
        at = end;
        if (block.find("[engagement.") == std::string::npos) {
            continue;
        }
        ++blocks;
        diagnostics d;
        inv::settings one;
        EXPECT_TRUE(parse_engagement_book(block, "docs/invoicing.md", one, d))
            << block << d.render();
    }
    EXPECT_GE(blocks, 4);
}

}  // namespace
}  // namespace billsync::config
