#pragma once

// One harness per connector kind for the conformance suite (conformance_test.cpp). A harness owns
// its vendor simulator on loopback, a temporary state store, a log capture at trace level, and
// builds the real connector through connectors::make_connector from a TOML section parsed by the
// real settings parser. Every harness exposes the same hooks, so one typed test runs against all:
//
//   kind, name                   the connector kind and section name
//   sample_action()              an action of a kind the connector performs
//   script_rate_limited(n)       the vendor's own throttle answer for the next call (see
//                                throttle below for what "Retry-After" means per vendor)
//   script_failure(f)            a 5xx, a permanent 4xx, or an authentication failure
//   script_stall()               the vendor holds the next call without answering
//   stalled()                    the vendor is holding a call now
//   vendor_calls()               the calls the vendor saw for sample_action()
//   secrets()                    every secret value of the configuration (and, for OAuth2, the
//                                stored tokens)
//   credential_encodings()       the secrets as they travel (Basic auth, AUTH PLAIN, …)
//   signed_webhook() / forged_webhook()   a delivery with a good / a bad signature
//   supports_oauth2()            the OAuth2 kinds (qbo, xero)
//
// Constants:
//   auth_failure_outcome  what perform() answers for an authentication failure, as the
//                         connector documents it
//   lost_answer_outcome   what perform() answers for a 5xx or a call cut off after the request
//                         went out: retry, or done ("outcome unknown, not resent") for a vendor
//                         without idempotency keys or look-ups (SendGrid: at most once)
//   throttle              retry_after: 429 + a wait the connector must pass on; pause_no_hint:
//                         QBO's 429 carries no Retry-After, the limiter pauses the realm
//                         instead; transient_reply: SMTP's "421 try later"
//   receives_webhooks     verify() accepts signed deliveries
//   logs                  the connector logs at all (the generic connector does not)
//   takes_actions         perform() reaches a vendor (false for TaxDome, a relay with no API:
//                         the outcome, throttling and cancellation cases skip, saying so)

#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/settings.hpp"
#include "connectors/runtime/timing.hpp"
#include "connectors/runtime/token_store.hpp"
#include "http/asio.hpp"
#include "sim/test_ca.hpp"
#include "state/store.hpp"
#include "tests/fakes/log_capture.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {
class sim_server;
class generic_recorder;
class qbo_simulator;
class oauth2_server;
class twilio_simulator;
class xero_simulator;
class sendgrid_simulator;
class smtp_sink;
class harvest_simulator;
class karbon_simulator;
}  // namespace billsync::simulators

namespace billsync::connectors::qbo {
class qbo_connector;
}

namespace billsync::conformance {

using connectors::action_outcome;

enum class failure : std::uint8_t { server_error, permanent, auth };
enum class throttle_style : std::uint8_t { retry_after, pause_no_hint, transient_reply };

// Polls `done` while running handlers of `ioc` until it holds or `limit` passes.
bool run_until(net::io_context& ioc,
               const std::function<bool()>& done,
               std::chrono::milliseconds limit);

// A coroutine's result, filled by its completion handler.
template <class T>
struct completion {
    bool done = false;
    std::exception_ptr error;
    std::optional<T> value;
};

// What every harness shares: the clocks, the limiter, the log capture, the I/O context
// and the connector built from `settings_`.
class harness_base {
public:
    harness_base(const harness_base&) = delete;
    harness_base& operator=(const harness_base&) = delete;

    // The connector, built on first use.
    connectors::connector& connector();
    // Destroys the connector ("the process died") and builds a new one on the same store.
    void restart();
    void reset_connector() { connector_.reset(); }

    net::io_context& ioc() noexcept { return ioc_; }
    connectors::manual_steady_time& steady() noexcept { return steady_; }
    util::manual_clock& clock() noexcept { return clock_; }
    connectors::rate_limiter& limiter() noexcept { return limiter_; }
    connectors::token_store& tokens() noexcept { return *tokens_; }
    const billsync::testing::log_capture& capture() const noexcept { return capture_; }
    const connectors::connector_settings& settings() const noexcept { return settings_; }

    // Runs one coroutine to completion (throws what it throws; std::runtime_error after
    // `limit`).
    template <class T>
    T run(net::awaitable<T> op, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        auto c = std::make_shared<completion<T>>();
        net::co_spawn(ioc_, std::move(op), [c](std::exception_ptr e, T v) {
            c->done = true;
            c->error = e;
            if (!e) {
                c->value = std::move(v);
            }
        });
        if (!run_until(ioc_, [c] { return c->done; }, limit)) {
            throw std::runtime_error("the coroutine did not complete in time");
        }
        if (c->error) {
            std::rethrow_exception(c->error);
        }
        return std::move(*c->value);
    }

    action_outcome perform(state::action a) { return run(connector().perform(std::move(a))); }

    // Hidden by a harness whose connector calls no vendor.
    static constexpr bool takes_actions = true;

protected:
    harness_base();
    ~harness_base();

    // Opens the state store and a sealed token store on it (runtime_deps::tokens).
    void open_store();
    // Parses one [connectors.<name>] section with the real settings parser into settings_.
    void configure(const std::string& section_toml);

    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;              // when open_store() was called
    std::unique_ptr<connectors::token_store> tokens_;  // ditto
    connectors::manual_steady_time steady_;
    util::manual_clock clock_;
    connectors::rate_limiter limiter_;
    billsync::testing::log_capture capture_;
    std::shared_ptr<spdlog::logger> log_;
    net::io_context ioc_;
    connectors::connector_settings settings_;
    std::unique_ptr<connectors::connector> connector_;  // last: destroyed first
};

// A TCP listener that accepts connections and never says a word (an SMTP server that hangs
// before its greeting). Runs on a thread of its own.
class silent_listener {
public:
    silent_listener();
    ~silent_listener();
    silent_listener(const silent_listener&) = delete;
    silent_listener& operator=(const silent_listener&) = delete;
    std::uint16_t port() const noexcept { return port_; }
    std::uint64_t accepted() const noexcept { return accepted_.load(); }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
    std::atomic<std::uint64_t> accepted_{0};
};

// ---- generic -----------------------------------------------------------------------------------

class generic_harness : public harness_base {
public:
    static constexpr std::string_view kind = "generic";
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = false;  // the generic connector takes no logger
    static constexpr bool oauth2 = false;

    generic_harness();
    ~generic_harness();

    state::action sample_action() const;
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const { return {}; }
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

private:
    std::unique_ptr<simulators::generic_recorder> sim_;
    std::unique_ptr<simulators::sim_server> server_;
};

// ---- qbo ---------------------------------------------------------------------------------------

class qbo_harness : public harness_base {
public:
    static constexpr std::string_view kind = "qbo";
    // A 401 refreshes the token and retries once; a second 401 is left for later (retry), and a
    // revoked grant waits for the operator's reconnect (also retry).
    static constexpr auto auth_failure_outcome = action_outcome::kind::retry;
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::pause_no_hint;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = true;
    static constexpr bool oauth2 = true;
    // Attempts of one write under QBO's read/write policy (qbo_connector.cpp, `reads`).
    static constexpr std::size_t attempts_per_call = 3;

    qbo_harness();
    ~qbo_harness();

    state::action sample_action() const;
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const;
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

    // OAuth2.
    // Stores a fresh grant from the simulator as `billsync connect qbo` would; `expired`: its
    // access token ended a minute ago.
    void seed_credential(bool expired);
    const std::string& seeded_refresh_token() const noexcept { return seeded_refresh_; }
    const std::string& seeded_access_token() const noexcept { return seeded_access_; }
    std::string credential_id() const;
    simulators::oauth2_server& oauth();
    simulators::sim_server& server() { return *server_; }
    connectors::qbo::qbo_connector& qbo();
    connectors::oauth2::token_manager& manager();
    // API calls (not the token endpoint) that carried `access_token`.
    std::size_t calls_with(const std::string& access_token) const;
    std::string api_path() const;

private:
    std::unique_ptr<simulators::qbo_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
    std::string seeded_access_;
    std::string seeded_refresh_;
};

// ---- twilio ------------------------------------------------------------------------------------

class twilio_harness : public harness_base {
public:
    static constexpr std::string_view kind = "twilio";
    // A wrong Account SID / Auth Token has no token to refresh: the operator must fix it.
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = true;
    static constexpr bool oauth2 = false;

    twilio_harness();
    ~twilio_harness();

    state::action sample_action() const;
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const;
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

private:
    std::string messages_path() const;
    std::unique_ptr<simulators::twilio_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
};

// ---- sendgrid ----------------------------------------------------------------------------------

class sendgrid_harness : public harness_base {
public:
    static constexpr std::string_view kind = "sendgrid";
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    static constexpr auto lost_answer_outcome = action_outcome::kind::done;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = true;
    static constexpr bool oauth2 = false;

    sendgrid_harness();
    ~sendgrid_harness();

    state::action sample_action() const;
    // SendGrid's own shape: 429 with X-RateLimit-Remaining 0 and X-RateLimit-Reset = now + n.
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const { return {}; }
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

private:
    std::unique_ptr<simulators::sendgrid_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
};

// ---- smtp --------------------------------------------------------------------------------------

class smtp_harness : public harness_base {
public:
    static constexpr std::string_view kind = "smtp";
    // 535 is a 5xx: permanent.
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::transient_reply;
    static constexpr bool receives_webhooks = false;
    static constexpr bool logs = true;
    static constexpr bool oauth2 = false;

    smtp_harness();
    ~smtp_harness();

    state::action sample_action() const;
    // "421 4.7.0 Try again later" at MAIL FROM (SMTP has no Retry-After).
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    // Points the connector at a server that accepts and never greets.
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const;
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

private:
    std::string section(std::uint16_t port) const;
    simulators::test_ca ca_;
    simulators::tls_files tls_;
    std::unique_ptr<simulators::smtp_sink> sink_;
    std::unique_ptr<silent_listener> silent_;
};

// ---- karbon ------------------------------------------------------------------------------------

class karbon_harness : public harness_base {
public:
    static constexpr std::string_view kind = "karbon";
    // Static Bearer token and AccessKey: nothing to refresh, the operator must fix them.
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    // No idempotency key: a create is never resent within a call; the outbox retries after a
    // look-up by the keyed title (reconcile).
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = true;
    static constexpr bool oauth2 = false;

    karbon_harness();
    ~karbon_harness();

    state::action sample_action() const;
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const { return {}; }
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

private:
    std::unique_ptr<simulators::karbon_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
};

// ---- xero --------------------------------------------------------------------------------------

class xero_harness : public harness_base {
public:
    static constexpr std::string_view kind = "xero";
    // As QBO: a 401 refreshes once, a second is left for later, a revoked grant waits (retry).
    static constexpr auto auth_failure_outcome = action_outcome::kind::retry;
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = true;
    static constexpr bool oauth2 = true;
    static constexpr std::size_t attempts_per_call = 3;

    xero_harness();
    ~xero_harness();

    state::action sample_action() const;  // xero.send_invoice (POST /Invoices/{id}/Email)
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const;
    http::request signed_webhook() const;
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }

    void seed_credential(bool expired);
    const std::string& seeded_refresh_token() const noexcept { return seeded_refresh_; }
    const std::string& seeded_access_token() const noexcept { return seeded_access_; }
    std::string credential_id() const;
    simulators::oauth2_server& oauth();
    simulators::sim_server& server() { return *server_; }
    connectors::oauth2::token_manager& manager();
    std::size_t calls_with(const std::string& access_token) const;
    std::string api_path() const;

private:
    std::unique_ptr<simulators::xero_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
    std::string invoice_id_;
    std::string seeded_access_;
    std::string seeded_refresh_;
};

// ---- harvest -----------------------------------------------------------------------------------

class harvest_harness : public harness_base {
public:
    static constexpr std::string_view kind = "harvest";
    // A Personal Access Token has nothing to refresh: the operator must fix it.
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    // Retry: the next attempt looks the entry up by its external reference before any resend.
    static constexpr auto lost_answer_outcome = action_outcome::kind::retry;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = false;  // Harvest has none: billsync polls
    static constexpr bool logs = true;
    static constexpr bool oauth2 = false;

    harvest_harness();
    ~harvest_harness();

    state::action sample_action() const;
    void script_rate_limited(std::chrono::seconds retry_after);
    void script_failure(failure f);
    void script_stall();
    bool stalled() const;
    std::size_t vendor_calls() const;  // creates (POST /v2/time_entries)
    std::vector<std::string> secrets() const;
    std::vector<std::string> credential_encodings() const { return {}; }
    http::request signed_webhook() const;
    http::request forged_webhook() const { return signed_webhook(); }
    bool supports_oauth2() const { return oauth2; }

private:
    std::unique_ptr<simulators::harvest_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
    std::int64_t client_ = 0;
};

// ---- taxdome -----------------------------------------------------------------------------------

// A Zapier relay: no vendor API and no simulator. A delivery is "signed" by the Zap's bearer
// secret; every action is refused at once (there is nothing to call).
class taxdome_harness : public harness_base {
public:
    static constexpr std::string_view kind = "taxdome";
    static constexpr auto auth_failure_outcome = action_outcome::kind::permanent;
    static constexpr auto lost_answer_outcome = action_outcome::kind::permanent;
    static constexpr auto throttle = throttle_style::retry_after;
    static constexpr bool receives_webhooks = true;
    static constexpr bool logs = false;  // refusals are logged by the daemon's intake
    static constexpr bool oauth2 = false;
    static constexpr bool takes_actions = false;

    taxdome_harness();
    ~taxdome_harness();

    state::action sample_action() const;
    void script_rate_limited(std::chrono::seconds) {}
    void script_failure(failure) {}
    void script_stall() {}
    bool stalled() const { return false; }
    std::size_t vendor_calls() const { return 0; }
    std::vector<std::string> secrets() const;
    // The secrets as a Zap sends them.
    std::vector<std::string> credential_encodings() const;
    // A relay with the current secret, relayed now (wall clock: the connector bounds its age).
    http::request signed_webhook() const;
    // The same relay with a wrong secret of the same length.
    http::request forged_webhook() const;
    bool supports_oauth2() const { return oauth2; }
};

}  // namespace billsync::conformance
