// The Xero connector in-process against the Xero simulator: fetch after notify coalesced into
// one read, If-Modified-Since polling with its overlap, the minute and daily limits, actions
// with Idempotency-Key replay and reconcile, the refresh before a touch, and a revoked grant.
// Time is manual (limiter and retry waits included): nothing sleeps.

#include "connectors/xero/xero_connector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/token_store.hpp"
#include "connectors/xero/xero_kind.hpp"
#include "connectors/xero/xero_webhook.hpp"
#include "mappings/invoice_draft.hpp"
#include "mappings/xero/xero_mapping.hpp"
#include "sim/sim_server.hpp"
#include "sim/xero_simulator.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors::xero {
namespace {

using json = nlohmann::json;
using connectors::testing::run;

constexpr const char* tenant = "b2c3d4e5-0000-4000-8000-000000000001";

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

class xero_connector_test : public ::testing::Test {
protected:
    void SetUp() override { start(day_limit_); }

    void start(std::uint32_t day_limit) {
        simulators::xero_sim_options o;
        o.tenants = {tenant};
        // The vendor's clock moves with the limiter's waits too (its minute window frees up).
        const auto steady_start = steady_.now();
        o.now = [this, steady_start] {
            return clock_.now() +
                   std::chrono::duration_cast<util::duration>(steady_.now() - steady_start);
        };
        o.day_limit = day_limit;
        o.oauth.granted_scope = granted_scope_;
        sim_ = std::make_unique<simulators::xero_simulator>(o);
        sim_->add_routes(server_.routes());
        sim_->configure(server_);
        ASSERT_EQ(server_.start(), "");
        auto st = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(st.ok());
        store_ = std::move(st.value);
        tokens_ = std::make_unique<token_store>(*store_, std::nullopt);
        const auto grant = sim_->oauth().issue_grant();
        oauth2::credential c;
        c.id = std::string("xero/") + tenant;
        c.vendor = "xero";
        c.account = tenant;
        c.access_token = grant.access_token;
        c.access_expires_at = clock_.now() + grant.expires_in;
        c.refresh_token = grant.refresh_token;
        ASSERT_TRUE(oauth2::store_credential(*tokens_, c).ok);
        limiter_.set_limits("xero", xero::rate_limits());
        settings_.base_url = server_.base_url();
        settings_.tenant_id = tenant;
        settings_.webhook_key = "sim-xero-webhook-key+/base64lookalike==";
        settings_.client = {
            server_.base_url() + "/oauth2/token", "sim-client-id", "sim-client-secret"};
        settings_.page_size = 2;
    }

    xero_connector& connector() {
        if (!connector_) {
            runtime_deps rt;
            rt.executor = ioc_.get_executor();
            rt.clock = &clock_;
            rt.tokens = tokens_.get();
            rt.limiter = &limiter_;
            rt.http = connectors::testing::test_settings();
            rt.time = steady_.source();
            connector_ = std::make_unique<xero_connector>(settings_, rt);
        }
        return *connector_;
    }

    // One poll, committed as the pipeline commits it (cursor and mapped pages in one batch).
    poll_outcome poll() {
        auto out = run(ioc_, connector().poll(*store_));
        if (out.error.empty()) {
            state::batch b(*store_);
            for (const auto& e : out.events) {
                state::inbox_event ev;
                ev.connector = "xero";
                ev.kind = e.kind;
                ev.body = e.body;
                auto changes = connector().process(ev, *store_, b);
                EXPECT_TRUE(changes.ok()) << changes.st.message;
            }
            for (const auto& [k, v] : out.cursors) {
                state::put_cursor(b, k, v);
            }
            EXPECT_TRUE(store_->write(b, true).ok);
        }
        return out;
    }

    // Polls until a whole pass is done; the rows read.
    std::size_t poll_pass() {
        std::size_t rows = 0;
        for (int i = 0; i < 50; ++i) {
            auto out = poll();
            EXPECT_EQ(out.error, "");
            for (const auto& e : out.events) {
                const auto j = json::parse(e.body);
                for (const auto* c : {"Contacts", "Invoices", "Payments"}) {
                    rows += j.contains(c) ? j[c].size() : 0;
                }
            }
            if (!out.more) {
                break;
            }
        }
        return rows;
    }

    std::string contact(const std::string& name, const std::string& email = "ap@client.test") {
        return sim_->add_contact(tenant, json{{"Name", name}, {"EmailAddress", email}})
            .value("ContactID", "");
    }

    std::string invoice(const std::string& contact_id, const std::string& amount) {
        return sim_
            ->add_invoice(tenant,
                          json{{"Contact", {{"ContactID", contact_id}}},
                               {"DueDate", "2026-01-31"},
                               {"LineItems",
                                json::array({{{"Description", "Tax return"},
                                              {"LineAmount", json::parse(amount)}}})}})
            .value("InvoiceID", "");
    }

    std::optional<json> stored(const std::string& type, const std::string& id) {
        auto row = state::get_entity(*store_, type, id);
        if (!row.ok() || !row.value) {
            return std::nullopt;
        }
        return json::parse(*row.value);
    }

    std::size_t api_requests(std::string_view path_prefix) {
        std::size_t n = 0;
        for (const auto& r : server_.requests()) {
            n += r.path.starts_with(path_prefix) ? 1 : 0;
        }
        return n;
    }

    state::action action(std::string id, std::string kind, json payload) {
        state::action a;
        a.id = std::move(id);
        a.connector = "xero";
        a.kind = std::move(kind);
        a.payload = payload.dump();
        return a;
    }

    std::uint32_t day_limit_ = 5000;
    std::string granted_scope_;  // the "scope" of the simulator's token answers ("": none)
    util::manual_clock clock_{at("2026-02-10T14:00:00Z")};
    manual_steady_time steady_;
    simulators::sim_server server_;
    std::unique_ptr<simulators::xero_simulator> sim_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    std::unique_ptr<token_store> tokens_;
    rate_limiter limiter_{steady_.source()};
    settings settings_;
    net::io_context ioc_;
    std::unique_ptr<xero_connector> connector_;  // after ioc_: destroyed first
};

TEST_F(xero_connector_test, fifty_thin_events_for_one_invoice_are_one_read) {
    const auto c = contact("Acme");
    const auto inv = invoice(c, "120.00");
    json events = json::array();
    for (int i = 0; i < 50; ++i) {
        events.push_back({{"resourceUrl", "https://api.xero.com/api.xro/2.0/Invoices/" + inv},
                          {"resourceId", inv},
                          {"eventDateUtc", "2026-02-10T14:00:00.000"},
                          {"eventType", "UPDATE"},
                          {"eventCategory", "INVOICE"},
                          {"tenantId", tenant},
                          {"tenantType", "ORGANISATION"}});
    }
    state::inbox_event e;
    e.connector = "xero";
    e.body = json{{"events", events}, {"firstEventSequence", 1}, {"lastEventSequence", 50}}.dump();
    server_.clear_requests();
    const auto r = run(ioc_, connector().resolve(e));
    ASSERT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    EXPECT_EQ(api_requests("/api.xro/2.0/Invoices"), 1u);
    const auto reqs = server_.requests_to("/api.xro/2.0/Invoices");
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_NE(reqs[0].query.find("IDs="), std::string::npos);
    EXPECT_EQ(reqs[0].header_value("xero-tenant-id"), tenant);

    // The resolved body maps: the contact is not known yet, the invoice is.
    state::batch b(*store_);
    e.body = *r.body;
    auto changes = connector().process(e, *store_, b);
    ASSERT_TRUE(changes.ok()) << changes.st.message;
    ASSERT_EQ(changes.value.size(), 1u);
    ASSERT_TRUE(store_->write(b, true).ok);
    const auto row = stored("invoice", std::string("xero:") + tenant + ":invoice:" + inv);
    ASSERT_TRUE(row);
    EXPECT_EQ((*row)["total"]["minor"], 12000);
}

TEST_F(xero_connector_test, events_for_other_tenants_are_not_read) {
    state::inbox_event e;
    e.connector = "xero";
    e.body = R"({"events":[{"resourceId":"x","eventCategory":"INVOICE","tenantId":"other"}]})";
    server_.clear_requests();
    const auto r = run(ioc_, connector().resolve(e));
    ASSERT_EQ(r.k, resolve_outcome::kind::ready);
    EXPECT_EQ(api_requests("/api.xro/2.0/"), 0u);
    EXPECT_NE(connector().status_json().find(R"("unknown_tenant":1)"), std::string::npos);
}

TEST_F(xero_connector_test, first_connect_backfills_with_progress_then_polls_incrementally) {
    for (int i = 0; i < 3; ++i) {
        invoice(contact("Client " + std::to_string(i)), "10" + std::to_string(i) + ".00");
    }
    // Page size 2: Contacts 2 + 1, Invoices 2 + 1, Payments 0.
    auto first = poll();
    ASSERT_EQ(first.error, "");
    EXPECT_TRUE(first.more);
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["cursor"]["phase"], "backfill");
    EXPECT_EQ(status["cursor"]["progress"]["done"], 2);
    EXPECT_EQ(status["cursor"]["progress"]["total"], 3);
    // The rest, pages of one second read again (the overlap): every row arrives.
    EXPECT_GE(poll_pass(), 4u);
    EXPECT_EQ(json::parse(connector().status_json())["cursor"]["phase"], "incremental");
    for (const auto* type : {"client", "invoice"}) {
        std::size_t n = 0;
        ASSERT_TRUE(state::for_each_entity(*store_, type, [&](std::string_view, std::string_view) {
                        ++n;
                        return true;
                    }).ok);
        EXPECT_EQ(n, 3u) << type;
    }
    // Incremental: every list carries If-Modified-Since.
    server_.clear_requests();
    clock_.advance(std::chrono::minutes(10));
    poll_pass();
    for (const auto& r : server_.requests()) {
        if (r.path.starts_with("/api.xro/2.0/")) {
            EXPECT_FALSE(r.header_value("If-Modified-Since").empty()) << r.target;
            EXPECT_EQ(r.header_value("xero-tenant-id"), tenant);
        }
    }
}

// Items: one unpaged request per pass, with If-Modified-Since once read; a price change in Xero
// reaches the stored ledger_item on the next pass.
TEST_F(xero_connector_test, items_are_polled_only_with_sync_items) {
    ASSERT_FALSE(
        sim_->save_item(tenant, json{{"Code", "SVC-1"}, {"Name", "Service"}}).contains("error"));
    ASSERT_FALSE(settings_.sync_items);  // the default
    poll_pass();
    poll_pass();
    EXPECT_FALSE(server_.requests_to("/api.xro/2.0/Contacts").empty());
    EXPECT_TRUE(server_.requests_to("/api.xro/2.0/Items").empty());
}

TEST_F(xero_connector_test, items_are_read_unpaged_with_their_exact_sales_price) {
    settings_.sync_items = true;
    for (int i = 0; i < 3; ++i) {  // more than a page (2)
        const auto saved =
            sim_->save_item(tenant,
                            json{{"Code", "SVC-" + std::to_string(i)},
                                 {"Name", "Service " + std::to_string(i)},
                                 {"SalesDetails", {{"UnitPrice", json::parse("150.00")}}}});
        ASSERT_FALSE(saved.contains("error")) << saved.dump();
    }
    poll_pass();
    const auto item_of = [&](std::string_view code) {
        std::optional<mappings::ledger_item> out;
        EXPECT_TRUE(state::for_each_entity(*store_,
                                           "ledger_item",
                                           [&](std::string_view, std::string_view v) {
                                               std::string error;
                                               auto i = mappings::ledger_item_from_json(
                                                   json::parse(v), error);
                                               if (i && i->code == code) {
                                                   out = i;
                                               }
                                               return true;
                                           })
                        .ok);
        return out;
    };
    for (int i = 0; i < 3; ++i) {
        const auto item = item_of("SVC-" + std::to_string(i));
        ASSERT_TRUE(item) << i;
        ASSERT_TRUE(item->unit_price);
        EXPECT_EQ(item->unit_price->minor, 15000);
        EXPECT_EQ(item->source.system, "xero");
    }
    std::size_t item_reads = 0;
    for (const auto& r : server_.requests()) {
        if (r.path == "/api.xro/2.0/Items") {
            ++item_reads;
            EXPECT_EQ(r.target.find("page="), std::string::npos) << r.target;
        }
    }
    EXPECT_EQ(item_reads, 1u);
    // The price is corrected in Xero.
    server_.clear_requests();
    clock_.advance(std::chrono::minutes(10));
    sim_->save_item(
        tenant, json{{"Code", "SVC-1"}, {"SalesDetails", {{"UnitPrice", json::parse("175.5")}}}});
    poll_pass();
    const auto fixed = item_of("SVC-1");
    ASSERT_TRUE(fixed && fixed->unit_price);
    EXPECT_EQ(fixed->unit_price->minor, 17550);
    for (const auto& r : server_.requests()) {
        if (r.path == "/api.xro/2.0/Items") {
            EXPECT_FALSE(r.header_value("If-Modified-Since").empty());
        }
    }
}

TEST(xero_sync_cursor, a_cursor_from_before_items_reads_every_item_next) {
    const auto old = sync_cursor::decode(
        R"({"phase":"incremental","step":0,"since":["2026-01-01T00:00:00Z",null,)"
        R"("2026-01-02T00:00:00Z"],"page":1,"done":0,"total":0,)"
        R"("started_at":"2026-01-03T00:00:00Z"})");
    ASSERT_TRUE(old);
    EXPECT_TRUE(old->since[0]);
    EXPECT_FALSE(old->since[1]);
    EXPECT_FALSE(old->since[3]);  // Items: from the start
    EXPECT_TRUE(sync_cursor::decode(old->encode()));
}

TEST_F(xero_connector_test, rows_with_the_cursors_own_timestamp_are_not_lost) {
    settings_.page_size = 100;
    const auto c = contact("Acme");
    const auto a = invoice(c, "10.00");
    poll_pass();  // backfill
    clock_.advance(std::chrono::minutes(5));
    const auto b = invoice(c, "20.00");
    poll_pass();
    // A third invoice in the very same millisecond as the newest row already read.
    const auto late = invoice(c, "30.00");
    poll_pass();
    for (const auto& id : {a, b, late}) {
        EXPECT_TRUE(stored("invoice", std::string("xero:") + tenant + ":invoice:" + id)) << id;
    }
}

TEST_F(xero_connector_test, payments_found_by_polling_mark_the_invoice_paid) {
    settings_.page_size = 100;
    const auto c = contact("Acme");
    const auto inv = invoice(c, "50.00");
    poll_pass();
    clock_.advance(std::chrono::minutes(5));
    const auto p = sim_->add_payment(
        tenant, json{{"Invoice", {{"InvoiceID", inv}}}, {"Amount", 50}, {"Date", "2026-02-10"}});
    ASSERT_FALSE(p.contains("error")) << p.dump();
    poll_pass();
    const auto row = stored("invoice", std::string("xero:") + tenant + ":invoice:" + inv);
    ASSERT_TRUE(row);
    EXPECT_EQ((*row)["status"], "paid");
    EXPECT_EQ((*row)["balance"]["minor"], 0);
    EXPECT_TRUE(
        stored("payment", std::string("xero:") + tenant + ":payment:" + p.value("PaymentID", "")));
}

TEST_F(xero_connector_test, a_429_with_retry_after_is_honoured) {
    contact("Acme");
    server_.script("GET",
                   "/api.xro/2.0/Contacts",
                   {simulators::scripted_response{
                       .status = 429,
                       .headers = {{"Retry-After", "7"}, {"X-Rate-Limit-Problem", "minute"}},
                       .body = R"({"Title":"Too Many Requests"})"}});
    const auto before = steady_.now();
    auto out = poll();
    ASSERT_EQ(out.error, "");
    EXPECT_EQ(out.events.size(), 1u);
    EXPECT_GE(steady_.now() - before, std::chrono::seconds(7));
    EXPECT_EQ(server_.requests_to("/api.xro/2.0/Contacts").size(), 2u);
    EXPECT_EQ(json::parse(connector().status_json())["throttled"], 1);
}

TEST_F(xero_connector_test, sixty_one_calls_stay_inside_the_minute_limit) {
    const auto c = contact("Acme");
    for (int i = 0; i < 61; ++i) {
        auto r = run(ioc_, connector().refresh("client", {"xero", tenant, c, "", std::nullopt}));
        ASSERT_EQ(r.k, resolve_outcome::kind::ready) << i << " " << r.detail;
    }
    EXPECT_EQ(sim_->rejections(), 0u);
    EXPECT_GE(steady_.now() - manual_steady_time().now(), std::chrono::seconds(59));
}

class xero_daily_limit_test : public xero_connector_test {
protected:
    xero_daily_limit_test() { day_limit_ = 3; }  // contacts, invoices + one payment link
};

TEST_F(xero_daily_limit_test, the_daily_limit_parks_polling_and_is_reported) {
    const auto c = contact("Acme");
    const auto inv = invoice(c, "10.00");
    settings_.poll_reserve = 0;   // poll to the last call
    ASSERT_EQ(poll().error, "");  // 1
    ASSERT_EQ(poll().error, "");  // 2: the day's last call
    auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["daily_budget"]["remaining"], 0);
    // The vendor refuses the third: 429 "day" with a wait of hours, reported, not looped on.
    server_.clear_requests();
    auto out = poll();
    EXPECT_NE(out.error, "");
    EXPECT_EQ(api_requests("/api.xro/2.0/"), 1u);
    status = json::parse(connector().status_json());
    EXPECT_FALSE(status["daily_budget"]["limited_until"].is_null());
    // Polling is parked without a call; an action fails for now with the vendor's wait.
    clock_.advance(std::chrono::minutes(10));
    out = poll();
    EXPECT_EQ(out.error, "");
    EXPECT_TRUE(out.events.empty());
    EXPECT_EQ(api_requests("/api.xro/2.0/"), 1u);
    EXPECT_EQ(json::parse(connector().status_json())["daily_budget"]["polls_deferred"], 1);
    const auto sent =
        run(ioc_, connector().perform(action("a1", "xero.send_invoice", {{"id", inv}})));
    EXPECT_EQ(sent.k, action_outcome::kind::retry);
    ASSERT_TRUE(sent.retry_after);
    EXPECT_GT(*sent.retry_after, std::chrono::hours(1));
    EXPECT_EQ(api_requests("/api.xro/2.0/"), 1u);
}

TEST_F(xero_connector_test, a_low_daily_budget_defers_polling_before_actions) {
    settings_.poll_reserve = 5000;  // any call leaves less than this
    const auto c = contact("Acme");
    const auto inv = invoice(c, "10.00");
    auto first = poll();  // learns the budget
    ASSERT_EQ(first.error, "");
    server_.clear_requests();
    auto second = poll();
    EXPECT_TRUE(second.events.empty());
    EXPECT_EQ(api_requests("/api.xro/2.0/"), 0u);
    const auto sent =
        run(ioc_, connector().perform(action("a1", "xero.send_invoice", {{"id", inv}})));
    EXPECT_EQ(sent.k, action_outcome::kind::done) << sent.detail;
}

TEST_F(xero_connector_test, a_created_invoice_is_created_once_and_found_again) {
    const auto c = contact("Acme");
    const json payload{
        {"Contact", {{"ContactID", c}}},
        {"Status", "AUTHORISED"},
        {"DueDate", "2026-03-01"},
        {"LineItems", json::array({{{"Description", "Audit"}, {"LineAmount", 900}}})}};
    const auto a = action("outbox-17", "xero.create_invoice", payload);
    // Nothing there yet: reconcile says absent.
    EXPECT_EQ(run(ioc_, connector().reconcile(a)).k, reconcile_outcome::kind::absent);
    const auto first = run(ioc_, connector().perform(a));
    ASSERT_EQ(first.k, action_outcome::kind::done) << first.detail;
    // The answer was lost: the resend carries the same key and Xero replays.
    const auto again = run(ioc_, connector().perform(a));
    ASSERT_EQ(again.k, action_outcome::kind::done) << again.detail;
    EXPECT_EQ(again.detail, first.detail);
    EXPECT_EQ(sim_->invoices_created(), 1u);
    EXPECT_EQ(sim_->idempotent_replays(), 1u);
    const auto puts = server_.requests_to("/api.xro/2.0/Invoices");
    std::set<std::string> keys;
    for (const auto& r : puts) {
        if (r.method == "PUT") {
            keys.insert(std::string(r.header_value("Idempotency-Key")));
            EXPECT_NE(r.query.find("summarizeErrors=false"), std::string::npos);
        }
    }
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(*keys.begin(), idempotency_key("outbox-17"));
    EXPECT_LE(keys.begin()->size(), 128u);
    // Reconcile finds it by the Reference that carries billsync's key.
    const auto found = run(ioc_, connector().reconcile(a));
    EXPECT_EQ(found.k, reconcile_outcome::kind::happened);
    EXPECT_EQ(found.detail, first.detail + " (existing)");
}

TEST_F(xero_connector_test, a_refused_invoice_is_a_permanent_failure) {
    const auto a = action("outbox-18",
                          "xero.create_invoice",
                          {{"Contact", {{"ContactID", "nobody"}}},
                           {"LineItems", json::array({{{"LineAmount", 1}}})}});
    const auto out = run(ioc_, connector().perform(a));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("contact could not be found"), std::string::npos) << out.detail;
}

TEST_F(xero_connector_test, void_email_and_update) {
    const auto c = contact("Acme");
    const auto inv = invoice(c, "10.00");
    auto sent = run(ioc_, connector().perform(action("s1", "xero.send_invoice", {{"id", inv}})));
    EXPECT_EQ(sent.k, action_outcome::kind::done) << sent.detail;
    EXPECT_EQ(sim_->emails_sent(), 1u);
    sent = run(ioc_, connector().perform(action("s1", "xero.send_invoice", {{"id", inv}})));
    EXPECT_EQ(sent.k, action_outcome::kind::done) << sent.detail;
    EXPECT_EQ(sim_->emails_sent(), 1u);  // replayed, not sent twice

    auto upd =
        run(ioc_,
            connector().perform(action(
                "u1", "xero.update_invoice", {{"id", inv}, {"fields", {{"Reference", "PO 7"}}}})));
    EXPECT_EQ(upd.k, action_outcome::kind::done) << upd.detail;
    EXPECT_EQ(sim_->get(tenant, "Invoices", inv)->value("Reference", ""), "PO 7");

    const auto v = action("v1", "xero.void_invoice", {{"id", inv}});
    EXPECT_EQ(run(ioc_, connector().reconcile(v)).k, reconcile_outcome::kind::absent);
    auto voided = run(ioc_, connector().perform(v));
    EXPECT_EQ(voided.k, action_outcome::kind::done) << voided.detail;
    EXPECT_EQ(sim_->get(tenant, "Invoices", inv)->value("Status", ""), "VOIDED");
    EXPECT_EQ(run(ioc_, connector().reconcile(v)).k, reconcile_outcome::kind::happened);
    EXPECT_EQ(connector().serial_key(v), "invoice/" + inv);

    const auto draft = sim_->add_invoice(tenant,
                                         {{"Contact", {{"ContactID", c}}},
                                          {"Status", "DRAFT"},
                                          {"LineItems", json::array({{{"LineAmount", 5}}})}});
    voided = run(ioc_,
                 connector().perform(
                     action("v2", "xero.void_invoice", {{"id", draft.value("InvoiceID", "")}})));
    EXPECT_EQ(voided.k, action_outcome::kind::done) << voided.detail;
    EXPECT_EQ(sim_->get(tenant, "Invoices", draft.value("InvoiceID", ""))->value("Status", ""),
              "DELETED");
}

TEST_F(xero_connector_test, refresh_reads_the_invoice_and_its_online_link) {
    const auto c = contact("Acme");
    const auto inv = invoice(c, "10.00");
    const auto r =
        run(ioc_, connector().refresh("invoice", {"xero", tenant, inv, "", std::nullopt}));
    ASSERT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    ASSERT_TRUE(r.body);
    state::inbox_event e;
    e.connector = "xero";
    e.kind = connector().refresh_kind();
    e.body = *r.body;
    state::batch b(*store_);
    auto changes = connector().process(e, *store_, b);
    ASSERT_TRUE(changes.ok()) << changes.st.message;
    ASSERT_TRUE(store_->write(b, true).ok);
    const auto row = stored("invoice", std::string("xero:") + tenant + ":invoice:" + inv);
    ASSERT_TRUE(row);
    EXPECT_EQ((*row)["payment_link"], "https://in.xero.com/" + inv);
    // Another tenant's invoice is not ours to re-read.
    const auto other = run(ioc_, connector().refresh("invoice", {"xero", "other", inv, "", {}}));
    EXPECT_EQ(other.k, resolve_outcome::kind::ready);
    EXPECT_FALSE(other.body);
}

TEST_F(xero_connector_test, bills_are_skipped) {
    settings_.page_size = 100;
    const auto c = contact("Supplier");
    sim_->add_invoice(tenant,
                      {{"Type", "ACCPAY"},
                       {"Contact", {{"ContactID", c}}},
                       {"LineItems", json::array({{{"LineAmount", 5}}})}});
    state::inbox_event e;
    e.connector = "xero";
    e.kind = "page";
    // A page of one bill maps to nothing.
    json page{{"Invoices", json::array()}};
    for (const auto& r : {sim_->add_invoice(tenant,
                                            {{"Type", "ACCPAY"},
                                             {"Contact", {{"ContactID", c}}},
                                             {"LineItems", json::array({{{"LineAmount", 6}}})}})}) {
        page["Invoices"].push_back(r);
    }
    e.body = page.dump();
    state::batch b(*store_);
    auto changes = connector().process(e, *store_, b);
    ASSERT_TRUE(changes.ok());
    EXPECT_TRUE(changes.value.empty());
    EXPECT_EQ(json::parse(connector().status_json())["skipped_bills"], 1);
}

TEST_F(xero_connector_test, a_lost_refresh_answer_is_retried_inside_the_grace) {
    const auto c = contact("Acme");
    clock_.advance(std::chrono::minutes(31));  // the access token has ended
    sim_->oauth().lose_next_refresh_answers(1, std::chrono::milliseconds(0));
    auto r = run(ioc_, connector().refresh("client", {"xero", tenant, c, "", std::nullopt}));
    EXPECT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    EXPECT_EQ(connector().tokens().state(), oauth2::credential_state::ok);
    auto cred = oauth2::load_credential(*tokens_, std::string("xero/") + tenant);
    ASSERT_TRUE(cred.ok() && cred.value);
    EXPECT_TRUE(sim_->oauth().access_token_valid(cred.value->access_token));
}

TEST_F(xero_connector_test, a_revoked_grant_pauses_polling_but_keeps_webhooks) {
    const auto c = contact("Acme");
    sim_->oauth().revoke_all();
    clock_.advance(std::chrono::minutes(31));
    auto out = poll();
    EXPECT_NE(out.error, "");
    EXPECT_EQ(connector().tokens().state(), oauth2::credential_state::reconnect_needed);
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["credential"], "reconnect_needed");
    EXPECT_EQ(status["reconnect_needed"], true);
    EXPECT_EQ(status["polling"], "paused");
    ASSERT_TRUE(connector().next_poll());
    EXPECT_GT(*connector().next_poll(), clock_.now());
    // A delivery is still verified (and would be stored); resolving it waits, it is not lost.
    const auto d = sim_->take_deliveries();
    ASSERT_FALSE(d.empty());
    http::request req;
    req.body = d.front().body;
    req.headers.push_back({"x-xero-signature", d.front().signature});
    EXPECT_TRUE(connector().verify(req).accepted);
    state::inbox_event e;
    e.connector = "xero";
    e.body = d.front().body;
    EXPECT_EQ(run(ioc_, connector().resolve(e)).k, resolve_outcome::kind::retry);
}

// The user consented to less than the connector needs now (an upgrade added a scope after
// `billsync connect`): the refresh records what Xero granted, /status says to consent again.
class xero_fewer_scopes_test : public xero_connector_test {
protected:
    xero_fewer_scopes_test() {
        granted_scope_ = "offline_access accounting.contacts accounting.settings.read";
    }
};

TEST_F(xero_fewer_scopes_test, a_grant_without_a_needed_scope_asks_for_reconsent_in_status) {
    settings_.required_scope = oauth2_rules().scope;  // as from() sets it without `scope`
    const auto c = contact("Acme");
    // The seeded record has no scope list: unknown, no warning.
    auto status = json::parse(connector().status_json());
    EXPECT_FALSE(status.contains("reconsent_needed")) << status.dump();
    clock_.advance(std::chrono::minutes(31));  // the access token has ended: refresh
    auto r = run(ioc_, connector().refresh("client", {"xero", tenant, c, "", std::nullopt}));
    EXPECT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
    auto cred = oauth2::load_credential(*tokens_, std::string("xero/") + tenant);
    ASSERT_TRUE(cred.ok() && cred.value);
    EXPECT_EQ(cred.value->scope, "offline_access accounting.contacts accounting.settings.read");
    EXPECT_EQ(connector().tokens().missing_scopes(),
              std::vector<std::string>{"accounting.transactions"});
    status = json::parse(connector().status_json());
    EXPECT_EQ(status["reconsent_needed"], true);
    EXPECT_EQ(status["missing_scopes"], json::array({"accounting.transactions"}));
    EXPECT_NE(status["action_needed"].get<std::string>().find("billsync connect xero"),
              std::string::npos);
    // The grant still works: only a warning, calls go on.
    EXPECT_EQ(connector().tokens().state(), oauth2::credential_state::ok);
}

TEST_F(xero_connector_test, a_grant_with_every_needed_scope_needs_no_reconsent) {
    settings_.required_scope = "offline_access accounting.contacts.read";
    oauth2::credential c = *oauth2::load_credential(*tokens_, std::string("xero/") + tenant).value;
    c.scope = "offline_access accounting.contacts accounting.transactions";
    ASSERT_TRUE(oauth2::store_credential(*tokens_, c).ok);
    const auto status = json::parse(connector().status_json());
    EXPECT_FALSE(status.contains("reconsent_needed")) << status.dump();
}

TEST_F(xero_connector_test, verify_answers_intent_to_receive) {
    EXPECT_TRUE(connector().bare_webhook_answers());
    http::request req;
    req.body = R"({"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"X"})";
    req.headers.push_back({"x-xero-signature", sign(settings_.webhook_key, req.body)});
    EXPECT_TRUE(connector().verify(req).accepted);
    EXPECT_EQ(connector().check_payload(req.body), "");
    req.headers.back().value[3] ^= 1;
    EXPECT_FALSE(connector().verify(req).accepted);
}

TEST(xero_keys, idempotency_keys_are_stable_short_and_distinct) {
    EXPECT_EQ(idempotency_key("a"), idempotency_key("a"));
    EXPECT_NE(idempotency_key("a"), idempotency_key("a", "VOIDED"));
    EXPECT_NE(idempotency_key("a"), idempotency_key("b"));
    EXPECT_LE(idempotency_key(std::string(1000, 'x')).size(), 128u);
    EXPECT_NE(idempotency_key("a").find("billsync-"), std::string::npos);
}

TEST(xero_cursor, round_trips) {
    sync_cursor c;
    c.ph = sync_cursor::phase::incremental;
    c.step = 2;
    c.page = 3;
    c.since[1] = at("2026-02-10T14:00:00Z");
    c.started_at = at("2026-02-10T13:00:00Z");
    const auto d = sync_cursor::decode(c.encode());
    ASSERT_TRUE(d);
    EXPECT_EQ(d->step, 2u);
    EXPECT_EQ(d->page, 3u);
    EXPECT_FALSE(d->since[0]);
    EXPECT_EQ(d->since[1], c.since[1]);
    EXPECT_FALSE(sync_cursor::decode("{}"));
    EXPECT_FALSE(sync_cursor::decode("nope"));
}

// ---- invoice.create: the vendor-neutral invoice of the invoicing workflow ----------------------

json canonical_invoice(const std::string& key, const std::string& client_ref) {
    return json{{"key", key},
                {"client_ref", client_ref},
                {"currency", "USD"},
                {"issue_date", "2026-02-10"},
                {"due_date", "2026-03-12"},
                {"po_number", "PO-7"},
                {"memo", "Thank you"},
                {"lines",
                 json::array({{{"description", "Return Filed (50% of 2,400.00)"},
                               {"quantity", "1.5"},
                               {"unit_amount_minor", 15000},
                               {"amount_minor", 22500},
                               {"account_code", "200"}},
                              {{"description", "Bookkeeping"},
                               {"quantity", "1.333"},
                               {"unit_amount_minor", 15000},
                               {"amount_minor", 20000},
                               {"account_code", "200"}}})}};
}

TEST_F(xero_connector_test, invoice_create_is_an_action_of_the_xero_kind) {
    const auto k = describe();
    EXPECT_NE(std::find(k.actions.begin(), k.actions.end(), "invoice.create"), k.actions.end());
    EXPECT_NE(std::find(k.actions.begin(), k.actions.end(), "invoice.send"), k.actions.end());
}

TEST_F(xero_connector_test, invoice_send_emails_the_invoice_to_its_contact) {
    const auto c = contact("Acme Holdings");
    const std::string key = "invoicing/milestone:eng-7:Return Filed/1";
    const auto created =
        run(ioc_, connector().perform(action(key, "invoice.create", canonical_invoice(key, c))));
    ASSERT_EQ(created.k, action_outcome::kind::done) << created.detail;
    const auto id = created.detail.substr(8, created.detail.find(' ') - 8);
    const auto sent =
        run(ioc_,
            connector().perform(action("invoicing:d-1/send:1", "invoice.send", json{{"id", id}})));
    ASSERT_EQ(sent.k, action_outcome::kind::done) << sent.detail;
    EXPECT_EQ(sim_->emails_sent(), 1u);
}

TEST_F(xero_connector_test, invoice_create_creates_one_exact_invoice_and_a_replay_creates_nothing) {
    const auto c = contact("Acme Holdings");
    const std::string key = "invoicing/milestone:eng-7:Return Filed/1";
    const auto a = action(key, "invoice.create", canonical_invoice(key, c));
    const auto first = run(ioc_, connector().perform(a));
    ASSERT_EQ(first.k, action_outcome::kind::done) << first.detail;
    ASSERT_EQ(sim_->count(tenant, "Invoices"), 1u);
    const auto id = first.detail.substr(8, first.detail.find(' ') - 8);
    const auto inv = *sim_->get(tenant, "Invoices", id);
    EXPECT_EQ(first.detail, "Invoice/" + id + " #" + inv.value("InvoiceNumber", std::string("?")));
    EXPECT_EQ(inv["Status"], "AUTHORISED");
    EXPECT_EQ(inv["Type"], "ACCREC");
    EXPECT_EQ(inv["LineAmountTypes"], "Exclusive");
    EXPECT_EQ(inv["Reference"], "PO-7 " + mappings::key_marker(key));
    EXPECT_EQ(mappings::xero::parse_amount(inv["Total"], "USD")->minor, 42500);
    ASSERT_EQ(inv["LineItems"].size(), 3u);  // two priced lines and the memo
    EXPECT_EQ(inv["LineItems"][1]["Description"], "Bookkeeping (1.333 x 150.00)");
    EXPECT_EQ(inv["LineItems"][2]["Description"], "Thank you");
    const auto again = run(ioc_, connector().perform(a));
    ASSERT_EQ(again.k, action_outcome::kind::done) << again.detail;
    EXPECT_EQ(again.detail, first.detail);
    EXPECT_EQ(sim_->count(tenant, "Invoices"), 1u);
    EXPECT_EQ(sim_->invoices_created(), 1u);
    EXPECT_GE(sim_->idempotent_replays(), 1u);
    const auto puts = server_.requests_to("/api.xro/2.0/Invoices");
    ASSERT_EQ(puts.size(), 2u);
    for (const auto& r : puts) {
        EXPECT_EQ(r.header_value("Idempotency-Key"), idempotency_key(key));
        EXPECT_NE(r.body.find(R"("LineAmount":225.00)"), std::string::npos) << r.body;
    }
}

TEST_F(xero_connector_test, a_lost_invoice_create_answer_is_adopted_by_reconcile_not_resent) {
    const auto c = contact("Birch Dental");
    const std::string key = "invoicing/milestone:eng-9:Delivered/1";
    const auto a = action(key, "invoice.create", canonical_invoice(key, c));
    EXPECT_EQ(run(ioc_, connector().reconcile(a)).k, reconcile_outcome::kind::absent);
    // The invoice is stored but the answer is lost (the outcome is unknown).
    const auto made = run(ioc_, connector().perform(a));
    ASSERT_EQ(made.k, action_outcome::kind::done) << made.detail;
    const auto found = run(ioc_, connector().reconcile(a));
    ASSERT_EQ(found.k, reconcile_outcome::kind::happened) << found.detail;
    EXPECT_EQ(found.detail, made.detail);
    const std::string other = "invoicing/milestone:eng-9:Delivered/2";
    EXPECT_EQ(
        run(ioc_,
            connector().reconcile(action(other, "invoice.create", canonical_invoice(other, c))))
            .k,
        reconcile_outcome::kind::absent);
    EXPECT_EQ(sim_->count(tenant, "Invoices"), 1u);
}

TEST_F(xero_connector_test, a_bad_invoice_create_payload_is_permanent_and_never_sent) {
    const auto c = contact("Cedar");
    const std::string key = "invoicing/bad/1";
    std::vector<json> bad;
    bad.push_back(canonical_invoice(key, ""));
    bad.push_back(canonical_invoice(key, c));
    bad.back()["lines"] = json::array();
    bad.push_back(canonical_invoice(key, c));
    bad.back()["lines"][0]["unit_amount_minor"] = "150.00";
    bad.push_back(canonical_invoice(key, c));
    bad.back()["due_date"] = "2026-01-01";  // before the issue date
    for (const auto& p : bad) {
        const auto out = run(ioc_, connector().perform(action(key, "invoice.create", p)));
        EXPECT_EQ(out.k, action_outcome::kind::permanent) << p.dump();
        EXPECT_NE(out.detail.find("invalid invoice.create payload"), std::string::npos)
            << out.detail;
    }
    EXPECT_TRUE(server_.requests_to("/api.xro/2.0/Invoices").empty());
    EXPECT_EQ(sim_->count(tenant, "Invoices"), 0u);
}

}  // namespace
}  // namespace billsync::connectors::xero
