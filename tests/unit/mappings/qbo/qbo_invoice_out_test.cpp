#include "mappings/qbo/qbo_invoice_out.hpp"

#include <gtest/gtest.h>

#include "mappings/exact_json.hpp"

namespace billsync::mappings::qbo {
namespace {

using json = nlohmann::json;

invoice_draft draft(std::string currency = "USD") {
    invoice_draft d;
    d.key = "invoicing/milestone:eng-7:Return Filed/1";
    d.client_ref = "58";
    d.currency = std::move(currency);
    d.issue_date = *parse_civil_date("2026-12-01");
    d.due_date = parse_civil_date("2026-12-31");
    d.memo = "Thank you for your business";
    d.lines.push_back({.description = "Return Filed (50% of 2,400.00)",
                       .quantity = "1.5",
                       .unit_amount_minor = 15000,
                       .amount_minor = 22500,
                       .item_ref = "7",
                       .account_code = "200",
                       .tax_code = "TAX"});
    return d;
}

json parsed(const std::string& body) {
    std::string error;
    auto j = parse_exact(body, error);
    EXPECT_TRUE(j) << error << " in " << body;
    return j ? *j : json();
}

TEST(qbo_invoice_out, maps_the_header_and_a_sales_item_line_with_exact_decimals) {
    const auto body = invoice_create_body(draft());
    EXPECT_NE(body.find(R"("Amount":225.00)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("Qty":1.5)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("UnitPrice":150.00)"), std::string::npos) << body;
    const auto j = parsed(body);
    EXPECT_EQ(j["CustomerRef"]["value"], "58");
    EXPECT_EQ(j["TxnDate"], "2026-12-01");
    EXPECT_EQ(j["DueDate"], "2026-12-31");
    EXPECT_EQ(j["CurrencyRef"]["value"], "USD");
    EXPECT_EQ(j["CustomerMemo"]["value"], "Thank you for your business");
    const std::string note = j["PrivateNote"];
    EXPECT_TRUE(note.starts_with(key_marker(draft().key))) << note;
    EXPECT_NE(note.find("invoicing/milestone:eng-7:Return Filed/1"), std::string::npos);
    ASSERT_EQ(j["Line"].size(), 1u);
    const auto& line = j["Line"][0];
    EXPECT_EQ(line["DetailType"], "SalesItemLineDetail");
    EXPECT_EQ(line["Description"], "Return Filed (50% of 2,400.00)");
    EXPECT_EQ(line["Amount"], "225.00");  // kept as its source text by parse_exact
    const auto& d = line["SalesItemLineDetail"];
    EXPECT_EQ(d["ItemRef"]["value"], "7");
    EXPECT_EQ(d["TaxCodeRef"]["value"], "TAX");
    EXPECT_EQ(d["Qty"], "1.5");
    EXPECT_EQ(d["UnitPrice"], "150.00");
    EXPECT_FALSE(d.contains("AccountRef"));  // account_code is Xero's
}

TEST(qbo_invoice_out, yen_has_no_minor_digits) {
    auto d = draft("JPY");
    d.lines[0].unit_amount_minor = 15000;
    d.lines[0].amount_minor = 22500;
    const auto body = invoice_create_body(d);
    EXPECT_NE(body.find(R"("Amount":22500,)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("UnitPrice":15000)"), std::string::npos) << body;
    EXPECT_EQ(parsed(body)["CurrencyRef"]["value"], "JPY");
}

TEST(qbo_invoice_out, an_inexact_line_goes_as_one_times_the_amount_keeping_the_hours) {
    auto d = draft();
    d.lines[0] = {.description = "Bookkeeping",
                  .quantity = "1.333",
                  .unit_amount_minor = 15000,
                  .amount_minor = 20000};
    const auto j = parsed(invoice_create_body(d));
    const auto& line = j["Line"][0];
    EXPECT_EQ(line["Amount"], "200.00");
    EXPECT_EQ(line["SalesItemLineDetail"]["Qty"], 1);
    EXPECT_EQ(line["SalesItemLineDetail"]["UnitPrice"], "200.00");
    EXPECT_EQ(line["Description"], "Bookkeeping (1.333 x 150.00)");
    EXPECT_FALSE(line["SalesItemLineDetail"].contains("ItemRef"));
}

TEST(qbo_invoice_out, the_po_number_travels_in_the_customer_memo_and_the_private_note) {
    auto d = draft();
    d.po_number = "PO-7";
    auto j = parsed(invoice_create_body(d));
    EXPECT_EQ(j["CustomerMemo"]["value"], "Thank you for your business\nPO: PO-7");
    EXPECT_NE(std::string(j["PrivateNote"]).find("PO: PO-7"), std::string::npos);
    d.memo.clear();
    d.due_date.reset();
    j = parsed(invoice_create_body(d));
    EXPECT_EQ(j["CustomerMemo"]["value"], "PO: PO-7");
    EXPECT_FALSE(j.contains("DueDate"));
}

}  // namespace
}  // namespace billsync::mappings::qbo
