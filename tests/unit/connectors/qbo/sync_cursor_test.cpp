// The QBO connector's pure pieces: requestid derivation, the sync cursor and its queries.

#include <gtest/gtest.h>

#include "connectors/qbo/qbo_connector.hpp"

namespace billsync::connectors::qbo {
namespace {

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

TEST(QboRequestId, StableShortAndDistinctPerVariant) {
    const auto a = request_id("followup:inv-1:touch-1");
    EXPECT_EQ(a, request_id("followup:inv-1:touch-1"));
    EXPECT_LE(a.size(), 50u);  // Intuit's limit
    EXPECT_NE(a, request_id("followup:inv-1:touch-2"));
    EXPECT_NE(a, request_id("followup:inv-1:touch-1", "3"));
    EXPECT_EQ(request_id("x", "3"), request_id("x", "3"));
    // The variant cannot be forged by moving characters between the two parts.
    EXPECT_NE(request_id("ab", "c"), request_id("a", "bc"));
}

TEST(QboSyncCursor, RoundTripsEveryPhase) {
    sync_cursor c;
    c.ph = sync_cursor::phase::backfill;
    c.step = 1;
    c.after_id = 1001;
    c.done = 1500;
    c.total = 4200;
    c.started_at = at("2026-11-01T10:00:00Z");
    c.since = at("2026-11-01T09:58:00Z");
    auto back = sync_cursor::decode(c.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ph, c.ph);
    EXPECT_EQ(back->step, 1u);
    EXPECT_EQ(back->after_id, 1001u);
    EXPECT_EQ(back->done, 1500u);
    EXPECT_EQ(back->total, 4200u);
    EXPECT_EQ(back->started_at, c.started_at);
    EXPECT_EQ(back->since, c.since);

    c.ph = sync_cursor::phase::cdc;
    back = sync_cursor::decode(c.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ph, sync_cursor::phase::cdc);
    EXPECT_EQ(back->since, c.since);
}

TEST(QboSyncCursor, RejectsDamage) {
    EXPECT_FALSE(sync_cursor::decode(""));
    EXPECT_FALSE(sync_cursor::decode("[]"));
    EXPECT_FALSE(sync_cursor::decode(R"({"phase":"sideways","since":"2026-01-01T00:00:00Z",
                                         "started_at":"2026-01-01T00:00:00Z"})"));
    EXPECT_FALSE(sync_cursor::decode(R"({"phase":"cdc","since":"yesterday",
                                         "started_at":"2026-01-01T00:00:00Z"})"));
    EXPECT_FALSE(sync_cursor::decode(R"({"phase":"backfill","since":"2026-01-01T00:00:00Z",
                                         "started_at":"2026-01-01T00:00:00Z","step":9})"));
}

TEST(QboSyncCursor, BackfillQueriesCustomersOpenInvoicesRecentPayments) {
    sync_cursor c;
    const auto now = at("2026-11-23T15:00:00Z");
    c.step = 0;
    EXPECT_EQ(step_query(c, now, std::chrono::days(90)), "SELECT * FROM Customer");
    c.step = 1;
    EXPECT_EQ(step_query(c, now, std::chrono::days(90)),
              "SELECT * FROM Invoice WHERE Balance > '0'");
    c.step = 2;
    EXPECT_EQ(step_query(c, now, std::chrono::days(90)),
              "SELECT * FROM Payment WHERE TxnDate >= '2026-08-25'");
}

TEST(QboSyncCursor, PagesAreOrderedByIdFromTheLastIdRead) {
    sync_cursor c;
    const auto now = at("2026-11-23T15:00:00Z");
    c.step = 1;
    EXPECT_EQ(
        page_query(c, now, std::chrono::days(90), 100),
        "SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id STARTPOSITION 1 MAXRESULTS 100");
    c.after_id = 130;
    EXPECT_EQ(page_query(c, now, std::chrono::days(90), 100),
              "SELECT * FROM Invoice WHERE Balance > '0' AND Id > '130' ORDERBY Id STARTPOSITION 1 "
              "MAXRESULTS 100");
    c.step = 0;
    EXPECT_EQ(page_query(c, now, std::chrono::days(90), 2),
              "SELECT * FROM Customer WHERE Id > '130' ORDERBY Id STARTPOSITION 1 MAXRESULTS 2");
    // A cursor from before keyset paging restarts its step.
    const auto old = sync_cursor::decode(
        R"({"phase":"backfill","since":"2026-01-01T00:00:00Z","started_at":"2026-01-01T00:00:00Z",
            "step":1,"position":1001,"done":5,"total":9})");
    ASSERT_TRUE(old);
    EXPECT_EQ(old->after_id, 0u);
    EXPECT_EQ(old->step, 1u);
}

TEST(QboSyncCursor, ItemsAreTheLastStepAndACursorFromBeforeThemReadsThemOnce) {
    sync_cursor c;
    const auto now = at("2026-11-23T15:00:00Z");
    c.step = 3;
    EXPECT_EQ(page_query(c, now, std::chrono::days(90), 100),
              "SELECT * FROM Item ORDERBY Id STARTPOSITION 1 MAXRESULTS 100");
    c.ph = sync_cursor::phase::catchup;
    c.since = at("2026-09-01T00:00:00Z");
    const auto q = step_query(c, now, std::chrono::days(90));
    EXPECT_NE(q.find("SELECT * FROM Item WHERE MetaData.LastUpdatedTime >= "), std::string::npos);
    EXPECT_NE(q.find("AND Active IN (true, false)"), std::string::npos) << q;
    // A CDC cursor written before items were read says so; a new one says they were.
    const auto old = sync_cursor::decode(
        R"({"phase":"cdc","since":"2026-11-01T00:00:00Z","started_at":"2026-10-01T00:00:00Z"})");
    ASSERT_TRUE(old);
    EXPECT_FALSE(old->items_read);
    sync_cursor fresh;
    fresh.ph = sync_cursor::phase::cdc;
    const auto back = sync_cursor::decode(fresh.encode());
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->items_read);
}

TEST(QboSyncCursor, CatchupQueriesByLastUpdatedTime) {
    sync_cursor c;
    c.ph = sync_cursor::phase::catchup;
    c.since = at("2026-09-01T00:00:00Z");
    c.step = 1;
    const auto q = step_query(c, at("2026-11-23T15:00:00Z"), std::chrono::days(90));
    EXPECT_EQ(
        q.rfind("SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2026-09-01T00:00:00", 0),
        0u)
        << q;
}

}  // namespace
}  // namespace billsync::connectors::qbo
