#pragma once

// Email over SMTP submission (the alternative to SendGrid): performs the "email.send" action
// through smtp_client. SMTP has no delivery events and cannot be asked afterwards whether a
// message went out; see connectors/smtp/README.md.

#include <memory>
#include <string>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/settings.hpp"
#include "connectors/smtp/smtp_client.hpp"

namespace billsync::connectors::smtp {

struct settings {
    std::string name;
    client_settings client;
    std::string from_email;
    std::string from_name;
    const util::clock* clock = nullptr;  // Date header; nullptr: the system clock
};

settings from(const connector_settings& s);

class smtp_connector final : public connector {
public:
    explicit smtp_connector(settings s);

    const std::string& name() const noexcept override { return settings_.name; }
    std::string_view kind() const noexcept override { return "smtp"; }
    // SMTP takes no webhooks: every delivery is rejected.
    verify_result verify(const http::request& req) const override;
    std::string check_payload(std::string_view body) const override;
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store& s,
                                                         state::batch& b) override;
    net::awaitable<action_outcome> perform(state::action a) override;
    net::awaitable<reconcile_outcome> reconcile(state::action a) override;

private:
    settings settings_;
    util::system_clock system_clock_;
};

}  // namespace billsync::connectors::smtp
