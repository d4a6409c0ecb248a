#pragma once

// The Karbon connector (shared/vendors/karbon.md): signed, thin webhooks resolved by reading the
// record they name (a 404 confirms a delete, a burst costs one read per key); a polling safety
// net over open work items and recently changed contacts and organizations, with a backfill on
// first connect; webhook subscriptions owned and reconciled by billsync; configured stage names
// checked against the tenant's settings; invoices (an Invoice delivery) read as read-only facts;
// and one action, task.create (a work item whose title
// carries billsync's key, looked up before any resend since Karbon has no idempotency key).
//
// Inbox event kinds of this connector:
//   ""      a webhook delivery, resolved before mapping into {"resolved": [...]}
//   "page"  one list page from polling: {"type": "Work"|"Contact"|"Organization", "value": [...]}
//   "invoice_keys"  invoices the sweep found changed and not yet read: {"keys": [...]}, resolved
//           (one single GET each) into {"resolved": [...]} like a delivery
//
// Sync cursor "<name>/sync" (JSON), committed with the page it produced:
//   {"phase": "backfill"|"sweep", "step": 0..5, "next": "/v3/...", "done": n, "total": n,
//    "started_at": t, "since": t}
// Steps: work items whose PrimaryStatus is Planned, Ready To Start, In Progress, Waiting; then
// Contacts and Organizations by LastModifiedDateTime desc (a sweep stops at `since`); sweeps only:
// completed work items, then invoices by UpdatedAt desc (stopping at `since`).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::connectors::karbon {

struct settings {
    std::string name = "karbon";
    std::string base_url = "https://api.karbonhq.com";
    std::string bearer_token;
    std::string access_key;
    std::string signing_key;
    std::string public_url;  // webhooks go to public_url + /webhooks/<name>
    std::string time_zone = "UTC";
    std::vector<std::string> webhook_types = {"Work", "Contact"};
    std::chrono::seconds replay_window{86'400};    // an older body TimeStamp is a replay
    std::chrono::seconds poll_interval{3'600};     // safety-net sweep
    std::chrono::seconds subscription_check{300};  // webhook subscription reconcile
    std::chrono::seconds sweep_overlap{300};       // contacts: re-read this much before `since`
    std::size_t page_size = 100;                   // $top (Karbon caps lists at 100)
    std::uint32_t poll_reserve = 30;  // requests per minute the sweep leaves to webhook reads
    std::vector<std::string> stages;  // secondary statuses the firm's rules name
    // Whether this connector is the [sources] invoices owner (daemon/app_config.cpp sets it):
    // only then do its invoices and their payments reach the workflows as changes; otherwise
    // they are stored as read-only facts and start nothing.
    bool invoices_source = false;
    // task.create defaults (a payload may override each).
    std::string task_assignee_email;
    std::string task_work_type;
    std::int64_t task_due_days = 3;
};

// From a checked [connectors.<name>] section of kind "karbon".
settings from(const connector_settings& s);

// The title a task.create action gives its work item: the payload's title plus billsync's key,
// "Account hold: Acme [bs:1a2b3c4d5e6f]", a pure function of the action id.
std::string keyed_title(std::string_view title, std::string_view action_id);

// The sync cursor.
struct sync_cursor {
    enum class phase : std::uint8_t { backfill, sweep };
    phase ph = phase::backfill;
    std::uint32_t step = 0;  // 0..3 work items by primary status, 4 contacts, 5 organizations,
                             // 6 completed work items, 7 invoices
    std::string next;        // the next page's path and query; empty: the step's first page
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    util::instant started_at{};
    util::instant since{};  // sweep: contacts changed before this were read already

    std::string encode() const;
    static std::optional<sync_cursor> decode(std::string_view text);
};

// Open work items (one step per open status), contacts, organizations, then (sweeps only)
// completed work items and, when `Invoice` is among the webhook types, invoices changed since the
// last sweep.
inline constexpr std::uint32_t sync_steps = 8;

// The first page of a step: path and query.
std::string first_page(std::uint32_t step, std::size_t page_size);

class karbon_connector final : public connector {
public:
    karbon_connector(settings s, runtime_deps rt);
    ~karbon_connector() override;

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "karbon"; }

    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;
    net::awaitable<resolve_outcome> resolve(const state::inbox_event& e) override;
    std::optional<util::instant> next_poll() const override;
    net::awaitable<poll_outcome> poll(const state::store& s) override;
    std::size_t max_concurrency() const noexcept override { return 2; }
    std::string status_json() const override;

    std::string cursor_key() const;
    // Runs the webhook subscription reconcile (and the tenant-settings check) now; poll() does it
    // when it is due.
    net::awaitable<void> check_subscriptions();

private:
    struct impl;
    settings settings_;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::connectors::karbon
