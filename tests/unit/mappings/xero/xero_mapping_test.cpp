#include "mappings/xero/xero_mapping.hpp"

#include <gtest/gtest.h>

namespace billsync::mappings::xero {
namespace {

using namespace std::chrono;

nlohmann::json parse(std::string_view text) {
    std::string error;
    auto j = parse_exact(text, error);
    EXPECT_TRUE(j) << error;
    return j.value_or(nlohmann::json());
}

mapping_options opts() {
    mapping_options o;
    o.system = "xero";
    o.tenant_id = "T1";
    o.home_currency = "NZD";
    return o;
}

constexpr std::string_view invoice_body = R"({"Invoices":[{
  "Type":"ACCREC","InvoiceID":"inv-1","InvoiceNumber":"INV-0042","Status":"AUTHORISED",
  "Contact":{"ContactID":"c-1","Name":"Acme","EmailAddress":" ap@acme.test "},
  "Date":"/Date(1552521600000+0000)/","DateString":"2019-03-14T00:00:00",
  "DueDate":"/Date(1553731200000+0000)/",
  "LineAmountTypes":"Exclusive","CurrencyCode":"NZD",
  "LineItems":[{"Description":"Tax return","Quantity":2,"UnitAmount":100.10,"LineAmount":200.20,
                "TaxAmount":30.03},
               {"Description":"Discount","LineAmount":-20.00,"TaxAmount":-3.00}],
  "SubTotal":180.20,"TotalTax":27.03,"Total":207.23,"AmountDue":107.23,"AmountPaid":100.00,
  "SentToContact":true,"UpdatedDateUTC":"/Date(1552531874205+0000)/",
  "OnlineInvoiceUrl":"https://in.xero.com/abc"}]})";

TEST(xero_mapping, invoice_fields_dates_and_money) {
    auto m = map_invoice(parse(invoice_body), opts());
    ASSERT_TRUE(m) << m.error;
    const auto& inv = *m.value;
    EXPECT_EQ(inv.id, "xero:T1:invoice:inv-1");
    EXPECT_EQ(inv.number, "INV-0042");
    EXPECT_EQ(inv.client_id, "xero:T1:client:c-1");
    EXPECT_EQ(inv.issue_date, civil_date{2019y / March / 14});
    EXPECT_EQ(inv.due_date, civil_date{2019y / March / 28});
    EXPECT_EQ(inv.total, (money{20723, "NZD"}));
    EXPECT_EQ(inv.balance, (money{10723, "NZD"}));
    EXPECT_EQ(inv.status, invoice_status::open);
    EXPECT_EQ(inv.delivery, delivery_status::sent);
    EXPECT_EQ(inv.billing_email, "ap@acme.test");
    EXPECT_EQ(inv.payment_link, "https://in.xero.com/abc");
    ASSERT_EQ(inv.lines.size(), 2u);
    // Exclusive: the stated line amount plus its tax.
    EXPECT_EQ(inv.lines[0].amount.minor, 23023);
    EXPECT_EQ(inv.lines[0].quantity, "2");
    EXPECT_EQ(inv.lines[0].unit_price, "100.1");
    EXPECT_EQ(inv.lines[1].kind, line_kind::discount);
    EXPECT_EQ(inv.lines[1].amount.minor, 2300);
    EXPECT_EQ(inv.source.account, "T1");
    EXPECT_EQ(inv.source.updated, instant(milliseconds(1552531874205)));
}

TEST(xero_mapping, inclusive_lines_are_taken_as_stated) {
    auto j = parse(invoice_body);
    j["Invoices"][0]["LineAmountTypes"] = "Inclusive";
    auto m = map_invoice(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->lines[0].amount.minor, 20020);
}

TEST(xero_mapping, unknown_line_amount_types_is_an_error) {
    auto j = parse(invoice_body);
    j["Invoices"][0]["LineAmountTypes"] = "Sometimes";
    EXPECT_FALSE(map_invoice(j, opts()));
}

TEST(xero_mapping, invoice_statuses) {
    const std::vector<std::pair<std::string, invoice_status>> cases = {
        {"DRAFT", invoice_status::draft},
        {"SUBMITTED", invoice_status::draft},
        {"PAID", invoice_status::paid},
        {"VOIDED", invoice_status::voided},
        {"AUTHORISED", invoice_status::open}};
    for (const auto& [status, want] : cases) {
        auto j = parse(invoice_body);
        j["Invoices"][0]["Status"] = status;
        auto m = map_invoice(j, opts());
        ASSERT_TRUE(m) << m.error;
        EXPECT_EQ(m.value->status, want) << status;
    }
    auto j = parse(invoice_body);
    j["Invoices"][0]["Status"] = "DELETED";
    auto m = map_invoice(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_TRUE(m.value->deleted);
}

TEST(xero_mapping, zero_amount_due_on_an_authorised_invoice_is_paid) {
    auto j = parse(invoice_body);
    j["Invoices"][0]["AmountDue"] = 0;
    auto m = map_invoice(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->status, invoice_status::paid);
}

TEST(xero_mapping, bills_are_not_sales_invoices) {
    auto j = parse(invoice_body);
    j["Invoices"][0]["Type"] = "ACCPAY";
    EXPECT_FALSE(is_sales_invoice(j["Invoices"][0]));
    auto m = map_invoice(j, opts());
    EXPECT_FALSE(m);
    EXPECT_NE(m.error.find("ACCPAY"), std::string::npos);
}

TEST(xero_mapping, money_is_exact_and_extra_digits_are_refused) {
    auto j = parse(invoice_body);
    j["Invoices"][0]["Total"] = parse("0.1");  // kept as text, never a double
    j["Invoices"][0]["AmountDue"] = parse("0.30");
    auto m = map_invoice(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->total.minor, 10);
    EXPECT_EQ(m.value->balance.minor, 30);
    j["Invoices"][0]["Total"] = parse("207.235");
    EXPECT_FALSE(map_invoice(j, opts()));
    auto o = opts();
    o.money_rounding = rounding::half_even;
    auto r = map_invoice(j, o);
    ASSERT_TRUE(r) << r.error;
    EXPECT_EQ(r.value->total.minor, 20724);
}

TEST(xero_mapping, currency_without_minor_units) {
    auto j = parse(invoice_body);
    j["Invoices"][0]["CurrencyCode"] = "JPY";
    j["Invoices"][0]["LineItems"] = nlohmann::json::array();
    j["Invoices"][0]["Total"] = 5000;
    j["Invoices"][0]["AmountDue"] = 5000;
    auto m = map_invoice(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->total, (money{5000, "JPY"}));
}

TEST(xero_mapping, ms_dates) {
    EXPECT_EQ(parse_ms_date("/Date(1552431874205)/"), instant(milliseconds(1552431874205)));
    EXPECT_EQ(parse_ms_date("/Date(1552431874205+1300)/"), instant(milliseconds(1552431874205)));
    EXPECT_EQ(parse_ms_date("/Date(-86400000+0000)/"), instant(milliseconds(-86400000)));
    EXPECT_FALSE(parse_ms_date("/Date(abc)/"));
    EXPECT_FALSE(parse_ms_date("Date(1)"));
    EXPECT_FALSE(parse_ms_date("/Date(1+13)/"));
    EXPECT_FALSE(parse_ms_date("/Date(1+2460)/"));
    EXPECT_FALSE(parse_ms_date("/Date(99999999999999999999)/"));
}

TEST(xero_mapping, date_only_fields_are_whole_days) {
    EXPECT_EQ(parse_xero_date("/Date(1552521600000+0000)/"), civil_date{2019y / March / 14});
    // Midnight in +13:00 is 11:00 UTC the day before.
    EXPECT_EQ(parse_xero_date("/Date(1552474800000+1300)/"), civil_date{2019y / March / 14});
    EXPECT_EQ(parse_xero_date("2019-03-14"), civil_date{2019y / March / 14});
    EXPECT_EQ(parse_xero_date("2019-03-14T00:00:00"), civil_date{2019y / March / 14});
    EXPECT_FALSE(parse_xero_date("/Date(1552521600001+0000)/"));  // not a whole day
    EXPECT_FALSE(parse_xero_date("2019-03-14T10:00:00"));
    EXPECT_FALSE(parse_xero_date("2019-02-30"));
}

TEST(xero_mapping, modified_since_form) {
    EXPECT_EQ(format_modified_since(instant(milliseconds(1552531874205))), "2019-03-14T02:51:14");
}

TEST(xero_mapping, contact) {
    const auto j = parse(R"({"Contacts":[{"ContactID":"c-1","Name":" Acme Ltd ",
      "EmailAddress":"ap@acme.test","ContactStatus":"ACTIVE",
      "Phones":[{"PhoneType":"DEFAULT","PhoneNumber":"111"},
                {"PhoneType":"MOBILE","PhoneCountryCode":"64","PhoneAreaCode":"21",
                 "PhoneNumber":"555 0101"}],
      "ContactGroups":[{"Name":"Payment Plan"},{"Name":"SMS consent"}],
      "UpdatedDateUTC":"/Date(1552531874205+0000)/"}]})");
    auto m = map_contact(j, opts());
    ASSERT_TRUE(m) << m.error;
    const auto& c = *m.value;
    EXPECT_EQ(c.id, "xero:T1:client:c-1");
    EXPECT_EQ(c.display_name, "Acme Ltd");
    EXPECT_EQ(c.contact.billing_email, "ap@acme.test");
    EXPECT_EQ(c.contact.mobile, "+64215550101");
    EXPECT_TRUE(c.payment_plan);
    EXPECT_FALSE(c.retainer);
    EXPECT_TRUE(c.contact.sms_consent);
    EXPECT_TRUE(c.active);
    EXPECT_EQ(c.currency, "NZD");
}

TEST(xero_mapping, contact_number_is_the_client_code) {
    auto j = parse(R"({"ContactID":"c-1","Name":"Smith & Co","ContactNumber":" SMI001 "})");
    auto m = map_contact(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->client_code, "SMI001");
    // Blank, null or absent: no code (never an error).
    using nlohmann::json;
    for (const auto& blank : {json(""), json("  "), json(nullptr)}) {
        j["ContactNumber"] = blank;
        m = map_contact(j, opts());
        ASSERT_TRUE(m) << m.error;
        EXPECT_EQ(m.value->client_code, "") << blank.dump();
    }
    j.erase("ContactNumber");
    m = map_contact(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->client_code, "");
}

TEST(xero_mapping, archived_or_merged_contacts_are_inactive) {
    auto j = parse(R"({"ContactID":"c-1","Name":"A","ContactStatus":"ARCHIVED"})");
    auto m = map_contact(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_FALSE(m.value->active);
    j["ContactStatus"] = "ACTIVE";
    j["MergedToContactID"] = "c-2";
    m = map_contact(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_FALSE(m.value->active);
}

TEST(xero_mapping, payment) {
    const auto j = parse(R"({"Payments":[{"PaymentID":"p-1","PaymentType":"ACCRECPAYMENT",
      "Status":"AUTHORISED","Date":"/Date(1552348800000+0000)/","Amount":100.00,
      "Reference":"chq 12","Invoice":{"InvoiceID":"inv-1","InvoiceNumber":"INV-0042",
      "Type":"ACCREC","CurrencyCode":"NZD","Contact":{"ContactID":"c-1"}},
      "UpdatedDateUTC":"/Date(1552531874205+0000)/"}]})");
    auto m = map_payment(j, opts());
    ASSERT_TRUE(m) << m.error;
    const auto& p = *m.value;
    EXPECT_EQ(p.id, "xero:T1:payment:p-1");
    EXPECT_EQ(p.amount, (money{10000, "NZD"}));
    EXPECT_EQ(p.date, civil_date{2019y / March / 12});
    EXPECT_EQ(p.client_id, "xero:T1:client:c-1");
    ASSERT_EQ(p.applied.size(), 1u);
    EXPECT_EQ(p.applied[0].invoice_id, "xero:T1:invoice:inv-1");
    EXPECT_EQ(p.applied[0].amount.minor, 10000);
    EXPECT_FALSE(p.voided);

    auto deleted = j;
    deleted["Payments"][0]["Status"] = "DELETED";
    auto d = map_payment(deleted, opts());
    ASSERT_TRUE(d) << d.error;
    EXPECT_TRUE(d.value->voided);
    EXPECT_EQ(d.value->applied[0].amount.minor, 0);

    auto bill = j;
    bill["Payments"][0]["PaymentType"] = "ACCPAYPAYMENT";
    EXPECT_FALSE(is_sales_payment(bill["Payments"][0]));
    EXPECT_FALSE(map_payment(bill, opts()));
}

TEST(xero_mapping, error_bodies) {
    EXPECT_EQ(error_message(R"({"ErrorNumber":10,"Type":"ValidationException",
      "Message":"A validation exception occurred",
      "Elements":[{"ValidationErrors":[{"Message":"Please enter a unique Name."}]}]})"),
              "Please enter a unique Name.");
    EXPECT_EQ(error_message(R"({"Message":"m"})"), "m");
    EXPECT_EQ(error_message("not json"), "");
}

TEST(xero_mapping, hostile_shapes_are_errors_not_crashes) {
    EXPECT_FALSE(map_invoice(parse(R"({"Invoices":[]})"), opts()));
    EXPECT_FALSE(map_invoice(parse(R"({"InvoiceID":"x","Type":"ACCREC","Total":"abc"})"), opts()));
    EXPECT_FALSE(map_contact(parse(R"({"ContactID":"x"})"), opts()));
    EXPECT_FALSE(map_payment(parse(R"({"PaymentID":"x","PaymentType":"ACCRECPAYMENT"})"), opts()));
}

// ---- items ------------------------------------------------------------------------------------

TEST(xero_mapping, item_code_name_and_the_exact_sales_price) {
    auto m = map_item(parse(R"({"Items":[{"ItemID":"9a59d8e5-0000-4000-8000-000000000001",
        "Code":" TAX-PREP ","Name":"Tax preparation","IsSold":true,"IsPurchased":false,
        "SalesDetails":{"UnitPrice":150.00,"AccountCode":"200"},
        "UpdatedDateUTC":"/Date(1552531874205+0000)/"}]})"),
                      opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->id, "xero:T1:ledger_item:9a59d8e5-0000-4000-8000-000000000001");
    EXPECT_EQ(m.value->code, "TAX-PREP");  // what a line's ItemCode and an engagement name
    EXPECT_EQ(m.value->name, "Tax preparation");
    EXPECT_TRUE(m.value->active);
    ASSERT_TRUE(m.value->unit_price);
    EXPECT_EQ(*m.value->unit_price, (money{15000, "NZD"}));
    EXPECT_EQ(m.value->unit_price_text, "150");
    ASSERT_TRUE(m.value->source.updated);
}

TEST(xero_mapping, an_item_priced_beyond_cents_or_not_sold_or_without_code) {
    const auto body = R"({"ItemID":"i-2","Code":"BK","Name":"Bookkeeping","IsSold":true,
        "SalesDetails":{"UnitPrice":99.995}})";
    auto m = map_item(parse(body), opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_FALSE(m.value->unit_price);
    EXPECT_EQ(m.value->unit_price_text, "99.995");
    auto o = opts();
    o.money_rounding = rounding::half_even;
    m = map_item(parse(body), o);
    ASSERT_TRUE(m) << m.error;
    ASSERT_TRUE(m.value->unit_price);
    EXPECT_EQ(m.value->unit_price->minor, 10000);
    m = map_item(parse(R"({"ItemID":"i-3","Code":"OLD","IsSold":false,
        "SalesDetails":{"UnitPrice":10}})"),
                 opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_FALSE(m.value->active);
    EXPECT_FALSE(m.value->unit_price);
    EXPECT_FALSE(map_item(parse(R"({"ItemID":"i-4","Name":"No code"})"), opts()));
    EXPECT_FALSE(
        map_item(parse(R"({"ItemID":"i-5","Code":"X","SalesDetails":{"UnitPrice":"x"}})"), opts()));
}

}  // namespace
}  // namespace billsync::mappings::xero
