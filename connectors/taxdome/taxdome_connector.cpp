#include "connectors/taxdome/taxdome_connector.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "mappings/taxdome/taxdome_mapping.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::taxdome {

namespace mt = mappings::taxdome;

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    if (const auto* secret = s.find_secret("relay_secret")) {
        out.relay_secret = secret->reveal();
    }
    if (const auto* secret = s.find_secret("relay_secret_previous")) {
        out.relay_secret_previous = secret->reveal();
    }
    if (const auto* v = s.value("relay_max_age_s")) {
        std::int64_t secs = 0;
        if (std::from_chars(v->data(), v->data() + v->size(), secs).ec == std::errc()) {
            out.max_age = std::chrono::seconds(secs);  // bounded by the schema
        }
    }
    if (const auto* v = s.value("default_calling_code")) {
        out.default_calling_code = *v;
    }
    return out;
}

taxdome_connector::taxdome_connector(settings s) : settings_(std::move(s)) {}

std::chrono::system_clock::time_point taxdome_connector::wall_now() const {
    return settings_.wall_clock ? settings_.wall_clock() : std::chrono::system_clock::now();
}

verify_result taxdome_connector::verify(const http::request& req) const {
    verify_result r;
    auto given = req.header_value("Authorization");
    constexpr std::string_view scheme = "Bearer ";
    const auto scheme_matches = [&] {
        for (std::size_t i = 0; i < scheme.size(); ++i) {
            if (std::tolower(static_cast<unsigned char>(given[i])) !=
                std::tolower(static_cast<unsigned char>(scheme[i]))) {
                return false;
            }
        }
        return true;
    };
    if (given.size() <= scheme.size() || !scheme_matches()) {
        r.reason = "missing bearer secret";
        return r;
    }
    given.remove_prefix(scheme.size());
    // Both comparisons always run, so the time taken says nothing about which secret matched.
    const bool current = util::constant_time_equal(given, settings_.relay_secret);
    const bool previous = !settings_.relay_secret_previous.empty() &&
                          util::constant_time_equal(given, settings_.relay_secret_previous);
    if (settings_.relay_secret.empty() || (!current && !previous)) {
        r.reason = "bearer secret mismatch";
        return r;
    }
    // Authentic. A well-formed relay older than the bound (or from the future) is a replay; a
    // malformed one is accepted here and dead-lettered by check_payload with the field named.
    std::string error;
    if (const auto relay = mt::parse_relay(req.body, error)) {
        const auto age = std::chrono::duration_cast<std::chrono::seconds>(
            wall_now().time_since_epoch() - relay->relayed_at.time_since_epoch());
        if (age > settings_.max_age || age < -std::chrono::minutes(5)) {
            r.reason = fmt::format("relayed_at is outside the accepted window of {} s",
                                   settings_.max_age.count());
            return r;
        }
        // Zapier's retries and duplicates carry the same record, event and time.
        r.accepted = true;
        r.dedup_key = fmt::format(
            "{}:{}:{}", relay->event, relay->id, mappings::format_timestamp(relay->relayed_at));
        return r;
    }
    r.accepted = true;
    r.dedup_key = "sha256:" + util::hex_encode(util::sha256(req.body));
    return r;
}

std::string taxdome_connector::check_payload(std::string_view body) const {
    std::string error;
    if (!mt::parse_relay(body, error)) {
        return "TaxDome relay: " + error + "; fix the Zap (connectors/taxdome/README.md)";
    }
    return {};
}

state::result<std::vector<mappings::change>> taxdome_connector::process(const state::inbox_event& e,
                                                                        const state::store& s,
                                                                        state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    std::string error;
    const auto relay = mt::parse_relay(e.body, error);
    if (!relay) {
        return result_t::failure(state::status::failure("TaxDome relay: " + error));
    }
    const auto ids = state::canonical_ids(s, settings_.name);
    const auto canonical = [&ids](const mappings::source_ref& ref) { return ids("client", ref); };
    auto c = mt::to_client(*relay, settings_.name, canonical, settings_.default_calling_code);
    auto applied = state::apply(s, b, settings_.name, std::move(c));
    if (!applied.ok()) {
        return result_t::failure(applied.st);
    }
    std::vector<mappings::change> out;
    if (applied.value) {
        out.push_back(std::move(*applied.value));
    }
    return {state::status::success(), std::move(out)};
}

net::awaitable<action_outcome> taxdome_connector::perform(state::action a) {
    action_outcome out;
    out.k = action_outcome::kind::permanent;
    out.detail = fmt::format(
        "TaxDome has no API billsync can call; action '{}' cannot be performed there", a.kind);
    co_return out;
}

net::awaitable<reconcile_outcome> taxdome_connector::reconcile(state::action a) {
    reconcile_outcome out;
    out.k = reconcile_outcome::kind::absent;  // nothing is ever sent to TaxDome
    out.detail = fmt::format("TaxDome takes no actions ({})", a.kind);
    co_return out;
}

}  // namespace billsync::connectors::taxdome
