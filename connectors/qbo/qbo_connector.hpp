#pragma once

// The QuickBooks Online connector (shared/vendors/qbo.md): webhooks verified on the raw body and
// resolved after the 200 by reading the entities they name; CDC polling with a backfill on first
// connect and a paged catch-up when CDC cannot cover the gap; actions that carry a requestid
// derived from the outbox key and update with the current SyncToken.
//
// Inbox event kinds of this connector:
//   ""          a webhook delivery (either format), resolved before mapping
//   "entities"  one page of a query ({"QueryResponse": {"Invoice": [...]}}), from polling
//   "cdc"       one CDC response, from polling
//
// Sync cursor "<name>/sync" (JSON), committed with the events it produced:
//   {"phase": "backfill" | "catchup", "step": 0..3, "after_id": 0, "done": n, "total": n,
//    "started_at": t, "since": t}   paged queries, Customer, Invoice, Payment, then Item
//   {"phase": "cdc", "since": t, "items": true}   CDC from `since` on
// A CDC cursor without "items" was written before items were read: the next poll first reads
// every Item (a backfill of that step alone), then CDC goes on from the same `since`.
// Time cursor "<name>/time" (JSON), committed likewise: {"Employee": t, "TimeActivity": t}, the
// newest MetaData.LastUpdatedTime read of each. In the CDC phase every poll first queries
// employees and time activities from there (CDC does not return TimeActivity); their pages are
// "entities" events. The draft-time workflow's time_entry.create becomes a TimeActivity
// (mappings/qbo/qbo_time_activity.hpp).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/settings.hpp"
#include "connectors/runtime/timing.hpp"
#include "mappings/qbo/qbo_mapping.hpp"

namespace spdlog {
class logger;
}
namespace billsync::util {
class metrics_registry;
class counter;
}  // namespace billsync::util

namespace billsync::connectors::qbo {

struct settings {
    std::string name = "qbo";
    std::string base_url = "https://quickbooks.api.intuit.com";
    std::string realm_id;
    std::string verifier_token;
    std::string minor_version = "75";
    oauth2::client_identity client;
    // The scopes the connector needs (the section's `scope`, else the kind's): a stored grant
    // lacking some of them is reported as reconsent_needed in /status.
    std::string required_scope;
    std::string home_currency = "USD";
    std::chrono::seconds poll_interval{300};   // CDC sweep between webhooks
    std::chrono::seconds cdc_overlap{120};     // each sweep starts this long before the last one
    std::chrono::hours cdc_lookback{24 * 30};  // CDC reaches back at most this far
    std::size_t cdc_cap = 1000;               // objects per CDC answer; reaching it means truncated
    std::size_t page_size = 1000;             // MAXRESULTS of backfill and catch-up queries
    std::size_t ids_per_query = 30;           // Id IN (...) batch when resolving webhooks
    std::chrono::days backfill_payments{90};  // how far back the first sync reads payments
    // Poll employees and time activities (the firm keeps its time in QBO): `sync_time`, which
    // defaults to true for the connector [sources] time_entries names.
    bool sync_time = false;
    // Read Items too (backfill step, CDC, webhooks): `sync_items`, off unless set.
    bool sync_items = false;
};

// From a checked [connectors.<name>] section of kind "qbo".
settings from(const connector_settings& s);

using runtime = runtime_deps;

// The requestid sent with a write: at most 50 characters, a pure function of the outbox key and
// of what makes the request distinct (e.g. the SyncToken it was built on), so the identical
// request replays and any other request is new.
std::string request_id(std::string_view action_id, std::string_view variant = {});

// The sync cursor.
struct sync_cursor {
    enum class phase : std::uint8_t { backfill, catchup, cdc };
    phase ph = phase::backfill;
    std::uint32_t step = 0;      // backfill/catchup: 0 Customer, 1 Invoice, 2 Payment, 3 Item
    std::uint64_t after_id = 0;  // keyset: the next page holds Ids above this (0: from the start)
    std::uint64_t done = 0;      // rows read so far in this phase
    std::uint64_t total = 0;     // rows expected (COUNT(*) at the start of each step)
    util::instant started_at{};  // when the phase began
    util::instant since{};       // cdc: changedSince; catchup: LastUpdatedTime lower bound
    bool items_read = true;      // cdc: false for a cursor from before items were read

    std::string encode() const;
    static std::optional<sync_cursor> decode(std::string_view text);
};

// The query a backfill or catch-up step runs (without STARTPOSITION/MAXRESULTS).
std::string step_query(const sync_cursor& c, util::instant now, std::chrono::days payments_back);
// One page of that step, ordered by Id from c.after_id on (a keyset, not STARTPOSITION, so rows
// that leave the set while it is read, e.g. invoices paid meanwhile, cannot make it skip any).
std::string page_query(const sync_cursor& c,
                       util::instant now,
                       std::chrono::days payments_back,
                       std::size_t page_size);

class qbo_connector final : public connector {
public:
    qbo_connector(settings s, runtime rt);
    ~qbo_connector() override;

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "qbo"; }

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
    // Intuit: 10 concurrent requests per realm.
    std::size_t max_concurrency() const noexcept override { return 10; }
    // send and void of one invoice: one at a time (each carries the invoice's SyncToken).
    std::string serial_key(const state::action& a) const override;
    std::string status_json() const override;
    void reload_credentials() override;

    oauth2::token_manager& tokens() noexcept;
    std::string cursor_key() const;

    // The outcome of one API call, classified.
    struct api_result {
        unsigned status = 0;
        std::string body;
        std::optional<call_error> error;
        std::optional<mappings::qbo::fault_kind> fault;
        std::string fault_code;
        bool ok() const noexcept { return !error; }
    };

private:
    struct impl;
    settings settings_;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::connectors::qbo
