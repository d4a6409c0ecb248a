#pragma once

// Seeded faults for the simulator kit (docs/chaos.md). A fault_plan belongs to one simulated
// vendor; attached to its sim_server (sim_server::set_faults) it decides, for every routed
// request, whether the vendor misbehaves and how. The decision for the n-th request to a
// (method, path) is a pure function of (seed, vendor, method, path, n), so one seed gives the same
// fault schedule on every run, whatever the timing of other routes.
//
// Webhook faults (lost, duplicated, reordered deliveries) are decided by delivery_order(), which
// every simulator that delivers webhooks (or the runner driving it) applies to its batch.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billsync::simulators {

enum class fault_kind : std::uint8_t {
    server_error,        // 5xx (fault_rule::status), nothing happened
    rate_limited,        // 429 with Retry-After
    rate_limited_bare,   // 429 without Retry-After
    timeout_unread,      // no answer and the request is not handled; closed after `hold`
    timeout_after_read,  // the request is handled (side effect done), no answer; closed after
                         // `hold`
    reset_after_write,   // the request is handled, then the connection is reset (answer lost)
    slow,                // handled and answered, `hold` late
};

std::string_view to_string(fault_kind k) noexcept;
// nullopt for an unknown name ("server_error", "rate_limited", ...).
std::optional<fault_kind> fault_kind_from(std::string_view name) noexcept;

// "Requests matching method and path_prefix fail this way with this probability."
struct fault_rule {
    std::string method = "*";  // "*": any
    std::string path_prefix = "/";
    fault_kind kind = fault_kind::server_error;
    double probability = 0.0;             // per matching request, 0–1
    unsigned status = 503;                // server_error
    std::chrono::seconds retry_after{1};  // rate_limited
    std::chrono::milliseconds hold{200};  // timeouts and slow answers
    // At most this many faults in a row on one (method, path), so a retrying client gets through
    // (0: no cap). A fault that hits forever is a permanent fault; set `permanent` instead.
    std::uint32_t max_in_a_row = 2;
    bool permanent = false;  // never lifted: every matching request fails (dead letters expected)
};

// What happens to a simulator's webhook deliveries.
struct webhook_fault_rule {
    std::string source;      // e.g. "qbo", "sendgrid/events"; "*" any
    double lose = 0.0;       // the delivery never comes (polling must find the change)
    double duplicate = 0.0;  // it comes twice
    double reorder = 0.0;    // the batch is shuffled (with this probability per batch)
};

// How the simulator kit spends a fault's hold (fault_rule::hold: a slow answer, a timeout).
// Real time by default: the connection is held that long. Under a simulated clock (the chaos
// runner) the client's own waits cost no real time, and neither should the vendor's: with `skip`
// the hold is counted (sim_server::held()) and its end comes at once, with what the client would
// see then: a slow answer arrives, a timeout closes the connection without one. What the client
// observes does not change, only how long it takes.
struct fault_holds {
    bool skip = false;
    // The client's deadline for an answer (its read timeout), when known: a slow answer held this
    // long or longer would arrive after the client gave up, so a skipped hold that long closes the
    // connection without the answer, as the client's timeout would. 0: unknown (a slow answer
    // always arrives). Real holds leave the deadline to the client.
    std::chrono::milliseconds client_deadline{0};
};

struct injected_fault {
    std::string vendor;
    std::string what;  // fault_kind name, or "webhook_lost" / "webhook_duplicated" / ...
    std::string method;
    std::string path;
    std::uint64_t nth = 0;  // the n-th request to (method, path), 1-based
    bool permanent = false;
};

class fault_plan {
public:
    fault_plan(std::uint64_t seed, std::string vendor);

    std::uint64_t seed() const noexcept { return seed_; }
    const std::string& vendor() const noexcept { return vendor_; }

    void add(fault_rule rule);
    void add(webhook_fault_rule rule);
    // Off: no request or delivery fails (the runner's settling phase). Thread-safe.
    void set_enabled(bool on);
    bool enabled() const;

    // The fault for this request, if any (the first matching rule that fires). Counts the
    // request. Thread-safe.
    std::optional<fault_rule> decide(std::string_view method, std::string_view path);

    // The order in which a batch of `count` webhook deliveries from `source` is sent: indexes into
    // the batch, some missing (lost), some twice (duplicated), maybe shuffled. The k-th batch of a
    // source gets the same answer for the same seed. Thread-safe.
    std::vector<std::size_t> delivery_order(std::string_view source, std::size_t count);

    // Everything injected so far, in order.
    std::vector<injected_fault> injected() const;
    std::size_t injected_count() const;
    // Injected faults per kind name.
    std::map<std::string, std::uint64_t> counts() const;

private:
    std::uint64_t draw(std::string_view a,
                       std::string_view b,
                       std::uint64_t n,
                       std::uint64_t salt) const;
    double unit(std::string_view a, std::string_view b, std::uint64_t n, std::uint64_t salt) const;

    std::uint64_t seed_;
    std::string vendor_;
    mutable std::mutex mutex_;
    bool enabled_ = true;
    std::vector<fault_rule> rules_;
    std::vector<webhook_fault_rule> webhook_rules_;
    struct route_state {
        std::uint64_t requests = 0;
        std::uint32_t in_a_row = 0;
    };
    std::map<std::string, route_state, std::less<>> routes_;
    std::map<std::string, std::uint64_t, std::less<>> batches_;
    std::vector<injected_fault> injected_;
};

// 64-bit mix (splitmix64 finalizer), exposed for the runner's seeded choices.
std::uint64_t mix64(std::uint64_t x) noexcept;

}  // namespace billsync::simulators
