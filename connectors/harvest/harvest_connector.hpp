#pragma once

// The Harvest connector (shared/vendors/harvest.md). Harvest has no webhooks: billsync polls
// clients, users, projects, tasks and time entries with `updated_since`, following `links.next`
// to the end. Each pass starts `overlap` before the newest `updated_at` seen (rows share
// timestamps) and drops rows already seen with the same id and `updated_at`. The first pass is
// the backfill (progress in /status). Every call carries the access token, the Harvest-Account-Id
// and the User-Agent "billsync (<contact>)" as headers, never in the URL, and goes through the
// shared limiter (100 requests per 15 s).
//
// The access token is a Personal Access Token (`access_token`), or an OAuth2 grant stored by
// `billsync connect` as credential "harvest/<account_id>": the token manager refreshes it
// `refresh_margin` before it ends (Harvest's lifetime is unconfirmed, so early), persisting a
// rotated refresh token before the new access token is used. A 401 refreshes once and tries
// again; a second 401, with the fresh token, marks the credential reconnect_needed (as an
// invalid_grant does): polling pauses, actions wait, and /status names `billsync connect`.
//
// Inbox event kind "page": {"resource": "time_entries", "rows": [...], "deleted": [id, …]?}
// ("deleted" only from a re-read that found the entry gone: Harvest keeps no tombstones).
// Sync cursor "<name>/sync" (JSON), committed with the events it produced:
//   {"phase": "backfill" | "incremental", "step": i, "next": url, "started_at": t,
//    "resources": {"<r>": {"since": t, "pass_max": t, "seen": ["id@t", …], "done": n,
//                          "total": n}}}
//
// Actions (no idempotency key exists at Harvest):
//   time_entry.create  {"key", "group_id", "permalink", "client_ref", "user_ref", "project",
//                       "task", "spent_date", "hours", "notes", "billable"}: looks the key up
//                       with external_reference_id first and adopts an existing entry; project
//                       and task are ids or names (a name is looked up among the client's
//                       projects and the project's task assignments)
//   time_entry.update  {"id", "updated_at"?, "hours"?, "notes"?, "spent_date"?}
//   time_entry.delete  {"id", "updated_at"?}
// Locked, closed or billed entries, and entries changed since `updated_at`, are never edited:
// the action ends permanently with the reason.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/errors.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::connectors::harvest {

struct settings {
    std::string name = "harvest";
    std::string base_url = "https://api.harvestapp.com/v2";
    std::string account_id;
    std::string access_token;  // a Personal Access Token; empty with OAuth2
    // OAuth2 (no access_token): the client, and the scopes asked for ("" : not checked).
    bool use_oauth2 = false;
    oauth2::client_identity client;
    std::string required_scope;
    std::chrono::seconds refresh_margin{900};
    std::string contact;  // User-Agent: "billsync (<contact>)"
    std::string currency = "USD";
    std::chrono::seconds poll_interval{300};
    std::chrono::seconds overlap{60};
    std::uint32_t per_page = 2000;

    std::string user_agent() const { return "billsync (" + contact + ")"; }
};

settings from(const connector_settings& s);

// The resources polled, in the order they are applied.
const std::vector<std::string>& polled_resources();

struct resource_cursor {
    std::string since;           // newest updated_at of the last complete pass; empty: never
    std::string pass_max;        // newest updated_at of the pass under way
    std::set<std::string> seen;  // "id@updated_at" of rows within `overlap` of the newest
    std::uint64_t done = 0;
    std::uint64_t total = 0;
};

struct sync_cursor {
    bool backfill = true;
    std::uint32_t step = 0;  // index into polled_resources()
    std::string next;        // links.next of the page under way; empty: the first page
    std::string started_at;
    std::vector<resource_cursor> resources = std::vector<resource_cursor>(5);

    std::string encode() const;
    static std::optional<sync_cursor> decode(std::string_view text);
};

class harvest_connector final : public connector {
public:
    harvest_connector(settings s, runtime_deps rt);
    ~harvest_connector() override;

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "harvest"; }

    // No webhooks: nothing is ever accepted on /webhooks/<name>.
    bool accepts_route_kind(std::string_view) const noexcept override { return false; }
    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;
    // Re-reads one time entry by id (GET /v2/time_entries/{id}) as a "page" event; a 404 while
    // the account answers (GET /v2/company) is the entry deleted: {"deleted": [id]}.
    net::awaitable<resolve_outcome> refresh(std::string entity_type,
                                            mappings::source_ref ref) override;
    std::string refresh_kind() const override { return "page"; }
    std::optional<util::instant> next_poll() const override;
    net::awaitable<poll_outcome> poll(const state::store& s) override;
    std::size_t max_concurrency() const noexcept override { return 4; }
    std::string serial_key(const state::action& a) const override;
    std::string status_json() const override;
    void reload_credentials() override;

    // The OAuth2 token manager; nullptr with a Personal Access Token.
    oauth2::token_manager* tokens() noexcept;

    std::string cursor_key() const { return settings_.name + "/sync"; }

    struct api_result {
        unsigned status = 0;
        std::string body;
        std::optional<call_error> error;
        bool ok() const noexcept { return !error; }
    };

private:
    struct impl;
    settings settings_;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::connectors::harvest
