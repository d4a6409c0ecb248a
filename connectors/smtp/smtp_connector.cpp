#include "connectors/smtp/smtp_connector.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <charconv>

#include "connectors/email/email_message.hpp"

namespace billsync::connectors::smtp {

namespace {
constexpr std::string_view provider = "smtp";
}

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    if (const auto* v = s.value("host")) {
        out.client.host = *v;
    }
    if (const auto* v = s.value("port")) {
        unsigned port = 0;
        if (std::from_chars(v->data(), v->data() + v->size(), port).ec == std::errc()) {
            out.client.port = static_cast<std::uint16_t>(port);  // 1–65535 by the schema
        }
    }
    if (const auto* v = s.value("tls")) {
        out.client.tls = *v == "implicit" ? tls_mode::implicit
                         : *v == "none"   ? tls_mode::none
                                          : tls_mode::starttls;
    }
    if (const auto* v = s.value("username")) {
        out.client.username = *v;
    }
    if (const auto* p = s.find_secret("password")) {
        out.client.password = p->reveal();
    }
    if (const auto* v = s.value("ca_file")) {
        out.client.ca_file = *v;
    }
    if (const auto* v = s.value("from_email")) {
        out.from_email = *v;
    }
    if (const auto* v = s.value("from_name")) {
        out.from_name = *v;
    }
    return out;
}

smtp_connector::smtp_connector(settings s) : settings_(std::move(s)) {}

verify_result smtp_connector::verify(const http::request&) const {
    verify_result r;
    r.reason = "the smtp connector takes no webhooks";
    return r;
}

std::string smtp_connector::check_payload(std::string_view) const {
    return "the smtp connector takes no webhooks";
}

state::result<std::vector<mappings::change>> smtp_connector::process(const state::inbox_event&,
                                                                     const state::store&,
                                                                     state::batch&) {
    return state::result<std::vector<mappings::change>>::failure(
        state::status::failure("the smtp connector takes no webhooks"));
}

net::awaitable<action_outcome> smtp_connector::perform(state::action a) {
    action_outcome out;
    std::string error;
    const auto message = email::parse_send_action(a, provider, error);
    if (!message) {
        out.k = action_outcome::kind::permanent;
        out.detail = error;
        co_return out;
    }
    if (!email::valid_address(settings_.from_email)) {
        out.k = action_outcome::kind::permanent;
        out.detail = "from_email is not a valid address";
        co_return out;
    }
    const util::clock& clock = settings_.clock != nullptr ? *settings_.clock : system_clock_;
    const auto message_id = email::stable_message_id(message->delivery_id);
    envelope env;
    env.from = settings_.from_email;
    env.to = {message->to};
    env.data = email::render_rfc5322(
        *message, {settings_.from_email, settings_.from_name}, message_id, clock.now());
    const auto r = co_await send_mail(settings_.client, std::move(env));
    const auto& log = settings_.client.log;
    switch (r.k) {
        case send_result::kind::sent:
            out.k = action_outcome::kind::done;
            out.detail = message_id;
            out.effects.push_back(
                email::accepted_change(settings_.name, message->delivery_id, message_id));
            if (log) {
                log->info("Email accepted connector={} delivery={} message_id={} reply=\"{}\"",
                          settings_.name,
                          message->delivery_id,
                          message_id,
                          r.detail);
            }
            co_return out;
        case send_result::kind::unknown:
            // The body went out and the answer was lost: the same policy as reconcile().
            out = email::unknown_send_result(provider, a, r.detail);
            if (log) {
                log->warn("Email outcome unknown connector={} delivery={} detail=\"{}\"",
                          settings_.name,
                          message->delivery_id,
                          r.detail);
            }
            co_return out;
        case send_result::kind::transient:
            out.k = action_outcome::kind::retry;
            break;
        case send_result::kind::permanent:
            out.k = action_outcome::kind::permanent;
            break;
    }
    out.detail = r.detail;
    if (log) {
        log->warn("Email not accepted connector={} delivery={} stage={} code={} detail=\"{}\"",
                  settings_.name,
                  message->delivery_id,
                  r.stage,
                  r.code,
                  r.detail);
    }
    co_return out;
}

net::awaitable<reconcile_outcome> smtp_connector::reconcile(state::action a) {
    // SMTP cannot be asked whether a message was accepted earlier: recorded as sent, not resent.
    co_return email::unknown_send_outcome(provider, a);
}

}  // namespace billsync::connectors::smtp
