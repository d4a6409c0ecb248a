#pragma once

// The simulators billsync-sim (and later `billsync sandbox`) can run, listed explicitly.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sim/sim_server.hpp"

namespace billsync::simulators {

struct simulator_options {
    // Rate-limit windows are divided by this (10: Harvest's 100 per 15 s becomes 100 per 1.5 s).
    double scale = 1.0;
};

// A recording target for the generic connector's actions. POST <any path> stores the body under
// its Idempotency-Key; GET <any path>?idempotency_key=K answers 200 if K was seen, else 404;
// GET /_recorded lists {"total": n, "keys": {K: count}}.
class generic_recorder final : public simulator {
public:
    std::string_view name() const noexcept override { return "generic-recorder"; }
    void add_routes(http::router& r) override;
    std::map<std::string, std::size_t> counts() const;

private:
    net::awaitable<http::response> handle(http::request req);
    mutable std::mutex mutex_;
    std::map<std::string, std::size_t> counts_;
    std::size_t total_ = 0;
};

// Minimal Harvest v2 endpoints behind Harvest's limit: 100 requests per 15 s per account
// (Harvest-Account-Id), 429 with Retry-After.
class harvest_limits final : public simulator {
public:
    explicit harvest_limits(simulator_options o = {}) : options_(o) {}
    std::string_view name() const noexcept override { return "harvest-limits"; }
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;

private:
    simulator_options options_;
};

// Minimal QBO v3 endpoints behind QBO's limits: 500 requests per minute and 10 concurrent per
// realm; 429 with the ThrottleExceeded fault body and no Retry-After.
class qbo_limits final : public simulator {
public:
    explicit qbo_limits(simulator_options o = {}) : options_(o) {}
    std::string_view name() const noexcept override { return "qbo-limits"; }
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;

private:
    simulator_options options_;
};

// A rate-limit window divided by scale (scale <= 0: unchanged).
std::chrono::milliseconds scaled_window(std::chrono::milliseconds window, double scale);

// Names billsync-sim accepts, sorted.
std::vector<std::string_view> simulator_names();
// nullptr for an unknown name.
std::unique_ptr<simulator> make_simulator(std::string_view name, simulator_options options);

}  // namespace billsync::simulators
