#include "mappings/xero/xero_invoice_out.hpp"

#include <gtest/gtest.h>

#include "mappings/exact_json.hpp"

namespace billsync::mappings::xero {
namespace {

using json = nlohmann::json;

invoice_draft draft(std::string currency = "USD") {
    invoice_draft d;
    d.key = "invoicing/milestone:eng-7:Return Filed/1";
    d.client_ref = "430fa14a-0000-4000-8000-000000000001";
    d.currency = std::move(currency);
    d.issue_date = *parse_civil_date("2026-12-01");
    d.due_date = parse_civil_date("2026-12-31");
    d.lines.push_back({.description = "Return Filed (50% of 2,400.00)",
                       .quantity = "1.5",
                       .unit_amount_minor = 15000,
                       .amount_minor = 22500,
                       .item_ref = "PREP",
                       .account_code = "200",
                       .tax_code = "OUTPUT"});
    return d;
}

json invoice_of(const std::string& body) {
    std::string error;
    auto j = mappings::parse_exact(body, error);
    EXPECT_TRUE(j) << error << " in " << body;
    if (!j || !j->contains("Invoices") || (*j)["Invoices"].size() != 1) {
        ADD_FAILURE() << body;
        return json::object();
    }
    return (*j)["Invoices"][0];
}

TEST(xero_invoice_out, maps_an_authorised_sales_invoice_with_exact_decimals) {
    const auto body = invoice_create_body(draft());
    EXPECT_NE(body.find(R"("LineAmount":225.00)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("Quantity":1.5)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("UnitAmount":150.00)"), std::string::npos) << body;
    const auto inv = invoice_of(body);
    EXPECT_EQ(inv["Type"], "ACCREC");
    EXPECT_EQ(inv["Status"], "AUTHORISED");
    EXPECT_EQ(inv["LineAmountTypes"], "Exclusive");
    EXPECT_EQ(inv["Contact"]["ContactID"], "430fa14a-0000-4000-8000-000000000001");
    EXPECT_EQ(inv["Date"], "2026-12-01");
    EXPECT_EQ(inv["DueDate"], "2026-12-31");
    EXPECT_EQ(inv["CurrencyCode"], "USD");
    EXPECT_EQ(inv["Reference"], key_marker(draft().key));
    ASSERT_EQ(inv["LineItems"].size(), 1u);
    const auto& l = inv["LineItems"][0];
    EXPECT_EQ(l["Description"], "Return Filed (50% of 2,400.00)");
    EXPECT_EQ(l["AccountCode"], "200");
    EXPECT_EQ(l["ItemCode"], "PREP");
    EXPECT_EQ(l["TaxType"], "OUTPUT");
    EXPECT_EQ(l["LineAmount"], "225.00");
}

TEST(xero_invoice_out, yen_has_no_minor_digits) {
    auto d = draft("JPY");
    const auto body = invoice_create_body(d);
    EXPECT_NE(body.find(R"("LineAmount":22500)"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("UnitAmount":15000)"), std::string::npos) << body;
    EXPECT_EQ(invoice_of(body)["CurrencyCode"], "JPY");
}

TEST(xero_invoice_out, an_inexact_line_goes_as_one_times_the_amount_keeping_the_hours) {
    auto d = draft();
    d.lines[0] = {.description = "Bookkeeping",
                  .quantity = "2.25",
                  .unit_amount_minor = 3333,
                  .amount_minor = 7500};
    const auto l = invoice_of(invoice_create_body(d))["LineItems"][0];
    EXPECT_EQ(l["Quantity"], 1);
    EXPECT_EQ(l["UnitAmount"], "75.00");
    EXPECT_EQ(l["LineAmount"], "75.00");
    EXPECT_EQ(l["Description"], "Bookkeeping (2.25 x 33.33)");
}

TEST(xero_invoice_out, the_reference_carries_the_po_number_and_the_key_and_the_memo_a_line) {
    auto d = draft();
    d.po_number = "PO-7";
    d.memo = "Thank you";
    const auto inv = invoice_of(invoice_create_body(d));
    EXPECT_EQ(inv["Reference"], "PO-7 " + key_marker(d.key));
    EXPECT_EQ(inv["Reference"], invoice_reference(d));
    ASSERT_EQ(inv["LineItems"].size(), 2u);
    EXPECT_EQ(inv["LineItems"][1], (json{{"Description", "Thank you"}}));
}

}  // namespace
}  // namespace billsync::mappings::xero
