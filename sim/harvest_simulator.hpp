#pragma once

// A Harvest API v2 simulator (shared/vendors/harvest.md).
//
// Every /v2/ call needs `Authorization: Bearer <token>` (else 401 with an OAuth-style error
// body), `Harvest-Account-Id: <account>` (else 404) and a `User-Agent` naming an app and a
// contact, "App (contact)" (else 400). 100 requests per 15 s per account; over it: 429 with
// Retry-After (seconds) and {"message": …}.
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
#include <string>
#include <vector>

#include "sim/sim_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

struct harvest_options {
    std::string account_id = "123456";
    std::string access_token = "sim-harvest-token";
    std::int64_t token_user_id = 0;      // the token's user (0: the first user added)
    std::function<util::instant()> now;  // empty: the system clock
    std::uint32_t max_per_page = 2000;
    double scale = 1.0;  // divides the 15 s window
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

private:
    struct table {
        std::map<std::int64_t, nlohmann::json> rows;
    };
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
};

}  // namespace billsync::simulators
