#pragma once

// Twilio SendGrid (shared/vendors/sendgrid.md): Mail Send v3 for the "email.send" action, the
// signed Event Webhook at /webhooks/<name>/events, and Inbound Parse (client replies) at
// /webhooks/<name>/inbound. See connectors/sendgrid/README.md.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "connectors/email/email_message.hpp"
#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/proxy.hpp"
#include "connectors/runtime/settings.hpp"
#include "connectors/sendgrid/sendgrid_signature.hpp"

namespace spdlog {
class logger;
}

namespace billsync::connectors::sendgrid {

struct settings {
    std::string name;
    std::string base_url = "https://api.sendgrid.com";
    std::string api_key;
    std::string from_email;
    std::string from_name;
    std::string event_webhook_public_key;  // empty: every event delivery is rejected
    std::string inbound_secret;            // empty: every inbound delivery is rejected
    std::string ca_file;                   // trust for base_url; empty: the system store
    std::chrono::milliseconds timeout{30'000};
    std::optional<proxy_settings> proxy;  // nullopt: from the environment
    // Wall-clock time, against which X-RateLimit-Reset (Unix seconds) is read.
    std::function<std::chrono::system_clock::time_point()> wall_clock;
    // Event deliveries whose signed timestamp is older than this (or more than 5 minutes ahead)
    // are rejected as replays; wide enough for SendGrid's retries ([..] event_max_age_s).
    std::chrono::seconds event_max_age{std::chrono::days(3)};
    std::shared_ptr<spdlog::logger> log;  // nullptr: silent
};

settings from(const connector_settings& s);

// The entity type of the rows that remember SendGrid events already processed (their dedup
// keys), and when such a row was written (or the event's own time for rows written before
// that was stored); nullopt when it carries neither. Retention prunes these rows by it.
inline constexpr std::string_view seen_event_type = "sendgrid_event";
std::optional<util::instant> seen_event_time(std::string_view row);

class sendgrid_connector final : public connector {
public:
    explicit sendgrid_connector(settings s);

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "sendgrid"; }
    bool accepts_route_kind(std::string_view kind) const noexcept override {
        return kind == "events" || kind == "inbound";
    }
    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;
    std::string status_json() const override;

    // The Mail Send request body for a message (exposed for tests).
    std::string mail_send_body(const email::email_message& m) const;

private:
    state::result<std::vector<mappings::change>> process_events(const state::inbox_event& e,
                                                                const state::store& s,
                                                                state::batch& b);
    state::result<std::vector<mappings::change>> process_inbound(const state::inbox_event& e,
                                                                 const state::store& s,
                                                                 state::batch& b);
    std::chrono::system_clock::time_point wall_now() const;
    // The send may have reached SendGrid and its answer is lost: logged, recorded as unknown and
    // never resent (sendgrid.md, "Idempotency").
    action_outcome unknown_outcome(const state::action& a,
                                   const email::email_message& m,
                                   std::string_view why) const;

    settings settings_;
    std::optional<event_verifier> verifier_;
    std::string verifier_error_;
    mutable std::mutex mutex_;
    // Pacing: no request before this (X-RateLimit-Remaining reached 0, or a 429).
    std::optional<std::chrono::system_clock::time_point> paused_until_;
};

}  // namespace billsync::connectors::sendgrid
