// The canonical model: phone numbers, dates, the storage form and change derivation.
#include "mappings/model.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace billsync::mappings {
namespace {

using namespace std::chrono;

money usd(std::int64_t minor) { return money{minor, "USD"}; }

invoice sample_invoice() {
    invoice i;
    i.id = "inv-1";
    i.number = "1037";
    i.client_id = "client-1";
    i.client_ref = "58";
    i.issue_date = 2026y / January / 2d;
    i.due_date = 2026y / February / 1d;
    i.currency = "USD";
    i.total = usd(125030);
    i.balance = usd(125030);
    i.status = invoice_status::open;
    i.po_number = "PO-7781";
    i.lines.push_back({line_kind::item, "Prep", "1.5", "733.4", usd(110010), "11", "Tax Prep"});
    i.billing_email = "billing@alvarez.example";
    i.payment_link = "https://pay.example/x";
    i.source = {"qbo", "1185883450", "130", "0", parse_timestamp("2026-01-02T09:15:04-08:00")};
    return i;
}

TEST(e164, normalises_national_and_international_numbers) {
    EXPECT_EQ(normalize_e164("(503) 555-0142", "1"), "+15035550142");
    EXPECT_EQ(normalize_e164("1-503-555-0142", "1"), "+15035550142");
    EXPECT_EQ(normalize_e164("+1 503.555.0142"), "+15035550142");
    EXPECT_EQ(normalize_e164("+44 7700 900123"), "+447700900123");
    EXPECT_EQ(normalize_e164("0044 7700 900123"), "+447700900123");
    EXPECT_EQ(normalize_e164("07700 900123", "44"), "+447700900123");
}

TEST(e164, rejects_what_cannot_be_a_number) {
    EXPECT_FALSE(normalize_e164(""));
    EXPECT_FALSE(normalize_e164("555-0142", "1"));          // too short for NANP
    EXPECT_FALSE(normalize_e164("503 555 0142 x12", "1"));  // extension
    EXPECT_FALSE(normalize_e164("call me", "1"));
    EXPECT_FALSE(normalize_e164("5035550142"));          // national, no country known
    EXPECT_FALSE(normalize_e164("+1 503 555 01422"));    // NANP with 11 digits
    EXPECT_FALSE(normalize_e164("+0 123 456 789"));      // country codes never start with 0
    EXPECT_FALSE(normalize_e164("+12345678901234567"));  // longer than 15 digits
    EXPECT_FALSE(normalize_e164("+1 503 + 555 0142"));   // a second plus
    EXPECT_FALSE(normalize_e164(std::string(1000, '9'), "1"));
}

TEST(dates, civil_dates_are_strict) {
    EXPECT_EQ(parse_civil_date("2026-02-28"), 2026y / February / 28d);
    EXPECT_EQ(parse_civil_date("2024-02-29"), 2024y / February / 29d);
    EXPECT_FALSE(parse_civil_date("2026-02-29"));
    EXPECT_FALSE(parse_civil_date("2026-2-28"));
    EXPECT_FALSE(parse_civil_date("2026-13-01"));
    EXPECT_FALSE(parse_civil_date("2026-01-01T00:00:00Z"));
    EXPECT_EQ(format_civil_date(2026y / March / 5d), "2026-03-05");
}

TEST(dates, timestamps_accept_vendor_offsets_and_fractions) {
    const auto a = parse_timestamp("2015-10-05T14:42:19-0700");
    const auto b = parse_timestamp("2015-10-05T14:42:19-07:00");
    const auto c = parse_timestamp("2015-10-05T21:42:19Z");
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(*a, *c);
    const auto ns = parse_timestamp("2025-09-10T21:31:25.179851517Z");
    ASSERT_TRUE(ns);
    EXPECT_EQ(format_timestamp(*ns), "2025-09-10T21:31:25.179851Z");
    EXPECT_FALSE(parse_timestamp("2015-10-05T14:42:19"));  // no zone
    EXPECT_FALSE(parse_timestamp("2015-10-05T25:42:19Z"));
    EXPECT_FALSE(parse_timestamp("2015-10-05T14:42:19.Z"));
    EXPECT_FALSE(parse_timestamp("2015-10-05T14:42:19+07"));
    EXPECT_FALSE(parse_timestamp("garbage"));
}

TEST(storage, every_entity_round_trips_through_json) {
    const auto inv = sample_invoice();
    std::string error;
    const auto back = invoice_from_json(to_json(inv), error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, inv);

    client c;
    c.id = "client-1";
    c.display_name = "Alvarez Family Trust";
    c.client_code = "ALV001";
    c.contact = {"b@x.example", "+15035550142", "(503) 555-0142", true};
    c.tags = {"retainer"};
    c.retainer = true;
    c.currency = "USD";
    c.source = {"qbo", "1185883450", "58", "4", std::nullopt};
    const auto cb = client_from_json(to_json(c), error);
    ASSERT_TRUE(cb) << error;
    EXPECT_EQ(*cb, c);

    payment p;
    p.id = "pay-1";
    p.client_id = "client-1";
    p.client_ref = "58";
    p.amount = usd(50000);
    p.unapplied = usd(0);
    p.date = 2026y / February / 10d;
    p.applied = {{"inv-1", "130", usd(50000)}};
    p.source = {"qbo", "1185883450", "201", "0", std::nullopt};
    const auto pb = payment_from_json(to_json(p), error);
    ASSERT_TRUE(pb) << error;
    EXPECT_EQ(*pb, p);
}

TEST(storage, a_client_row_stored_before_client_codes_reads_with_none) {
    client c;
    c.id = "client-1";
    c.display_name = "Alvarez";
    c.client_code = "ALV001";
    auto j = to_json(c);
    EXPECT_EQ(j["client_code"], "ALV001");
    j.erase("client_code");
    std::string error;
    const auto old = client_from_json(j, error);
    ASSERT_TRUE(old) << error;
    EXPECT_EQ(old->client_code, "");
    j["client_code"] = 7;  // present but not text: a bad row, not a guess
    EXPECT_FALSE(client_from_json(j, error));
    EXPECT_NE(error.find("client_code"), std::string::npos) << error;
}

TEST(client_code, trimmed_and_compared_without_case) {
    EXPECT_EQ(trim_client_code("  SMI001\t\n"), "SMI001");
    EXPECT_EQ(trim_client_code("   "), "");
    EXPECT_EQ(trim_client_code("SMI 001"), "SMI 001");
    EXPECT_EQ(client_code_key(" SMI001 "), "smi001");
    EXPECT_EQ(client_code_key("smi001"), client_code_key("SMI001"));
    EXPECT_NE(client_code_key("SMI001"), client_code_key("SMI002"));
}

TEST(storage, a_time_entry_keeps_billed_and_older_rows_read_as_not_billed) {
    time_entry t;
    t.id = "time_entry-1";
    t.staff_id = "staff-1";
    t.client_id = "client-1";
    t.date = 2026y / November / 3d;
    t.minutes = 90;
    t.locked = true;
    t.billed = true;
    t.source = {"time", "123456", "636709355", "2", std::nullopt};
    std::string error;
    auto j = to_json(t);
    EXPECT_EQ(j["billed"], true);
    const auto back = time_entry_from_json(j, error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, t);
    // A row stored before the flag existed has no "billed": not billed.
    j.erase("billed");
    const auto old = time_entry_from_json(j, error);
    ASSERT_TRUE(old) << error;
    EXPECT_FALSE(old->billed);
    EXPECT_TRUE(old->locked);
    j["billed"] = "yes";
    EXPECT_FALSE(time_entry_from_json(j, error));
    EXPECT_NE(error.find("billed"), std::string::npos) << error;
}

TEST(storage, a_ledger_item_round_trips_with_or_without_its_price) {
    ledger_item i;
    i.id = "qbo:1185883450:ledger_item:7";
    i.code = "7";
    i.name = "Tax preparation";
    i.unit_price = money{15000, "USD"};
    i.unit_price_text = "150";
    i.source = {"qbo", "1185883450", "7", "2", std::nullopt};
    std::string error;
    auto j = to_json(i);
    EXPECT_EQ(j["unit_price"]["minor"], 15000);
    auto back = ledger_item_from_json(j, error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, i);
    // No minor-unit price (none, or more decimals than the currency): null, text kept.
    i.unit_price.reset();
    i.unit_price_text = "99.995";
    i.active = false;
    back = ledger_item_from_json(to_json(i), error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, i);
    j["code"] = 7;
    EXPECT_FALSE(ledger_item_from_json(j, error));
    EXPECT_NE(error.find("code"), std::string::npos) << error;
}

TEST(storage, decoding_reports_the_bad_field) {
    auto j = to_json(sample_invoice());
    j["total"] = 1250.3;
    std::string error;
    EXPECT_FALSE(invoice_from_json(j, error));
    EXPECT_NE(error.find("total"), std::string::npos) << error;
    j = to_json(sample_invoice());
    j["due_date"] = "2026-02-30";
    EXPECT_FALSE(invoice_from_json(j, error));
    EXPECT_NE(error.find("due_date"), std::string::npos) << error;
    j = to_json(sample_invoice());
    j["status"] = "overdue";
    EXPECT_FALSE(invoice_from_json(j, error));
    EXPECT_FALSE(invoice_from_json(nlohmann::json::array(), error));
    j = to_json(sample_invoice());
    j.erase("lines");
    EXPECT_FALSE(invoice_from_json(j, error));
    EXPECT_NE(error.find("lines"), std::string::npos) << error;
}

TEST(invoice_diff, first_sight_is_created_and_identical_is_nothing) {
    const auto inv = sample_invoice();
    const auto created = diff(nullptr, inv);
    ASSERT_EQ(created.size(), 1U);
    EXPECT_EQ(created[0].kind, invoice_change_kind::created);
    EXPECT_EQ(created[0].balance_after, usd(125030));
    EXPECT_FALSE(created[0].balance_before);
    EXPECT_TRUE(diff(&inv, inv).empty());
}

TEST(invoice_diff, partial_then_full_payment) {
    const auto v0 = sample_invoice();
    auto v1 = v0;
    v1.balance = usd(75030);
    auto changes = diff(&v0, v1);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, invoice_change_kind::partial_payment);
    EXPECT_EQ(changes[0].balance_before, usd(125030));
    EXPECT_EQ(changes[0].balance_after, usd(75030));

    auto v2 = v1;
    v2.balance = usd(0);
    v2.status = invoice_status::paid;
    changes = diff(&v1, v2);
    ASSERT_EQ(changes.size(), 1U);  // the move to paid is folded into balance_to_zero
    EXPECT_EQ(changes[0].kind, invoice_change_kind::balance_to_zero);
    EXPECT_EQ(changes[0].status_after, invoice_status::paid);
    EXPECT_EQ(changes[0].balance_after, usd(0));
}

TEST(invoice_diff, void_folds_in_the_zeroed_amounts) {
    auto v0 = sample_invoice();
    auto v1 = v0;
    v1.total = usd(0);
    v1.balance = usd(0);
    v1.status = invoice_status::voided;
    const auto changes = diff(&v0, v1);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, invoice_change_kind::voided);
    EXPECT_EQ(changes[0].balance_before, usd(125030));
    EXPECT_EQ(changes[0].total_after, usd(0));
    EXPECT_EQ(changes[0].status_before, invoice_status::open);
}

TEST(invoice_diff, reopened_when_a_payment_is_removed) {
    auto paid = sample_invoice();
    paid.balance = usd(0);
    paid.status = invoice_status::paid;
    const auto open = sample_invoice();
    const auto changes = diff(&paid, open);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, invoice_change_kind::reopened);
    EXPECT_EQ(changes[0].balance_after, usd(125030));
}

TEST(invoice_diff, several_changes_come_in_a_fixed_order) {
    const auto v0 = sample_invoice();
    auto v1 = v0;
    v1.total = usd(135030);
    v1.balance = usd(135030);
    v1.due_date = 2026y / February / 15d;
    v1.delivery = delivery_status::sent;
    const auto changes = diff(&v0, v1);
    ASSERT_EQ(changes.size(), 4U);
    EXPECT_EQ(changes[0].kind, invoice_change_kind::amount_changed);
    EXPECT_EQ(changes[1].kind, invoice_change_kind::balance_increased);
    EXPECT_EQ(changes[2].kind, invoice_change_kind::due_date_later);
    EXPECT_EQ(changes[2].due_before, 2026y / February / 1d);
    EXPECT_EQ(changes[3].kind, invoice_change_kind::delivery_changed);

    auto v2 = v0;
    v2.due_date = 2026y / January / 20d;
    const auto earlier = diff(&v0, v2);
    ASSERT_EQ(earlier.size(), 1U);
    EXPECT_EQ(earlier[0].kind, invoice_change_kind::due_date_earlier);
}

TEST(invoice_diff, a_smaller_total_is_not_a_payment) {
    const auto v0 = sample_invoice();
    auto v1 = v0;
    v1.total = usd(100000);
    v1.balance = usd(100000);
    const auto changes = diff(&v0, v1);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, invoice_change_kind::amount_changed);
}

TEST(invoice_diff, deletion) {
    const auto v0 = sample_invoice();
    auto gone = v0;
    gone.deleted = true;
    const auto changes = diff(&v0, gone);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, invoice_change_kind::deleted);
    EXPECT_EQ(changes[0].balance_before, usd(125030));
    EXPECT_TRUE(diff(&gone, gone).empty());
    EXPECT_TRUE(diff(nullptr, gone).empty());
}

TEST(invoice_diff, changes_encode_as_json) {
    const auto v0 = sample_invoice();
    auto v1 = v0;
    v1.balance = usd(75030);
    const auto j = to_json(diff(&v0, v1).at(0));
    EXPECT_EQ(j["kind"], "partial_payment");
    EXPECT_EQ(j["balance_after"]["minor"], 75030);
    EXPECT_EQ(j["status_after"], "open");
}

TEST(client_diff, contacts_and_flags) {
    client a;
    a.display_name = "Alvarez";
    a.contact.billing_email = "a@x.example";
    EXPECT_EQ(diff(nullptr, a).at(0).kind, client_change_kind::created);
    auto b = a;
    b.contact.mobile = "+15035550142";
    b.payment_plan = true;
    const auto changes = diff(&a, b);
    ASSERT_EQ(changes.size(), 2U);
    EXPECT_EQ(changes[0].kind, client_change_kind::contact_changed);
    EXPECT_EQ(changes[0].field, "mobile");
    EXPECT_EQ(changes[0].after, "+15035550142");
    EXPECT_EQ(changes[1].kind, client_change_kind::payment_plan_changed);
    EXPECT_EQ(changes[1].after, "true");
    EXPECT_TRUE(diff(&b, b).empty());
    EXPECT_EQ(to_json(changes[1])["field"], "payment_plan");
}

TEST(client_diff, a_client_code_change_is_a_change) {
    client a;
    a.display_name = "Alvarez";
    auto b = a;
    b.client_code = "ALV001";
    const auto changes = diff(&a, b);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, client_change_kind::code_changed);
    EXPECT_EQ(to_string(changes[0].kind), "code_changed");
    EXPECT_EQ(changes[0].field, "client_code");
    EXPECT_EQ(changes[0].before, "");
    EXPECT_EQ(changes[0].after, "ALV001");
}

TEST(client_diff, a_tag_or_currency_change_is_a_change) {
    client a;
    a.display_name = "Alvarez";
    auto b = a;
    b.tags = {"autopay", "no-late-fee"};
    b.currency = "USD";
    const auto changes = diff(&a, b);
    ASSERT_EQ(changes.size(), 2U);
    EXPECT_EQ(changes[0].kind, client_change_kind::tags_changed);
    EXPECT_EQ(changes[0].after, "autopay,no-late-fee");
    EXPECT_EQ(to_string(changes[1].kind), "currency_changed");
    EXPECT_EQ(changes[1].after, "USD");
}

}  // namespace
}  // namespace billsync::mappings
