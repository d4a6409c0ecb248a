#pragma once

// Twilio Programmable Messaging (shared/vendors/twilio.md), kind "twilio".
//
// Outbound: outbox actions of kind "sms.send" with payload {"to","body","delivery_id"} are POSTed
// to Messages.json (Basic auth Account SID : Auth Token) with a StatusCallback of
// <public_url>/webhooks/<name>/status?delivery=<delivery_id>. Twilio has no idempotency key, so
// an action whose earlier attempt may have reached Twilio is looked up (messages to the same
// number from the same sender, newest first back to the action's first attempt minus a margin,
// same body) before it is sent again, both in reconcile() and when perform() runs a retry. Not
// found while the first attempt is younger than the settle time is undecided, not absent.
//
// Inbound: POST /webhooks/<name>/sms (a text received) and /webhooks/<name>/status (a status
// callback), signed with X-Twilio-Signature over public_url + the request target. Opt-out and
// opt-in keywords and error 21610 keep billsync's own SMS suppression list, entity rows
// ("suppression", "sms:<E.164>"); message statuses are kept in ("sms_message", delivery_id) rows
// and never move backwards.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/retry.hpp"
#include "connectors/runtime/settings.hpp"
#include "connectors/runtime/timing.hpp"
#include "connectors/twilio/twilio_signature.hpp"

namespace billsync::connectors::twilio {

struct settings {
    std::string name = "twilio";
    std::string base_url = "https://api.twilio.com";
    std::string account_sid;
    std::string auth_token;
    std::string from;                   // a sender number, or …
    std::string messaging_service_sid;  // … a Messaging Service (used when `from` is empty)
    std::string public_url;    // the base URL Twilio calls ("https://billsync.example.com")
    client_settings client;    // TLS, timeouts, logging of the HTTPS client
    retry_policy read_retry;   // for the (idempotent) listing GETs only
    unsigned page_size = 100;  // PageSize of the reconcile listing
    // The reconcile listing goes back to the first attempt minus this (clock skew).
    std::chrono::seconds lookup_margin = std::chrono::hours(1);
    // An attempt younger than this that is not listed (yet) is undecided: ask again later.
    std::chrono::seconds lookup_settle = std::chrono::minutes(10);
    time_source time;                    // empty: real_time()
    std::function<util::instant()> now;  // business time; empty: the system clock
};

settings from(const connector_settings& s);

// True when billsync's suppression list has the number opted out of SMS.
bool is_suppressed(const state::store& s, std::string_view e164);

class twilio_connector final : public connector {
public:
    explicit twilio_connector(settings s);
    ~twilio_connector() override;

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "twilio"; }
    // /webhooks/<name>/sms (also the bare /webhooks/<name>) and /webhooks/<name>/status.
    bool accepts_route_kind(std::string_view kind) const noexcept override {
        return kind.empty() || kind == "sms" || kind == "status";
    }
    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;
    // As presets::twilio(): Twilio gives no figure.
    std::size_t max_concurrency() const noexcept override { return 10; }
    std::string status_json() const override;

    // The StatusCallback URL of a delivery.
    std::string status_callback_url(std::string_view delivery_id) const;

private:
    struct sms_request;
    struct lookup_result;

    // The action's message; an error (why it can never be sent) when it is not a valid sms.send.
    static std::string parse_action(const state::action& a, sms_request& m);
    net::awaitable<https_client*> client();
    net::awaitable<lookup_result> look_up(sms_request m,
                                          std::optional<util::instant> first_attempt);
    http_request authorized(std::string method, std::string url) const;
    std::vector<mappings::change> sent_effects(const sms_request& m,
                                               const std::string& sid,
                                               const std::string& status) const;

    settings settings_;
    rate_limiter limiter_;
    std::mutex client_mutex_;
    std::unique_ptr<https_client> client_;
    std::atomic<std::uint64_t> sends_{0};
    std::atomic<std::uint64_t> failures_{0};
    std::atomic<std::uint64_t> opt_outs_{0};
};

}  // namespace billsync::connectors::twilio
