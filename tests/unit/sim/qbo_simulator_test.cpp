// The QBO simulator over loopback HTTP, as a client sees it (shared/vendors/qbo.md).
#include "sim/qbo_simulator.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <thread>

#include "connectors/qbo/qbo_webhook.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "mappings/exact_json.hpp"

namespace billsync::simulators {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view realm = "9130350000000001";
constexpr std::string_view realm2 = "9130350000000002";

util::instant t0() {
    util::instant t{};
    util::parse_rfc3339("2026-03-02T09:00:00Z", t);
    return t;
}

json exact(const std::string& body) {
    std::string err;
    auto j = mappings::parse_exact(body, err);
    return j ? *j : json();
}

// The decimal text of an amount as sent ("123.45").
std::string amount(const json& v) { return mappings::decimal_text(v).value_or("?"); }

struct qbo_sim : ::testing::Test {
    util::manual_clock clock{t0()};
    std::unique_ptr<qbo_simulator> sim;
    std::unique_ptr<sim_server> server;
    std::string token;

    void start(qbo_sim_options o = {}, sim_options so = {}) {
        o.now = [this] { return clock.now(); };
        o.realms = {std::string(realm), std::string(realm2)};
        sim = std::make_unique<qbo_simulator>(std::move(o));
        server = std::make_unique<sim_server>(so);
        sim->add_routes(server->routes());
        sim->configure(*server);
        ASSERT_EQ(server->start(), "");
        token = sim->oauth().issue_grant().access_token;
    }
    void SetUp() override {}

    std::string base(std::string_view r = realm) const {
        return "/v3/company/" + std::string(r) + "/";
    }

    http::simple_response call(const std::string& method,
                               const std::string& target,
                               const std::string& body = {},
                               const std::string& content_type = "application/json") const {
        std::vector<http::header> h = {{"Authorization", "Bearer " + token},
                                       {"Accept", "application/json"}};
        if (!content_type.empty()) {
            h.push_back({"Content-Type", content_type});
        }
        return http::fetch("127.0.0.1", server->port(), method, target, h, body);
    }
    json post(const std::string& entity, const json& body, const std::string& query = {}) const {
        const auto r = call("POST", base() + entity + "?minorversion=75" + query, body.dump());
        auto j = exact(r.body);
        j["_status"] = r.status;
        return j;
    }
    json get_json(const std::string& target) const {
        const auto r = call("GET", target);
        auto j = exact(r.body);
        j["_status"] = r.status;
        return j;
    }
    json query(const std::string& q) const {
        return get_json(base() + "query?minorversion=75&query=" + http::percent_encode(q));
    }

    // The simulator's own view, with amounts as exact text like a client's parse_exact.
    json stored(const std::string& entity, const std::string& id) const {
        const auto j = sim->get(std::string(realm), entity, id);
        return j ? exact(j->dump()) : json();
    }
    json customer(const std::string& name) {
        return sim->add_customer(std::string(realm), {{"DisplayName", name}});
    }
    json invoice_body(const std::string& customer_id, const std::string& amount_text) const {
        return json{{"CustomerRef", {{"value", customer_id}}},
                    {"Line",
                     json::array({{{"Amount", json::parse(amount_text)},
                                   {"DetailType", "SalesItemLineDetail"},
                                   {"SalesItemLineDetail", {{"ItemRef", {{"value", "1"}}}}}}})},
                    {"DueDate", "2026-03-31"}};
    }
};

std::string fault_code(const json& j) {
    if (j.contains("Fault")) {
        return j["Fault"]["Error"][0]["code"].get<std::string>();
    }
    return {};
}

// ---- auth and realms ---------------------------------------------------------------------------

TEST_F(qbo_sim, missing_or_expired_token_is_401_with_intuits_body) {
    start();
    const auto none = http::fetch("127.0.0.1", server->port(), "GET", base() + "customer/1");
    EXPECT_EQ(none.status, 401u);
    const auto j = json::parse(none.body);
    EXPECT_EQ(j["fault"]["error"][0]["code"], "3200");
    EXPECT_EQ(j["fault"]["error"][0]["detail"], "Token expired");
    EXPECT_EQ(j["fault"]["type"], "AUTHENTICATION");
    EXPECT_TRUE(j.contains("time"));
    EXPECT_FALSE(none.header_value("intuit_tid").empty());

    customer("Ada");
    EXPECT_EQ(call("GET", base() + "customer/1").status, 200u);
    clock.advance(3601s);  // access tokens live 3600 s
    const auto expired = call("GET", base() + "customer/1");
    EXPECT_EQ(expired.status, 401u);
    EXPECT_NE(expired.body.find("errorCode=003200"), std::string::npos);
}

TEST_F(qbo_sim, unknown_realm_is_403_and_every_response_has_a_unique_tid) {
    start();
    const auto r = call("GET", "/v3/company/123/customer/1");
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(fault_code(json::parse(r.body)), "003100");
    const auto a = call("GET", base() + "customer/1");
    const auto b = call("GET", base() + "customer/1");
    EXPECT_FALSE(a.header_value("intuit_tid").empty());
    EXPECT_NE(a.header_value("intuit_tid"), b.header_value("intuit_tid"));
    EXPECT_EQ(fault_code(json::parse(a.body)), "610");  // no such customer
    EXPECT_EQ(a.status, 400u);
}

// ---- entities ----------------------------------------------------------------------------------

TEST_F(qbo_sim, customer_invoice_payment_round_trip_with_exact_amounts) {
    start();
    const auto c =
        post("customer",
             {{"DisplayName", "Acme Ltd"}, {"PrimaryEmailAddr", {{"Address", "ap@acme.test"}}}});
    ASSERT_EQ(c["_status"], 200) << c.dump();
    const auto cid = c["Customer"]["Id"].get<std::string>();
    EXPECT_EQ(c["Customer"]["SyncToken"], "0");
    EXPECT_EQ(c["Customer"]["Active"], true);
    EXPECT_TRUE(c.contains("time"));

    auto body = invoice_body(cid, "100.10");
    body["Line"].push_back({{"Amount", json::parse("23.35")},
                            {"DetailType", "SalesItemLineDetail"},
                            {"SalesItemLineDetail", {{"ItemRef", {{"value", "2"}}}}}});
    body["BillEmail"] = {{"Address", "ap@acme.test"}};
    const auto inv = post("invoice", body);
    ASSERT_EQ(inv["_status"], 200) << inv.dump();
    const auto& i = inv["Invoice"];
    EXPECT_EQ(amount(i["TotalAmt"]), "123.45");
    EXPECT_EQ(amount(i["Balance"]), "123.45");
    EXPECT_EQ(i["DocNumber"], "1001");
    EXPECT_EQ(i["EmailStatus"], "NeedToSend");
    EXPECT_EQ(i["TxnDate"], "2026-03-02");
    EXPECT_EQ(i["CurrencyRef"]["value"], "USD");
    EXPECT_EQ(i["MetaData"]["CreateTime"], "2026-03-02T01:00:00-08:00");
    // QBO appends a subtotal line.
    EXPECT_EQ(i["Line"].back()["DetailType"], "SubTotalLineDetail");
    const auto iid = i["Id"].get<std::string>();

    const auto got = get_json(base() + "invoice/" + iid + "?minorversion=75");
    EXPECT_EQ(got["Invoice"], i);
    EXPECT_EQ(stored("Invoice", iid), i);

    const auto pay =
        post("payment",
             {{"TotalAmt", json::parse("123.45")},
              {"CustomerRef", {{"value", cid}}},
              {"Line",
               json::array(
                   {{{"Amount", json::parse("123.45")},
                     {"LinkedTxn", json::array({{{"TxnId", iid}, {"TxnType", "Invoice"}}})}}})}});
    ASSERT_EQ(pay["_status"], 200) << pay.dump();
    EXPECT_EQ(amount(pay["Payment"]["TotalAmt"]), "123.45");
    EXPECT_EQ(amount(pay["Payment"]["UnappliedAmt"]), "0");
    const auto paid = get_json(base() + "invoice/" + iid);
    EXPECT_EQ(amount(paid["Invoice"]["Balance"]), "0");
    EXPECT_EQ(paid["Invoice"]["SyncToken"], "1");
    EXPECT_EQ(paid["Invoice"]["LinkedTxn"][0]["TxnType"], "Payment");
    EXPECT_EQ(sim->creates(), 3u);
    EXPECT_EQ(sim->count(std::string(realm), "invoice"), 1u);
}

TEST_F(qbo_sim, partial_then_full_payment_and_payment_void_restores_balance) {
    start();
    const auto cid = customer("Beta")["Id"].get<std::string>();
    const auto inv = sim->add_invoice(std::string(realm), invoice_body(cid, "200.00"));
    const auto iid = inv["Id"].get<std::string>();
    auto pay = [&](const char* amt) {
        return sim->add_payment(
            std::string(realm),
            {{"TotalAmt", json::parse(amt)},
             {"CustomerRef", {{"value", cid}}},
             {"Line",
              json::array(
                  {{{"Amount", json::parse(amt)},
                    {"LinkedTxn", json::array({{{"TxnId", iid}, {"TxnType", "Invoice"}}})}}})}});
    };
    const auto p1 = pay("50.01");
    ASSERT_FALSE(p1.contains("Fault")) << p1.dump();
    EXPECT_EQ(amount(stored("invoice", iid)["Balance"]), "149.99");
    // More than the open balance is refused.
    EXPECT_EQ(fault_code(pay("150.00")), "6000");
    const auto p2 = pay("149.99");
    ASSERT_FALSE(p2.contains("Fault"));
    const auto after = stored("invoice", iid);
    EXPECT_EQ(amount(after["Balance"]), "0");
    EXPECT_EQ(after["SyncToken"], "2");

    // Void the first payment over the API: its 50.01 is owed again.
    const auto v = post("payment",
                        {{"Id", p1["Id"]}, {"SyncToken", p1["SyncToken"]}, {"sparse", true}},
                        "&operation=update&include=void");
    ASSERT_EQ(v["_status"], 200) << v.dump();
    EXPECT_EQ(amount(v["Payment"]["TotalAmt"]), "0");
    EXPECT_EQ(v["Payment"]["PrivateNote"].get<std::string>().rfind("Voided", 0), 0u);
    EXPECT_EQ(amount(stored("invoice", iid)["Balance"]), "50.01");
}

TEST_F(qbo_sim, invoice_void_and_delete) {
    start();
    const auto cid = customer("Gamma")["Id"].get<std::string>();
    const auto inv = sim->add_invoice(std::string(realm), invoice_body(cid, "80.00"));
    const auto iid = inv["Id"].get<std::string>();
    // Stale token refused.
    EXPECT_EQ(fault_code(post("invoice", {{"Id", iid}, {"SyncToken", "7"}}, "&operation=void")),
              "5010");
    const auto v = post("invoice", {{"Id", iid}, {"SyncToken", "0"}}, "&operation=void");
    ASSERT_EQ(v["_status"], 200) << v.dump();
    EXPECT_EQ(amount(v["Invoice"]["TotalAmt"]), "0");
    EXPECT_EQ(amount(v["Invoice"]["Balance"]), "0");
    EXPECT_EQ(v["Invoice"]["PrivateNote"], "Voided");
    EXPECT_EQ(v["Invoice"]["SyncToken"], "1");

    const auto inv2 = sim->add_invoice(std::string(realm), invoice_body(cid, "10.00"));
    const auto d = post("invoice", {{"Id", inv2["Id"]}, {"SyncToken", "0"}}, "&operation=delete");
    ASSERT_EQ(d["_status"], 200) << d.dump();
    EXPECT_EQ(d["Invoice"]["status"], "Deleted");
    EXPECT_EQ(fault_code(get_json(base() + "invoice/" + inv2["Id"].get<std::string>())), "610");
    EXPECT_EQ(sim->count(std::string(realm), "Invoice"), 1u);
    // Customers cannot be deleted.
    EXPECT_EQ(fault_code(post("customer", {{"Id", cid}, {"SyncToken", "0"}}, "&operation=delete")),
              "6000");
}

TEST_F(qbo_sim, send_needs_octet_stream) {
    start();
    const auto cid = customer("Delta")["Id"].get<std::string>();
    const auto iid =
        sim->add_invoice(std::string(realm), invoice_body(cid, "5.00"))["Id"].get<std::string>();
    const auto target = base() + "invoice/" + iid + "/send?minorversion=75&sendTo=" +
                        http::percent_encode("billing@delta.test");
    EXPECT_EQ(call("POST", target, "", "application/json").status, 500u);
    const auto ok = call("POST", target, "", "application/octet-stream");
    ASSERT_EQ(ok.status, 200u) << ok.body;
    const auto j = json::parse(ok.body);
    EXPECT_EQ(j["Invoice"]["EmailStatus"], "EmailSent");
    EXPECT_EQ(j["Invoice"]["BillEmail"]["Address"], "billing@delta.test");
    EXPECT_EQ(j["Invoice"]["DeliveryInfo"]["DeliveryType"], "Email");
    EXPECT_EQ(j["Invoice"]["SyncToken"], "1");
}

TEST_F(qbo_sim, stale_synctoken_sparse_update_and_duplicate_name) {
    start();
    const auto c = post("customer", {{"DisplayName", "Echo"}});
    const auto cid = c["Customer"]["Id"].get<std::string>();
    const auto u =
        post("customer",
             {{"Id", cid}, {"SyncToken", "0"}, {"sparse", true}, {"CompanyName", "Echo Inc"}});
    ASSERT_EQ(u["_status"], 200);
    EXPECT_EQ(u["Customer"]["SyncToken"], "1");
    EXPECT_EQ(u["Customer"]["DisplayName"], "Echo");  // sparse kept it
    EXPECT_EQ(u["Customer"]["CompanyName"], "Echo Inc");
    const auto s = post("customer", {{"Id", cid}, {"SyncToken", "0"}, {"sparse", true}});
    EXPECT_EQ(s["_status"], 400);
    EXPECT_EQ(fault_code(s), "5010");
    EXPECT_EQ(fault_code(post("customer", {{"DisplayName", "ECHO"}})), "6240");
    // Invoice validation: unknown customer, no lines, duplicate DocNumber, inactive customer.
    EXPECT_EQ(fault_code(post("invoice", invoice_body("999", "1.00"))), "2500");
    auto nolines = invoice_body(cid, "1.00");
    nolines["Line"] = json::array();
    EXPECT_EQ(fault_code(post("invoice", nolines)), "2020");
    auto numbered = invoice_body(cid, "1.00");
    numbered["DocNumber"] = "A-1";
    EXPECT_EQ(post("invoice", numbered)["_status"], 200);
    EXPECT_EQ(fault_code(post("invoice", numbered)), "6140");
    sim->update(std::string(realm), "Customer", cid, {{"Active", false}});
    EXPECT_EQ(fault_code(post("invoice", invoice_body(cid, "1.00"))), "610");
}

TEST_F(qbo_sim, requestid_replays_the_first_response) {
    start();
    const auto cid = customer("Foxtrot")["Id"].get<std::string>();
    const auto body = invoice_body(cid, "42.00").dump();
    const auto target = base() + "invoice?minorversion=75&requestid=action-1";
    const auto a = call("POST", target, body);
    clock.advance(5s);
    const auto b = call("POST", target, body);
    ASSERT_EQ(a.status, 200u);
    EXPECT_EQ(b.status, 200u);
    EXPECT_EQ(a.body, b.body);
    EXPECT_EQ(sim->count(std::string(realm), "invoice"), 1u);
    EXPECT_EQ(sim->requestid_replays(), 1u);
    EXPECT_EQ(sim->creates(), 1u);
    // Another realm does not share the cache.
    sim->add_customer(std::string(realm2), {{"DisplayName", "Foxtrot"}});
    EXPECT_EQ(call("POST", base(realm2) + "invoice?requestid=action-1", body).status, 200u);
    EXPECT_EQ(sim->count(std::string(realm2), "invoice"), 1u);
    EXPECT_EQ(call("POST", base() + "invoice?requestid=" + std::string(51, 'x'), body).status,
              400u);
}

// ---- query -------------------------------------------------------------------------------------

TEST_F(qbo_sim, query_language) {
    start();
    const auto a = customer("Alpha Books")["Id"].get<std::string>();
    const auto b = customer("Beta Books")["Id"].get<std::string>();
    customer("Gamma Garden");
    for (int i = 0; i < 5; ++i) {
        auto body = invoice_body(i % 2 == 0 ? a : b, std::to_string(10 * (i + 1)) + ".50");
        body["TxnDate"] = "2026-02-0" + std::to_string(i + 1);
        sim->add_invoice(std::string(realm), body);
        clock.advance(1min);
    }
    auto rows = [](const json& j, const char* e) {
        return j["QueryResponse"].contains(e) ? j["QueryResponse"][e].size() : 0;
    };
    EXPECT_EQ(rows(query("select * from Customer"), "Customer"), 3u);
    auto like = query("SELECT * FROM Customer WHERE DisplayName LIKE '%books'");
    EXPECT_EQ(rows(like, "Customer"), 2u);
    auto in = query("select * from Invoice where DocNumber in ('1001','1003') orderby Id desc");
    ASSERT_EQ(rows(in, "Invoice"), 2u);
    EXPECT_EQ(in["QueryResponse"]["Invoice"][0]["DocNumber"], "1003");
    EXPECT_EQ(in["QueryResponse"]["maxResults"], 2);
    auto amt = query("select * from Invoice where TotalAmt >= 30.50 and TotalAmt < 50.5");
    EXPECT_EQ(rows(amt, "Invoice"), 2u);  // 30.50 and 40.50
    auto dates = query("select * from Invoice where TxnDate > '2026-02-03' ORDERBY TotalAmt DESC");
    ASSERT_EQ(rows(dates, "Invoice"), 2u);
    EXPECT_EQ(amount(dates["QueryResponse"]["Invoice"][0]["TotalAmt"]), "50.5");
    auto since = query(
        "select * from Invoice where MetaData.LastUpdatedTime >= "
        "'2026-03-02T01:02:00-08:00'");
    EXPECT_EQ(rows(since, "Invoice"), 3u);
    auto ref = query("select count(*) from Invoice where CustomerRef = '" + a + "'");
    EXPECT_EQ(ref["QueryResponse"]["totalCount"], 3);
    EXPECT_EQ(query("SELECT COUNT(*) FROM Invoice")["QueryResponse"]["totalCount"], 5);
    const auto empty = query("select * from Invoice where DocNumber = 'nope'");
    EXPECT_EQ(empty["_status"], 200);
    EXPECT_TRUE(empty["QueryResponse"].empty());

    // Paging to exhaustion.
    std::set<std::string> seen;
    for (int start = 1;; start += 2) {
        const auto page =
            query("select * from Invoice STARTPOSITION " + std::to_string(start) + " MAXRESULTS 2");
        const auto n = rows(page, "Invoice");
        for (std::size_t i = 0; i < n; ++i) {
            seen.insert(page["QueryResponse"]["Invoice"][i]["Id"].get<std::string>());
        }
        if (n < 2) {
            break;
        }
        ASSERT_LT(start, 20);
    }
    EXPECT_EQ(seen.size(), 5u);

    // Inactive customers only with an Active condition.
    sim->update(std::string(realm), "customer", b, {{"Active", false}});
    EXPECT_EQ(rows(query("select * from Customer"), "Customer"), 2u);
    EXPECT_EQ(rows(query("select * from Customer where Active in (true, false)"), "Customer"), 3u);

    for (const auto* bad : {"select from Invoice",
                            "select * from Widget",
                            "select * from Invoice where Foo = '1'",
                            "select * from Invoice where DocNumber = 'x' or Id = '1'",
                            "select * from Invoice where DocNumber = 'unterminated",
                            "select * from Invoice maxresults 0"}) {
        const auto e = query(bad);
        EXPECT_EQ(e["_status"], 400) << bad;
        EXPECT_EQ(fault_code(e), "4000") << bad;
        EXPECT_NE(e["Fault"]["Error"][0]["Detail"].get<std::string>().find("QueryParserError"),
                  std::string::npos);
    }
}

// ---- CDC ---------------------------------------------------------------------------------------

TEST_F(qbo_sim, cdc_since_deleted_cap_and_lookback) {
    qbo_sim_options o;
    o.cdc_cap = 3;
    start(o);
    const auto cid = customer("Hotel")["Id"].get<std::string>();
    const auto old_inv = sim->add_invoice(std::string(realm), invoice_body(cid, "1.00"));
    clock.advance(1h);
    const auto since = util::format_rfc3339(clock.now());
    const auto inv = sim->add_invoice(std::string(realm), invoice_body(cid, "2.00"));
    clock.advance(1s);
    sim->delete_entity(std::string(realm), "Invoice", old_inv["Id"].get<std::string>());
    auto cdc = [&](const std::string& entities, const std::string& s) {
        token = sim->oauth().issue_grant().access_token;  // the clock moves past expiry
        return get_json(base() + "cdc?minorversion=75&entities=" + entities +
                        "&changedSince=" + http::percent_encode(s));
    };
    const auto r = cdc("Invoice,Payment,Customer,TimeActivity", since);
    ASSERT_EQ(r["_status"], 200) << r.dump();
    const auto& qr = r["CDCResponse"][0]["QueryResponse"];
    ASSERT_EQ(qr.size(), 3u);
    ASSERT_EQ(qr[0]["Invoice"].size(), 2u);
    EXPECT_EQ(qr[0]["Invoice"][0]["Id"], inv["Id"]);
    EXPECT_EQ(qr[0]["Invoice"][1]["status"], "Deleted");
    EXPECT_EQ(qr[0]["Invoice"][1]["Id"], old_inv["Id"]);
    EXPECT_TRUE(qr[1].empty());
    EXPECT_TRUE(qr[2].empty());  // the customer changed before `since`

    // Cap: oldest first, then cut.
    for (int i = 0; i < 4; ++i) {
        clock.advance(1s);
        customer("Many " + std::to_string(i));
    }
    const auto capped = cdc("Customer,Invoice", since);
    const auto& cq = capped["CDCResponse"][0]["QueryResponse"];
    EXPECT_EQ(cq[0]["Customer"].size(), 1u);
    EXPECT_EQ(cq[0]["Customer"][0]["DisplayName"], "Many 0");
    EXPECT_EQ(cq[1]["Invoice"].size(), 2u);

    clock.advance(24h * 31);
    const auto too_old = cdc("Invoice", since);
    EXPECT_EQ(too_old["_status"], 400);
    EXPECT_NE(too_old["Fault"]["Error"][0]["Detail"].get<std::string>().find("30 days"),
              std::string::npos);
    EXPECT_EQ(cdc("Invoice", "")["_status"], 400);
    EXPECT_EQ(get_json(base() + "cdc?changedSince=2026-04-01")["_status"], 400);
    // A date works as changedSince.
    EXPECT_EQ(cdc("Invoice", "2026-03-20")["_status"], 200);
}

// ---- throttling --------------------------------------------------------------------------------

TEST_F(qbo_sim, eleven_concurrent_requests_get_throttled_without_retry_after) {
    sim_options so;
    so.service_time = 400ms;
    start({}, so);
    std::vector<http::simple_response> results(11);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); ++i) {
        threads.emplace_back([&, i] { results[i] = call("GET", base() + "customer/1"); });
    }
    for (auto& t : threads) {
        t.join();
    }
    std::size_t throttled = 0;
    for (const auto& r : results) {
        if (r.status == 429) {
            ++throttled;
            EXPECT_TRUE(r.header_value("Retry-After").empty());
            EXPECT_EQ(fault_code(json::parse(r.body)), "003001");
        }
    }
    EXPECT_GE(throttled, 1u);
    // Another realm has its own budget.
    EXPECT_NE(call("GET", base(realm2) + "customer/1").status, 429u);
}

TEST_F(qbo_sim, more_than_500_a_minute_is_throttled) {
    qbo_sim_options o;
    o.scale = 0.01;  // a 100-minute window: nothing slides out during the test
    start(o);
    for (int i = 0; i < 500; ++i) {
        ASSERT_NE(call("GET", base() + "customer/1").status, 429u) << i;
    }
    const auto r = call("GET", base() + "customer/1");
    EXPECT_EQ(r.status, 429u);
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["Fault"]["Error"][0]["Message"], "ThrottleExceeded");
    EXPECT_EQ(j["Fault"]["type"], "ValidationFault");
    EXPECT_TRUE(r.header_value("Retry-After").empty());
}

// ---- webhooks ----------------------------------------------------------------------------------

TEST_F(qbo_sim, webhook_deliveries_verify_and_parse_in_both_formats) {
    start();
    const auto cid = customer("India")["Id"].get<std::string>();
    const auto iid =
        sim->add_invoice(std::string(realm), invoice_body(cid, "9.99"))["Id"].get<std::string>();
    sim->add_customer(std::string(realm2), {{"DisplayName", "Juliet"}});
    sim->void_invoice(std::string(realm), iid);
    EXPECT_EQ(call("POST",
                   base() + "invoice/" + iid + "/send?sendTo=a%40b.test",
                   "",
                   "application/octet-stream")
                  .status,
              200u);
    const auto inv2 = sim->add_invoice(std::string(realm), invoice_body(cid, "1.00"));
    sim->delete_entity(std::string(realm), "invoice", inv2["Id"].get<std::string>());
    ASSERT_EQ(sim->pending_events(), 7u);

    const std::vector<std::string> realms = {std::string(realm), std::string(realm2)};
    using connectors::qbo::operation;
    const std::vector<operation> expected = {operation::created,
                                             operation::created,
                                             operation::voided,
                                             operation::emailed,
                                             operation::created,
                                             operation::deleted,
                                             operation::created};
    {
        const auto ds = sim->take_deliveries();  // classic
        ASSERT_EQ(ds.size(), 1u);
        EXPECT_EQ(
            connectors::qbo::verify_signature("sim-verifier-token", ds[0].body, ds[0].signature),
            connectors::qbo::signature_check::ok);
        EXPECT_EQ(connectors::qbo::verify_signature("other", ds[0].body, ds[0].signature),
                  connectors::qbo::signature_check::mismatch);
        const auto p = connectors::qbo::parse_webhook(ds[0].body, realms);
        ASSERT_TRUE(p.ok()) << p.error;
        EXPECT_TRUE(p.problems.empty());
        EXPECT_EQ(p.format, connectors::qbo::webhook_format::classic);
        ASSERT_EQ(p.events.size(), expected.size());
        // Grouped by realm: realm's six events first, then realm2's.
        std::vector<operation> ops;
        for (const auto& e : p.events) {
            ops.push_back(e.op);
            EXPECT_TRUE(e.last_updated.has_value());
        }
        EXPECT_EQ(ops, expected);
        EXPECT_EQ(p.events.back().realm_id, realm2);
        const auto j = json::parse(ds[0].body);
        ASSERT_EQ(j["eventNotifications"].size(), 2u);
        EXPECT_EQ(j["eventNotifications"][0]["realmId"], realm);
        EXPECT_EQ(j["eventNotifications"][1]["realmId"], realm2);
    }

    // CloudEvents over the same kind of history.
    sim->add_invoice(std::string(realm), invoice_body(cid, "3.00"));
    sim->void_invoice(std::string(realm), iid);  // already void: voids again
    sim->update(std::string(realm), "Customer", cid, {{"CompanyName", "India Co"}});
    sim->delete_entity(std::string(realm), "invoice", iid);
    qbo_deliver_options ce;
    ce.format = qbo_webhook_format::cloudevents;
    ce.events_per_delivery = 2;
    const auto ds = sim->take_deliveries(ce);
    ASSERT_EQ(ds.size(), 2u);
    std::vector<connectors::qbo::qbo_event> events;
    for (const auto& d : ds) {
        EXPECT_EQ(connectors::qbo::verify_signature("sim-verifier-token", d.body, d.signature),
                  connectors::qbo::signature_check::ok);
        EXPECT_EQ(d.body.front(), '[');
        const auto p = connectors::qbo::parse_webhook(d.body, realms);
        ASSERT_TRUE(p.ok()) << p.error;
        EXPECT_TRUE(p.problems.empty());
        EXPECT_EQ(p.format, connectors::qbo::webhook_format::cloudevents);
        events.insert(events.end(), p.events.begin(), p.events.end());
    }
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[0].op, operation::created);
    EXPECT_EQ(events[1].op, operation::voided);
    EXPECT_EQ(events[2].op, operation::updated);
    EXPECT_EQ(events[3].op, operation::deleted);
    EXPECT_EQ(events[2].entity_name, "Customer");
    std::set<std::string> ids;
    for (const auto& e : events) {
        ASSERT_TRUE(e.event_id.has_value());
        ids.insert(*e.event_id);
        EXPECT_TRUE(e.realm_known);
    }
    EXPECT_EQ(ids.size(), 4u);
    EXPECT_EQ(sim->pending_events(), 0u);
}

TEST_F(qbo_sim, deliver_posts_signed_duplicates_in_reverse_order) {
    start();
    // A receiver that verifies like the daemon and remembers what it saw.
    std::mutex m;
    std::vector<std::string> bodies;
    sim_server receiver;
    receiver.routes().add(
        "POST", "/webhooks/qbo", [&](http::request req) -> net::awaitable<http::response> {
            const auto check = connectors::qbo::verify_signature(
                "sim-verifier-token", req.body, req.header_value("intuit-signature"));
            if (check != connectors::qbo::signature_check::ok) {
                co_return http::response::text(401, "bad signature");
            }
            std::lock_guard lock(m);
            bodies.push_back(req.body);
            co_return http::response::text(200, "");
        });
    ASSERT_EQ(receiver.start(), "");
    for (int i = 0; i < 3; ++i) {
        customer("Kilo " + std::to_string(i));
        clock.advance(1s);
    }
    qbo_deliver_options o;
    o.events_per_delivery = 1;
    o.duplicate_each = true;
    o.reverse_order = true;
    const auto statuses = sim->deliver(receiver.base_url() + "/webhooks/qbo", o);
    EXPECT_EQ(statuses, (std::vector<unsigned>{200, 200, 200, 200, 200, 200}));
    ASSERT_EQ(bodies.size(), 6u);
    EXPECT_EQ(bodies[0], bodies[1]);
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < bodies.size(); i += 2) {
        const auto p = connectors::qbo::parse_webhook(bodies[i]);
        ASSERT_EQ(p.events.size(), 1u);
        ids.push_back(p.events[0].entity_id);
        EXPECT_EQ(
            connectors::qbo::dedup_key(p.events[0]),
            connectors::qbo::dedup_key(connectors::qbo::parse_webhook(bodies[i + 1]).events[0]));
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"3", "2", "1"}));

    // The admin route does the same for billsync-sim users; a bad signature is refused.
    customer("Lima");
    const auto admin = http::fetch(
        "127.0.0.1",
        server->port(),
        "POST",
        "/_sim/qbo/deliver",
        {{"Content-Type", "application/json"}},
        json{{"url", receiver.base_url() + "/webhooks/qbo"}, {"format", "cloudevents"}}.dump());
    ASSERT_EQ(admin.status, 200u) << admin.body;
    EXPECT_EQ(json::parse(admin.body)["statuses"], json::array({200}));
    auto forged = sim->sign("{}");
    forged.body = R"({"eventNotifications":[]})";
    EXPECT_NE(
        connectors::qbo::verify_signature("sim-verifier-token", forged.body, forged.signature),
        connectors::qbo::signature_check::ok);
    // Nothing listening: transport failure is 0.
    customer("Mike");
    receiver.stop();
    EXPECT_EQ(sim->deliver(receiver.base_url() + "/webhooks/qbo"), std::vector<unsigned>{0});
}

TEST_F(qbo_sim, admin_routes_create_void_and_report_state) {
    start();
    auto admin = [&](const std::string& method, const std::string& path, const json& body) {
        return http::fetch("127.0.0.1",
                           server->port(),
                           method,
                           path,
                           {{"Content-Type", "application/json"}},
                           body.dump());
    };
    const auto c = admin(
        "POST", "/_sim/qbo/" + std::string(realm) + "/customer", {{"DisplayName", "November"}});
    ASSERT_EQ(c.status, 200u) << c.body;
    const auto cid = json::parse(c.body)["Id"].get<std::string>();
    const auto i =
        admin("POST", "/_sim/qbo/" + std::string(realm) + "/invoice", invoice_body(cid, "12.34"));
    ASSERT_EQ(i.status, 200u) << i.body;
    EXPECT_NE(i.body.find("\"TotalAmt\":12.34"), std::string::npos) << i.body;
    const auto iid = json::parse(i.body)["Id"].get<std::string>();
    const auto v = admin(
        "POST", "/_sim/qbo/" + std::string(realm) + "/invoice/" + iid + "/void", json::object());
    ASSERT_EQ(v.status, 200u) << v.body;
    EXPECT_EQ(json::parse(v.body)["PrivateNote"], "Voided");
    const auto dup = admin(
        "POST", "/_sim/qbo/" + std::string(realm) + "/customer", {{"DisplayName", "november"}});
    EXPECT_EQ(dup.status, 400u);
    const auto st = http::fetch("127.0.0.1", server->port(), "GET", "/_sim/qbo/state");
    const auto sj = json::parse(st.body);
    EXPECT_EQ(sj["realms"][std::string(realm)]["Invoice"], 1);
    EXPECT_EQ(sj["pending_events"], 3);
    const auto g = admin("POST", "/_sim/qbo/grant", json::object());
    ASSERT_EQ(g.status, 200u);
    EXPECT_TRUE(
        sim->oauth().access_token_valid(json::parse(g.body)["access_token"].get<std::string>()));
}

// ---- time activities and employees
// ---------------------------------------------------------------

TEST_F(qbo_sim, time_activity_create_read_query_and_requestid_replay) {
    start();
    const auto r = std::string(realm);
    const auto emp = sim->add_employee(r,
                                       {{"GivenName", "Kim"},
                                        {"FamilyName", "Allen"},
                                        {"PrimaryEmailAddr", {{"Address", "kim@x.example"}}}});
    ASSERT_EQ(emp["DisplayName"], "Kim Allen");
    const auto eid = emp["Id"].get<std::string>();
    const auto item = sim->add_item(r, {{"Name", "Tax Preparation"}, {"UnitPrice", 150}});
    EXPECT_EQ(item["Type"], "Service");
    const auto cid = customer("Acme")["Id"].get<std::string>();
    const json body{{"NameOf", "Employee"},
                    {"EmployeeRef", {{"value", eid}}},
                    {"CustomerRef", {{"value", cid}}},
                    {"ItemRef", {{"value", item["Id"]}}},
                    {"TxnDate", "2026-03-02"},
                    {"Hours", 3},
                    {"Minutes", 30},
                    {"BillableStatus", "Billable"},
                    {"HourlyRate", json::parse("150.00")},
                    {"Description", "Return [billsync-ref:k1]"}};
    const auto target = base() + "timeactivity?minorversion=75&requestid=ta-1";
    const auto a = call("POST", target, body.dump());
    ASSERT_EQ(a.status, 200u) << a.body;
    const auto created = exact(a.body)["TimeActivity"];
    EXPECT_EQ(created["Id"], "1");
    EXPECT_EQ(amount(created["HourlyRate"]), "150");
    clock.advance(5s);
    // The same requestid: the first answer again, nothing new.
    const auto b = call("POST", target, body.dump());
    EXPECT_EQ(b.body, a.body);
    EXPECT_EQ(sim->count(r, "TimeActivity"), 1u);
    EXPECT_EQ(sim->requestid_replays(), 1u);
    EXPECT_EQ(get_json(base() + "timeactivity/1")["TimeActivity"]["Hours"], 3);
    // Query by date and by LastUpdatedTime; Employees by LastUpdatedTime, inactive ones on asking.
    const auto q = query("SELECT * FROM TimeActivity WHERE TxnDate = '2026-03-02'");
    ASSERT_EQ(q["QueryResponse"]["TimeActivity"].size(), 1u);
    EXPECT_EQ(query("SELECT * FROM TimeActivity WHERE TxnDate = '2026-03-03'")["QueryResponse"],
              json::object());
    sim->update(r, "Employee", eid, {{"Active", false}});
    EXPECT_EQ(query("SELECT * FROM Employee")["QueryResponse"], json::object());
    const auto all = query(
        "SELECT * FROM Employee WHERE MetaData.LastUpdatedTime >= '2026-03-01T00:00:00Z' AND "
        "Active IN (true, false) ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 10");
    ASSERT_EQ(all["QueryResponse"]["Employee"].size(), 1u) << all.dump();
    EXPECT_EQ(all["QueryResponse"]["Employee"][0]["Active"], false);
    EXPECT_EQ(
        query("SELECT * FROM Item WHERE Name = 'tax preparation'")["QueryResponse"]["Item"].size(),
        1u);
    // CDC does not return TimeActivity.
    const auto cdc =
        get_json(base() + "cdc?entities=TimeActivity,Customer&changedSince=2026-03-01");
    EXPECT_EQ(cdc["CDCResponse"][0]["QueryResponse"].size(), 1u) << cdc.dump();
}

TEST_F(qbo_sim, time_activity_validation_faults_in_qbos_shape) {
    start();
    const auto r = std::string(realm);
    const auto eid = sim->add_employee(r, {{"DisplayName", "Lee"}})["Id"].get<std::string>();
    const auto cid = customer("Acme")["Id"].get<std::string>();
    const json ok{{"NameOf", "Employee"},
                  {"EmployeeRef", {{"value", eid}}},
                  {"CustomerRef", {{"value", cid}}},
                  {"TxnDate", "2026-03-02"},
                  {"Hours", 1},
                  {"BillableStatus", "NotBillable"}};
    struct bad_case {
        std::string field;
        json value;
        std::string code;
    };
    const std::vector<bad_case> cases = {
        {"NameOf", nullptr, "2020"},
        {"NameOf", "Robot", "2170"},
        {"EmployeeRef", {{"value", "99"}}, "2500"},
        {"Hours", nullptr, "2020"},              // with Minutes absent too: no duration
        {"BillableStatus", "Billable", "2020"},  // no HourlyRate
        {"BillableStatus", "HasBeenBilled", "6000"},
        {"TxnDate", "2026-02-30", "2010"},
        {"Description", std::string(4001, 'x'), "2050"},
    };
    for (const auto& c : cases) {
        auto body = ok;
        if (c.value.is_null()) {
            body.erase(c.field);
        } else {
            body[c.field] = c.value;
        }
        const auto out = post("timeactivity", body);
        EXPECT_EQ(out["_status"], 400u) << c.field << " " << out.dump();
        EXPECT_EQ(fault_code(out), c.code) << c.field << " " << out.dump();
        EXPECT_EQ(out["Fault"]["type"], "ValidationFault");
    }
    EXPECT_EQ(sim->count(r, "TimeActivity"), 0u);
    EXPECT_EQ(post("timeactivity", ok)["_status"], 200u);
    // Employees cannot be deleted, only made inactive.
    EXPECT_EQ(fault_code(post("employee", {{"Id", eid}, {"SyncToken", "0"}}, "&operation=delete")),
              "6000");
}

}  // namespace
}  // namespace billsync::simulators
