#pragma once

// A QuickBooks Online Accounting API simulator, faithful to shared/vendors/qbo.md: an embedded
// OAuth2 server in QBO mode, Customer/Invoice/Payment and Employee/Item/TimeActivity under
// /v3/company/{realmId}/... (CDC does not return TimeActivity, as in QBO), SyncToken
// concurrency, requestid replay, the query language, CDC with its look-back and cap, QBO's
// throttling, and signed webhook deliveries in both payload formats.
//
// Money is integer minor units inside; bodies are parsed with mappings::parse_exact so no
// amount ever passes through a double, and amounts are rendered as JSON numbers. Times are
// rendered in the company's zone, fixed at UTC-08:00, with milliseconds (clients must honour the
// offset); webhook lastUpdated is UTC. Ids count per entity type from 1, so a Customer and an
// Invoice share ids, as in QBO.
//
// Business events (add_customer, ...) act as a user in QBO's UI would. Every change, through the
// API or not, queues a webhook event; take_deliveries()/deliver() drain the queue.
//
// Admin routes (no auth), for billsync-sim and `billsync sandbox`:
//   POST /_sim/qbo/{realm}/customer|invoice|payment|employee|item|timeactivity   body = fields;
//                                                     answers the entity
//   POST /_sim/qbo/{realm}/invoice/{id}/void
//   POST /_sim/qbo/deliver   {"url", "format": "classic"|"cloudevents", "duplicate_each",
//                             "reverse_order", "events_per_delivery"} -> {"statuses": [...]}
//   POST /_sim/qbo/grant     a fresh token pair (seeds a stored credential) and the realm
//   GET  /_sim/qbo/state     counts per realm and entity, pending events

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/oauth2_server.hpp"
#include "sim/sim_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

struct qbo_sim_options {
    double scale = 1.0;  // rate-limit windows divided by this
    std::vector<std::string> realms = {"9130350000000001"};
    std::string verifier_token = "sim-verifier-token";
    std::function<util::instant()>
        now;  // empty: system clock. Drives MetaData times, CDC look-back, token expiry.
    oauth2_server_options oauth;  // mode is forced to qbo; its `now` defaults to ours
    bool enforce_limits = true;   // 500/min and 10 concurrent per realm (scaled)
    std::size_t cdc_cap = 1000;   // objects per CDC response
    std::chrono::hours cdc_lookback{24 * 30};
};

enum class qbo_webhook_format : std::uint8_t { classic, cloudevents };

struct qbo_delivery {
    std::string body;
    std::string signature;  // base64(HMAC-SHA256(verifier_token, body))
};

struct qbo_deliver_options {
    qbo_webhook_format format = qbo_webhook_format::classic;
    std::size_t events_per_delivery = 10;
    bool duplicate_each = false;  // send every delivery twice
    bool reverse_order = false;   // deliver in reverse order (out-of-order)
};

class qbo_simulator final : public simulator {
public:
    explicit qbo_simulator(qbo_sim_options o = {});
    ~qbo_simulator() override;
    qbo_simulator(const qbo_simulator&) = delete;
    qbo_simulator& operator=(const qbo_simulator&) = delete;

    std::string_view name() const noexcept override;  // "qbo"
    // OAuth2 routes (the embedded oauth2_server) + /v3/company/... + /_sim/...
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;  // rate limits
    oauth2_server& oauth();

    // Business events, as if a user acted in QBO's UI: each assigns Id (on create), bumps
    // SyncToken, sets MetaData times to now(), queues a webhook event, and returns the entity
    // object as GET renders it. A rejected change returns the Fault body ({"Fault": {...}}).
    nlohmann::json add_customer(const std::string& realm, nlohmann::json fields);
    // TotalAmt/Balance from Line[].Amount.
    nlohmann::json add_invoice(const std::string& realm, nlohmann::json fields);
    // Applies Line[].LinkedTxn (TxnType Invoice) to invoice balances; every touched invoice gets
    // SyncToken++ and an Update event.
    nlohmann::json add_payment(const std::string& realm, nlohmann::json fields);
    // Employee (DisplayName from GivenName/FamilyName when absent, Active default true), Item
    // (Name required, Type default "Service", UnitPrice) and TimeActivity (validated as over
    // the API, except that HasBeenBilled may be set, as when an invoice links the activity).
    nlohmann::json add_employee(const std::string& realm, nlohmann::json fields);
    nlohmann::json add_item(const std::string& realm, nlohmann::json fields);
    nlohmann::json add_time_activity(const std::string& realm, nlohmann::json fields);
    // Amounts zero, Balance 0, PrivateNote prefixed "Voided", event Void.
    nlohmann::json void_invoice(const std::string& realm, const std::string& id);
    // A sparse update with the current SyncToken; entity "Invoice" or "invoice".
    nlohmann::json update(const std::string& realm,
                          const std::string& entity,
                          const std::string& id,
                          nlohmann::json sparse_fields);
    // Invoices and payments only (customers cannot be deleted): CDC "Deleted", event Delete.
    void delete_entity(const std::string& realm, const std::string& entity, const std::string& id);
    std::optional<nlohmann::json> get(const std::string& realm,
                                      const std::string& entity,
                                      const std::string& id) const;
    std::size_t count(const std::string& realm, const std::string& entity) const;

    // Webhooks: events queued by every change (API writes too), drained into signed deliveries.
    std::vector<qbo_delivery> take_deliveries(const qbo_deliver_options& o = {});
    qbo_delivery sign(std::string body) const;
    // POSTs take_deliveries(o) to url (plain http://127.0.0.1:PORT/path) with header
    // intuit-signature and Content-Type application/json; HTTP statuses (0 = transport failure).
    std::vector<unsigned> deliver(const std::string& url, const qbo_deliver_options& o = {});
    std::size_t pending_events() const;
    std::uint64_t requestid_replays() const;  // requests answered from the requestid cache
    std::uint64_t creates() const;            // entities created through the API
    // Holds the answer to every invoice or time activity create (POST .../invoice,
    // .../timeactivity) for `hold` after the entity
    // is stored and its requestid answer cached, as when the client dies or the connection is
    // lost before the answer arrives. 0 answers at once again.
    void hold_create_answers(std::chrono::milliseconds hold);

private:
    net::awaitable<http::response> company(http::request req);
    net::awaitable<http::response> company_held(http::request req);
    net::awaitable<http::response> admin(http::request req);

    struct state;
    std::unique_ptr<state> st_;
    oauth2_server oauth_;
};

// Shared with qbo-limits: the realm of /v3/company/<realm>/..., and QBO's throttle (500 per
// minute and 10 concurrent per realm, windows divided by scale; 429 ThrottleExceeded 003001
// without Retry-After). `time_text` renders the fault's "time" (empty: a fixed value).
std::string qbo_realm_of(const http::request& req);
rate_limit_rule qbo_throttle_rule(double scale, std::function<std::string()> time_text = {});

}  // namespace billsync::simulators
