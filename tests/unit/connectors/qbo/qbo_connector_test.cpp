// The QBO connector in-process against the QBO simulator: polling (backfill with progress, CDC,
// the cap and the 30-day look-back falling back to paged queries), fetch after notify batched
// into one query, and actions (requestid replay, stale SyncToken, duplicate name, send).

#include "connectors/qbo/qbo_connector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/token_store.hpp"
#include "mappings/qbo/qbo_mapping.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors::qbo {
namespace {

using json = nlohmann::json;
using connectors::testing::run;

constexpr const char* realm = "9130350000000001";

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

class qbo_connector_test : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::qbo_sim_options o;
        o.realms = {realm};
        o.now = [this] { return clock_.now(); };
        sim_ = std::make_unique<simulators::qbo_simulator>(o);
        sim_->add_routes(server_.routes());
        sim_->configure(server_);
        ASSERT_EQ(server_.start(), "");
        auto st = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(st.ok());
        store_ = std::move(st.value);
        tokens_ = std::make_unique<token_store>(*store_, std::nullopt);
        const auto grant = sim_->oauth().issue_grant();
        oauth2::credential c;
        c.id = std::string("qbo/") + realm;
        c.vendor = "qbo";
        c.account = realm;
        c.access_token = grant.access_token;
        c.access_expires_at = clock_.now() + grant.expires_in;
        c.refresh_token = grant.refresh_token;
        ASSERT_TRUE(oauth2::store_credential(*tokens_, c).ok);
        limiter_.set_limits("qbo", qbo::rate_limits());
        settings_.base_url = server_.base_url();
        settings_.realm_id = realm;
        settings_.client = {
            server_.base_url() + "/oauth2/token", "sim-client-id", "sim-client-secret"};
        settings_.page_size = 2;
    }

    qbo_connector& connector() {
        if (!connector_) {
            runtime_deps rt;
            rt.executor = ioc_.get_executor();
            rt.clock = &clock_;
            rt.tokens = tokens_.get();
            rt.limiter = &limiter_;
            rt.http = connectors::testing::test_settings();
            rt.time = real_time();
            connector_ = std::make_unique<qbo_connector>(settings_, rt);
        }
        return *connector_;
    }

    // One poll, committed as the pipeline commits it; returns its events.
    poll_outcome poll() {
        auto out = run(ioc_, connector().poll(*store_));
        if (out.error.empty()) {
            state::batch b(*store_);
            for (const auto& [k, v] : out.cursors) {
                state::put_cursor(b, k, v);
            }
            EXPECT_TRUE(store_->write(b, true).ok);
        }
        return out;
    }

    sync_cursor::phase cursor_phase_after_poll() {
        const auto out = poll();
        EXPECT_EQ(out.error, "");
        return cursor().ph;
    }

    // The same, adding the Ids of the invoices the poll read to `seen`.
    sync_cursor::phase cursor_phase_after_poll_collecting(std::set<std::string>& seen) {
        const auto out = poll();
        EXPECT_EQ(out.error, "");
        for (const auto& e : out.events) {
            const auto j = json::parse(e.body, nullptr, false);
            if (j.is_object() && j.contains("QueryResponse") &&
                j["QueryResponse"].contains("Invoice")) {
                for (const auto& row : j["QueryResponse"]["Invoice"]) {
                    seen.insert(row.value("Id", ""));
                }
            }
        }
        return cursor().ph;
    }

    sync_cursor cursor() {
        auto v = state::get_cursor(*store_, connector().cursor_key());
        EXPECT_TRUE(v.ok() && v.value);
        auto c = sync_cursor::decode(*v.value);
        EXPECT_TRUE(c);
        return c.value_or(sync_cursor{});
    }

    std::string customer(const std::string& name) {
        return sim_->add_customer(realm, json{{"DisplayName", name}}).value("Id", "");
    }

    json invoice_body(const std::string& customer_id, const std::string& amount) {
        return json{{"CustomerRef", {{"value", customer_id}}},
                    {"DueDate", "2026-01-31"},
                    {"Line",
                     json::array({{{"Amount", json::parse(amount)},
                                   {"DetailType", "SalesItemLineDetail"},
                                   {"SalesItemLineDetail",
                                    {{"ItemRef", {{"value", "1"}}},
                                     {"Qty", 1},
                                     {"UnitPrice", json::parse(amount)}}}}})}};
    }

    std::string invoice(const std::string& customer_id, const std::string& amount) {
        return sim_->add_invoice(realm, invoice_body(customer_id, amount)).value("Id", "");
    }

    std::size_t rows(const poll_outcome& out) {
        std::size_t n = 0;
        for (const auto& e : out.events) {
            const auto j = json::parse(e.body);
            for (const auto* entity : {"Customer", "Invoice", "Payment"}) {
                if (j.contains("QueryResponse") && j["QueryResponse"].contains(entity)) {
                    n += j["QueryResponse"][entity].size();
                }
            }
        }
        return n;
    }

    state::action action(std::string id, std::string kind, json payload) {
        state::action a;
        a.id = std::move(id);
        a.connector = "qbo";
        a.kind = std::move(kind);
        a.payload = payload.dump();
        return a;
    }

    util::manual_clock clock_{at("2026-01-05T14:00:00Z")};
    simulators::sim_server server_;
    std::unique_ptr<simulators::qbo_simulator> sim_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    std::unique_ptr<token_store> tokens_;
    rate_limiter limiter_{real_time()};
    settings settings_;
    net::io_context ioc_;
    std::unique_ptr<qbo_connector> connector_;  // after ioc_: destroyed first
};

// Send and void carry the invoice's SyncToken: one at a time per invoice (the lane waits).
TEST_F(qbo_connector_test, actions_on_one_invoice_share_a_serial_key) {
    state::action a;
    a.kind = "qbo.send_invoice";
    a.payload = R"({"id":"130"})";
    EXPECT_EQ(connector().serial_key(a), "invoice/130");
    a.kind = "qbo.void_invoice";
    EXPECT_EQ(connector().serial_key(a), "invoice/130");
    a.kind = "qbo.create_invoice";
    EXPECT_EQ(connector().serial_key(a), "");
}

TEST_F(qbo_connector_test, first_connect_backfills_page_by_page_with_progress_then_uses_cdc) {
    for (int i = 0; i < 3; ++i) {
        const auto c = customer("Client " + std::to_string(i));
        invoice(c, "10" + std::to_string(i) + ".00");
    }
    std::size_t total = 0;
    int polls = 0;
    while (polls < 20) {
        ++polls;
        auto out = poll();
        ASSERT_EQ(out.error, "");
        total += rows(out);
        if (cursor().ph == sync_cursor::phase::cdc) {
            break;
        }
        const auto status = json::parse(connector().status_json());
        EXPECT_EQ(status["cursor"]["progress"]["total"], 6);
        EXPECT_LE(status["cursor"]["progress"]["done"].get<int>(), 6);
        EXPECT_TRUE(out.more);
    }
    EXPECT_EQ(total, 6u);  // 3 customers, 3 open invoices, in pages of 2
    EXPECT_GE(polls, 4);
    // Then CDC, from the start of the backfill minus the overlap.
    clock_.advance(std::chrono::minutes(10));
    invoice(customer("Late Client"), "55.00");
    const auto out = poll();
    ASSERT_EQ(out.error, "");
    ASSERT_EQ(out.events.size(), 1u);
    EXPECT_EQ(out.events[0].kind, "cdc");
    EXPECT_FALSE(server_.requests_to(std::string("/v3/company/") + realm + "/cdc").empty());
}

// Ledger items: the backfill reads every active Item (paged by Id like the other entities), CDC
// reports price changes, and each maps to a ledger_item keyed by its Id.
TEST_F(qbo_connector_test, items_are_read_only_with_sync_items) {
    sim_->add_item(realm, json{{"Name", "Tax preparation"}, {"UnitPrice", 150}});
    ASSERT_FALSE(settings_.sync_items);  // the default
    for (int i = 0; i < 20 && (i == 0 || cursor().ph != sync_cursor::phase::cdc); ++i) {
        ASSERT_EQ(poll().error, "");
    }
    ASSERT_EQ(cursor().ph, sync_cursor::phase::cdc);
    EXPECT_FALSE(cursor().items_read);  // turned on later, the next poll reads them all
    clock_.advance(std::chrono::minutes(10));
    ASSERT_EQ(poll().error, "");
    const auto base = std::string("/v3/company/") + realm;
    ASSERT_FALSE(server_.requests_to(base + "/cdc").empty());
    for (const auto* path : {"/query", "/cdc"}) {
        for (const auto& r : server_.requests_to(base + path)) {
            EXPECT_EQ(r.query.find("Item"), std::string::npos) << r.query;
        }
    }
}

TEST_F(qbo_connector_test, items_are_backfilled_then_followed_by_cdc_as_ledger_items) {
    settings_.sync_items = true;
    const auto prep =
        sim_->add_item(realm,
                       json{{"Name", "Tax preparation"}, {"UnitPrice", json::parse("150.00")}})
            .value("Id", "");
    sim_->add_item(realm, json{{"Name", "Advisory"}, {"UnitPrice", json::parse("180.00")}});
    sim_->add_item(realm, json{{"Name", "Misc"}});
    const auto process = [&](const std::vector<poll_outcome::event>& events) {
        state::batch b(*store_);
        std::vector<mappings::ledger_item> items;
        for (const auto& ev : events) {
            state::inbox_event e;
            e.connector = "qbo";
            e.kind = ev.kind;
            e.body = ev.body;
            auto r = connector().process(e, *store_, b);
            EXPECT_TRUE(r.ok()) << r.st.message;
            for (const auto& c : r.value) {
                if (const auto* i = c.as<mappings::ledger_item>()) {
                    items.push_back(*i);
                }
            }
        }
        EXPECT_TRUE(store_->write(b, true).ok);
        return items;
    };
    std::vector<poll_outcome::event> events;
    for (int i = 0; i < 20 && (i == 0 || cursor().ph != sync_cursor::phase::cdc); ++i) {
        auto out = poll();
        ASSERT_EQ(out.error, "");
        events.insert(events.end(), out.events.begin(), out.events.end());
    }
    ASSERT_EQ(cursor().ph, sync_cursor::phase::cdc);
    auto items = process(events);
    ASSERT_EQ(items.size(), 3U);  // two pages of 2
    const auto stored = state::get_entity(*store_, "ledger_item", items[0].id);
    ASSERT_TRUE(stored.ok() && stored.value);
    std::string error;
    const auto first = mappings::ledger_item_from_json(json::parse(*stored.value), error);
    ASSERT_TRUE(first) << error;
    EXPECT_EQ(first->code, prep);
    EXPECT_EQ(first->name, "Tax preparation");
    ASSERT_TRUE(first->unit_price);
    EXPECT_EQ(first->unit_price->minor, 15000);
    EXPECT_EQ(first->unit_price->currency, "USD");
    // The price is corrected in QBO: the next CDC poll brings it.
    clock_.advance(std::chrono::minutes(10));
    sim_->update(realm, "Item", prep, json{{"UnitPrice", json::parse("175.00")}});
    const auto out = poll();
    ASSERT_EQ(out.error, "");
    items = process(out.events);
    ASSERT_EQ(items.size(), 1U);
    EXPECT_EQ(items[0].code, prep);
    ASSERT_TRUE(items[0].unit_price);
    EXPECT_EQ(items[0].unit_price->minor, 17500);
    bool asked = false;
    for (const auto& r : server_.requests_to(std::string("/v3/company/") + realm + "/cdc")) {
        asked = asked || r.query.find("Item") != std::string::npos;
    }
    EXPECT_TRUE(asked);
}

// A connector that finished its first sync before items were read: the next poll reads every
// Item once, then CDC goes on from where it was.
TEST_F(qbo_connector_test, a_sync_from_before_items_reads_them_once_then_resumes_cdc) {
    settings_.sync_items = true;
    sim_->add_item(realm, json{{"Name", "Tax preparation"}, {"UnitPrice", 150}});
    const auto since = at("2026-01-05T13:00:00Z");
    {
        state::batch b(*store_);
        state::put_cursor(b,
                          connector().cursor_key(),
                          R"({"phase":"cdc","since":"2026-01-05T13:00:00Z",)"
                          R"("started_at":"2026-01-01T00:00:00Z"})");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    auto out = poll();
    ASSERT_EQ(out.error, "");
    ASSERT_EQ(out.events.size(), 1u);
    const auto page = json::parse(out.events[0].body);
    ASSERT_TRUE(page["QueryResponse"].contains("Item")) << page.dump();
    EXPECT_EQ(page["QueryResponse"]["Item"].size(), 1u);
    const auto c = cursor();
    EXPECT_EQ(c.ph, sync_cursor::phase::cdc);
    EXPECT_EQ(c.since, since);  // CDC resumes where it was
    EXPECT_TRUE(c.items_read);
    out = poll();
    ASSERT_EQ(out.error, "");
    EXPECT_FALSE(server_.requests_to(std::string("/v3/company/") + realm + "/cdc").empty());
}

// Issue 18 item 7: invoices paid while the backfill pages through open invoices shrink the set;
// paging by position would then skip unchanged open invoices that CDC never reports.
TEST_F(qbo_connector_test, backfill_pages_by_id_and_skips_nothing_when_the_set_shrinks) {
    const auto c = customer("Oak");
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(invoice(c, "1" + std::to_string(i) + ".00"));
    }
    std::set<std::string> seen;
    bool paid = false;
    for (int polls = 0;
         polls < 20 && cursor_phase_after_poll_collecting(seen) != sync_cursor::phase::cdc;
         ++polls) {
        if (!paid && seen.contains(ids[1])) {
            // The first page of invoices is read; both of them are paid in QuickBooks now.
            for (int k = 0; k < 2; ++k) {
                const auto amount = json::parse("1" + std::to_string(k) + ".00");
                const auto link = json::array(
                    {{{"TxnId", ids[static_cast<std::size_t>(k)]}, {"TxnType", "Invoice"}}});
                const auto pay = sim_->add_payment(
                    realm,
                    json{{"TotalAmt", amount},
                         {"CustomerRef", {{"value", c}}},
                         {"Line", json::array({{{"Amount", amount}, {"LinkedTxn", link}}})}});
                ASSERT_FALSE(pay.contains("Fault")) << pay.dump();
            }
            paid = true;
        }
    }
    ASSERT_TRUE(paid);
    for (const auto& id : ids) {
        EXPECT_TRUE(seen.contains(id)) << "invoice " << id << " was skipped";
    }
    const auto queries = server_.requests_to(std::string("/v3/company/") + realm + "/query");
    ASSERT_FALSE(queries.empty());
    bool keyset = false;
    for (const auto& q : queries) {
        const auto text = http::query_param(q.query, "query");
        keyset = keyset || (text.find("ORDERBY Id") != std::string::npos &&
                            text.find("Id > '") != std::string::npos);
    }
    EXPECT_TRUE(keyset);
}

TEST_F(qbo_connector_test, a_capped_cdc_answer_falls_back_to_exact_paged_queries) {
    settings_.cdc_cap = 3;  // an answer holding 3 objects may be missing some
    for (int i = 0; i < 20 && cursor_phase_after_poll() != sync_cursor::phase::cdc; ++i) {
    }
    ASSERT_EQ(cursor().ph, sync_cursor::phase::cdc);
    clock_.advance(std::chrono::minutes(10));
    const auto c = customer("Busy Client");
    for (int i = 0; i < 4; ++i) {
        invoice(c, "1" + std::to_string(i) + ".00");
    }
    auto out = poll();  // CDC returns 3 of 5 objects: capped
    ASSERT_EQ(out.error, "");
    EXPECT_TRUE(out.events.empty());
    EXPECT_EQ(cursor().ph, sync_cursor::phase::catchup);
    std::size_t total = 0;
    for (int i = 0; i < 20 && cursor().ph != sync_cursor::phase::cdc; ++i) {
        out = poll();
        ASSERT_EQ(out.error, "");
        total += rows(out);
    }
    EXPECT_EQ(total, 5u);  // the customer and its four invoices, none missed
}

TEST_F(qbo_connector_test, a_gap_beyond_the_cdc_look_back_catches_up_with_queries) {
    sync_cursor old;
    old.ph = sync_cursor::phase::cdc;
    old.since = clock_.now() - std::chrono::days(40);
    old.started_at = old.since;
    {
        state::batch b(*store_);
        state::put_cursor(b, connector().cursor_key(), old.encode());
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    invoice(customer("Returning Client"), "80.00");
    auto out = poll();
    ASSERT_EQ(out.error, "");
    EXPECT_EQ(cursor().ph, sync_cursor::phase::catchup);
    EXPECT_TRUE(server_.requests_to(std::string("/v3/company/") + realm + "/cdc").empty());
    std::size_t total = rows(out);
    for (int i = 0; i < 20 && cursor().ph != sync_cursor::phase::cdc; ++i) {
        out = poll();
        total += rows(out);
    }
    EXPECT_EQ(total, 2u);
}

TEST_F(qbo_connector_test, a_webhook_naming_several_invoices_is_resolved_with_one_query) {
    const auto c = customer("Acme");
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        ids.push_back(invoice(c, "20.00"));
    }
    const auto deliveries = sim_->take_deliveries();
    ASSERT_FALSE(deliveries.empty());
    server_.clear_requests();
    state::inbox_event e;
    e.connector = "qbo";
    e.body = deliveries.back().body;
    auto r = run(ioc_, connector().resolve(e));
    ASSERT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    ASSERT_TRUE(r.body);
    const auto resolved = json::parse(*r.body)["resolved"];
    std::size_t invoices = 0;
    for (const auto& item : resolved) {
        if (item["entity"] == "Invoice") {
            ++invoices;
            EXPECT_TRUE(item["object"].is_object());
        }
    }
    EXPECT_EQ(invoices, 3u);
    EXPECT_EQ(server_.requests_to(std::string("/v3/company/") + realm + "/query").size(), 1u);
    // Mapped: three invoices created, once; mapping the same again changes nothing.
    state::batch b(*store_);
    e.body = *r.body;
    auto changes = connector().process(e, *store_, b);
    ASSERT_TRUE(changes.ok()) << changes.st.message;
    EXPECT_EQ(changes.value.size(), 4u);  // the customer and three invoices
    ASSERT_TRUE(store_->write(b, true).ok);
    state::batch again(*store_);
    EXPECT_TRUE(connector().process(e, *store_, again).value.empty());
}

TEST_F(qbo_connector_test, customers_made_inactive_are_resolved_as_inactive_not_deleted) {
    const auto a = customer("Acme");
    const auto b2 = customer("Birch");
    (void)sim_->take_deliveries();
    sim_->update(realm, "Customer", a, json{{"Active", false}});
    sim_->update(realm, "Customer", b2, json{{"Active", false}});
    const auto deliveries = sim_->take_deliveries();
    ASSERT_FALSE(deliveries.empty());
    state::inbox_event e;
    e.connector = "qbo";
    e.body = deliveries.back().body;
    auto r = run(ioc_, connector().resolve(e));
    ASSERT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    ASSERT_TRUE(r.body);
    const auto resolved = json::parse(*r.body);
    std::size_t customers = 0;
    for (const auto& item : resolved["resolved"]) {
        if (item["entity"] == "Customer") {
            ++customers;
            ASSERT_TRUE(item["object"].is_object()) << item.dump();
            EXPECT_EQ(item["object"]["Active"], false);
        }
    }
    EXPECT_EQ(customers, 2u);
}

TEST_F(qbo_connector_test, creates_carry_a_requestid_so_a_retry_creates_nothing_new) {
    const auto c = customer("Birch");
    const auto a = action("invoice:birch:1", "qbo.create_invoice", invoice_body(c, "75.00"));
    const auto first = run(ioc_, connector().perform(a));
    ASSERT_EQ(first.k, action_outcome::kind::done) << first.detail;
    const auto again = run(ioc_, connector().perform(a));
    ASSERT_EQ(again.k, action_outcome::kind::done) << again.detail;
    EXPECT_EQ(first.detail, again.detail);
    EXPECT_EQ(sim_->count(realm, "Invoice"), 1u);
    EXPECT_GE(sim_->requestid_replays(), 1u);
    for (const auto& r : server_.requests_to(std::string("/v3/company/") + realm + "/invoice")) {
        EXPECT_NE(r.query.find("requestid=" + request_id(a.id)), std::string::npos) << r.query;
    }
}

TEST_F(qbo_connector_test, a_duplicate_name_links_to_the_existing_customer) {
    const auto existing = customer("Cedar Farms");
    const auto out =
        run(ioc_,
            connector().perform(action(
                "customer:cedar", "qbo.create_customer", json{{"DisplayName", "Cedar Farms"}})));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_NE(out.detail.find("Customer/" + existing), std::string::npos) << out.detail;
    EXPECT_EQ(sim_->count(realm, "Customer"), 1u);
}

TEST_F(qbo_connector_test, void_rereads_a_stale_sync_token_and_send_uses_octet_stream) {
    const auto id = invoice(customer("Dogwood"), "40.00");
    // Someone edits the invoice in QuickBooks between our read and our write.
    sim_->update(realm, "Invoice", id, json{{"PrivateNote", "edited"}});
    // The first void meets a stale SyncToken (5010), as when the edit lands in between.
    server_.script("POST",
                   std::string("/v3/company/") + realm + "/invoice",
                   {simulators::scripted_response::status_code(
                       400,
                       R"({"Fault":{"Error":[{"Message":"Stale Object Error","code":"5010"}],)"
                       R"("type":"ValidationFault"},"time":"2026-01-05T06:00:00.000-08:00"})")});
    auto out =
        run(ioc_, connector().perform(action("void:1", "qbo.void_invoice", json{{"id", id}})));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_TRUE(sim_->get(realm, "Invoice", id)->value("PrivateNote", "").starts_with("Voided"));
    EXPECT_EQ(server_.requests_to(std::string("/v3/company/") + realm + "/invoice/" + id).size(),
              2u);  // read, stale write, read again, write
    const auto id2 = invoice(customer("Elm"), "60.00");
    out = run(ioc_,
              connector().perform(action(
                  "send:1", "qbo.send_invoice", json{{"id", id2}, {"send_to", "ap@elm.example"}})));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_EQ(sim_->get(realm, "Invoice", id2)->value("EmailStatus", ""), "EmailSent");
    // Reconciling either finds that it happened.
    const auto r =
        run(ioc_, connector().reconcile(action("send:1", "qbo.send_invoice", json{{"id", id2}})));
    EXPECT_EQ(r.k, reconcile_outcome::kind::happened);
}

// Issue 18 item 4: a reminder resend of an invoice emailed weeks ago is not "already sent".
TEST_F(qbo_connector_test, send_reconcile_compares_the_delivery_time_with_the_attempt) {
    const auto id = invoice(customer("Fig"), "75.00");
    auto first =
        action("send:first", "qbo.send_invoice", json{{"id", id}, {"send_to", "ap@fig.example"}});
    ASSERT_EQ(run(ioc_, connector().perform(first)).k, action_outcome::kind::done);
    ASSERT_EQ(sim_->get(realm, "Invoice", id)->value("EmailStatus", ""), "EmailSent");

    clock_.advance(std::chrono::hours(24 * 14));
    // The reminder's attempt started now and the process stopped before QBO got it.
    auto reminder = action(
        "send:reminder", "qbo.send_invoice", json{{"id", id}, {"send_to", "ap@fig.example"}});
    reminder.first_attempt_at = clock_.now();
    reminder.attempts = 1;
    const auto lost = run(ioc_, connector().reconcile(reminder));
    EXPECT_EQ(lost.k, reconcile_outcome::kind::absent) << lost.detail;

    // Once it did go out, the same reconcile finds it.
    clock_.advance(std::chrono::minutes(1));
    ASSERT_EQ(run(ioc_, connector().perform(reminder)).k, action_outcome::kind::done);
    const auto sent = run(ioc_, connector().reconcile(reminder));
    EXPECT_EQ(sent.k, reconcile_outcome::kind::happened) << sent.detail;
}

TEST_F(qbo_connector_test, throttling_and_faults_map_onto_the_shared_conditions) {
    const auto c = customer("Fir");
    server_.script("POST",
                   std::string("/v3/company/") + realm + "/invoice",
                   {simulators::scripted_response::status_code(
                       400,
                       R"({"Fault":{"Error":[{"Message":"Invalid Reference Id","code":"2500"}],)"
                       R"("type":"ValidationFault"},"time":"2026-01-05T06:00:00.000-08:00"})")});
    const auto out =
        run(ioc_,
            connector().perform(action("inv:bad", "qbo.create_invoice", invoice_body(c, "5.00"))));
    EXPECT_EQ(out.k, action_outcome::kind::permanent) << out.detail;
    EXPECT_NE(out.detail.find("2500"), std::string::npos);
    const auto status = json::parse(connector().status_json());
    EXPECT_TRUE(status["last_error"].is_object());
    EXPECT_EQ(status["credential"], "ok");
}

// ---- invoice.create: the vendor-neutral invoice of the invoicing workflow ----------------------

json canonical_invoice(const std::string& key, const std::string& client_ref) {
    return json{{"key", key},
                {"client_ref", client_ref},
                {"currency", "USD"},
                {"issue_date", "2026-01-05"},
                {"due_date", "2026-02-04"},
                {"po_number", "PO-7"},
                {"memo", "Thank you"},
                {"lines",
                 json::array({{{"description", "Return Filed (50% of 2,400.00)"},
                               {"quantity", "1.5"},
                               {"unit_amount_minor", 15000},
                               {"amount_minor", 22500},
                               {"tax_code", "TAX"}},
                              {{"description", "Bookkeeping"},
                               {"quantity", "1.333"},
                               {"unit_amount_minor", 15000},
                               {"amount_minor", 20000}}})}};
}

TEST_F(qbo_connector_test, invoice_create_is_an_action_of_the_qbo_kind) {
    const auto k = describe();
    EXPECT_NE(std::find(k.actions.begin(), k.actions.end(), "invoice.create"), k.actions.end());
    EXPECT_NE(std::find(k.actions.begin(), k.actions.end(), "invoice.send"), k.actions.end());
}

TEST_F(qbo_connector_test, invoice_send_is_the_qbo_send_to_the_given_address) {
    const auto c = customer("Acme Holdings");
    const std::string key = "invoicing/milestone:eng-7:Return Filed/1";
    const auto created =
        run(ioc_, connector().perform(action(key, "invoice.create", canonical_invoice(key, c))));
    ASSERT_EQ(created.k, action_outcome::kind::done) << created.detail;
    const auto sent =
        run(ioc_,
            connector().perform(action("invoicing:d-1/send:1",
                                       "invoice.send",
                                       json{{"id", "1"}, {"send_to", "ap@acme.example"}})));
    ASSERT_EQ(sent.k, action_outcome::kind::done) << sent.detail;
    EXPECT_EQ(sim_->get(realm, "Invoice", "1")->value("EmailStatus", ""), "EmailSent");
    const auto sends = server_.requests_to(std::string("/v3/company/") + realm + "/invoice/1/send");
    ASSERT_EQ(sends.size(), 1u);
    EXPECT_NE(sends[0].query.find("sendTo=ap%40acme.example"), std::string::npos) << sends[0].query;
}

TEST_F(qbo_connector_test, invoice_create_creates_one_exact_invoice_and_a_replay_creates_nothing) {
    const auto c = customer("Acme Holdings");
    const std::string key = "invoicing/milestone:eng-7:Return Filed/1";
    const auto a = action(key, "invoice.create", canonical_invoice(key, c));
    const auto first = run(ioc_, connector().perform(a));
    ASSERT_EQ(first.k, action_outcome::kind::done) << first.detail;
    ASSERT_EQ(sim_->count(realm, "Invoice"), 1u);
    const auto inv = *sim_->get(realm, "Invoice", "1");
    EXPECT_EQ(first.detail, "Invoice/1 #" + inv.value("DocNumber", std::string("?")));
    // 225.00 + 200.00: exactly the sum of amount_minor.
    EXPECT_EQ(mappings::qbo::parse_amount(inv["TotalAmt"], "USD")->minor, 42500);
    EXPECT_EQ(inv["CustomerRef"]["value"], c);
    EXPECT_EQ(inv["TxnDate"], "2026-01-05");
    EXPECT_EQ(inv["DueDate"], "2026-02-04");
    EXPECT_EQ(inv["CustomerMemo"]["value"], "Thank you\nPO: PO-7");
    EXPECT_NE(inv.value("PrivateNote", "").find(key), std::string::npos);
    EXPECT_EQ(inv["Line"][1]["Description"], "Bookkeeping (1.333 x 150.00)");
    // The same action again (a retry, a replayed outbox): Intuit answers from the requestid.
    const auto again = run(ioc_, connector().perform(a));
    ASSERT_EQ(again.k, action_outcome::kind::done) << again.detail;
    EXPECT_EQ(again.detail, first.detail);
    EXPECT_EQ(sim_->count(realm, "Invoice"), 1u);
    EXPECT_EQ(sim_->creates(), 1u);
    EXPECT_GE(sim_->requestid_replays(), 1u);
    const auto posts = server_.requests_to(std::string("/v3/company/") + realm + "/invoice");
    ASSERT_EQ(posts.size(), 2u);
    for (const auto& r : posts) {
        EXPECT_NE(r.query.find("requestid=" + request_id(key)), std::string::npos) << r.query;
        // Exact decimals; the 1.333 h line goes as 1 x 200.00 (its hours in the description).
        EXPECT_NE(r.body.find(R"("Amount":225.00)"), std::string::npos) << r.body;
        EXPECT_NE(r.body.find(R"("Qty":1.5,)"), std::string::npos) << r.body;
        EXPECT_NE(r.body.find(R"("Qty":1,"UnitPrice":200.00)"), std::string::npos) << r.body;
    }
}

TEST_F(qbo_connector_test, a_lost_invoice_create_answer_is_adopted_by_reconcile_not_resent) {
    const auto c = customer("Birch Dental");
    const std::string key = "invoicing/milestone:eng-9:Delivered/1";
    const auto a = action(key, "invoice.create", canonical_invoice(key, c));
    // Nothing sent yet: nothing to adopt.
    EXPECT_EQ(run(ioc_, connector().reconcile(a)).k, reconcile_outcome::kind::absent);
    // The invoice is stored but the answer is lost (the outcome is unknown).
    ASSERT_EQ(run(ioc_, connector().perform(a)).k, action_outcome::kind::done);
    const auto doc = sim_->get(realm, "Invoice", "1")->value("DocNumber", std::string());
    const auto found = run(ioc_, connector().reconcile(a));
    ASSERT_EQ(found.k, reconcile_outcome::kind::happened) << found.detail;
    EXPECT_EQ(found.detail, "Invoice/1 #" + doc);
    // Another draft of the same client and day is not mistaken for it.
    const std::string other = "invoicing/milestone:eng-9:Delivered/2";
    EXPECT_EQ(
        run(ioc_,
            connector().reconcile(action(other, "invoice.create", canonical_invoice(other, c))))
            .k,
        reconcile_outcome::kind::absent);
    EXPECT_EQ(sim_->count(realm, "Invoice"), 1u);
}

TEST_F(qbo_connector_test, a_yen_invoice_create_has_no_minor_digits) {
    const auto c = customer("Sakura KK");
    const std::string key = "invoicing/retainer:eng-12:2026-01/1";
    auto p = canonical_invoice(key, c);
    p["currency"] = "JPY";
    p["lines"] = json::array({{{"description", "Retainer, January"},
                               {"quantity", "3"},
                               {"unit_amount_minor", 50000},
                               {"amount_minor", 150000}}});
    const auto out = run(ioc_, connector().perform(action(key, "invoice.create", p)));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    const auto inv = *sim_->get(realm, "Invoice", "1");
    EXPECT_EQ(inv["CurrencyRef"]["value"], "JPY");
    EXPECT_EQ(mappings::qbo::parse_amount(inv["TotalAmt"], "JPY")->minor, 150000);
    const auto posts = server_.requests_to(std::string("/v3/company/") + realm + "/invoice");
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_NE(posts[0].body.find(R"("Amount":150000,)"), std::string::npos) << posts[0].body;
    EXPECT_NE(posts[0].body.find(R"("Qty":3,"UnitPrice":50000)"), std::string::npos)
        << posts[0].body;
}

TEST_F(qbo_connector_test, a_bad_invoice_create_payload_is_permanent_and_never_sent) {
    const auto c = customer("Cedar");
    const std::string key = "invoicing/bad/1";
    std::vector<json> bad;
    bad.push_back(canonical_invoice(key, ""));
    bad.push_back(canonical_invoice(key, c));
    bad.back()["lines"] = json::array();
    bad.push_back(canonical_invoice(key, c));
    bad.back()["lines"][0]["amount_minor"] = 225.5;
    bad.push_back(canonical_invoice(key, c));
    bad.back()["issue_date"] = "2026-13-01";
    bad.push_back(canonical_invoice("another key", c));
    for (const auto& p : bad) {
        const auto out = run(ioc_, connector().perform(action(key, "invoice.create", p)));
        EXPECT_EQ(out.k, action_outcome::kind::permanent) << p.dump();
        EXPECT_NE(out.detail.find("invalid invoice.create payload"), std::string::npos)
            << out.detail;
    }
    EXPECT_TRUE(server_.requests_to(std::string("/v3/company/") + realm + "/invoice").empty());
    EXPECT_EQ(sim_->count(realm, "Invoice"), 0u);
}

// ---- time_entry.create: the draft-time workflow's TimeActivity ----------------------------------

// The draft-time payload as the workflow queues it (workflows/draft_time/draft_time_rule.cpp).
json time_draft(const std::string& key,
                const std::string& customer_id,
                const std::string& employee_id,
                const std::string& task = "Tax Preparation") {
    return json{
        {"key", key},
        {"group_id", "karbon:work:W1"},
        {"permalink", ""},
        {"client_ref", std::string(realm) + "/client/" + customer_id},
        {"user_ref", employee_id},
        {"project", "2025 Tax Return"},
        {"task", task},
        {"spent_date", "2026-01-05"},
        {"hours", "3.5"},
        {"notes", "2025 1040 - Acme (1040, work item karbon:work:W1) - drafted by billsync"},
        {"billable", true}};
}

class qbo_time_test : public qbo_connector_test {
protected:
    void SetUp() override {
        qbo_connector_test::SetUp();
        settings_.sync_time = true;  // the firm keeps its time in QBO
        employee_ =
            sim_->add_employee(realm,
                               json{{"GivenName", "Kim"},
                                    {"FamilyName", "Allen"},
                                    {"PrimaryEmailAddr", {{"Address", "kim@example-cpa.com"}}}})
                .value("Id", "");
        sim_->add_item(realm, json{{"Name", "Tax Preparation"}, {"UnitPrice", 150}});
        sim_->add_item(realm, json{{"Name", "Unpriced"}});
        customer_ = customer("Acme Dental");
        ASSERT_FALSE(employee_.empty());
    }

    std::string timeactivity_path() const {
        return std::string("/v3/company/") + realm + "/timeactivity";
    }

    std::string employee_;
    std::string customer_;
};

TEST_F(qbo_time_test, time_entry_create_is_an_action_of_the_qbo_kind) {
    const auto k = describe();
    EXPECT_NE(std::find(k.actions.begin(), k.actions.end(), "time_entry.create"), k.actions.end());
}

TEST_F(qbo_time_test,
       a_draft_creates_one_time_activity_and_a_resend_after_a_lost_answer_creates_none) {
    const std::string key = "draft_time:karbon:work:W1:1";
    const auto a = action(key, "time_entry.create", time_draft(key, customer_, employee_));
    // Nothing sent yet: nothing to adopt.
    EXPECT_EQ(run(ioc_, connector().reconcile(a)).k, reconcile_outcome::kind::absent);
    const auto first = run(ioc_, connector().perform(a));
    ASSERT_EQ(first.k, action_outcome::kind::done) << first.detail;
    EXPECT_EQ(first.detail, "TimeActivity/1");
    ASSERT_EQ(sim_->count(realm, "TimeActivity"), 1u);
    const auto t = *sim_->get(realm, "TimeActivity", "1");
    EXPECT_EQ(t["NameOf"], "Employee");
    EXPECT_EQ(t["EmployeeRef"]["value"], employee_);
    EXPECT_EQ(t["CustomerRef"]["value"], customer_);
    EXPECT_EQ(t["ItemRef"]["value"], "1");
    EXPECT_EQ(t["TxnDate"], "2026-01-05");
    EXPECT_EQ(t["Hours"], 3);
    EXPECT_EQ(t["Minutes"], 30);
    EXPECT_EQ(t["BillableStatus"], "Billable");
    EXPECT_EQ(mappings::qbo::parse_amount(t["HourlyRate"], "USD")->minor, 15000);
    EXPECT_NE(t.value("Description", "").find(key), std::string::npos);
    // The answer was lost: reconcile finds it by the key in Description; a resend carries the same
    // requestid and Intuit answers it from the first response.
    const auto found = run(ioc_, connector().reconcile(a));
    ASSERT_EQ(found.k, reconcile_outcome::kind::happened) << found.detail;
    EXPECT_EQ(found.detail, "TimeActivity/1 (existing)");
    const auto again = run(ioc_, connector().perform(a));
    ASSERT_EQ(again.k, action_outcome::kind::done) << again.detail;
    EXPECT_EQ(again.detail, first.detail);
    EXPECT_EQ(sim_->count(realm, "TimeActivity"), 1u);
    EXPECT_GE(sim_->requestid_replays(), 1u);
    const auto posts = server_.requests_to(timeactivity_path());
    ASSERT_EQ(posts.size(), 2u);
    for (const auto& r : posts) {
        EXPECT_NE(r.query.find("requestid=" + request_id(key)), std::string::npos) << r.query;
        EXPECT_NE(r.body.find(R"("HourlyRate":150,)"), std::string::npos) << r.body;
    }
    // Another draft of the same day is not mistaken for it.
    const std::string other = "draft_time:karbon:work:W2:1";
    EXPECT_EQ(run(ioc_,
                  connector().reconcile(
                      action(other, "time_entry.create", time_draft(other, customer_, employee_))))
                  .k,
              reconcile_outcome::kind::absent);
}

TEST_F(qbo_time_test, a_missing_or_unpriced_service_item_is_permanent_and_never_posted) {
    const std::string key = "draft_time:karbon:work:W1:1";
    const auto missing =
        run(ioc_,
            connector().perform(
                action(key, "time_entry.create", time_draft(key, customer_, employee_, "Audit"))));
    EXPECT_EQ(missing.k, action_outcome::kind::permanent);
    EXPECT_NE(missing.detail.find("no active service item named 'Audit'"), std::string::npos)
        << missing.detail;
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["missing_in_qbo"], json::array({"Audit"}));
    const auto unpriced =
        run(ioc_,
            connector().perform(action(
                key, "time_entry.create", time_draft(key, customer_, employee_, "Unpriced"))));
    EXPECT_EQ(unpriced.k, action_outcome::kind::permanent);
    EXPECT_NE(unpriced.detail.find("no rate"), std::string::npos) << unpriced.detail;
    auto bad = time_draft(key, customer_, employee_);
    bad["hours"] = "0.33";
    const auto invalid = run(ioc_, connector().perform(action(key, "time_entry.create", bad)));
    EXPECT_EQ(invalid.k, action_outcome::kind::permanent);
    EXPECT_NE(invalid.detail.find("invalid time_entry.create payload"), std::string::npos);
    EXPECT_TRUE(server_.requests_to(timeactivity_path()).empty());
    EXPECT_EQ(sim_->count(realm, "TimeActivity"), 0u);
}

TEST_F(qbo_time_test, a_fault_from_qbo_is_permanent_with_its_code) {
    // An inactive employee: QBO refuses the reference (610).
    sim_->update(realm, "Employee", employee_, json{{"Active", false}});
    const std::string key = "draft_time:karbon:work:W1:1";
    const auto out = run(ioc_,
                         connector().perform(action(
                             key, "time_entry.create", time_draft(key, customer_, employee_))));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("610"), std::string::npos) << out.detail;
    EXPECT_EQ(sim_->count(realm, "TimeActivity"), 0u);
}

TEST_F(qbo_time_test, polling_reads_employees_as_staff_and_time_activities_as_time_entries) {
    const std::string key = "draft_time:karbon:work:W1:1";
    ASSERT_EQ(run(ioc_,
                  connector().perform(
                      action(key, "time_entry.create", time_draft(key, customer_, employee_))))
                  .k,
              action_outcome::kind::done);
    // Backfill, then the CDC phase, which runs the time sync.
    std::vector<poll_outcome::event> events;
    for (int i = 0; i < 10; ++i) {
        auto out = poll();
        ASSERT_EQ(out.error, "");
        events.insert(events.end(), out.events.begin(), out.events.end());
        if (cursor().ph == sync_cursor::phase::cdc && !out.more &&
            !server_.requests_to(std::string("/v3/company/") + realm + "/cdc").empty()) {
            break;
        }
    }
    state::batch b(*store_);
    std::vector<mappings::change> changes;
    for (const auto& ev : events) {
        state::inbox_event e;
        e.connector = "qbo";
        e.kind = ev.kind;
        e.body = ev.body;
        auto r = connector().process(e, *store_, b);
        ASSERT_TRUE(r.ok()) << r.st.message;
        changes.insert(changes.end(), r.value.begin(), r.value.end());
    }
    ASSERT_TRUE(store_->write(b, true).ok);
    const mappings::staff* kim = nullptr;
    const mappings::time_entry* entry = nullptr;
    for (const auto& c : changes) {
        if (const auto* s = c.as<mappings::staff>()) {
            kim = s;
        }
        if (const auto* t = c.as<mappings::time_entry>()) {
            entry = t;
        }
    }
    ASSERT_NE(kim, nullptr);
    EXPECT_EQ(kim->email, "kim@example-cpa.com");
    EXPECT_EQ(kim->source.system, "qbo");
    EXPECT_EQ(kim->source.id, employee_);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->external_reference, key);
    EXPECT_EQ(entry->minutes, 210);
    EXPECT_EQ(entry->staff_id, kim->id);
    // Time activities are queried by LastUpdatedTime (CDC does not return them).
    bool queried = false;
    for (const auto& r : server_.requests_to(std::string("/v3/company/") + realm + "/query")) {
        queried = queried || r.query.find("TimeActivity") != std::string::npos;
    }
    EXPECT_TRUE(queried);
    const auto status = json::parse(connector().status_json());
    EXPECT_TRUE(status["time_cursor"].contains("TimeActivity")) << status.dump();
}

// A QBO company whose time is kept elsewhere is never asked for employees or time activities:
// the time sync runs only with sync_time (on for the connector [sources] time_entries names).
TEST_F(qbo_connector_test, a_connector_that_keeps_no_time_never_queries_time_records) {
    ASSERT_FALSE(settings_.sync_time);
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(poll().error, "");
        if (cursor().ph == sync_cursor::phase::cdc &&
            !server_.requests_to(std::string("/v3/company/") + realm + "/cdc").empty()) {
            break;
        }
    }
    ASSERT_FALSE(server_.requests_to(std::string("/v3/company/") + realm + "/cdc").empty());
    for (const auto& r : server_.requests_to(std::string("/v3/company/") + realm + "/query")) {
        EXPECT_EQ(r.query.find("TimeActivity"), std::string::npos) << r.query;
        EXPECT_EQ(r.query.find("Employee"), std::string::npos) << r.query;
    }
}

TEST_F(qbo_time_test, a_webhook_about_a_time_activity_brings_the_next_poll_forward) {
    ASSERT_EQ(cursor_phase_after_poll(), sync_cursor::phase::backfill);
    while (cursor_phase_after_poll() != sync_cursor::phase::cdc) {
    }
    ASSERT_EQ(poll().error, "");  // CDC and the time sync: the next poll is an interval away
    ASSERT_GT(*connector().next_poll(), clock_.now());
    (void)sim_->take_deliveries();
    sim_->add_time_activity(realm,
                            json{{"NameOf", "Employee"},
                                 {"EmployeeRef", {{"value", employee_}}},
                                 {"TxnDate", "2026-01-05"},
                                 {"Hours", 1}});
    const auto deliveries = sim_->take_deliveries();
    ASSERT_EQ(deliveries.size(), 1u);
    state::inbox_event e;
    e.connector = "qbo";
    e.body = deliveries.front().body;
    const auto r = run(ioc_, connector().resolve(e));
    ASSERT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    EXPECT_LE(*connector().next_poll(), clock_.now());
    EXPECT_TRUE(
        server_.requests_to(std::string("/v3/company/") + realm + "/timeactivity/1").empty());
}

}  // namespace
}  // namespace billsync::connectors::qbo
