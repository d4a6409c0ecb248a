#pragma once

// A Harvest API v2 simulator (shared/vendors/harvest.md).
//
// Every /v2/ call needs `Authorization: Bearer <token>` (the Personal Access Token, or an OAuth2
// access token this simulator issued and has not expired or revoked; else 401 with an
// OAuth-style error body), `Harvest-Account-Id: <account>` (else 404) and a `User-Agent` naming
// an app and a contact, "App (contact)" (else 400). 100 requests per 15 s per account; over it:
// 429 with Retry-After (seconds) and {"message": …}.
//
// Harvest ID (id.getharvest.com) on the same server, OAuth2 authorization code flow:
//   GET  /oauth2/authorize          client_id, response_type=code, redirect_uri, state:
//                                   auto-approves, 302 to redirect_uri with code and state
//   POST /api/v2/oauth2/token       authorization_code and refresh_token grants; the client
//                                   authenticates with HTTP Basic or client_id + client_secret in
//                                   the form; answers {"access_token", "refresh_token",
//                                   "token_type": "bearer", "expires_in": 64799}; every refresh
//                                   rotates the refresh token and the old one is refused at once
//                                   (Harvest's rules are unconfirmed: the strict reading). Errors
//                                   in the OAuth shape {"error", "error_description"}: 400
//                                   invalid_grant (unknown, used, expired or revoked), 401
//                                   invalid_client, 400 unsupported_grant_type
//   GET  /api/v2/accounts           for a bearer token: {"user": {…}, "accounts": [{"id",
//                                   "name", "product"}]} (Harvest and Forecast accounts)
//
//   GET    /v2/company, /v2/users/me
//   GET    /v2/clients | projects | tasks | users | task_assignments | time_entries
//          filters updated_since (and is_active; time_entries: external_reference_id, user_id,
//          client_id, project_id); cursor paging: links.next is an absolute URL
//          "…?cursor=…&per_page=N&ref=next_cursor" carrying the filters, null on the last page;
//          `page`/`next_page` are null except on the first and last pages; per_page above the
//          maximum (2000) gives 422. Time entries are ordered by spent_date (newest first),
//          everything else by id.
//   GET    /v2/projects/{id}/task_assignments
//   GET    /v2/time_entries/{id}
//   POST   /v2/time_entries            project_id, task_id, spent_date required; the task must be
//                                      assigned to the project (422); no hours: a running timer
//   PATCH  /v2/time_entries/{id}       refused (403) for locked, closed or billed entries
//   DELETE /v2/time_entries/{id}       refused (403) for closed or billed entries
// Error bodies: {"message": "…"} (the shape is UNCONFIRMED at Harvest).
//
// Timestamps have whole seconds, so rows written in the same second share `updated_at`.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sim/sim_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

// An account a Harvest ID user reaches ("harvest" or "forecast").
struct harvest_account {
    std::int64_t id = 0;
    std::string name;
    std::string product = "harvest";
};

struct harvest_options {
    std::string account_id = "123456";
    std::string access_token = "sim-harvest-token";  // the Personal Access Token
    // OAuth2 at Harvest ID.
    std::string client_id = "sim-harvest-client";
    std::string client_secret = "sim-harvest-secret";
    std::chrono::seconds oauth_access_lifetime{64799};  // v1-era docs: 18 hours
    std::chrono::seconds code_lifetime{600};
    // What /api/v2/accounts lists; empty: the one Harvest account `account_id`, "Sim CPA".
    std::vector<harvest_account> accounts;
    std::int64_t token_user_id = 0;      // the token's user (0: the first user added)
    std::function<util::instant()> now;  // empty: the system clock
    std::uint32_t max_per_page = 2000;
    double scale = 1.0;          // divides the 15 s window
    bool enforce_limits = true;  // false: no rate limit (a harness on simulated time)
};

// Harvest's limit: 100 requests per 15 s (divided by scale) per Harvest-Account-Id; over it a
// 429 with Retry-After in whole seconds and {"message": …}.
rate_limit_rule harvest_rate_rule(double scale);

class harvest_simulator final : public simulator {
public:
    explicit harvest_simulator(harvest_options o = {});

    std::string_view name() const noexcept override { return "harvest"; }
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;
    const harvest_options& options() const noexcept { return options_; }

    // Seeding and staff actions (what people do in Harvest's UI). Each returns the new id.
    std::int64_t add_client(std::string name, std::string currency = "USD");
    std::int64_t add_project(std::int64_t client_id, std::string name, bool fixed_fee = false);
    std::int64_t add_task(std::string name);
    std::int64_t assign_task(std::int64_t project_id, std::int64_t task_id, bool billable = true);
    std::int64_t add_user(std::string first, std::string last, std::string email);
    // A time entry as staff would enter it (hours as decimal text).
    std::int64_t add_time_entry(std::int64_t user_id,
                                std::int64_t project_id,
                                std::int64_t task_id,
                                std::string spent_date,
                                std::string hours,
                                std::string notes = {});
    // Staff change an entry (fields merged, updated_at moves); approve/lock/bill it; delete it.
    void edit_time_entry(std::int64_t id, const nlohmann::json& fields);
    void set_flags(std::int64_t id, bool locked, bool closed, bool billed);
    void remove_time_entry(std::int64_t id);

    // Creates take effect at once but are answered `d` later (0: at once): a lost answer.
    void hold_create_answers(std::chrono::milliseconds d);

    std::vector<nlohmann::json> time_entries() const;
    std::size_t time_entry_creates() const;  // successful POST /v2/time_entries

    // OAuth2 (Harvest ID). A grant issued directly, as `billsync connect` would have obtained it.
    struct grant {
        std::string access_token;
        std::string refresh_token;
        std::chrono::seconds expires_in{0};
    };
    grant issue_grant();
    // Every access token issued so far is refused (401) from now on; refresh tokens still work.
    void expire_access_tokens();
    // While set, the API refuses every OAuth2 access token, new ones too (the user lost access to
    // the account); the token endpoint still answers.
    void refuse_oauth_tokens(bool refuse);
    // Every grant so far is revoked: its refresh tokens get invalid_grant, its access tokens 401.
    void revoke_grants();
    bool access_token_valid(std::string_view token) const;
    std::uint64_t code_grants() const;     // authorization_code grants answered with tokens
    std::uint64_t refresh_grants() const;  // refresh_token grants answered with tokens
    std::uint64_t invalid_grants() const;  // invalid_grant answers
    std::vector<std::string> refresh_tokens_presented() const;  // in order

private:
    struct table {
        std::map<std::int64_t, nlohmann::json> rows;
    };
    struct oauth_refresh {
        std::uint64_t grant = 0;
        bool current = true;
    };
    struct oauth_access {
        std::uint64_t grant = 0;
        util::instant expires_at{};
    };
    struct oauth_code {
        std::string redirect_uri;
        util::instant expires_at{};
    };
    util::instant now() const;
    grant issue_locked(std::uint64_t grant_id, const std::string& old_refresh);
    bool oauth_token_valid_locked(std::string_view token) const;
    http::response authorize(const http::request& req);
    http::response token(const http::request& req);
    http::response accounts(const http::request& req);

    net::awaitable<http::response> handle(http::request req);
    http::response route(const http::request& req);
    http::response list(const http::request& req, const std::string& resource);
    http::response create_entry(const http::request& req);
    http::response update_entry(std::int64_t id, const http::request& req);
    http::response delete_entry(std::int64_t id);
    nlohmann::json entry_json(std::int64_t user,
                              std::int64_t project,
                              std::int64_t task,
                              const std::string& spent_date,
                              const nlohmann::json& hours,
                              const std::string& notes);
    std::string stamp() const;
    std::int64_t next_id();
    const nlohmann::json* find(const std::string& resource, std::int64_t id) const;

    harvest_options options_;
    mutable std::mutex mutex_;
    std::map<std::string, table> tables_;
    std::int64_t counter_ = 1000;
    std::size_t creates_ = 0;
    std::chrono::milliseconds hold_creates_{0};

    std::map<std::string, oauth_refresh, std::less<>> refresh_;
    std::map<std::string, oauth_access, std::less<>> access_;
    std::map<std::string, oauth_code, std::less<>> codes_;
    std::set<std::uint64_t> revoked_;
    std::uint64_t next_grant_ = 1;
    std::uint64_t serial_ = 0;
    bool refuse_oauth_ = false;
    std::uint64_t code_grants_ = 0;
    std::uint64_t refresh_grants_ = 0;
    std::uint64_t invalid_grants_ = 0;
    std::vector<std::string> presented_;
};

}  // namespace billsync::simulators
