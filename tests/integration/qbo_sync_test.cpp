// QuickBooks Online end to end: the real billsync binary against the QBO simulator. An invoice is
// created, partly paid, fully paid and voided; each step reaches the daemon by webhook, by CDC or
// by both, and must show up exactly once, in order, as canonical changes with the right balance
// and status. Also: backfill on first connect, a kill mid-way, forged and malformed deliveries,
// events for unknown realms and entities, and a revoked grant.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "http/client.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/store.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/crypto.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using testing::eventually;
using testing::parse_time;
using namespace std::chrono_literals;

constexpr const char* realm = "9130350000000001";
constexpr const char* verifier = "e2e-verifier-token";
constexpr const char* start_time = "2026-01-05T14:00:00Z";
// A 32-byte key, base64; tokens are sealed at rest as in production.
constexpr const char* secrets_key = "YmlsbHN5bmMtZTJlLXRlc3Qta2V5LTMyLWJ5dGVzISE=";

// Business time shared by the simulator and the daemon's simulated clock.
struct shared_clock {
    std::mutex mutex;
    util::instant now = parse_time(start_time);
    util::instant get() {
        std::lock_guard lock(mutex);
        return now;
    }
    void advance(std::chrono::seconds by) {
        std::lock_guard lock(mutex);
        now += by;
    }
};

class qbo_sync : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::qbo_sim_options o;
        o.realms = {realm};
        o.verifier_token = verifier;
        o.now = [this] { return clock_.get(); };
        o.enforce_limits = true;
        sim_ = std::make_unique<simulators::qbo_simulator>(o);
        server_ = std::make_unique<simulators::sim_server>();
        sim_->add_routes(server_->routes());
        sim_->configure(*server_);
        ASSERT_EQ(server_->start(), "");
        seed_credential();
        daemon_ = std::make_unique<testing::billsync_daemon>(
            dir_.path(), config(), std::vector<std::string>{"E2E_KEY=" + std::string(secrets_key)});
    }

    std::string config() const {
        const auto base = server_->base_url();
        return "[daemon]\n"
               "data_dir = \"data\"\n"
               "time_zone = \"UTC\"\n"
               "log_level = \"info\"\n"
               "secrets_key = \"${env:E2E_KEY}\"\n"
               "[daemon.webhook_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[daemon.status_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[daemon.clock]\n"
               "mode = \"simulated\"\n"
               "start = \"" +
               std::string(start_time) +
               "\"\n"
               "[connectors.qbo]\n"
               "kind = \"qbo\"\n"
               "base_url = \"" +
               base +
               "\"\n"
               "token_url = \"" +
               base +
               "/oauth2/token\"\n"
               "client_id = \"sim-client-id\"\n"
               "client_secret = \"sim-client-secret\"\n"
               "webhook_verifier_token = \"" +
               verifier +
               "\"\n"
               "realm_id = \"" +
               realm +
               "\"\n"
               "poll_interval_s = 300\n"
               "page_size = 2\n";
    }

    // What `billsync connect qbo` would have stored: a grant from the simulator, sealed.
    void seed_credential() {
        std::string error;
        auto key = connectors::parse_secrets_key(secrets_key, error);
        ASSERT_TRUE(key) << error;
        ASSERT_EQ(simulators::seed_qbo_grant(dir_.path() / "data", *sim_, realm, clock_.get(), key),
                  "");
    }

    std::string webhook_url() const {
        return "http://127.0.0.1:" + std::to_string(daemon_->webhook_port()) + "/webhooks/qbo";
    }

    // Moves business time for both sides; the daemon runs what became due (CDC polls).
    void advance(std::chrono::seconds by) {
        clock_.advance(by);
        ASSERT_NE(daemon_->advance(by.count()), "");
    }

    std::vector<json> changes(std::string_view type = {}) {
        auto [rc, out] = daemon_->cli({"inspect", "changes/100000"});
        std::vector<json> list;
        if (rc != 0) {
            return list;
        }
        std::size_t pos = 0;
        while (pos < out.size()) {
            auto end = out.find('\n', pos);
            if (end == std::string::npos) {
                end = out.size();
            }
            auto j = json::parse(out.substr(pos, end - pos), nullptr, false);
            pos = end + 1;
            if (j.is_discarded()) {
                continue;
            }
            if (type.empty() || j.value("type", "") == type) {
                list.push_back(std::move(j));
            }
        }
        return list;
    }

    // The canonical fields of a change record.
    static json fields(const json& change) {
        auto f = change.at("fields");
        return f.is_string() ? json::parse(f.get<std::string>()) : f;
    }

    std::vector<json> invoice_changes(const std::string& qbo_id) {
        std::vector<json> out;
        for (auto& c : changes("invoice")) {
            const auto f = fields(c);
            if (f["entity"]["source"]["id"] == qbo_id) {
                out.push_back(f);
            }
        }
        return out;
    }

    json status() {
        auto r = daemon_->status_get("/status");
        return json::parse(r.body, nullptr, false);
    }

    json qbo_status() {
        auto s = status();
        for (auto& c : s["connectors"]) {
            if (c["name"] == "qbo") {
                return c;
            }
        }
        return json();
    }

    bool in_cdc() {
        auto [rc, out] = daemon_->cli({"inspect", "cursor/qbo/sync"});
        return rc == 0 && out.find("\"cdc\"") != std::string::npos;
    }

    json customer(const std::string& name) {
        return sim_->add_customer(realm,
                                  json{{"DisplayName", name},
                                       {"PrimaryEmailAddr", {{"Address", "billing@example.com"}}}});
    }

    json invoice(const std::string& customer_id, const std::string& amount) {
        return sim_->add_invoice(realm,
                                 json{{"CustomerRef", {{"value", customer_id}}},
                                      {"DueDate", "2026-01-31"},
                                      {"Line",
                                       json::array({{{"Amount", json::parse(amount)},
                                                     {"DetailType", "SalesItemLineDetail"},
                                                     {"SalesItemLineDetail",
                                                      {{"ItemRef", {{"value", "1"}}},
                                                       {"Qty", 1},
                                                       {"UnitPrice", json::parse(amount)}}}}})}});
    }

    json pay(const std::string& customer_id,
             const std::string& invoice_id,
             const std::string& amount) {
        return sim_->add_payment(
            realm,
            json{{"CustomerRef", {{"value", customer_id}}},
                 {"TotalAmt", json::parse(amount)},
                 {"Line",
                  json::array(
                      {{{"Amount", json::parse(amount)},
                        {"LinkedTxn",
                         json::array({{{"TxnId", invoice_id}, {"TxnType", "Invoice"}}})}}})}});
    }

    void deliver(simulators::qbo_webhook_format f, bool duplicate = false, bool reverse = false) {
        simulators::qbo_deliver_options o;
        o.format = f;
        o.duplicate_each = duplicate;
        o.reverse_order = reverse;
        for (const auto status : sim_->deliver(webhook_url(), o)) {
            EXPECT_EQ(status, 200u);
        }
    }

    static std::int64_t minor(const json& money) { return money.at("minor").get<std::int64_t>(); }

    testing::temp_dir dir_;
    shared_clock clock_;
    std::unique_ptr<simulators::qbo_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(qbo_sync, backfill_then_an_invoice_lifecycle_by_webhook_cdc_and_both) {
    const auto c1 = customer("Acme Dental")["Id"].get<std::string>();
    const auto old = invoice(c1, "120.00")["Id"].get<std::string>();
    customer("Birch Law");
    customer("Cedar Farms");
    sim_->take_deliveries();  // the seed happened before billsync was connected
    ASSERT_TRUE(daemon_->start()) << daemon_->output();

    // First connect: a paged backfill (page_size 2), then CDC.
    ASSERT_TRUE(eventually([&] { return in_cdc(); })) << daemon_->output();
    EXPECT_EQ(changes("client").size(), 3u);
    auto seen = invoice_changes(old);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(minor(seen[0]["entity"]["balance"]), 12000);

    // Created: by webhook (classic).
    const auto id = invoice(c1, "500.00")["Id"].get<std::string>();
    deliver(simulators::qbo_webhook_format::classic);
    ASSERT_TRUE(eventually([&] { return invoice_changes(id).size() == 1; })) << daemon_->output();
    auto steps = invoice_changes(id);
    EXPECT_EQ(steps[0]["entity"]["status"], "open");
    EXPECT_EQ(minor(steps[0]["entity"]["balance"]), 50000);
    EXPECT_EQ(steps[0]["changes"][0]["kind"], "created");

    // Partly paid: by webhook (CloudEvents), delivered twice and out of order.
    advance(60s);
    pay(c1, id, "200.00");
    deliver(simulators::qbo_webhook_format::cloudevents, true, true);
    ASSERT_TRUE(eventually([&] { return invoice_changes(id).size() == 2; })) << daemon_->output();
    steps = invoice_changes(id);
    EXPECT_EQ(minor(steps[1]["entity"]["balance"]), 30000);
    EXPECT_EQ(steps[1]["changes"][0]["kind"], "partial_payment");

    // Fully paid: no webhook at all; the next CDC sweep finds it.
    advance(60s);
    pay(c1, id, "300.00");
    sim_->take_deliveries();  // lost on the way
    advance(301s);
    ASSERT_TRUE(eventually([&] { return invoice_changes(id).size() == 3; })) << daemon_->output();
    steps = invoice_changes(id);
    EXPECT_EQ(minor(steps[2]["entity"]["balance"]), 0);
    EXPECT_EQ(steps[2]["entity"]["status"], "paid");
    EXPECT_EQ(steps[2]["changes"][0]["kind"], "balance_to_zero");

    // Voided: webhook and CDC both report it; it counts once.
    advance(60s);
    sim_->void_invoice(realm, id);
    deliver(simulators::qbo_webhook_format::classic, true);
    advance(301s);
    ASSERT_TRUE(eventually([&] { return invoice_changes(id).size() >= 4; })) << daemon_->output();
    advance(301s);  // one more sweep: nothing new
    steps = invoice_changes(id);
    ASSERT_EQ(steps.size(), 4u);
    EXPECT_EQ(steps[3]["entity"]["status"], "void");
    EXPECT_EQ(steps[3]["changes"][0]["kind"], "voided");

    // /status shows the connector's sync state.
    const auto q = qbo_status();
    EXPECT_EQ(q["state"], "running");
    EXPECT_EQ(q["detail"]["credential"], "ok");
    EXPECT_EQ(q["detail"]["cursor"]["phase"], "cdc");
    EXPECT_TRUE(q["detail"]["last_success"].is_string());
    EXPECT_TRUE(q["detail"].contains("token_expires_at"));
    EXPECT_TRUE(q["detail"]["rate_limit"]["available"].is_array());
    EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(qbo_sync, a_kill_after_acknowledgement_loses_and_repeats_nothing) {
    const auto c1 = customer("Dogwood Co")["Id"].get<std::string>();
    sim_->take_deliveries();
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    ASSERT_TRUE(eventually([&] { return in_cdc(); })) << daemon_->output();

    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(invoice(c1, std::to_string(100 + i) + ".00")["Id"].get<std::string>());
    }
    deliver(simulators::qbo_webhook_format::cloudevents, true);
    daemon_->kill();  // acknowledged, perhaps not yet fetched or mapped
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    for (const auto& id : ids) {
        ASSERT_TRUE(eventually([&] { return invoice_changes(id).size() == 1; }))
            << "invoice " << id << "\n"
            << daemon_->output();
    }
    advance(301s);  // a CDC sweep over the same objects adds nothing
    for (const auto& id : ids) {
        EXPECT_EQ(invoice_changes(id).size(), 1u) << id;
    }
}

TEST_F(qbo_sync, forged_malformed_and_foreign_deliveries_change_nothing) {
    sim_->take_deliveries();
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    ASSERT_TRUE(eventually([&] { return in_cdc(); })) << daemon_->output();
    const auto before = changes().size();

    const std::string body =
        R"({"eventNotifications":[{"realmId":")" + std::string(realm) +
        R"(","dataChangeEvent":{"entities":[{"name":"Invoice","id":"1","operation":"Create","lastUpdated":"2026-01-05T14:00:00Z"}]}}]})";
    auto post = [&](const std::string& b, const std::string& sig) {
        return http::fetch("127.0.0.1",
                           daemon_->webhook_port(),
                           "POST",
                           "/webhooks/qbo",
                           {{"Content-Type", "application/json"}, {"intuit-signature", sig}},
                           b);
    };
    // Forged: a signature by another key, and none at all.
    EXPECT_EQ(post(body, util::base64_encode(util::hmac_sha256("wrong", body))).status, 401u);
    EXPECT_EQ(post(body, "").status, 401u);
    // Replayed: the same signed delivery twice is stored once.
    const auto sig = sim_->sign(body).signature;
    EXPECT_EQ(post(body, sig).status, 200u);
    EXPECT_EQ(post(body, sig).status, 200u);
    // Malformed but signed: acknowledged and kept as a dead letter, never retried.
    const std::string junk = "{\"eventNotifications\": [";
    EXPECT_EQ(post(junk, sim_->sign(junk).signature).status, 200u);
    // A realm not configured and an entity billsync does not map: ignored and counted.
    const std::string foreign =
        R"([{"specversion":"1.0","id":"f-1","source":"intuit.x","type":"qbo.invoice.created.v1",)"
        R"("time":"2026-01-05T14:00:00Z","intuitentityid":"7","intuitaccountid":"999","data":{}},)"
        R"({"specversion":"1.0","id":"f-2","source":"intuit.x","type":"qbo.bill.created.v1",)"
        R"("time":"2026-01-05T14:00:00Z","intuitentityid":"8","intuitaccountid":")" +
        std::string(realm) + R"(","data":{}}])";
    EXPECT_EQ(post(foreign, sim_->sign(foreign).signature).status, 200u);

    ASSERT_TRUE(eventually([&] {
        const auto d = qbo_status()["detail"]["ignored_events"];
        return d.is_object() && d["unknown_realm"] == 1 && d["unknown_entity"] == 1;
    })) << daemon_->output();
    auto [rc, out] = daemon_->cli({"deadletters", "list"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("qbo"), std::string::npos) << out;
    // Invoice 1 does not exist in the simulator: nothing to map, nothing changed.
    EXPECT_EQ(changes().size(), before);
    EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(qbo_sync, a_revoked_grant_stops_calls_keeps_events_and_says_reconnect) {
    const auto c1 = customer("Elm Partners")["Id"].get<std::string>();
    sim_->take_deliveries();
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    ASSERT_TRUE(eventually([&] { return in_cdc(); })) << daemon_->output();

    sim_->oauth().revoke_all();  // the firm disconnected the app in QuickBooks
    advance(2h);                 // the access token has ended: the next call must refresh
    const auto id = invoice(c1, "75.00")["Id"].get<std::string>();
    deliver(simulators::qbo_webhook_format::classic);

    ASSERT_TRUE(eventually([&] { return qbo_status()["state"] == "reconnect_needed"; }))
        << status().dump(2) << daemon_->output();
    EXPECT_TRUE(invoice_changes(id).empty());
    // The delivery is still in the inbox, waiting for the reconnect; the daemon keeps serving.
    const auto s = status();
    EXPECT_EQ(s["queues"]["inbox"]["by_connector"]["qbo"]["count"], 1);
    EXPECT_EQ(daemon_->status_get("/healthz").status, 200u);
    EXPECT_NE(daemon_->output().find("reconnect"), std::string::npos);
    EXPECT_EQ(daemon_->stop(), 0);
}

}  // namespace
}  // namespace billsync
