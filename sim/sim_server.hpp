#pragma once

// The simulator kit: a loopback HTTP/1.1 server (optionally TLS) for fake vendor APIs, running on
// its own thread. Routes use http::router; on top of them the kit records every request, plays
// scripted faults per route, and enforces vendor-style rate limits.
//
// It has its own small Beast session loop rather than http::server, because a simulator must
// misbehave in ways a production server never does (drop a connection mid-request, hold it
// until the client gives up, write broken HTTP) and must speak TLS.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/asio.hpp"
#include "http/message.hpp"
#include "http/router.hpp"
#include "sim/faults.hpp"
#include "util/clock.hpp"

namespace spdlog {
class logger;
}

namespace billsync::simulators {

struct recorded_request {
    std::string method;
    std::string target;
    std::string path;
    std::string query;
    std::vector<http::header> headers;
    std::string body;
    std::uint64_t connection = 0;  // which accepted connection carried it (1, 2, …)
    util::instant at{};            // business time when it arrived (sim_options::now), else 0
    std::string fault;             // the fault_plan's fault for it (fault_kind name), if any
    std::string_view header_value(std::string_view name) const;
};

// One scripted answer, consumed in order before the route's own handler runs.
struct scripted_response {
    enum class action : std::uint8_t {
        respond,  // send status/headers/body (after `delay`)
        drop,     // close the connection without answering
        stall,    // hold the connection for `delay` without answering, then close it
        raw,      // write `body` as raw bytes (broken HTTP), then close
    };
    action what = action::respond;
    unsigned status = 200;
    std::vector<http::header> headers;
    std::string content_type = "application/json";
    std::string body;
    std::chrono::milliseconds delay{0};
    bool gzip = false;  // compress the body and send Content-Encoding: gzip

    static scripted_response ok(std::string body);
    static scripted_response status_code(unsigned status, std::string body = {});
    // 429 with Retry-After in seconds.
    static scripted_response rate_limited(std::chrono::seconds retry_after,
                                          std::string body = R"({"message":"rate limited"})");
    static scripted_response server_error(unsigned status = 503);
    static scripted_response stall(std::chrono::milliseconds hold = std::chrono::seconds(60));
    static scripted_response drop();
    // 200 with a body that is not the JSON it claims to be.
    static scripted_response malformed_body();
    // Bytes that are not HTTP at all.
    static scripted_response garbage();
    // 401 as OAuth2 resource servers answer an expired access token.
    static scripted_response expired_token();
};

// Why a rate-limit rule refused a request.
struct limit_hit {
    std::string key;
    bool concurrency = false;                 // the concurrency cap, not the window
    std::chrono::milliseconds retry_after{};  // until the window has room (0 for concurrency)
};

// "At most `requests` per sliding `window`, and at most `max_concurrent` at once", per key.
struct rate_limit_rule {
    std::string path_prefix = "/";
    std::uint32_t requests = 0;  // 0: no window limit
    std::chrono::milliseconds window{0};
    std::uint32_t max_concurrent = 0;  // 0: no concurrency limit
    // The limit's key (realm, tenant, account); empty function: one key for everything.
    std::function<std::string(const http::request&)> key;
    // The vendor-shaped refusal; empty: 429 with Retry-After and a generic JSON body.
    std::function<http::response(const limit_hit&)> reject;
};

struct sim_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port
    // TLS when both are set (see test_ca).
    std::filesystem::path cert_file;
    std::filesystem::path key_file;
    // Artificial handling time for every request (makes concurrency limits observable).
    std::chrono::milliseconds service_time{0};
    std::shared_ptr<spdlog::logger> log;  // nullptr: silent
    // Business time for recorded_request::at (the sandbox's simulated clock); empty: not kept.
    std::function<util::instant()> now;
    // How the holds of seeded faults (set_faults) are spent: real time, or skipped (fault_holds).
    // Scripted delays and set_response_delay always take real time.
    fault_holds holds;
};

class sim_server {
public:
    explicit sim_server(sim_options options = {});
    ~sim_server();
    sim_server(const sim_server&) = delete;
    sim_server& operator=(const sim_server&) = delete;

    // Register routes before start().
    http::router& routes();
    void add_limit(rate_limit_rule rule);

    // Binds and serves on a thread of its own. Returns an error message, empty on success.
    std::string start();
    void stop();

    std::uint16_t port() const;
    bool tls() const;
    // "http://127.0.0.1:PORT" or "https://localhost:PORT".
    std::string base_url() const;
    // The server's executor, for handlers that need timers.
    net::any_io_executor executor();

    // Queues answers for (method, path); "*" as method matches any. Thread-safe.
    void script(std::string method, std::string path, std::vector<scripted_response> answers);
    void clear_scripts();
    // Every routed request takes effect at once but is answered `delay` later (0: at once), as
    // when a response is slow on the way back. Thread-safe.
    void set_response_delay(std::chrono::milliseconds delay);
    // Seeded faults (sim/faults.hpp) for every routed request after scripts; nullptr: none.
    // Thread-safe.
    void set_faults(std::shared_ptr<fault_plan> plan);
    // Called on the server thread for every routed request once it has taken effect (its
    // handler ran), before the answer is written: the chaos runner kills the daemon from here
    // while the request is in flight. Set before start().
    void on_handled(std::function<void(const recorded_request&)> observer);

    // Recording; thread-safe.
    std::vector<recorded_request> requests() const;
    std::vector<recorded_request> requests_to(std::string_view path) const;
    std::size_t request_count() const;
    void clear_requests();
    std::uint64_t connections_accepted() const;
    std::uint64_t limit_rejections() const;     // 429s sent by rate_limit_rules
    std::uint32_t max_concurrent_seen() const;  // peak simultaneous requests in flight
    // The fault holds skipped so far (sim_options::holds), in total: time the vendor "took" that
    // cost no real time.
    std::chrono::milliseconds held() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A vendor simulator: installs its routes (and limits) on a sim_server. Vendor engineers derive
// from this; billsync-sim lists them explicitly in simulators.cpp.
class simulator {
public:
    virtual ~simulator() = default;
    virtual std::string_view name() const noexcept = 0;
    virtual void add_routes(http::router& r) = 0;
    // Rate limits, scripts: anything beyond plain routes. Default: nothing.
    virtual void configure(sim_server& server);
};

}  // namespace billsync::simulators
