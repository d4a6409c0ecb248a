#pragma once

// TaxDome (shared/vendors/taxdome.md) has no public API and no webhooks of its own. Its Zapier
// app's account and contact triggers are relayed by a Zap ("Webhooks by Zapier", POST, payload
// type json) to /webhooks/<name> with `Authorization: Bearer <relay_secret>`. Nothing is signed:
// the secret is the proof, compared in constant time against the current and the previous
// secret (rotation), and the intake never stores the Authorization header. The body's
// `relayed_at` bounds replays. Relays become canonical clients that join the identity map;
// invoices and payments of TaxDome firms come through QBO (TaxDome's own sync). See README.md.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/settings.hpp"

namespace spdlog {
class logger;
}

namespace billsync::connectors::taxdome {

inline constexpr std::size_t min_secret_length = 32;

struct settings {
    std::string name;
    std::string relay_secret;
    std::string relay_secret_previous;  // empty: none (accepted during a rotation)
    std::chrono::seconds max_age{std::chrono::days(1)};
    std::string default_calling_code = "1";
    // Wall-clock time, against which `relayed_at` is checked.
    std::function<std::chrono::system_clock::time_point()> wall_clock;
    std::shared_ptr<spdlog::logger> log;  // nullptr: silent
};

settings from(const connector_settings& s);

class taxdome_connector final : public connector {
public:
    explicit taxdome_connector(settings s);

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "taxdome"; }
    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    // TaxDome takes no actions from billsync (there is no API to call).
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;

private:
    std::chrono::system_clock::time_point wall_now() const;
    settings settings_;
};

}  // namespace billsync::connectors::taxdome
