// QBO JSON -> canonical entities on the recorded fixtures, exact money, faults.
#include "mappings/qbo/qbo_mapping.hpp"

#include <gtest/gtest.h>

#include "mappings/exact_json.hpp"
#include "tests/unit/connectors/qbo/fixture.hpp"

namespace billsync::mappings::qbo {
namespace {

using namespace std::chrono;
using billsync::testing::qbo_fixture;

mapping_options options() {
    mapping_options o;
    o.realm_id = "1185883450";
    return o;
}

money usd(std::int64_t minor) { return money{minor, "USD"}; }

invoice invoice_fixture(const std::string& name, const mapping_options& o = options()) {
    auto m = map_invoice(std::string_view(qbo_fixture(name)), o);
    EXPECT_TRUE(m) << name << ": " << m.error;
    return m.value.value_or(invoice{});
}

// ---- money -----------------------------------------------------------------------------------

std::optional<money> amount(std::string_view json_value,
                            std::string_view currency,
                            rounding mode = rounding::reject) {
    std::string error;
    const auto j = parse_exact(json_value, error);
    return j ? parse_amount(*j, currency, mode) : std::nullopt;
}

TEST(money, amounts_are_exact_at_the_edges) {
    EXPECT_EQ(amount("0.1", "USD"), usd(10));
    EXPECT_EQ(amount("0.2", "USD"), usd(20));
    EXPECT_EQ(amount("0.3", "USD"), usd(30));
    EXPECT_EQ(amount("1250.30", "USD"), usd(125030));
    EXPECT_EQ(amount("1.005", "USD"), std::nullopt);  // a third digit in a 2-digit currency
    EXPECT_EQ(amount("1.005", "USD", rounding::half_even), usd(100));
    EXPECT_EQ(amount("1.015", "USD", rounding::half_even), usd(102));
    // What 0.1 + 0.2 looks like once a double has touched it: refused, or rounded on request.
    EXPECT_EQ(amount("0.30000000000000004", "USD"), std::nullopt);
    EXPECT_EQ(amount("0.30000000000000004", "USD", rounding::half_even), usd(30));
    EXPECT_EQ(amount("12.345", "BHD"), (money{12345, "BHD"}));  // 3-digit currency
    EXPECT_EQ(amount("1500", "JPY"), (money{1500, "JPY"}));
    EXPECT_EQ(amount("1500.5", "JPY"), std::nullopt);
    EXPECT_EQ(amount("-45.10", "USD"), usd(-4510));    // credits
    EXPECT_EQ(amount("\"99.99\"", "USD"), usd(9999));  // a string amount
    EXPECT_EQ(amount("1.5e2", "USD"), usd(15000));
    EXPECT_EQ(amount("92233720368547758.07", "USD"), usd(9223372036854775807));
    EXPECT_EQ(amount("92233720368547758.08", "USD"), std::nullopt);  // overflows int64
    EXPECT_EQ(amount("123456789012345678901234567890", "USD"), std::nullopt);
    EXPECT_EQ(amount("true", "USD"), std::nullopt);
    EXPECT_EQ(amount("null", "USD"), std::nullopt);
}

// ---- invoices --------------------------------------------------------------------------------

TEST(qbo_invoice, maps_every_field_of_a_new_invoice) {
    const auto inv = invoice_fixture("invoice_created.json");
    EXPECT_EQ(inv.id, "qbo:1185883450:invoice:130");
    EXPECT_EQ(inv.number, "1037");
    EXPECT_EQ(inv.client_ref, "58");
    EXPECT_EQ(inv.client_id, "qbo:1185883450:client:58");
    EXPECT_EQ(inv.issue_date, 2026y / January / 2d);
    EXPECT_EQ(inv.due_date, 2026y / February / 1d);
    EXPECT_EQ(inv.currency, "USD");
    EXPECT_EQ(inv.total, usd(125030));
    EXPECT_EQ(inv.balance, usd(125030));
    EXPECT_EQ(inv.status, invoice_status::open);
    EXPECT_EQ(inv.po_number, "PO-7781");
    EXPECT_EQ(inv.delivery, delivery_status::not_sent);
    EXPECT_EQ(inv.billing_email, "billing@alvarez.example");
    EXPECT_NE(inv.payment_link.find("connect.intuit.com"), std::string::npos);
    EXPECT_EQ(inv.source.system, "qbo");
    EXPECT_EQ(inv.source.account, "1185883450");
    EXPECT_EQ(inv.source.id, "130");
    EXPECT_EQ(inv.source.version, "0");
    EXPECT_EQ(inv.source.updated, parse_timestamp("2026-01-02T17:15:04Z"));
    ASSERT_EQ(inv.lines.size(), 2U);  // the subtotal line is dropped
    EXPECT_EQ(inv.lines[0].kind, line_kind::item);
    EXPECT_EQ(inv.lines[0].description, "2025 individual return preparation");
    EXPECT_EQ(inv.lines[0].quantity, "1.5");
    EXPECT_EQ(inv.lines[0].unit_price, "733.4");
    EXPECT_EQ(inv.lines[0].amount, usd(110010));
    EXPECT_EQ(inv.lines[0].item_ref, "11");
    EXPECT_EQ(inv.lines[0].item_name, "Tax Preparation");
    EXPECT_EQ(inv.lines[1].quantity, "2");
    EXPECT_EQ(inv.lines[1].amount, usd(15020));
}

TEST(qbo_invoice, status_follows_balance_and_void) {
    EXPECT_EQ(invoice_fixture("invoice_sent.json").delivery, delivery_status::sent);
    const auto partial = invoice_fixture("invoice_partial.json");
    EXPECT_EQ(partial.status, invoice_status::open);
    EXPECT_EQ(partial.balance, usd(75030));
    const auto paid = invoice_fixture("invoice_paid.json");
    EXPECT_EQ(paid.status, invoice_status::paid);
    EXPECT_EQ(paid.balance, usd(0));
    const auto voided = invoice_fixture("invoice_voided.json");
    EXPECT_EQ(voided.status, invoice_status::voided);
    EXPECT_EQ(voided.total, usd(0));
    EXPECT_EQ(voided.lines.at(0).quantity, "0");

    // Without the "Voided" note (the sheet does not confirm it), a Void event still voids.
    std::string body = qbo_fixture("invoice_voided.json");
    body.replace(body.find("\"PrivateNote\": \"Voided\","), 24, "");
    auto o = options();
    EXPECT_EQ(map_invoice(std::string_view(body), o).value->status, invoice_status::open);
    o.void_hint = true;
    EXPECT_EQ(map_invoice(std::string_view(body), o).value->status, invoice_status::voided);
}

TEST(qbo_invoice, lifecycle_yields_changes_in_order) {
    const char* versions[] = {"invoice_created.json",
                              "invoice_sent.json",
                              "invoice_partial.json",
                              "invoice_paid.json",
                              "invoice_voided.json"};
    std::optional<invoice> previous;
    std::vector<invoice_change> all;
    for (const char* name : versions) {
        const auto next = invoice_fixture(name);
        for (auto& c : diff(previous ? &*previous : nullptr, next)) {
            all.push_back(std::move(c));
        }
        previous = next;
    }
    ASSERT_EQ(all.size(), 5U);
    EXPECT_EQ(all[0].kind, invoice_change_kind::created);
    EXPECT_EQ(all[0].balance_after, usd(125030));
    EXPECT_EQ(all[1].kind, invoice_change_kind::delivery_changed);
    EXPECT_EQ(all[1].delivery_after, delivery_status::sent);
    EXPECT_EQ(all[2].kind, invoice_change_kind::partial_payment);
    EXPECT_EQ(all[2].balance_before, usd(125030));
    EXPECT_EQ(all[2].balance_after, usd(75030));
    EXPECT_EQ(all[3].kind, invoice_change_kind::balance_to_zero);
    EXPECT_EQ(all[3].balance_before, usd(75030));
    EXPECT_EQ(all[3].status_after, invoice_status::paid);
    EXPECT_EQ(all[4].kind, invoice_change_kind::voided);
    EXPECT_EQ(all[4].status_before, invoice_status::paid);
    EXPECT_EQ(all[4].total_before, usd(125030));
    EXPECT_EQ(all[4].total_after, usd(0));
}

TEST(qbo_invoice, cdc_deletion_maps_to_a_deleted_invoice) {
    const auto inv = invoice_fixture("invoice_deleted_cdc.json");
    EXPECT_TRUE(inv.deleted);
    EXPECT_EQ(inv.source.id, "131");
    EXPECT_EQ(inv.id, "qbo:1185883450:invoice:131");
}

TEST(qbo_invoice, identity_map_resolver_is_used) {
    auto o = options();
    o.resolve = [](std::string_view type, const source_ref& ref) {
        return std::string(type) + "#" + ref.id;
    };
    const auto inv = invoice_fixture("invoice_created.json", o);
    EXPECT_EQ(inv.id, "invoice#130");
    EXPECT_EQ(inv.client_id, "client#58");
}

TEST(qbo_invoice, bad_shapes_are_errors_not_crashes) {
    const auto o = options();
    EXPECT_FALSE(map_invoice(std::string_view("[]"), o));
    EXPECT_FALSE(map_invoice(std::string_view("{\"Invoice\": 3}"), o));
    EXPECT_FALSE(map_invoice(std::string_view("not json"), o));
    auto m = map_invoice(std::string_view(R"({"Id":"1","CustomerRef":{"value":"5"},
        "TotalAmt":10.001,"Balance":0})"),
                         o);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("TotalAmt"), std::string::npos) << m.error;
    m = map_invoice(std::string_view(R"({"Id":"1","CustomerRef":{"value":"5"},"TotalAmt":1,
        "Balance":1,"DueDate":"2026-02-30"})"),
                    o);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("DueDate"), std::string::npos) << m.error;
    m = map_invoice(std::string_view(R"({"Id":"1","TotalAmt":1,"Balance":1})"), o);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("CustomerRef"), std::string::npos) << m.error;
    m = map_invoice(std::string_view(R"({"Id":"1","CustomerRef":{"value":"5"},"TotalAmt":1,
        "Balance":1,"CurrencyRef":{"value":"usd"}})"),
                    o);
    EXPECT_FALSE(m);
    m = map_invoice(std::string_view(R"({"Id":"1","CustomerRef":{"value":"5"},"TotalAmt":1,
        "Balance":1,"Line":[{"Amount":1,"DetailType":"SalesItemLineDetail",
        "SalesItemLineDetail":{"Qty":"lots"}}]})"),
                    o);
    EXPECT_FALSE(m);
}

TEST(qbo_invoice, three_digit_and_zero_digit_currencies) {
    const auto o = options();
    auto m = map_invoice(std::string_view(R"({"Id":"7","CustomerRef":{"value":"5"},
        "CurrencyRef":{"value":"KWD"},"TotalAmt":10.125,"Balance":0.125,
        "DueDate":"2026-03-01","TxnDate":"2026-02-01-08:00"})"),
                         o);
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->total, (money{10125, "KWD"}));
    EXPECT_EQ(m.value->balance, (money{125, "KWD"}));
    EXPECT_EQ(m.value->issue_date, 2026y / February / 1d);
    m = map_invoice(std::string_view(R"({"Id":"8","CustomerRef":{"value":"5"},
        "CurrencyRef":{"value":"JPY"},"TotalAmt":150000,"Balance":150000})"),
                    o);
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->total, (money{150000, "JPY"}));
}

// ---- payments --------------------------------------------------------------------------------

TEST(qbo_payment, applied_invoices_come_from_linked_transactions) {
    auto m = map_payment(std::string_view(qbo_fixture("payment_partial.json")), options());
    ASSERT_TRUE(m) << m.error;
    const auto& p = *m.value;
    EXPECT_EQ(p.amount, usd(50000));
    EXPECT_EQ(p.unapplied, usd(0));
    EXPECT_EQ(p.date, 2026y / February / 10d);
    EXPECT_EQ(p.reference, "4471");
    EXPECT_EQ(p.client_id, "qbo:1185883450:client:58");
    ASSERT_EQ(p.applied.size(), 1U);
    EXPECT_EQ(p.applied[0].invoice_ref, "130");
    EXPECT_EQ(p.applied[0].invoice_id, "qbo:1185883450:invoice:130");
    EXPECT_EQ(p.applied[0].amount, usd(50000));
    EXPECT_FALSE(p.voided);

    m = map_payment(std::string_view(qbo_fixture("payment_multi.json")), options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->amount, usd(100030));
    EXPECT_EQ(m.value->unapplied, usd(4999));
    ASSERT_EQ(m.value->applied.size(), 2U);  // the credit memo line is not an invoice
    EXPECT_EQ(m.value->applied[1].invoice_ref, "133");
    EXPECT_EQ(m.value->applied[1].amount, usd(20001));
}

TEST(qbo_payment, voided_payment) {
    const auto m = map_payment(std::string_view(qbo_fixture("payment_voided.json")), options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_TRUE(m.value->voided);
    EXPECT_EQ(m.value->amount, usd(0));
}

// ---- customers -------------------------------------------------------------------------------

TEST(qbo_customer, contacts_tags_and_flags) {
    auto m = map_customer(std::string_view(qbo_fixture("customer.json")), options());
    ASSERT_TRUE(m) << m.error;
    const auto& c = *m.value;
    EXPECT_EQ(c.id, "qbo:1185883450:client:58");
    EXPECT_EQ(c.display_name, "Alvarez Family Trust");
    EXPECT_EQ(c.contact.billing_email, "billing@alvarez.example");
    EXPECT_EQ(c.contact.mobile, "+15035550142");
    EXPECT_TRUE(c.contact.sms_consent);
    EXPECT_EQ(c.tags, (std::vector<std::string>{"retainer", "sms-consent"}));
    EXPECT_TRUE(c.retainer);
    EXPECT_FALSE(c.payment_plan);
    EXPECT_TRUE(c.active);
    EXPECT_EQ(c.source.version, "4");

    m = map_customer(std::string_view(qbo_fixture("customer_payment_plan.json")), options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_TRUE(m.value->payment_plan);  // "#Payment-Plan", case-insensitive
    EXPECT_FALSE(m.value->active);
    EXPECT_EQ(m.value->currency, "GBP");
    EXPECT_EQ(m.value->contact.billing_email, "accounts@okafor.example");
    EXPECT_EQ(m.value->contact.mobile, "");                        // "ext 4" does not normalise...
    EXPECT_EQ(m.value->contact.mobile_raw, "07700 900123 ext 4");  // ...but is kept
    EXPECT_FALSE(m.value->contact.sms_consent);
}

// ---- faults ----------------------------------------------------------------------------------

fault_kind kind_of(const std::string& fixture, unsigned status = 0) {
    const auto f = parse_fault(std::string_view(qbo_fixture(fixture)));
    EXPECT_TRUE(f) << fixture;
    return f ? classify(*f, status) : fault_kind::retryable;
}

TEST(qbo_fault, fixtures_map_to_their_conditions) {
    EXPECT_EQ(kind_of("fault_throttle.json", 429), fault_kind::rate_limited);
    EXPECT_EQ(kind_of("fault_throttle.json"), fault_kind::rate_limited);
    EXPECT_EQ(kind_of("fault_stale_object.json", 400), fault_kind::conflict);
    EXPECT_EQ(kind_of("fault_duplicate_name.json", 400), fault_kind::duplicate);
    EXPECT_EQ(kind_of("fault_auth.json", 401), fault_kind::auth);
    EXPECT_EQ(kind_of("fault_validation.json", 400), fault_kind::invalid_request);
    EXPECT_EQ(kind_of("fault_not_found.json", 400), fault_kind::not_found);
}

TEST(qbo_fault, fields_are_kept) {
    const auto f = parse_fault(std::string_view(qbo_fixture("fault_validation.json")));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->type, "ValidationFault");
    ASSERT_EQ(f->errors.size(), 2U);
    EXPECT_EQ(f->errors[0].code, "2020");
    EXPECT_EQ(f->errors[0].element, "Line.Amount");
    EXPECT_NE(f->errors[0].detail.find("Line.Amount"), std::string::npos);
    const auto auth = parse_fault(std::string_view(qbo_fixture("fault_auth.json")));
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->errors.at(0).code, "3200");
    EXPECT_NE(auth->errors[0].message.find("AuthenticationFailed"), std::string::npos);
}

TEST(qbo_fault, codes_and_fallbacks) {
    EXPECT_EQ(classify_code("003001"), fault_kind::rate_limited);
    EXPECT_EQ(classify_code("120"), fault_kind::auth);
    EXPECT_EQ(classify_code("401"), fault_kind::auth);
    EXPECT_EQ(classify_code("6140"), fault_kind::duplicate);
    EXPECT_EQ(classify_code("2170"), fault_kind::invalid_request);
    EXPECT_EQ(classify_code("6210"), fault_kind::permanent);
    EXPECT_EQ(classify_code("500"), fault_kind::permanent);
    EXPECT_EQ(classify_code("42"), std::nullopt);
    EXPECT_EQ(classify_code("x1"), std::nullopt);
    EXPECT_EQ(classify_code(""), std::nullopt);

    fault unknown;
    unknown.errors.push_back({"9999", "?", "", ""});
    EXPECT_EQ(classify(unknown, 503), fault_kind::retryable);
    EXPECT_EQ(classify(unknown, 429), fault_kind::rate_limited);
    EXPECT_EQ(classify(unknown, 400), fault_kind::permanent);
    // auth wins over everything else in one fault
    fault mixed;
    mixed.errors = {{"2020", "", "", ""}, {"120", "", "", ""}};
    EXPECT_EQ(classify(mixed, 400), fault_kind::auth);
    EXPECT_FALSE(parse_fault(std::string_view(R"({"Invoice":{}})")));
    EXPECT_FALSE(parse_fault(std::string_view("<html>502</html>")));
    EXPECT_EQ(to_string(fault_kind::duplicate), "duplicate");
}

// ---- items ------------------------------------------------------------------------------------

TEST(qbo_item, maps_id_name_active_and_the_exact_unit_price) {
    std::string error;
    const auto doc = parse_exact(qbo_fixture("item.json"), error);
    ASSERT_TRUE(doc) << error;
    const auto m = map_item(*doc, options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->id, "qbo:1185883450:ledger_item:7");
    EXPECT_EQ(m.value->code, "7");  // what ItemRef.value and an engagement's `item` name
    EXPECT_EQ(m.value->name, "Tax preparation");
    EXPECT_TRUE(m.value->active);
    EXPECT_FALSE(m.value->deleted);
    ASSERT_TRUE(m.value->unit_price);
    EXPECT_EQ(*m.value->unit_price, usd(15000));  // "150.00", never through a double
    EXPECT_EQ(m.value->unit_price_text, "150");
    EXPECT_EQ(m.value->source.version, "2");
    ASSERT_TRUE(m.value->source.updated);
}

TEST(qbo_item, a_sub_cent_price_keeps_its_text_and_no_minor_units) {
    std::string error;
    auto doc = parse_exact(
        R"({"Id": "9", "Name": "Bookkeeping hour", "Active": false, "UnitPrice": 99.995})", error);
    ASSERT_TRUE(doc) << error;
    auto m = map_item(*doc, options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_FALSE(m.value->unit_price);
    EXPECT_EQ(m.value->unit_price_text, "99.995");
    EXPECT_FALSE(m.value->active);
    // Rounding asked for: half to even, like other amounts.
    auto o = options();
    o.money_rounding = rounding::half_even;
    m = map_item(*doc, o);
    ASSERT_TRUE(m) << m.error;
    ASSERT_TRUE(m.value->unit_price);
    EXPECT_EQ(m.value->unit_price->minor, 10000);
    // No price at all, a price that is not a number, a deleted item.
    doc = parse_exact(R"({"Id": "10", "Name": "Misc"})", error);
    m = map_item(*doc, options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_FALSE(m.value->unit_price);
    EXPECT_TRUE(m.value->unit_price_text.empty());
    doc = parse_exact(R"({"Id": "11", "Name": "Odd", "UnitPrice": "abc"})", error);
    EXPECT_FALSE(map_item(*doc, options()));
    doc = parse_exact(R"({"Id": "12", "status": "Deleted"})", error);
    m = map_item(*doc, options());
    ASSERT_TRUE(m) << m.error;
    EXPECT_TRUE(m.value->deleted);
}

}  // namespace
}  // namespace billsync::mappings::qbo
