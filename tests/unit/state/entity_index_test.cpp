// The index rows beside invoices, payments and time entries: kept current by the apply step on
// every write and delete, and written for rows stored before they existed by the schema upgrade.

#include "state/entity_index.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "state/apply.hpp"
#include "state/tables.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using nlohmann::json;
using testing::temp_dir;
namespace ix = entity_index;

mappings::instant at(const char* text) { return *mappings::parse_timestamp(text); }
mappings::civil_date on(const char* text) { return *mappings::parse_civil_date(text); }

std::string dated(std::string_view date, std::string_view id) {
    return std::string(date) + ix::sep + std::string(id);
}

class entity_index_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
    }

    void put(mappings::entity e) {
        batch b(*store_);
        auto r = apply(*store_, b, "ledger", std::move(e));
        ASSERT_TRUE(r.ok()) << r.st.message;
        ASSERT_TRUE(store_->write(b, false).ok);
    }

    // Every index row of `type`, as "id" (values checked separately).
    std::set<std::string> ids(std::string_view type) {
        std::set<std::string> out;
        EXPECT_TRUE(for_each_entity(*store_, type, [&](std::string_view id, std::string_view) {
                        out.emplace(id);
                        return true;
                    }).ok);
        return out;
    }

    static mappings::invoice invoice(std::int64_t balance, const char* updated) {
        mappings::invoice i;
        i.id = "inv-1";
        i.number = "1042";
        i.client_id = "client-7";
        i.currency = "USD";
        i.issue_date = on("2026-11-02");
        i.due_date = on("2026-12-02");
        i.total = {50000, "USD"};
        i.balance = {balance, "USD"};
        i.source = {"ledger", "9", "130", "1", at(updated)};
        return i;
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
};

TEST_F(entity_index_test, invoices_are_indexed_by_issue_date_open_balance_and_currency) {
    put(invoice(50000, "2026-11-02T09:00:00Z"));
    EXPECT_EQ(ids(ix::invoice_open), std::set<std::string>{"inv-1"});
    EXPECT_EQ(ids(ix::invoice_issue), std::set<std::string>{dated("2026-11-02", "inv-1")});
    const std::string usd = std::string("USD") + ix::sep + "USD" + ix::sep + "inv-1";
    EXPECT_EQ(ids(ix::invoice_currency), std::set<std::string>{usd});
    // The value is the row's members a reader of the slice needs, verbatim.
    const auto row = json::parse(*get_entity(*store_, "invoice", "inv-1").value);
    const auto value = json::parse(*get_entity(*store_, ix::invoice_open, "inv-1").value);
    EXPECT_EQ(value.size(), 8u);
    for (const auto& [k, v] : value.items()) {
        EXPECT_EQ(v, row[k]) << k;
    }
    EXPECT_FALSE(value.contains("lines"));

    // Paid: no longer open; still issued that day. The open row's value follows the row.
    auto paid = invoice(0, "2026-11-20T09:00:00Z");
    paid.status = mappings::invoice_status::paid;
    put(paid);
    EXPECT_TRUE(ids(ix::invoice_open).empty());
    EXPECT_EQ(ids(ix::invoice_issue), std::set<std::string>{dated("2026-11-02", "inv-1")});
    EXPECT_EQ(
        json::parse(
            *get_entity(*store_, ix::invoice_issue, dated("2026-11-02", "inv-1")).value)["status"],
        "paid");

    // The issue date corrected, in another currency: the old rows go.
    auto moved = invoice(100, "2026-11-21T09:00:00Z");
    moved.issue_date = on("2026-11-03");
    moved.balance.currency = "EUR";
    put(moved);
    EXPECT_EQ(ids(ix::invoice_issue), std::set<std::string>{dated("2026-11-03", "inv-1")});
    EXPECT_EQ(ids(ix::invoice_currency),
              std::set<std::string>{std::string("USD") + ix::sep + "EUR" + ix::sep + "inv-1"});
    EXPECT_EQ(ids(ix::invoice_open), std::set<std::string>{"inv-1"});

    // Deleted (the row keeps its fields): counted nowhere.
    auto gone = moved;
    gone.deleted = true;
    put(gone);
    EXPECT_TRUE(ids(ix::invoice_open).empty());
    EXPECT_TRUE(ids(ix::invoice_issue).empty());
    EXPECT_TRUE(ids(ix::invoice_currency).empty());
}

TEST_F(entity_index_test, payments_and_time_entries_are_indexed_by_date) {
    mappings::payment p;
    p.id = "pay-1";
    p.amount = {2500, "USD"};
    p.date = on("2026-12-01");
    p.applied.push_back({"inv-1", "130", {2500, "USD"}});
    p.source = {"ledger", "9", "p1", "1", at("2026-12-01T10:00:00Z")};
    put(p);
    EXPECT_EQ(ids(ix::payment_date), std::set<std::string>{dated("2026-12-01", "pay-1")});
    p.date = on("2026-12-02");
    p.source.updated = at("2026-12-02T10:00:00Z");
    put(p);
    EXPECT_EQ(ids(ix::payment_date), std::set<std::string>{dated("2026-12-02", "pay-1")});
    p.voided = true;
    p.source.updated = at("2026-12-03T10:00:00Z");
    put(p);
    EXPECT_TRUE(ids(ix::payment_date).empty());

    mappings::time_entry t;
    t.id = "te-1";
    t.staff_id = "staff-1";
    t.date = on("2026-12-01");
    t.minutes = 90;
    t.billable = true;
    t.external_reference = "billsync:w1";
    t.source = {"ledger", "", "te1", "1", at("2026-12-01T10:00:00Z")};
    put(t);
    EXPECT_EQ(ids(ix::time_date), std::set<std::string>{dated("2026-12-01", "te-1")});
    EXPECT_EQ(ids(ix::time_unreviewed), std::set<std::string>{"te-1"});
    t.locked = true;  // approved by staff
    t.source.updated = at("2026-12-02T10:00:00Z");
    put(t);
    EXPECT_TRUE(ids(ix::time_unreviewed).empty());
    EXPECT_EQ(ids(ix::time_date).size(), 1u);
    t.deleted = true;
    t.source.updated = at("2026-12-03T10:00:00Z");
    put(t);
    EXPECT_TRUE(ids(ix::time_date).empty());
}

TEST(entity_index, the_schema_upgrade_indexes_rows_stored_before) {
    temp_dir dir;
    mappings::time_entry t;
    t.id = "te-9";
    t.date = on("2026-10-10");
    t.external_reference = "billsync:w9";
    const auto row = mappings::to_json(t).dump();
    {
        open_options v2;
        v2.schema_version = 2;
        auto s = testing::open_store(dir.db(), v2);
        ASSERT_TRUE(s);
        batch b(*s);
        put_entity(b, "time_entry", "te-9", row);
        ASSERT_TRUE(s->write(b, true).ok);
        EXPECT_FALSE(get_entity(*s, ix::time_unreviewed, "te-9").value);
    }
    auto s = testing::open_store(dir.db());
    ASSERT_TRUE(s);
    EXPECT_EQ(s->schema_version(), 3u);
    EXPECT_TRUE(get_entity(*s, ix::time_unreviewed, "te-9").value);
    const auto dated_row = get_entity(*s, ix::time_date, dated("2026-10-10", "te-9"));
    ASSERT_TRUE(dated_row.value);
    EXPECT_EQ(ix::rows_of("time_entry", "te-9", row)[0].value, *dated_row.value);
}

}  // namespace
}  // namespace billsync::state
