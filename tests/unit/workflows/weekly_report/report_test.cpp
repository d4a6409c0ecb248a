// The weekly report's figures, computed exactly from a small stored firm.
#include "workflows/weekly_report/report.hpp"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "mappings/model.hpp"
#include "state/dead_letters.hpp"
#include "state/entity_index.hpp"
#include "state/keys.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::workflows::weekly_report {
namespace {

using json = nlohmann::json;
using testing_support::at;

mappings::civil_date day(std::string_view text) { return *mappings::parse_civil_date(text); }

settings firm() {
    settings s;
    s.enabled = true;
    s.time_zone = "America/New_York";
    s.currency = "USD";
    s.week_end_day = 0;  // Sunday
    s.expected_minutes = 420;
    return s;
}

TEST(weekly_report_weeks, iso_labels_parse_and_format) {
    EXPECT_EQ(format_week(*parse_week("2026-W49")), "2026-W49");
    EXPECT_EQ(format_week(*parse_week("2020-W53")), "2020-W53");  // 2020 has 53 ISO weeks
    EXPECT_FALSE(parse_week("2021-W53"));
    EXPECT_FALSE(parse_week("2026-W00"));
    EXPECT_FALSE(parse_week("2026-49"));
    EXPECT_FALSE(parse_week("2026-W4"));
    EXPECT_FALSE(parse_week("x026-W10"));
}

TEST(weekly_report_weeks, the_week_ends_on_the_firms_day) {
    auto s = firm();
    const auto* tz = date::locate_zone(s.time_zone);
    auto span = span_of(s, *tz, *parse_week("2026-W49"));
    EXPECT_EQ(date::year_month_day(span.start), date::year(2026) / 11 / 30);
    EXPECT_EQ(date::year_month_day(span.end), date::year(2026) / 12 / 6);
    EXPECT_EQ(span.begins, at("2026-11-30T05:00:00Z"));
    EXPECT_EQ(span.ends, at("2026-12-07T05:00:00Z"));
    s.week_end_day = 5;  // Friday
    span = span_of(s, *tz, *parse_week("2026-W49"));
    EXPECT_EQ(date::year_month_day(span.start), date::year(2026) / 11 / 28);
    EXPECT_EQ(date::year_month_day(span.end), date::year(2026) / 12 / 4);
    // Sunday 22:00 in New York is still week 49; 01:00 on Monday it is over.
    s.week_end_day = 0;
    EXPECT_EQ(format_week(week_of(s, *tz, at("2026-12-07T03:00:00Z"))), "2026-W49");
    EXPECT_EQ(format_week(last_completed_week(s, *tz, at("2026-12-07T03:00:00Z"))), "2026-W48");
    EXPECT_EQ(format_week(last_completed_week(s, *tz, at("2026-12-07T06:00:00Z"))), "2026-W49");
    // Across the year: 2027-01-01 is a Friday, in ISO week 2026-W53.
    EXPECT_EQ(format_week(week_of(s, *tz, at("2027-01-01T17:00:00Z"))), "2026-W53");
}

class weekly_report_test : public testing_support::state_fixture {
protected:
    void invoice(std::string id,
                 std::string client,
                 std::string_view issued,
                 std::string_view due,
                 std::int64_t total,
                 std::int64_t balance,
                 mappings::invoice_status st = mappings::invoice_status::open,
                 std::string currency = "USD") {
        mappings::invoice i;
        i.id = id;
        i.number = "N-" + id;
        i.client_id = std::move(client);
        i.issue_date = day(issued);
        i.due_date = day(due);
        i.currency = currency;
        i.total = {total, currency};
        i.balance = {balance, currency};
        i.status = st;
        put("invoice", id, mappings::to_json(i).dump());
    }
    void client(std::string id, std::string name) {
        mappings::client c;
        c.id = id;
        c.display_name = std::move(name);
        put("client", id, mappings::to_json(c).dump());
    }
    void payment(std::string id, std::string_view on, std::string inv, std::int64_t minor) {
        mappings::payment p;
        p.id = id;
        p.amount = {minor, "USD"};
        p.date = day(on);
        p.applied.push_back({std::move(inv), "", {minor, "USD"}});
        put("payment", id, mappings::to_json(p).dump());
    }
    // A row as the apply step writes it: with its index rows (state/entity_index.hpp).
    void put(std::string_view type, std::string_view id, std::string_view value) {
        state::batch b(*store_);
        auto before = state::get_entity(*store_, type, id);
        ASSERT_TRUE(before.ok());
        state::put_entity(b, type, id, value);
        state::entity_index::update(b, type, id, before.value, std::string(value));
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    void audit(std::string_view when, json line) {
        state::batch b(*store_);
        line["rule"] = "followup";
        audit_->append(b, at(when), line.dump());
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    // Week 49 of 2026 (Mon 30 Nov to Sun 6 Dec), asked on the Tuesday after.
    json report(util::instant now = at("2026-12-08T15:00:00Z")) {
        auto r = weekly_report(*store_, firm(), "2026-W49", now);
        EXPECT_TRUE(r.ok()) << r.error;
        return r.body;
    }

    void firm_with_invoices() {
        client("c1", "Acme LLP");
        client("c2", "Bravo Inc");
        // As of Sun 6 Dec: due 10 Dec is current; 1 Dec 5 days late; 1 Nov 35; 1 Oct 66; 1 Aug.
        invoice("i1", "c1", "2026-11-20", "2026-12-10", 10000, 10000);
        invoice("i2", "c1", "2026-11-01", "2026-12-01", 20000, 15000);
        invoice("i3", "c2", "2026-10-01", "2026-11-01", 30000, 30000);
        invoice("i4", "c2", "2026-09-01", "2026-10-01", 40000, 40000);
        invoice("i5", "c2", "2026-07-01", "2026-08-01", 50000, 50000);
        // Paid on 8 Dec (after the week): it was open, 1 Dec + 5 days, at the week's end.
        invoice("i6", "c1", "2026-11-01", "2026-12-01", 7000, 0, mappings::invoice_status::paid);
        payment("p1", "2026-12-08", "i6", 7000);
        // Paid on 2 Dec, within the week: not open at its end, but open (due 1 Dec) at the
        // previous week's end (29 Nov: current).
        invoice("i7", "c1", "2026-11-01", "2026-12-01", 3000, 0, mappings::invoice_status::paid);
        payment("p2", "2026-12-02", "i7", 3000);
        // Issued after the week: not counted. Voided, another currency: not counted.
        invoice("i8", "c1", "2026-12-07", "2026-12-20", 9000, 9000);
        invoice(
            "i9", "c1", "2026-11-01", "2026-11-15", 9000, 9000, mappings::invoice_status::voided);
        invoice("i10",
                "c1",
                "2026-11-01",
                "2026-11-15",
                9000,
                9000,
                mappings::invoice_status::open,
                "EUR");
    }
};

TEST_F(weekly_report_test, aging_is_exact_per_bucket_and_client_as_of_the_weeks_end) {
    firm_with_invoices();
    const auto r = report();
    EXPECT_EQ(r["week"], "2026-W49");
    EXPECT_EQ(r["week_start"], "2026-11-30");
    EXPECT_EQ(r["week_end"], "2026-12-06");
    EXPECT_EQ(r["time_zone"], "America/New_York");
    EXPECT_EQ(r["currency"], "USD");
    EXPECT_TRUE(r["final"].get<bool>());
    const auto& t = r["aging"]["total"];
    EXPECT_EQ(t["current"], (json{{"amount_minor", 10000}, {"count", 1}}));
    EXPECT_EQ(t["1_30"], (json{{"amount_minor", 22000}, {"count", 2}}));  // i2 + i6
    EXPECT_EQ(t["31_60"], (json{{"amount_minor", 30000}, {"count", 1}}));
    EXPECT_EQ(t["61_90"], (json{{"amount_minor", 40000}, {"count", 1}}));
    EXPECT_EQ(t["90_plus"], (json{{"amount_minor", 50000}, {"count", 1}}));
    EXPECT_EQ(t["open"], (json{{"amount_minor", 152000}, {"count", 6}}));
    EXPECT_EQ(r["aging"]["other_currency_invoices"], 1);
    // Previous week (as of 29 Nov): i1, i2, i6, i7 current (i2, i6, i7 were due 1 Dec);
    // i3 28 days, i4 59, i5 120.
    const auto& c = r["aging"]["change"];
    EXPECT_EQ(c["current"], (json{{"amount_minor", 10000 - 35000}, {"count", 1 - 4}}));
    EXPECT_EQ(c["1_30"], (json{{"amount_minor", 22000 - 30000}, {"count", 2 - 1}}));
    EXPECT_EQ(c["31_60"], (json{{"amount_minor", 30000 - 40000}, {"count", 0}}));
    EXPECT_EQ(c["61_90"], (json{{"amount_minor", 40000}, {"count", 1}}));
    EXPECT_EQ(c["open"], (json{{"amount_minor", 152000 - 155000}, {"count", -1}}));
    ASSERT_EQ(r["aging"]["clients"].size(), 2u);
    EXPECT_EQ(r["aging"]["clients"][0]["client"], "c2");  // the larger balance first
    EXPECT_EQ(r["aging"]["clients"][0]["name"], "Bravo Inc");
    EXPECT_EQ(r["aging"]["clients"][0]["open"]["amount_minor"], 120000);
    EXPECT_EQ(r["aging"]["clients"][1]["open"], (json{{"amount_minor", 32000}, {"count", 3}}));
}

TEST_F(weekly_report_test, collections_are_integers_in_days_and_basis_points) {
    firm_with_invoices();
    audit("2026-12-02T15:00:00Z", {{"invoice", "i3"}, {"decision", "pause"}, {"cause", "x"}});
    const auto r = report();
    const auto& col = r["collections"];
    // Collected in the week: p2 (3000). Open at the previous week's end 155000, invoiced in the
    // week 0: 3000 * 10000 / 155000 = 193.5 -> 194 bp.
    EXPECT_EQ(col["collected_minor"], 3000);
    EXPECT_EQ(col["collection_rate_bp"], 194);
    // DSO: 152000 open * 91 / invoiced in the 91 days to 6 Dec (i1 10000 + i2 20000 + i3 30000
    // + i6 7000 + i7 3000 = 70000) = 197.6 -> 198 days.
    EXPECT_EQ(col["invoiced_91_days_minor"], 70000);
    EXPECT_EQ(col["dso_days"], 198);
    // One dispute opened over 5 past-due invoices: 2000 bp.
    EXPECT_EQ(col["past_due_invoices"], 5);
    EXPECT_EQ(col["dispute_rate_bp"], 2000);
}

TEST_F(weekly_report_test, vendor_text_that_looks_like_fields_is_only_text) {
    client("c1", "Acme \"status\":\"paid\" {LLP}");
    mappings::invoice i;
    i.id = "i1";
    i.number = "N-\"1\"";
    i.client_id = "c1";
    i.issue_date = day("2026-11-01");
    i.due_date = day("2026-11-20");
    i.currency = "USD";
    i.total = i.balance = {4200, "USD"};
    i.lines.push_back({mappings::line_kind::item,
                       R"(fees "status":"voided", "balance":{"minor":1,"currency":"USD"} ]})",
                       "1",
                       "42",
                       {4200, "USD"},
                       "",
                       ""});
    put("invoice", "i1", mappings::to_json(i).dump());
    const auto r = report();
    EXPECT_EQ(r["aging"]["total"]["1_30"], (json{{"amount_minor", 4200}, {"count", 1}}));
    EXPECT_EQ(r["aging"]["clients"][0]["name"], "Acme \"status\":\"paid\" {LLP}");
}

TEST_F(weekly_report_test, an_empty_firm_has_null_rates_and_no_time_section) {
    const auto r = report();
    EXPECT_TRUE(r["collections"]["dso_days"].is_null());
    EXPECT_TRUE(r["collections"]["collection_rate_bp"].is_null());
    EXPECT_TRUE(r["collections"]["dispute_rate_bp"].is_null());
    EXPECT_TRUE(r["time"].is_null());
    EXPECT_EQ(r["aging"]["total"]["open"], (json{{"amount_minor", 0}, {"count", 0}}));
    EXPECT_EQ(r["operations"]["dead_letters"], 0);
}

TEST_F(weekly_report_test, follow_up_figures_come_from_the_weeks_audit_and_the_sequences) {
    client("c1", "Acme LLP");
    invoice("i1", "c1", "2026-10-01", "2026-11-01", 5000, 5000);
    invoice("i2", "c1", "2026-10-01", "2026-11-01", 5000, 5000);
    followup::sequence_state a;
    a.invoice_id = "i1";
    a.seen = a.entered = true;
    a.current = followup::phase::active;
    a.last_touch = 2;
    a.due_date = a.anchor = date::year(2026) / 11 / 1;
    put("followup", "i1", followup::encode(a));
    followup::sequence_state p = a;
    p.invoice_id = "i2";
    p.current = followup::phase::paused;
    p.paused_at = at("2026-12-01T12:00:00Z");
    put("followup", "i2", followup::encode(p));
    audit("2026-11-29T15:00:00Z",  // the week before: not counted
          {{"decision", "touch"}, {"touch", 1}, {"cause", "touch 1 (x) for 1 via email"}});
    audit("2026-12-01T15:00:00Z",
          {{"decision", "touch"},
           {"touch", 2},
           {"cause", "touch 2 (standard.touch2) for 50.00 USD, 30 days overdue via email, sms"}});
    audit("2026-12-02T15:00:00Z",
          {{"decision", "touch"},
           {"touch", 1},
           {"cause", "touch 1 (x) for 1 via email; not sent: sms: no consent"}});
    audit(
        "2026-12-03T15:00:00Z",
        {{"decision", "cancel"}, {"cause", "invoice 7 paid in full; remaining touches cancelled"}});
    audit("2026-12-03T16:00:00Z",
          {{"decision", "cancel"}, {"cause", "invoice 8 was voided; remaining touches cancelled"}});
    audit("2026-12-04T16:00:00Z", {{"decision", "pause"}, {"cause", "dispute keyword"}});
    mappings::suppression so;
    so.address = "+15550001111";
    so.at = "2026-12-05T10:00:00Z";
    put("suppression", so.id(), mappings::to_json(so).dump());
    so.address = "+15550002222";
    so.at = "2026-11-05T10:00:00Z";
    put("suppression", so.id(), mappings::to_json(so).dump());

    const auto f = report()["followup"];
    EXPECT_EQ(f["touches_sent"], (json{{"email", 2}, {"sms", 1}}));
    EXPECT_EQ(f["touches_by_number"], (json{{"1", 1}, {"2", 1}}));
    EXPECT_EQ(f["stopped_by_payment"], 1);
    EXPECT_EQ(f["disputes_opened"], 1);
    EXPECT_EQ(f["open_sequences"], 2);
    EXPECT_EQ(f["stages"], (json{{"paused", 1}, {"touch_2", 1}}));
    EXPECT_EQ(f["disputes_open"], 1);
    EXPECT_EQ(f["disputes"][0]["invoice"], "i2");
    EXPECT_EQ(f["disputes"][0]["age_days"], 5);  // 1 Dec 12:00 to 7 Dec 05:00
    EXPECT_EQ(f["opt_outs"], 1);
    EXPECT_EQ(f["opted_out_total"], 2);
    ASSERT_EQ(f["clients"].size(), 1u);
    EXPECT_EQ(f["clients"][0]["name"], "Acme LLP");
    EXPECT_EQ(f["clients"][0]["sequences"].size(), 2u);
}

TEST_F(weekly_report_test, time_figures_measure_leakage_capture_and_lag) {
    mappings::staff st;
    st.id = "s1";
    st.name = "Sam";
    put("staff", "s1", mappings::to_json(st).dump());
    const auto entry =
        [&](std::string id, std::string_view on, std::int64_t minutes, bool billable) {
            mappings::time_entry t;
            t.id = id;
            t.staff_id = "s1";
            t.client_id = "c1";
            t.date = day(on);
            t.minutes = minutes;
            t.billable = billable;
            put("time_entry", id, mappings::to_json(t).dump());
        };
    entry("t1", "2026-11-30", 480, true);  // Monday, full day
    entry("t2", "2026-12-01", 300, true);  // Tuesday, short
    entry("t3", "2026-12-02", 420, false);
    entry("t4", "2026-12-05", 60, true);  // Saturday: counted as time, not a staff-day
    put("invoicing_entry", "t1", R"({"draft":"d1"})");
    put("invoicing_draft",
        "d1",
        json{{"id", "d1"},
             {"state", "pending_approval"},
             {"created_at", "2026-12-04T15:00:00Z"},
             {"lines", json::array({json{{"entries", json::array({"t1"})}}})}}
            .dump());
    const auto t = report()["time"];
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["recorded_billable_minutes"], 840);
    EXPECT_EQ(t["billed_minutes"], 480);
    EXPECT_EQ(t["leakage_bp"], 4286);  // 360 / 840
    EXPECT_EQ(t["capture"]["staff_days"], 5);
    EXPECT_EQ(t["capture"]["staff_days_under"], 3);  // Tue 300, Thu and Fri nothing
    EXPECT_EQ(t["capture"]["complete_bp"], 4000);
    EXPECT_EQ(t["drafts_unreviewed"]["invoices"], 1);
    EXPECT_EQ(t["work_to_invoice_days"]["average"], 4);  // 30 Nov to 4 Dec
}

TEST_F(weekly_report_test, operations_count_dead_letters_and_open_exceptions) {
    state::dead_letter d;
    d.id = "outbox/a1";
    d.origin = "outbox";
    d.connector = "qbo";
    d.error = "permanent: 400";
    d.at = at("2026-12-03T10:00:00Z");
    {
        state::batch b(*store_);
        b.put(state::cf::dead_letters, d.id, state::encode_dead_letter(d));
        d.id = "outbox/a2";
        d.at = at("2026-12-09T10:00:00Z");  // after the week: not yet there
        b.put(state::cf::dead_letters, d.id, state::encode_dead_letter(d));
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    put("invoicing_open",
        "missing_po:d1",
        R"({"type":"missing_po","since":"2026-11-26T05:00:00Z"})");
    const auto o = report()["operations"];
    EXPECT_EQ(o["dead_letters"], 1);
    EXPECT_EQ(o["dead_letters_week"], 1);
    EXPECT_EQ(o["connectors"][0]["connector"], "qbo");
    EXPECT_EQ(o["exceptions_open"], 1);
    EXPECT_EQ(o["exceptions_by_type"]["missing_po"], 1);
    EXPECT_EQ(o["oldest_exception_days"], 11);
}

TEST_F(weekly_report_test, a_snapshot_makes_the_week_the_same_whenever_asked) {
    firm_with_invoices();
    auto computed =
        compute_report(*store_, firm(), *parse_week("2026-W49"), at("2026-12-07T05:00:00Z"));
    ASSERT_TRUE(computed.ok());
    {
        state::batch b(*store_);
        put_snapshot(b, computed.body);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    // Much later, after more payments and a new invoice, the week reads the same.
    payment("p9", "2026-12-03", "i1", 10000);
    invoice("i1", "c1", "2026-11-20", "2026-12-10", 10000, 0, mappings::invoice_status::paid);
    invoice("i11", "c2", "2026-11-30", "2026-12-04", 1000, 1000);
    auto later = report(at("2027-03-01T12:00:00Z"));
    EXPECT_EQ(later["source"], "snapshot");
    later.erase("source");
    computed.body.erase("source");
    later.erase("as_of_now");
    computed.body.erase("as_of_now");
    EXPECT_EQ(later, computed.body);
    // The next week's change is against the stored total, not a reconstruction.
    const auto next = weekly_report(*store_, firm(), "2026-W50", at("2027-03-01T12:00:00Z"));
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next.body["aging"]["change"]["open"]["amount_minor"],
              next.body["aging"]["total"]["open"]["amount_minor"].get<std::int64_t>() - 152000);
}

TEST_F(weekly_report_test, a_week_not_over_is_as_of_now_and_a_future_week_is_refused) {
    firm_with_invoices();
    auto r = weekly_report(*store_, firm(), "2026-W49", at("2026-12-03T15:00:00Z"));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.body["final"].get<bool>());
    EXPECT_EQ(r.body["aging"]["as_of_date"], "2026-12-03");
    r = weekly_report(*store_, firm(), "2027-W10", at("2026-12-03T15:00:00Z"));
    EXPECT_EQ(r.error.rfind("bad_week: ", 0), 0u) << r.error;
    r = weekly_report(*store_, firm(), "2026-W99", at("2026-12-03T15:00:00Z"));
    EXPECT_EQ(r.error.rfind("bad_week: ", 0), 0u) << r.error;
    // No week: the last finished one.
    r = weekly_report(*store_, firm(), "", at("2026-12-08T15:00:00Z"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.body["week"], "2026-W49");
}

TEST_F(weekly_report_test, text_and_html_show_the_figures_and_the_page_is_self_contained) {
    firm_with_invoices();
    client("c3", "<script>alert(1)</script>");
    invoice("i12", "c3", "2026-11-01", "2026-11-15", 100, 100);
    const auto r = report();
    const auto text = render_text(r);
    EXPECT_NE(text.find("Weekly report 2026-W49"), std::string::npos) << text;
    EXPECT_NE(text.find("1521.00 (7)"), std::string::npos) << text;
    EXPECT_NE(text.find("DSO"), std::string::npos) << text;
    const auto html = render_html(r);
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_NE(html.find("1521.00 (7)"), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
    EXPECT_EQ(html.find("http://"), std::string::npos);
    EXPECT_EQ(html.find("https://"), std::string::npos);
    EXPECT_EQ(html.find("<link"), std::string::npos);
    // Every table, row and cell that opens closes.
    for (std::string tag : {"table", "tr", "td", "th", "h1", "h2", "p", "html", "body", "head"}) {
        std::size_t open = 0, close = 0, pos = 0;
        while ((pos = html.find("<" + tag, pos)) != std::string::npos) {
            const char next = html[pos + tag.size() + 1];
            open += next == '>' || next == ' ' ? 1 : 0;
            ++pos;
        }
        pos = 0;
        while ((pos = html.find("</" + tag + ">", pos)) != std::string::npos) {
            ++close;
            ++pos;
        }
        EXPECT_EQ(open, close) << tag;
    }
}

namespace generated {

// A deterministic pseudo-random firm: invoices in every status, two currencies (and a mixed
// one), deleted rows, payments before, in and after the week (some voided or deleted), time
// entries with and without dates, drafted, locked, deleted, billed.
struct firm_rows {
    std::vector<mappings::invoice> invoices;
    std::vector<mappings::payment> payments;
    std::vector<mappings::time_entry> entries;
    std::vector<std::string> billed;  // time entries on an invoice draft
};

firm_rows make_firm() {
    std::uint64_t seed = 42;
    const auto next = [&seed](std::uint64_t n) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        return (seed >> 33) % n;
    };
    const auto on = [](int offset) {  // days from Sun 2026-12-06
        return mappings::civil_date(std::chrono::sys_days(day("2026-12-06")) +
                                    std::chrono::days(offset));
    };
    firm_rows f;
    for (int i = 0; i < 300; ++i) {
        mappings::invoice inv;
        inv.id = "i" + std::to_string(i);
        inv.number = std::to_string(1000 + i);
        inv.client_id = "c" + std::to_string(next(20));
        const int issued = 10 - static_cast<int>(next(200));
        inv.issue_date = on(issued);
        if (next(10) != 0) {
            inv.due_date = on(issued + 30);
        }
        const std::string cur = next(10) == 0 ? "EUR" : "USD";
        inv.currency = cur;
        const auto total = static_cast<std::int64_t>(1000 + next(50000));
        const auto st = next(10);
        inv.status = st < 5   ? mappings::invoice_status::open
                     : st < 8 ? mappings::invoice_status::paid
                     : st < 9 ? mappings::invoice_status::voided
                              : mappings::invoice_status::draft;
        const auto balance =
            inv.status == mappings::invoice_status::paid
                ? 0
                : static_cast<std::int64_t>(next(static_cast<std::uint64_t>(total) + 2000)) - 1000;
        inv.total = {total, cur};
        inv.balance = {balance, next(30) == 0 ? std::string("CAD") : cur};
        inv.deleted = next(25) == 0;
        for (std::uint64_t k = next(3); k > 0; --k) {
            mappings::payment p;
            p.id = "p" + std::to_string(f.payments.size());
            const auto minor =
                static_cast<std::int64_t>(100 + next(static_cast<std::uint64_t>(total)));
            p.amount = {minor, cur};
            if (next(15) != 0) {
                p.date = on(issued + static_cast<int>(next(180)));
            }
            p.applied.push_back({inv.id, "", {minor, cur}});
            p.voided = next(12) == 0;
            p.deleted = next(12) == 0;
            f.payments.push_back(std::move(p));
        }
        f.invoices.push_back(std::move(inv));
    }
    for (int e = 0; e < 400; ++e) {
        mappings::time_entry t;
        t.id = "t" + std::to_string(e);
        t.staff_id = "s" + std::to_string(next(3));
        t.client_id = "c" + std::to_string(next(20));
        if (next(20) != 0) {
            t.date = on(10 - static_cast<int>(next(40)));
        }
        t.minutes = static_cast<std::int64_t>(15 + next(400));
        t.billable = next(4) != 0;
        t.locked = next(2) == 0;
        if (next(3) == 0) {
            t.external_reference = "billsync:" + t.id;
        }
        t.deleted = next(15) == 0;
        if (next(3) == 0) {
            f.billed.push_back(t.id);
        }
        f.entries.push_back(std::move(t));
    }
    return f;
}

void write_rows(state::store& s, const firm_rows& f, bool indexed) {
    state::batch b(s);
    const auto put = [&](std::string_view type, const std::string& id, std::string row) {
        state::put_entity(b, type, id, row);
        if (indexed) {
            state::entity_index::update(b, type, id, std::nullopt, std::move(row));
        }
    };
    for (const auto& i : f.invoices) {
        put("invoice", i.id, mappings::to_json(i).dump());
    }
    for (const auto& p : f.payments) {
        put("payment", p.id, mappings::to_json(p).dump());
    }
    for (const auto& t : f.entries) {
        put("time_entry", t.id, mappings::to_json(t).dump());
    }
    for (const auto& id : f.billed) {
        put("invoicing_entry", id, R"({"draft":"d1"})");
    }
    ASSERT_TRUE(s.write(b, true).ok);
}

// The figures of week 2026-W49 (D = Sun 6 Dec) by a plain scan of every row.
json expected_figures(const firm_rows& f) {
    const auto D = day("2026-12-06"), start = day("2026-11-30"), prev = day("2026-11-29");
    const auto days_between = [](mappings::civil_date a, mappings::civil_date b) {
        return (std::chrono::sys_days(b) - std::chrono::sys_days(a)).count();
    };
    std::map<std::string, std::vector<std::pair<mappings::civil_date, std::int64_t>>> paid;
    std::int64_t collected = 0, payments = 0;
    for (const auto& p : f.payments) {
        if (p.voided || p.deleted || !p.date) {
            continue;
        }
        if (p.amount.currency == "USD" && *p.date >= start && *p.date <= D) {
            collected += p.amount.minor;
            ++payments;
        }
        for (const auto& a : p.applied) {
            if (a.amount.currency == "USD") {
                paid[a.invoice_id].emplace_back(*p.date, a.amount.minor);
            }
        }
    }
    const auto bucket = [](std::int64_t past) {
        return past <= 0 ? 0 : past <= 30 ? 1 : past <= 60 ? 2 : past <= 90 ? 3 : 4;
    };
    std::array<std::int64_t, 5> amount{}, count{}, prev_amount{}, prev_count{};
    std::int64_t other = 0, invoiced_week = 0, invoiced_91 = 0;
    for (const auto& i : f.invoices) {
        if (i.deleted || (i.status != mappings::invoice_status::open &&
                          i.status != mappings::invoice_status::paid)) {
            continue;
        }
        if (i.total.currency != "USD" || i.balance.currency != "USD") {
            ++other;
            continue;
        }
        if (*i.issue_date <= D && *i.issue_date >= start) {
            invoiced_week += i.total.minor;
        }
        if (*i.issue_date <= D && days_between(*i.issue_date, D) < 91) {
            invoiced_91 += i.total.minor;
        }
        for (const auto& [asof, a, c] :
             {std::tuple{D, &amount, &count}, std::tuple{prev, &prev_amount, &prev_count}}) {
            if (*i.issue_date > asof) {
                continue;
            }
            std::int64_t b = i.balance.minor;
            for (const auto& [on, minor] : paid[i.id]) {
                b += on > asof ? minor : 0;
            }
            b = std::clamp<std::int64_t>(b, 0, std::max(i.total.minor, i.balance.minor));
            if (b > 0) {
                const auto k = bucket(i.due_date ? days_between(*i.due_date, asof) : 0);
                (*a)[static_cast<std::size_t>(k)] += b;
                ++(*c)[static_cast<std::size_t>(k)];
            }
        }
    }
    std::int64_t recorded = 0, billed = 0, unreviewed = 0;
    for (const auto& t : f.entries) {
        if (t.deleted) {
            continue;
        }
        unreviewed += !t.external_reference.empty() && !t.locked ? 1 : 0;
        if (t.date && *t.date >= start && *t.date <= D && t.billable) {
            recorded += t.minutes;
            if (std::find(f.billed.begin(), f.billed.end(), t.id) != f.billed.end()) {
                billed += t.minutes;
            }
        }
    }
    json aging = json::object(), change = json::object();
    for (std::size_t k = 0; k < 5; ++k) {
        const std::string name(std::array{"current", "1_30", "31_60", "61_90", "90_plus"}[k]);
        aging[name] = {{"amount_minor", amount[k]}, {"count", count[k]}};
        change[name] = {{"amount_minor", amount[k] - prev_amount[k]},
                        {"count", count[k] - prev_count[k]}};
    }
    return {{"aging", aging},
            {"change", change},
            {"other_currency_invoices", other},
            {"collected_minor", collected},
            {"payments", payments},
            {"invoiced_minor", invoiced_week},
            {"invoiced_91_days_minor", invoiced_91},
            {"recorded_billable_minutes", recorded},
            {"billed_minutes", billed},
            {"unreviewed", unreviewed}};
}

json figures_of(const json& r) {
    json aging = json::object(), change = json::object();
    for (const auto* k : {"current", "1_30", "31_60", "61_90", "90_plus"}) {
        aging[k] = r["aging"]["total"][k];
        change[k] = r["aging"]["change"][k];
    }
    const auto& c = r["collections"];
    const auto& t = r["time"];
    return {{"aging", aging},
            {"change", change},
            {"other_currency_invoices", r["aging"]["other_currency_invoices"]},
            {"collected_minor", c["collected_minor"]},
            {"payments", c["payments"]},
            {"invoiced_minor", c["invoiced_minor"]},
            {"invoiced_91_days_minor", c["invoiced_91_days_minor"]},
            {"recorded_billable_minutes", t["recorded_billable_minutes"]},
            {"billed_minutes", t["billed_minutes"]},
            {"unreviewed", t["drafts_unreviewed"]["time_entries"]}};
}

}  // namespace generated

// The report reads the week's rows through the indexes (state/entity_index.hpp); on a generated
// firm its figures are those of a plain scan of every row, and a store whose rows were written
// before the indexes existed (schema 2) gives the same report once upgraded.
TEST_F(weekly_report_test, indexed_figures_equal_a_full_scan_of_a_generated_firm) {
    const auto f = generated::make_firm();
    generated::write_rows(*store_, f, true);
    const auto r = report();
    const auto want = generated::expected_figures(f);
    EXPECT_EQ(generated::figures_of(r), want);
    EXPECT_GT(want["aging"]["1_30"]["count"].get<int>(), 0);  // the firm exercises the figures
    EXPECT_GT(want["other_currency_invoices"].get<int>(), 0);
    EXPECT_GT(want["collected_minor"].get<int>(), 0);
    EXPECT_GT(want["billed_minutes"].get<int>(), 0);

    testing::temp_dir old_dir;
    {
        state::open_options v2;
        v2.schema_version = 2;
        auto old = state::store::open(old_dir.path() / "state", v2);
        ASSERT_TRUE(old.ok()) << old.st.message;
        generated::write_rows(*old.value, f, false);
    }
    auto upgraded = state::store::open(old_dir.path() / "state");
    ASSERT_TRUE(upgraded.ok()) << upgraded.st.message;
    EXPECT_EQ(upgraded.value->schema_version(), state::current_schema_version);
    auto again = weekly_report(*upgraded.value, firm(), "2026-W49", at("2026-12-08T15:00:00Z"));
    ASSERT_TRUE(again.ok()) << again.error;
    EXPECT_EQ(again.body, r);
}

}  // namespace
}  // namespace billsync::workflows::weekly_report
