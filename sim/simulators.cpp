#include "sim/simulators.hpp"

#include <nlohmann/json.hpp>

#include "sim/harvest_simulator.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/twilio_simulator.hpp"
#include "sim/xero_simulator.hpp"

namespace billsync::simulators {

using namespace std::chrono_literals;

std::chrono::milliseconds scaled_window(std::chrono::milliseconds window, double scale) {
    if (scale <= 0) {
        return window;
    }
    return std::chrono::milliseconds(
        static_cast<std::chrono::milliseconds::rep>(static_cast<double>(window.count()) / scale));
}

// --- generic-recorder -------------------------------------------------------------------------

void generic_recorder::add_routes(http::router& r) {
    auto h = [this](http::request req) { return handle(std::move(req)); };
    r.add_prefix("POST", "/", "/:any", h);
    r.add_prefix("GET", "/", "/:any", h);
}

std::map<std::string, std::size_t> generic_recorder::counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
}

net::awaitable<http::response> generic_recorder::handle(http::request req) {
    std::lock_guard lock(mutex_);
    if (req.method == "POST") {
        const auto key = std::string(req.header_value("Idempotency-Key"));
        ++total_;
        const bool first = counts_[key]++ == 0;
        co_return http::response::json(
            first ? 201 : 200,
            nlohmann::json{{"idempotency_key", key}, {"duplicate", !first}}.dump());
    }
    if (req.path == "/_recorded") {
        nlohmann::json keys = nlohmann::json::object();
        for (const auto& [k, n] : counts_) {
            keys[k] = n;
        }
        co_return http::response::json(200,
                                       nlohmann::json{{"total", total_}, {"keys", keys}}.dump());
    }
    const auto key = http::query_param(req.query, "idempotency_key");
    if (!key.empty() && counts_.contains(key)) {
        co_return http::response::json(200, nlohmann::json{{"idempotency_key", key}}.dump());
    }
    co_return http::response::error(404, "not_found", "no such idempotency key");
}

// --- harvest-limits ---------------------------------------------------------------------------

namespace {
net::awaitable<http::response> harvest_me(http::request) {
    co_return http::response::json(
        200,
        R"({"id":1782884,"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"})");
}
net::awaitable<http::response> harvest_time_entries(http::request) {
    co_return http::response::json(
        200,
        R"({"time_entries":[],"per_page":2000,"total_pages":1,"total_entries":0,"next_page":null,)"
        R"("previous_page":null,"page":1,"links":{"next":null}})");
}
net::awaitable<http::response> qbo_company_info(http::request req) {
    co_return http::response::json(
        200,
        nlohmann::json{
            {"CompanyInfo", {{"Id", "1"}, {"CompanyName", "Sim Books " + qbo_realm_of(req)}}},
            {"time", "2026-01-05T09:00:00.000-08:00"}}
            .dump());
}
net::awaitable<http::response> qbo_query(http::request) {
    co_return http::response::json(
        200,
        R"({"QueryResponse":{"startPosition":1,"maxResults":0},"time":"2026-01-05T09:00:00Z"})");
}
}  // namespace

void harvest_limits::add_routes(http::router& r) {
    r.add("GET", "/v2/users/me", harvest_me);
    r.add("GET", "/v2/time_entries", harvest_time_entries);
}

void harvest_limits::configure(sim_server& server) {
    server.add_limit(harvest_rate_rule(options_.scale));
}

// --- qbo-limits -------------------------------------------------------------------------------

void qbo_limits::add_routes(http::router& r) {
    r.add_prefix("GET", "/v3/company/", "/v3/company/:realm", [](http::request req) {
        if (req.path.ends_with("/query")) {
            return qbo_query(std::move(req));
        }
        return qbo_company_info(std::move(req));
    });
}

void qbo_limits::configure(sim_server& server) {
    server.add_limit(qbo_throttle_rule(options_.scale));
}

// --- registry ---------------------------------------------------------------------------------

std::vector<std::string_view> simulator_names() {
    return {"generic-recorder",
            "harvest",
            "harvest-limits",
            "karbon",
            "qbo",
            "qbo-limits",
            "sendgrid",
            "twilio",
            "xero"};
}

std::unique_ptr<simulator> make_simulator(std::string_view name, simulator_options options) {
    if (name == "generic-recorder") {
        return std::make_unique<generic_recorder>();
    }
    if (name == "harvest") {
        harvest_options o;
        o.scale = options.scale;
        return std::make_unique<harvest_simulator>(std::move(o));
    }
    if (name == "harvest-limits") {
        return std::make_unique<harvest_limits>(options);
    }
    if (name == "qbo") {
        qbo_sim_options o;
        o.scale = options.scale;
        return std::make_unique<qbo_simulator>(std::move(o));
    }
    if (name == "qbo-limits") {
        return std::make_unique<qbo_limits>(options);
    }
    if (name == "sendgrid") {
        sendgrid_options o;
        if (options.scale > 0) {
            o.window = std::max(std::chrono::seconds(1),
                                std::chrono::seconds(static_cast<std::int64_t>(
                                    static_cast<double>(o.window.count()) / options.scale)));
        }
        return std::make_unique<sendgrid_simulator>(o);
    }
    if (name == "twilio") {
        return std::make_unique<twilio_simulator>();
    }
    if (name == "karbon") {
        karbon_options o;
        o.scale = options.scale;
        return std::make_unique<karbon_simulator>(std::move(o));
    }
    if (name == "xero") {
        xero_sim_options o;
        o.scale = options.scale;
        return std::make_unique<xero_simulator>(std::move(o));
    }
    return nullptr;
}

}  // namespace billsync::simulators
