#pragma once

#include <memory>
#include <optional>
#include <string>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/settings.hpp"
#include "http/async_client.hpp"

namespace billsync::connectors::generic {

// A generic signed-webhook source: HMAC-SHA256 over the raw body in a configurable header (hex or
// base64, optional prefix such as "sha256="). Each delivery is a JSON object recorded as a
// canonical "record" entity; outbox actions are POSTed to action_url with an Idempotency-Key
// header, and reconciled with GET action_url?idempotency_key=<key> (200 = happened, 404 = absent).
struct settings {
    std::string name;
    std::string secret;
    std::string signature_header = "X-Signature";
    bool base64 = false;
    std::string signature_prefix;
    // The sender's event id: the dedup key, and signed with the body (signed_content). Empty, or
    // absent from a delivery: the body alone is signed and its SHA-256 is the dedup key.
    std::string event_id_header;
    std::string action_url;  // empty: this connector takes no actions (https://, or http:// on
                             // loopback: checked at configuration time)
    std::chrono::milliseconds timeout{10'000};
    client_settings client;  // the runtime's HTTPS client settings (CA bundle, proxy, timeouts)
};

settings from(const connector_settings& s);

// What the HMAC covers: "<event id>.<body>" when the delivery carries an event id, else the body.
std::string signed_content(std::string_view event_id, std::string_view body);

class generic_connector final : public connector {
public:
    explicit generic_connector(settings s);

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "generic"; }
    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;

    bool takes_actions() const noexcept { return !settings_.action_url.empty(); }

private:
    // The HTTPS client, made on first use on the executor that performs actions.
    net::awaitable<https_client*> client();

    settings settings_;
    std::optional<http::url_parts> action_url_;
    std::unique_ptr<https_client> client_;
};

}  // namespace billsync::connectors::generic
