// Karbon JSON -> canonical entities on the recorded fixtures (connectors/karbon/fixtures).

#include "mappings/karbon/karbon_mapping.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mappings/exact_json.hpp"

namespace billsync::mappings::karbon {
namespace {

using json = nlohmann::json;

std::string fixture_text(const std::string& name) {
    std::ifstream in(std::string(BILLSYNC_SOURCE_DIR) + "/connectors/karbon/fixtures/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json fixture(const std::string& name) { return json::parse(fixture_text(name)); }

// As the connector reads it: amounts kept as their exact decimal text.
json exact_fixture(const std::string& name) {
    std::string error;
    auto j = mappings::parse_exact(fixture_text(name), error);
    EXPECT_TRUE(j.has_value()) << error;
    return j.value_or(json());
}

civil_date ymd(int y, unsigned m, unsigned d) {
    return civil_date{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
}

mapping_options opts() {
    mapping_options o;
    o.system = "practice";
    o.time_zone = "America/Chicago";
    return o;
}

TEST(karbon_mapping, a_single_read_work_item_maps_every_field) {
    const auto m = map_work_item(fixture("work_item.json"), opts());
    ASSERT_TRUE(m) << m.error;
    const auto& w = *m.value;
    EXPECT_EQ(w.id, "practice:work_item:4ndQ2tSh7yPk");
    EXPECT_EQ(w.source.system, "practice");
    EXPECT_EQ(w.source.id, "4ndQ2tSh7yPk");
    EXPECT_EQ(w.title, "2025 Form 1040 - Acme Holdings");
    // The client is referenced through the identity map, as QBO invoices reference customers.
    EXPECT_EQ(w.client_id, "practice:client:3Org5Acme7Key");
    EXPECT_EQ(w.work_type, "Tax Return");
    EXPECT_EQ(w.status, "in_progress");  // single GET: unspaced "InProgress"
    EXPECT_EQ(w.stage, "Return Filed");
    EXPECT_EQ(w.assignee_id, "practice:staff:2xUser9Dana");
    EXPECT_EQ(w.start_date, ymd(2026, 1, 5));
    EXPECT_EQ(w.due_date, ymd(2026, 3, 16));
    EXPECT_FALSE(w.completed_date);
    EXPECT_FALSE(w.deleted);
}

TEST(karbon_mapping, list_rows_use_the_spaced_status_and_map_the_same) {
    const auto page = fixture("work_items_page.json");
    const auto a = map_work_item(page["value"][0], opts());
    const auto b = map_work_item(page["value"][1], opts());
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a.value->status, "in_progress");
    EXPECT_EQ(b.value->status, "ready_to_start");
    EXPECT_EQ(b.value->stage, "");  // SecondaryStatus null
    EXPECT_EQ(b.value->client_id, "practice:client:2Hk9wLmP3xQz");
}

TEST(karbon_mapping, both_status_spellings_normalise_and_filters_use_the_spaced_one) {
    EXPECT_EQ(primary_status("ReadyToStart"), "ready_to_start");
    EXPECT_EQ(primary_status("Ready To Start"), "ready_to_start");
    EXPECT_EQ(primary_status("InProgress"), "in_progress");
    EXPECT_EQ(primary_status("Completed"), "completed");
    EXPECT_FALSE(primary_status("Done"));
    EXPECT_EQ(filter_spelling("InProgress"), "In Progress");
    EXPECT_EQ(filter_spelling("Waiting"), "Waiting");
    auto j = fixture("work_item.json");
    j["PrimaryStatus"] = "Finished";
    const auto m = map_work_item(j, opts());
    EXPECT_FALSE(m);
    EXPECT_NE(m.error.find("PrimaryStatus"), std::string::npos) << m.error;
}

TEST(karbon_mapping, the_assignee_becomes_staff) {
    const auto s = assignee_of(fixture("work_item.json"), opts());
    ASSERT_TRUE(s);
    EXPECT_EQ(s->id, "practice:staff:2xUser9Dana");
    EXPECT_EQ(s->name, "Dana Smith");
    EXPECT_EQ(s->email, "dana@smithlee.example");
    auto j = fixture("work_item.json");
    j.erase("AssigneeKey");
    EXPECT_FALSE(assignee_of(j, opts()));
}

TEST(karbon_mapping, dates_are_civil_dates_midnight_utc_as_is_other_instants_in_the_firm_zone) {
    EXPECT_EQ(civil_date_of("2026-01-15", "America/Chicago"), ymd(2026, 1, 15));
    EXPECT_EQ(civil_date_of("2026-01-15T00:00:00Z", "America/Chicago"), ymd(2026, 1, 15));
    // 03:30 UTC on the 15th is still the 14th in Chicago.
    EXPECT_EQ(civil_date_of("2026-01-15T03:30:00Z", "America/Chicago"), ymd(2026, 1, 14));
    EXPECT_EQ(civil_date_of("2026-01-15T03:30:00Z", "UTC"), ymd(2026, 1, 15));
    EXPECT_FALSE(civil_date_of("15/01/2026", "UTC"));
    auto j = fixture("work_item.json");
    j["DueDate"] = "soon";
    const auto m = map_work_item(j, opts());
    EXPECT_FALSE(m);
    EXPECT_NE(m.error.find("DueDate"), std::string::npos) << m.error;
}

TEST(karbon_mapping, a_contact_maps_to_a_client_with_its_email_and_phone) {
    const auto m = map_contact(fixture("contact.json"), opts());
    ASSERT_TRUE(m) << m.error;
    const auto& c = *m.value;
    EXPECT_EQ(c.id, "practice:client:2Hk9wLmP3xQz");
    EXPECT_EQ(c.display_name, "Ann Archer");
    EXPECT_EQ(c.contact.billing_email, "ann.archer@client.example");
    EXPECT_EQ(c.contact.mobile, "+14155550123");
    ASSERT_TRUE(c.source.updated);
    EXPECT_EQ(format_timestamp(*c.source.updated), "2026-01-04T16:20:00.000000Z");
}

TEST(karbon_mapping, an_organization_maps_to_a_client) {
    const auto m = map_organization(fixture("organization.json"), opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->id, "practice:client:3Org5Acme7Key");
    EXPECT_EQ(m.value->display_name, "Acme Holdings LLC");
    EXPECT_EQ(m.value->contact.billing_email, "billing@acme.example");
    EXPECT_EQ(m.value->contact.mobile, "+13125550199");
    // An organization without its key is not a record.
    auto j = fixture("organization.json");
    j.erase("OrganizationKey");
    const auto bad = map_organization(j, opts());
    EXPECT_FALSE(bad);
    EXPECT_NE(bad.error.find("OrganizationKey"), std::string::npos);
}

TEST(karbon_mapping, user_defined_identifier_is_the_client_code_of_contacts_and_organizations) {
    const auto contact = map_contact(fixture("contact.json"), opts());
    ASSERT_TRUE(contact) << contact.error;
    EXPECT_EQ(contact.value->client_code, "ARCH-001");
    const auto org = map_organization(fixture("organization.json"), opts());
    ASSERT_TRUE(org) << org.error;
    EXPECT_EQ(org.value->client_code, "ACME-001");
    // Trimmed; blank, null, absent or not text: no code (never an error).
    auto j = fixture("organization.json");
    j["UserDefinedIdentifier"] = "  ACME-001\t";
    EXPECT_EQ(map_organization(j, opts()).value->client_code, "ACME-001");
    for (const auto& blank : {json("   "), json(""), json(nullptr), json(17)}) {
        j["UserDefinedIdentifier"] = blank;
        const auto m = map_organization(j, opts());
        ASSERT_TRUE(m) << m.error;
        EXPECT_EQ(m.value->client_code, "") << blank.dump();
    }
    j.erase("UserDefinedIdentifier");
    EXPECT_EQ(map_organization(j, opts()).value->client_code, "");
    auto c = fixture("contact.json");
    c.erase("UserDefinedIdentifier");
    EXPECT_EQ(map_contact(c, opts()).value->client_code, "");
}

TEST(karbon_mapping, the_identity_resolver_supplies_canonical_ids) {
    auto o = opts();
    o.resolve = [](std::string_view type, const source_ref& ref) {
        return std::string(type) + "#" + ref.id;
    };
    const auto m = map_work_item(fixture("work_item.json"), o);
    ASSERT_TRUE(m);
    EXPECT_EQ(m.value->client_id, "client#3Org5Acme7Key");
    EXPECT_EQ(m.value->id, "work_item#4ndQ2tSh7yPk");
}

TEST(karbon_mapping, a_confirmed_delete_carries_only_the_key) {
    const auto w = deleted_work_item("4ndQ2tSh7yPk", opts());
    EXPECT_TRUE(w.deleted);
    EXPECT_EQ(w.id, "practice:work_item:4ndQ2tSh7yPk");
    const auto c = deleted_client("2Hk9wLmP3xQz", opts());
    EXPECT_TRUE(c.deleted);
    EXPECT_EQ(c.id, "practice:client:2Hk9wLmP3xQz");
}

// ---- invoices (read-only facts) -------------------------------------------------------------

TEST(karbon_mapping, a_single_read_invoice_maps_amounts_dates_client_and_payments) {
    const auto m = map_invoice(exact_fixture("invoice.json"), opts());
    ASSERT_TRUE(m) << m.error;
    const auto& inv = m.value->inv;
    EXPECT_EQ(inv.id, "practice:invoice:7InvAcme2026Key");
    EXPECT_EQ(inv.number, "INV-00042");
    EXPECT_EQ(inv.client_ref, "3Org5Acme7Key");
    EXPECT_EQ(inv.client_id, "practice:client:3Org5Acme7Key");
    EXPECT_EQ(inv.currency, "USD");
    EXPECT_EQ(inv.total.minor, 145'025);
    EXPECT_EQ(inv.balance.minor, 45'025);  // TotalAmountDue
    EXPECT_EQ(inv.issue_date, ymd(2026, 1, 15));
    EXPECT_EQ(inv.due_date, ymd(2026, 2, 14));
    EXPECT_EQ(inv.status, invoice_status::open);
    EXPECT_EQ(inv.source.version, "2026-01-20T16:42:11Z");
    EXPECT_EQ(inv.payment_link, "https://pay.karbonhq.com/i/7InvAcme2026Key");
    EXPECT_EQ(inv.delivery, delivery_status::sent);
    ASSERT_EQ(inv.lines.size(), 2u);
    EXPECT_EQ(inv.lines[0].unit_price, "1200.00");
    EXPECT_EQ(inv.lines[0].amount.minor, 120'000);
    EXPECT_EQ(inv.lines[1].quantity, "1.75");
    EXPECT_EQ(inv.lines[1].unit_price, "80.00");  // the string "80" in whole cents
    EXPECT_EQ(inv.lines[1].amount.minor, 14'000);
    ASSERT_EQ(m.value->payments.size(), 1u);
    const auto& p = m.value->payments[0];
    EXPECT_EQ(p.id, "practice:payment:pay-1");
    EXPECT_EQ(p.amount.minor, 100'000);
    EXPECT_EQ(p.client_id, inv.client_id);
    EXPECT_EQ(p.reference, "Check 1042");
    EXPECT_EQ(p.date, ymd(2026, 1, 25));
    EXPECT_FALSE(p.voided);
    ASSERT_EQ(p.applied.size(), 1u);
    EXPECT_EQ(p.applied[0].invoice_id, inv.id);
    EXPECT_EQ(p.applied[0].amount.minor, 100'000);
}

TEST(karbon_mapping, invoice_statuses_include_voided_and_paid) {
    auto j = exact_fixture("invoice.json");
    j["InvoiceStatus"] = "Voided";
    EXPECT_EQ(map_invoice(j, opts()).value->inv.status, invoice_status::voided);
    j["InvoiceStatus"] = "Paid";
    j["TotalAmountDue"] = 0;
    EXPECT_EQ(map_invoice(j, opts()).value->inv.status, invoice_status::paid);
    j["InvoiceStatus"] = "Exported";  // nothing due of a positive total: paid
    EXPECT_EQ(map_invoice(j, opts()).value->inv.status, invoice_status::paid);
    j["InvoiceStatus"] = "Draft";
    EXPECT_EQ(map_invoice(j, opts()).value->inv.status, invoice_status::draft);
    j["InvoiceStatus"] = "Archived";
    const auto bad = map_invoice(j, opts());
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error.find("InvoiceStatus"), std::string::npos) << bad.error;
    j["InvoiceStatus"] = "Paid";
    j["Payments"][0]["PaymentType"] = "ManualPaymentReversed";
    EXPECT_TRUE(map_invoice(j, opts()).value->payments.at(0).voided);
}

TEST(karbon_mapping, a_string_unit_price_becomes_whole_minor_units_without_floats) {
    auto j = exact_fixture("invoice.json");
    j["LineItems"][0]["UnitPrice"] = " 1234.5 ";
    EXPECT_EQ(map_invoice(j, opts()).value->inv.lines[0].unit_price, "1234.50");
    j["LineItems"][0]["UnitPrice"] = "0.125";  // below a cent: half to even
    EXPECT_EQ(map_invoice(j, opts()).value->inv.lines[0].unit_price, "0.12");
    j["LineItems"][0]["UnitPrice"] = "19.99";  // not representable as a double exactly
    EXPECT_EQ(map_invoice(j, opts()).value->inv.lines[0].unit_price, "19.99");
}

TEST(karbon_mapping, a_bad_decimal_is_a_mapping_error_naming_the_field) {
    auto j = exact_fixture("invoice.json");
    j["LineItems"][0]["UnitPrice"] = "12,00";
    auto m = map_invoice(j, opts());
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("LineItems.UnitPrice"), std::string::npos) << m.error;
    j = exact_fixture("invoice.json");
    j["TotalAmountDue"] = "lots";
    m = map_invoice(j, opts());
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("TotalAmountDue"), std::string::npos) << m.error;
    j = exact_fixture("invoice.json");
    j["InvoiceTotal"] = "1450.255";  // a total is exact: no rounding
    m = map_invoice(j, opts());
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("InvoiceTotal"), std::string::npos) << m.error;
    j = exact_fixture("invoice.json");
    j.erase("Client");
    m = map_invoice(j, opts());
    ASSERT_FALSE(m);
    EXPECT_NE(m.error.find("Client.ClientKey"), std::string::npos) << m.error;
    j = exact_fixture("invoice.json");
    j["CurrencyCode"] = "dollars";
    EXPECT_FALSE(map_invoice(j, opts()));
}

TEST(karbon_mapping, an_invoice_client_goes_through_the_identity_map) {
    auto o = opts();
    o.resolve = [](std::string_view type, const source_ref& ref) {
        return std::string(type) + "#" + ref.id;
    };
    const auto m = map_invoice(exact_fixture("invoice.json"), o);
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->inv.client_id, "client#3Org5Acme7Key");
    EXPECT_EQ(m.value->inv.id, "invoice#7InvAcme2026Key");
    EXPECT_EQ(m.value->payments.at(0).applied.at(0).invoice_id, "invoice#7InvAcme2026Key");
    const auto gone = deleted_invoice("7InvAcme2026Key", opts());
    EXPECT_TRUE(gone.deleted);
    EXPECT_EQ(gone.id, "practice:invoice:7InvAcme2026Key");
}

}  // namespace
}  // namespace billsync::mappings::karbon
