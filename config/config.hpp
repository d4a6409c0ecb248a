#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/secret.hpp"
#include "util/clock.hpp"

namespace billsync::config {

// host:port. The host is an IPv4/IPv6 literal or "localhost"; port 0 means "any free port".
struct endpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string text() const;  // "127.0.0.1:8081", "[::1]:8081"
    bool is_loopback() const;  // 127.0.0.0/8, ::1, localhost
};

struct http_limits {
    std::size_t max_body_bytes = 1024 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    std::chrono::milliseconds read_timeout{10'000};  // whole request (header + body)
    std::chrono::milliseconds idle_timeout{60'000};  // keep-alive wait for the next request
    std::size_t max_connections = 1024;
    std::size_t max_connections_per_ip = 256;                // 0: no cap
    std::size_t max_buffered_body_bytes = 64 * 1024 * 1024;  // all bodies being read at once
};

struct listener_settings {
    endpoint address;
    http_limits limits;
};

enum class log_format { automatic, text, json, journald };

// Where some settings were written, so checks made after loading (check_environment) can point
// at the right line. Filled by the loader; a key that was absent gets its table's position.
struct setting_positions {
    source_pos daemon;           // the [daemon] header
    source_pos data_dir;         // [daemon] data_dir
    source_pos webhook_address;  // [daemon.webhook_listener] address
    source_pos status_address;   // [daemon.status_listener] address
};

enum class clock_mode { system, simulated };

// [daemon.retention] (also written `retention.<key>` in [daemon]): how long each kind of row is
// kept; 0 days keeps it for ever. See docs/configuration.md for the bounds and why.
struct retention_settings {
    std::int64_t dedup_days =
        30;  // inbox dedup rows (>= 3: the shortest vendor redelivery horizon)
    std::int64_t connector_events_days = 30;  // events a connector remembers to drop redeliveries
    std::int64_t audit_days = 400;
    std::int64_t changes_days = 30;
    std::int64_t outbox_days = 30;        // done actions compacted to a "seen" marker after it
    std::int64_t outbox_seen_days = 400;  // markers forgotten after it (>= 90, >= dedup_days)
    std::chrono::milliseconds interval{3'600'000};  // how often a pass starts
    std::int64_t chunk = 1000;                      // rows examined per step
};

struct daemon_settings {
    std::filesystem::path data_dir;
    listener_settings webhook;           // [daemon.webhook_listener]; default 0.0.0.0:8080
    listener_settings status;            // [daemon.status_listener]; default 127.0.0.1:8081
    std::optional<secret> status_token;  // [daemon.status_listener] bearer_token
    // [daemon.status_listener] allowed_hosts: Host names a state-changing request may name
    // besides loopback names and the listener's own address (a reverse proxy's public name).
    std::vector<std::string> status_allowed_hosts;
    std::string time_zone;           // IANA name, validated against tzdata
    std::string log_level = "info";  // trace debug info warn error critical off
    log_format log_fmt = log_format::automatic;
    std::chrono::milliseconds shutdown_grace{10'000};
    // How long a decision waits for its source of truth's re-read (a follow-up touch: its
    // invoice) before it is decided on the stored copy, so a stalled vendor holds no due work.
    std::chrono::milliseconds refresh_wait{10'000};
    clock_mode clock = clock_mode::system;  // [daemon.clock] mode
    util::instant clock_start{};            // [daemon.clock] start (simulated only)
    std::optional<secret> secrets_key;      // key for encrypting tokens at rest
    std::string public_url;                 // external base URL of the webhook listener
    retention_settings retention;           // [daemon.retention]
    setting_positions where;                // source positions for later diagnostics
};

}  // namespace billsync::config
