#pragma once

// The Xero connector (shared/vendors/xero.md): webhooks verified on the raw body (Intent to
// Receive answered with bare 200/401) and resolved after the 200 by batch reads (IDs=); polling
// of Contacts, Invoices, Payments and Items with If-Modified-Since (Xero sends no payment or item
// events);
// actions that carry an Idempotency-Key derived from the outbox key and are reconciled by
// looking the invoice up before any resend. Every call carries xero-tenant-id.
//
// Inbox event kinds of this connector:
//   ""          a webhook delivery; resolve() turns it into {"resolved": true, "Contacts": […],
//               "Invoices": […]} before mapping (refresh() answers the same shape)
//   "page"      one page of a poll: {"Contacts"|"Invoices"|"Payments"|"Items": […]}, whole
//               objects
//
// Sync cursor "<name>/sync" (JSON), committed with the page it produced:
//   {"phase": "backfill" | "incremental", "step": 0..3 (Contacts, Invoices, Payments, Items),
//    "since": [t|null, t|null, t|null, t|null], "page": n, "done": n, "total": n,
//    "started_at": t}
// A cursor written before items were read (three `since`) reads every item on its next pass.
// Items are never paged (Xero answers them all at once): their step is one request.
// Paging is a keyset on UpdatedDateUTC: each request asks for page `page` of the rows modified
// since `since[step]` ordered by UpdatedDateUTC; a full page moves `since` to its newest row
// (page 1 again), or to page + 1 when every row shares the current second. If-Modified-Since
// has whole seconds, so rows stamped in the cursor's own second are read again (the overlap);
// the shared apply step drops the identical copies.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::connectors::xero {

struct settings {
    std::string name = "xero";
    std::string base_url = "https://api.xero.com";  // the API lives under /api.xro/2.0
    std::string tenant_id;
    std::string webhook_key;
    oauth2::client_identity client;
    // The scopes the connector needs (the section's `scope`, else the kind's): a stored grant
    // lacking some of them is reported as reconsent_needed in /status.
    std::string required_scope;
    std::string home_currency = "USD";
    std::chrono::seconds poll_interval{300};
    std::size_t page_size = 100;       // pageSize of polled pages (the documented page)
    std::size_t ids_per_read = 50;     // IDs= batch when resolving webhooks
    std::uint32_t poll_reserve = 500;  // daily calls kept for actions: below it, polling waits
    bool sync_items = false;           // poll Items too (`sync_items`)
};

// From a checked [connectors.<name>] section of kind "xero".
settings from(const connector_settings& s);

// The Idempotency-Key of a write: at most 128 characters, a pure function of the outbox key and
// of what makes the request distinct, so the identical request replays and any other is new.
std::string idempotency_key(std::string_view action_id, std::string_view variant = {});
// The Reference a created invoice carries when its payload names none, to find it again.
std::string reference_for(std::string_view action_id);

struct sync_cursor {
    enum class phase : std::uint8_t { backfill, incremental };
    phase ph = phase::backfill;
    std::uint32_t step = 0;
    std::array<std::optional<util::instant>, 4> since{};
    std::uint32_t page = 1;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    util::instant started_at{};

    std::string encode() const;
    static std::optional<sync_cursor> decode(std::string_view text);
};

class xero_connector final : public connector {
public:
    xero_connector(settings s, runtime_deps rt);
    ~xero_connector() override;

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "xero"; }
    bool bare_webhook_answers() const noexcept override { return true; }

    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;
    net::awaitable<resolve_outcome> resolve(const state::inbox_event& e) override;
    net::awaitable<resolve_outcome> refresh(std::string entity_type,
                                            mappings::source_ref ref) override;
    std::optional<util::instant> next_poll() const override;
    net::awaitable<poll_outcome> poll(const state::store& s) override;
    // Xero: 5 concurrent calls per tenant.
    std::size_t max_concurrency() const noexcept override { return 5; }
    std::string serial_key(const state::action& a) const override;
    std::string status_json() const override;
    void reload_credentials() override;

    oauth2::token_manager& tokens() noexcept;
    std::string cursor_key() const;

private:
    struct impl;
    settings settings_;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::connectors::xero
