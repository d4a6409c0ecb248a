#include "connectors/generic/generic_connector.hpp"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "http/async_client.hpp"
#include "mappings/generic.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::generic {

namespace {

std::optional<std::chrono::seconds> retry_after_of(const http::simple_response& r) {
    const auto v = r.header_value("Retry-After");
    std::int64_t secs = 0;
    const auto* end = v.data() + v.size();
    if (v.empty() || std::from_chars(v.data(), end, secs).ptr != end || secs < 0) {
        return std::nullopt;
    }
    return std::chrono::seconds(secs);
}

}  // namespace

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    if (const auto* secret = s.find_secret("secret")) {
        out.secret = secret->reveal();
    }
    if (const auto* v = s.value("signature_header")) {
        out.signature_header = *v;
    }
    if (const auto* v = s.value("signature_encoding")) {
        out.base64 = *v == "base64";
    }
    if (const auto* v = s.value("signature_prefix")) {
        out.signature_prefix = *v;
    }
    if (const auto* v = s.value("event_id_header")) {
        out.event_id_header = *v;
    }
    if (const auto* v = s.value("action_url")) {
        out.action_url = *v;
    }
    return out;
}

generic_connector::generic_connector(settings s)
    : settings_(std::move(s)), action_url_(http::parse_url(settings_.action_url)) {}

std::optional<http::outgoing_request> generic_connector::action_request(std::string method) const {
    if (!action_url_ || action_url_->scheme != "http") {
        return std::nullopt;
    }
    http::outgoing_request req;
    req.method = std::move(method);
    req.host = action_url_->host;
    req.port = action_url_->port;
    req.target = action_url_->target;
    req.timeout = settings_.timeout;
    return req;
}

std::string signed_content(std::string_view event_id, std::string_view body) {
    if (event_id.empty()) {
        return std::string(body);
    }
    std::string out(event_id);
    out += '.';
    out += body;
    return out;
}

verify_result generic_connector::verify(const http::request& req) const {
    verify_result r;
    auto given = req.header_value(settings_.signature_header);
    if (given.empty()) {
        r.reason = fmt::format("missing {} header", settings_.signature_header);
        return r;
    }
    if (!given.starts_with(settings_.signature_prefix)) {
        r.reason = "signature prefix mismatch";
        return r;
    }
    given.remove_prefix(settings_.signature_prefix.size());
    // With an event id header, the id is signed with the body ("<id>.<body>"): a captured body
    // replayed under a new id would otherwise pass as a new event and roll the record back.
    const auto id = settings_.event_id_header.empty() ? std::string_view()
                                                      : req.header_value(settings_.event_id_header);
    const auto mac = util::hmac_sha256(settings_.secret, signed_content(id, req.body));
    const auto expected = settings_.base64 ? util::base64_encode(mac) : util::hex_encode(mac);
    // Hex is compared case-insensitively by normalising the sender's text first.
    std::string normalised(given);
    if (!settings_.base64) {
        for (auto& c : normalised) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    if (!util::constant_time_equal(normalised, expected)) {
        r.reason = "signature mismatch";
        return r;
    }
    r.accepted = true;
    if (!id.empty()) {
        r.dedup_key = "id:" + std::string(id);
    }
    if (r.dedup_key.empty()) {
        r.dedup_key = "sha256:" + util::hex_encode(util::sha256(req.body));
    }
    return r;
}

std::string generic_connector::check_payload(std::string_view body) const {
    std::string error;
    if (!mappings::generic::map_record(settings_.name, "check", body, error)) {
        return error;
    }
    return {};
}

state::result<std::vector<mappings::change>> generic_connector::process(const state::inbox_event& e,
                                                                        const state::store& s,
                                                                        state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    std::string error;
    auto rec = mappings::generic::map_record(settings_.name, e.dedup_key, e.body, error);
    if (!rec) {
        return result_t::failure(state::status::failure(error));
    }
    // Versions count real changes: an identical redelivery under another dedup key is a no-op.
    auto applied = state::apply(s, b, settings_.name, std::move(*rec));
    if (!applied.ok()) {
        return result_t::failure(applied.st);
    }
    std::vector<mappings::change> out;
    if (applied.value) {
        out.push_back(std::move(*applied.value));
    }
    return {state::status::success(), std::move(out)};
}

net::awaitable<action_outcome> generic_connector::perform(state::action a) {
    action_outcome out;
    auto req = action_request("POST");
    if (!req) {
        out.k = action_outcome::kind::permanent;
        out.detail = "action_url is not a plain http URL";
        co_return out;
    }
    req->headers = {{"Idempotency-Key", a.id},
                    {"Content-Type", "application/json"},
                    {"X-Billsync-Action", a.kind}};
    req->body = a.payload;
    const auto res = co_await http::async_fetch(std::move(*req));
    if (res.status >= 200 && res.status < 300) {
        out.k = action_outcome::kind::done;
        out.detail = fmt::format("http {}", res.status);
    } else if (res.status == 0 || res.status == 429 || res.status >= 500 || res.status == 408) {
        out.k = action_outcome::kind::retry;
        out.detail = res.status == 0 ? res.error : fmt::format("http {}", res.status);
        out.retry_after = retry_after_of(res);
    } else {
        out.k = action_outcome::kind::permanent;
        out.detail = fmt::format("http {}", res.status);
    }
    co_return out;
}

net::awaitable<reconcile_outcome> generic_connector::reconcile(state::action a) {
    reconcile_outcome out;
    auto req = action_request("GET");
    if (!req) {
        out.k = reconcile_outcome::kind::undecided;
        out.detail = "action_url is not a plain http URL";
        co_return out;
    }
    const auto sep = req->target.find('?') == std::string::npos ? '?' : '&';
    req->target += fmt::format("{}idempotency_key={}", sep, http::percent_encode(a.id));
    const auto res = co_await http::async_fetch(std::move(*req));
    if (res.status == 200) {
        out.k = reconcile_outcome::kind::happened;
    } else if (res.status == 404) {
        out.k = reconcile_outcome::kind::absent;
    } else {
        out.k = reconcile_outcome::kind::undecided;
        out.detail = res.status == 0 ? res.error : fmt::format("http {}", res.status);
    }
    co_return out;
}

}  // namespace billsync::connectors::generic
