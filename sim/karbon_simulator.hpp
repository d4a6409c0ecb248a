#pragma once

// A Karbon API v3 simulator (shared/vendors/karbon.md).
//
// Every /v3/ call needs both `Authorization: Bearer {token}` and `AccessKey: {key}` (else 401);
// at most 120 requests per minute per AccessKey (windows divided by `scale`), refused with 429,
// Retry-After and {"statusCode": "429", "message": "Rate limit is exceeded. Try again in N
// seconds."}. Unknown records answer 404 {"statusCode": "404", "message": "Resource not found"}.
//
//   GET  /v3/WorkItems            OData list: $filter (PrimaryStatus eq '…' in the spaced form
//                                 only, Title eq '…', ClientKey eq '…'), $orderby StartDate,
//                                 $top (at most 100), $skip, @odata.count, @odata.nextLink;
//                                 PrimaryStatus spaced
//   GET  /v3/WorkItems/{key}      one record, PrimaryStatus unspaced
//   POST /v3/WorkItems            create (AssigneeEmailAddress, Title, ClientKey, ClientType,
//                                 StartDate required); 201, PrimaryStatus unspaced
//   GET  /v3/Contacts[/{key}], /v3/Organizations[/{key}]
//                                 lists ordered by LastModifiedDateTime (desc with " desc");
//                                 every record carries UserDefinedIdentifier (the firm's client
//                                 code; null when not set)
//   POST /v3/Contacts, /v3/Organizations
//                                 create (FullName required); 201 with the new key
//   PATCH|PUT /v3/Contacts/{key}, /v3/Organizations/{key}
//                                 PATCH changes the fields given, PUT replaces the record; both
//                                 stamp LastModifiedDateTime
//   GET  /v3/Invoices             OData list: $filter InvoiceStatus eq '…' only, $orderby
//                                 InvoiceDate, CreatedAt, UpdatedAt or InvoiceNumber; rows
//                                 without LineItems, Payments, Data and the links
//   GET  /v3/Invoices/{key}       one invoice: LineItems[{…, UnitPrice as a string, Amount}],
//                                 Payments[{PaymentKey, PaymentReference, PaymentType,
//                                 PaymentDate, Amount}], amounts as JSON numbers; 404 once removed
//                                 (any write to invoices or payments is counted, and refused)
//   GET  /v3/TenantSettings       WorkStatuses[{WorkStatusKey, PrimaryStatusName,
//                                 SecondaryStatusName, WorkTypeKeys}], WorkTypes[…]
//   POST /v3/WebhookSubscriptions {TargetUrl, WebhookType, SigningKey?}: 201; one per type
//   GET/DELETE /v3/WebhookSubscriptions/{type}; DELETE /v3/WebhookSubscriptions (all)
//
// Deliveries: notify() POSTs the thin payload, signed with the subscription's SigningKey
// (hex HMAC-SHA256 of the body, an implementation of its own), to the subscription's TargetUrl
// with its scheme and host replaced by delivery_base. After 10 consecutive failed deliveries the
// subscription is cancelled (GET then answers 404).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sim/sim_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

struct karbon_options {
    std::string bearer_token = "8b0c6a6e-6c55-4e5b-9d7b-1d2f3a4b5c6d";
    std::string access_key = "eyJhbGciOiJIUzI1NiJ9.c2ltLWthcmJvbg.sim-access-key";
    double scale = 1.0;                  // rate-limit windows are divided by this
    bool enforce_limits = true;          // false: no rate limit (a harness on simulated time)
    std::function<util::instant()> now;  // empty: the system clock
    // Where deliveries go instead of the TargetUrl's scheme and host (billsync's public URL);
    // empty: to the TargetUrl as given.
    std::string delivery_base;
    std::vector<std::string> secondary_statuses = {"Return Filed", "Delivered", "Awaiting Client"};
};

class karbon_simulator final : public simulator {
public:
    explicit karbon_simulator(karbon_options o = {});

    std::string_view name() const noexcept override { return "karbon"; }
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;

    const karbon_options& options() const noexcept { return options_; }
    void set_delivery_base(std::string base);

    // Records (fields as the sheet names them; keys are made up when absent). Each returns the
    // record as a single GET would show it.
    nlohmann::json add_work_item(nlohmann::json fields);
    nlohmann::json update_work_item(const std::string& key, const nlohmann::json& fields);
    nlohmann::json add_contact(nlohmann::json fields);
    nlohmann::json add_organization(nlohmann::json fields);
    // A user's edit in Karbon (e.g. a new UserDefinedIdentifier): the fields given change,
    // LastModifiedDateTime is stamped; null when there is no such record.
    nlohmann::json update_contact(const std::string& key, const nlohmann::json& fields);
    nlohmann::json update_organization(const std::string& key, const nlohmann::json& fields);
    // Invoices: a numeric UnitPrice is stored as its string; UpdatedAt is stamped by update.
    nlohmann::json add_invoice(nlohmann::json fields);
    nlohmann::json update_invoice(const std::string& key, const nlohmann::json& fields);
    // Requests that tried to write an invoice or a payment (POST/PUT/PATCH/DELETE).
    std::size_t writes_to_invoices() const;
    bool remove(const std::string& key);  // any record
    std::size_t work_item_count() const;
    std::vector<nlohmann::json> work_items() const;

    // Subscriptions by WebhookType ({TargetUrl, WebhookType, SigningKey}).
    std::map<std::string, nlohmann::json> subscriptions() const;
    void set_subscription(const std::string& type,
                          const std::string& target_url,
                          const std::string& signing_key);

    // Sends one signed delivery for `key` under the subscription of `webhook_type` (e.g. "Work"
    // for ResourceType "Work"). Returns the HTTP status received (0: no answer; 404 when there is
    // no subscription, nothing sent). A failure counts towards the 10 that cancel it.
    unsigned notify(const std::string& webhook_type,
                    const std::string& resource_type,
                    const std::string& key,
                    const std::string& action);
    // The body notify() would send, and its signature, for tests that post it themselves.
    std::string payload(const std::string& resource_type,
                        const std::string& key,
                        const std::string& action) const;
    static std::string sign(const std::string& signing_key, const std::string& body);

    // A created work item exists at once but its 201 is held this long (0: answered at once):
    // the client's outcome is lost in flight, as when a process dies mid-request.
    void hold_create_answers(std::chrono::milliseconds hold);
    std::size_t creates_received() const;

private:
    net::awaitable<http::response> handle(http::request req);
    http::response route(const http::request& req);
    http::response list(const http::request& req, const std::string& resource);
    util::instant now() const;
    std::string next_key(std::string_view prefix);
    std::string stamp() const;
    // Contacts and organizations ("Contacts", "Organizations"), with mutex_ held.
    nlohmann::json add_client_locked(const std::string& resource, nlohmann::json fields);
    nlohmann::json update_client_locked(const std::string& resource,
                                        const std::string& key,
                                        const nlohmann::json& fields,
                                        bool replace);

    karbon_options options_;
    mutable std::mutex mutex_;
    // Records in insertion order per resource ("WorkItems", "Contacts", "Organizations").
    std::map<std::string, std::vector<nlohmann::json>> records_;
    std::map<std::string, nlohmann::json> subscriptions_;
    std::map<std::string, std::uint32_t> failures_;
    std::uint64_t counter_ = 0;
    std::chrono::milliseconds create_hold_{0};
    std::size_t creates_ = 0;
    std::size_t invoice_writes_ = 0;
};

}  // namespace billsync::simulators
