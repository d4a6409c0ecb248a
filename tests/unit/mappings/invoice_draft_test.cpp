#include "mappings/invoice_draft.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace billsync::mappings {
namespace {

using json = nlohmann::json;

json payload() {
    return json{{"key", "invoicing/milestone:eng-7:Return Filed/1"},
                {"client_ref", "58"},
                {"currency", "USD"},
                {"issue_date", "2026-12-01"},
                {"due_date", "2026-12-31"},
                {"po_number", "PO-7"},
                {"memo", "Thank you"},
                {"lines",
                 json::array({{{"description", "Return Filed (50% of 2,400.00)"},
                               {"quantity", "1.5"},
                               {"unit_amount_minor", 15000},
                               {"amount_minor", 22500},
                               {"item_ref", "7"},
                               {"account_code", "200"},
                               {"tax_code", "TAX"}}})}};
}

std::string error_of(const json& p) {
    const auto d = parse_invoice_draft(p);
    EXPECT_FALSE(d) << p.dump();
    return d.error;
}

TEST(invoice_draft, parses_every_field_of_the_contract) {
    const auto d = parse_invoice_draft(payload());
    ASSERT_TRUE(d) << d.error;
    EXPECT_EQ(d.value->key, "invoicing/milestone:eng-7:Return Filed/1");
    EXPECT_EQ(d.value->client_ref, "58");
    EXPECT_EQ(format_civil_date(d.value->issue_date), "2026-12-01");
    EXPECT_EQ(format_civil_date(*d.value->due_date), "2026-12-31");
    ASSERT_EQ(d.value->lines.size(), 1u);
    const auto& l = d.value->lines.front();
    EXPECT_EQ(l.quantity, "1.5");
    EXPECT_EQ(l.unit_amount_minor, 15000);
    EXPECT_EQ(l.amount_minor, 22500);
    EXPECT_EQ(l.item_ref, "7");
    EXPECT_EQ(l.account_code, "200");
    EXPECT_EQ(l.tax_code, "TAX");
    EXPECT_EQ(d.value->total_minor(), 22500);
}

TEST(invoice_draft, optional_fields_default_and_quantities_are_normalised) {
    auto p = payload();
    p.erase("due_date");
    p.erase("po_number");
    p.erase("memo");
    p["lines"] = json::array({{{"description", "a"}, {"amount_minor", 100}},
                              {{"description", "b"}, {"amount_minor", 0}, {"quantity", "002.50"}},
                              {{"description", "c"}, {"amount_minor", 5}, {"quantity", 3}}});
    const auto d = parse_invoice_draft(std::string_view(p.dump()));
    ASSERT_TRUE(d) << d.error;
    EXPECT_FALSE(d.value->due_date);
    EXPECT_EQ(d.value->lines[0].quantity, "1");
    EXPECT_FALSE(d.value->lines[0].unit_amount_minor);
    EXPECT_EQ(d.value->lines[1].quantity, "2.5");
    EXPECT_EQ(d.value->lines[2].quantity, "3");
}

TEST(invoice_draft, bad_payloads_name_the_field) {
    auto p = payload();
    p.erase("client_ref");
    EXPECT_NE(error_of(p).find("client_ref"), std::string::npos);
    p = payload();
    p["lines"] = json::array();
    EXPECT_NE(error_of(p).find("lines"), std::string::npos);
    p = payload();
    p["lines"][0]["amount_minor"] = 225.0;
    EXPECT_NE(error_of(p).find("amount_minor"), std::string::npos);
    p = payload();
    p["lines"][0]["amount_minor"] = "22500";
    EXPECT_NE(error_of(p).find("amount_minor"), std::string::npos);
    p = payload();
    p["lines"][0]["amount_minor"] = -1;
    EXPECT_NE(error_of(p).find("negative"), std::string::npos);
    p = payload();
    p["lines"][0]["unit_amount_minor"] = 150.5;
    EXPECT_NE(error_of(p).find("unit_amount_minor"), std::string::npos);
    p = payload();
    p["lines"][0]["quantity"] = 1.5;  // a float, not exact text
    EXPECT_NE(error_of(p).find("quantity"), std::string::npos);
    p = payload();
    p["lines"][0]["quantity"] = "1e2";
    EXPECT_NE(error_of(p).find("quantity"), std::string::npos);
    p = payload();
    p["issue_date"] = "2026-02-30";
    EXPECT_NE(error_of(p).find("issue_date"), std::string::npos);
    p = payload();
    p["due_date"] = "12/31/2026";
    EXPECT_NE(error_of(p).find("due_date"), std::string::npos);
    p = payload();
    p["due_date"] = "2026-11-30";
    EXPECT_NE(error_of(p).find("before"), std::string::npos);
    p = payload();
    p["currency"] = "usd";
    EXPECT_NE(error_of(p).find("currency"), std::string::npos);
    EXPECT_NE(parse_invoice_draft(std::string_view("{not json")).error.find("JSON"),
              std::string::npos);
}

TEST(invoice_draft, an_exact_quantity_times_unit_is_kept) {
    invoice_draft_line l{.description = "Prep",
                         .quantity = "1.5",
                         .unit_amount_minor = 15000,
                         .amount_minor = 22500};
    const auto p = price_line(l, 2, 4);
    EXPECT_FALSE(p.collapsed);
    EXPECT_EQ(p.quantity, "1.5");
    EXPECT_EQ(p.unit_minor, 15000);
    EXPECT_EQ(p.description, "Prep");
    // Without a unit amount, one that divides exactly is derived.
    l.unit_amount_minor.reset();
    EXPECT_EQ(price_line(l, 2, 4).unit_minor, 15000);
}

TEST(invoice_draft, an_inexact_quantity_times_unit_goes_as_one_times_the_amount) {
    // 1.333 h x 150.00 = 199.95, but the authoritative total is 200.00.
    invoice_draft_line l{.description = "Review",
                         .quantity = "1.333",
                         .unit_amount_minor = 15000,
                         .amount_minor = 20000};
    auto p = price_line(l, 2, 4);
    EXPECT_TRUE(p.collapsed);
    EXPECT_EQ(p.quantity, "1");
    EXPECT_EQ(p.unit_minor, 20000);
    EXPECT_EQ(p.description, "Review (1.333 x 150.00)");
    // Too many decimals for the ledger, even when the product is exact.
    l = {.description = "Calls",
         .quantity = "0.33333",
         .unit_amount_minor = 300000,
         .amount_minor = 99999};
    p = price_line(l, 2, 4);
    EXPECT_TRUE(p.collapsed);
    EXPECT_EQ(p.unit_minor, 99999);
    // No unit amount and no exact division: 100.00 / 3.
    l = {.description = "Split", .quantity = "3", .amount_minor = 10000};
    p = price_line(l, 2, 4);
    EXPECT_TRUE(p.collapsed);
    EXPECT_EQ(p.description, "Split (3)");
}

TEST(invoice_draft, key_markers_are_short_stable_and_distinct) {
    const auto a = key_marker("invoicing/milestone:eng-7:Return Filed/1");
    EXPECT_EQ(a, key_marker("invoicing/milestone:eng-7:Return Filed/1"));
    EXPECT_NE(a, key_marker("invoicing/milestone:eng-7:Return Filed/2"));
    EXPECT_EQ(a.size(), 29u);
    EXPECT_TRUE(a.starts_with("billsync:"));
}

TEST(invoice_draft, dump_exact_writes_decimal_text_as_numbers) {
    const json j{{"Amount", "225.00"},
                 {"Note", "225.00"},
                 {"Line", json::array({{{"Qty", "1.5"}, {"Qty2", "2"}}})},
                 {"Bad", {{"Amount", "abc"}}}};
    EXPECT_EQ(dump_exact(j, {"Amount", "Qty"}),
              R"({"Amount":225.00,"Bad":{"Amount":"abc"},"Line":[{"Qty":1.5,"Qty2":"2"}],)"
              R"("Note":"225.00"})");
}

}  // namespace
}  // namespace billsync::mappings
