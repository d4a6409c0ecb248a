#pragma once

// A Xero Accounting API simulator, faithful to shared/vendors/xero.md:
//   - OAuth2 through the embedded oauth2_server in Xero mode (rotating single-use refresh tokens
//     with the 30-minute grace, GET /connections);
//   - /api.xro/2.0/{Contacts,Invoices,Payments,Items}[/{id}] with the bearer token and the required
//     xero-tenant-id header (missing or unknown: 403); envelopes {"Invoices": [...]} with
//     pagination; page/pageSize (100 by default), IDs=, InvoiceNumbers=, where= (one
//     Field=="value" test, joined by AND), order by UpdatedDateUTC; If-Modified-Since returns the
//     rows updated strictly after it (the stricter reading: clients must overlap);
//   - Items (ItemID, Code, Name, IsSold, SalesDetails.UnitPrice) are never paged: GET /Items
//     answers every item (after If-Modified-Since), as Xero documents; PUT /Items saves one;
//   - Contacts keep every field given, ContactNumber (the firm's client code) included; PUT
//     /Contacts creates (a Name must be unique), POST /Contacts/{id} (or POST /Contacts with a
//     ContactID) changes the fields given and queues a CONTACT UPDATE event;
//   - PUT /Invoices creates, POST /Invoices/{id} updates (Status VOIDED / DELETED),
//     POST /Invoices/{id}/Email answers 204, GET /Invoices/{id}/OnlineInvoice, PUT /Payments
//     (over the amount due: 400 "Payment amount exceeds…"); summarizeErrors=false answers 200
//     with HasErrors elements; every write honours Idempotency-Key (the same key with another
//     request: 400 "Idempotency Key: <key> is used with a different request.");
//   - limits per tenant: 60 per minute, 5,000 per day, 5 concurrent, and 10,000 per minute for
//     the app; every answer carries X-DayLimit-Remaining, X-MinLimit-Remaining and
//     X-AppMinLimit-Remaining; over a limit: 429 with Retry-After and X-Rate-Limit-Problem
//     ("minute", "day", "appminute"; "concurrent" is UNCONFIRMED);
//   - webhooks: every contact/invoice change queues a thin event; deliveries are signed with
//     x-xero-signature (base64 HMAC-SHA256, the key's literal bytes); Intent to Receive sends
//     correctly and wrongly signed empty deliveries.
//
// Money is exact (decimal text inside, JSON numbers outside). Times come from options.now.
//
// Admin routes (no auth), for billsync-sim:
//   POST /_sim/xero/{tenant}/contact|invoice|payment|item   body = fields; answers the object
//   POST /_sim/xero/deliver  {"url"} -> {"statuses": [...]}
//   POST /_sim/xero/itr      {"url"} -> {"statuses": [...]}  (correct first, then wrong)

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

struct xero_sim_options {
    double scale = 1.0;  // rate-limit windows divided by this
    std::vector<std::string> tenants = {"b2c3d4e5-0000-4000-8000-000000000001"};
    std::string webhook_key = "sim-xero-webhook-key+/base64lookalike==";
    std::function<util::instant()> now;  // empty: system clock
    oauth2_server_options oauth;         // mode is forced to xero; tenants default to ours
    bool enforce_limits = true;
    std::uint32_t minute_limit = 60;
    std::uint32_t day_limit = 5000;
    std::uint32_t app_minute_limit = 10'000;
    std::uint32_t max_concurrent = 5;
    std::string online_invoice_base = "https://in.xero.com/";
};

struct xero_delivery {
    std::string body;
    std::string signature;
};

class xero_simulator final : public simulator {
public:
    explicit xero_simulator(xero_sim_options o = {});
    ~xero_simulator() override;
    xero_simulator(const xero_simulator&) = delete;
    xero_simulator& operator=(const xero_simulator&) = delete;

    std::string_view name() const noexcept override;  // "xero"
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;  // the concurrency cap
    oauth2_server& oauth();

    // Business events, as if a user acted in Xero: each stamps UpdatedDateUTC with now(),
    // queues a webhook event (contacts and invoices) and returns the object as GET renders it,
    // or {"error": "..."} when refused.
    nlohmann::json add_contact(const std::string& tenant, nlohmann::json fields);
    // A user's edit of a contact (e.g. its ContactNumber): the fields given change.
    nlohmann::json update_contact(const std::string& tenant,
                                  const std::string& id,
                                  const nlohmann::json& fields);
    // Total/AmountDue from LineItems[].LineAmount (or Quantity * UnitAmount); Status defaults
    // to AUTHORISED here (a user approving it), Type to ACCREC.
    nlohmann::json add_invoice(const std::string& tenant, nlohmann::json fields);
    // {"Invoice": {"InvoiceID"}, "Amount", "Date"}: reduces the invoice's AmountDue (PAID at 0)
    // and queues an INVOICE UPDATE (Xero has no payment events).
    nlohmann::json add_payment(const std::string& tenant, nlohmann::json fields);
    nlohmann::json void_invoice(const std::string& tenant, const std::string& id);
    // An item saved as a user saves it (Code required; saving a known Code edits that item):
    // served by GET /Items (If-Modified-Since, never paged, as in Xero). No webhook.
    nlohmann::json save_item(const std::string& tenant, nlohmann::json fields);
    std::optional<nlohmann::json> get(const std::string& tenant,
                                      std::string_view collection,
                                      const std::string& id) const;
    std::size_t count(const std::string& tenant, std::string_view collection) const;
    // Every object of a collection as GET renders it, with when it was created (business time;
    // invoices only, else {}).
    struct listed {
        nlohmann::json object;
        util::instant created{};
    };
    std::vector<listed> list(const std::string& tenant, std::string_view collection) const;

    std::vector<xero_delivery> take_deliveries(std::size_t events_per_delivery = 10);
    xero_delivery sign(std::string body) const;
    // POSTs take_deliveries() to url (http://127.0.0.1:PORT/path); HTTP statuses (0: failed).
    std::vector<unsigned> deliver(const std::string& url, std::size_t events_per_delivery = 10);
    // Intent to Receive: `n` correctly signed empty deliveries, then `n` whose signature differs
    // in one character. Statuses and bodies in that order.
    struct itr_answer {
        unsigned status = 0;
        std::string body;
    };
    std::vector<itr_answer> intent_to_receive(const std::string& url, std::size_t n = 2);
    std::size_t pending_events() const;

    std::uint64_t idempotent_replays() const;  // writes answered from the key cache
    std::uint64_t invoices_created() const;    // through the API
    // Holds the answer to every PUT /Invoices for `hold` after the invoices are stored and the
    // Idempotency-Key answer remembered, as when the client dies or the connection is lost
    // before the answer arrives. 0 answers at once again.
    void hold_create_answers(std::chrono::milliseconds hold);
    std::uint64_t emails_sent() const;
    std::uint64_t rejections() const;  // 429s of the minute/day/app limits

private:
    net::awaitable<http::response> api(http::request req);
    net::awaitable<http::response> api_held(http::request req);
    net::awaitable<http::response> admin(http::request req);

    struct state;
    std::unique_ptr<state> st_;
    oauth2_server oauth_;
};

}  // namespace billsync::simulators
