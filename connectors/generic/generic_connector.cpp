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

std::optional<std::chrono::seconds> retry_after_of(const http_response& r) {
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

net::awaitable<https_client*> generic_connector::client() {
    auto ex = co_await net::this_coro::executor;
    if (!client_) {
        client_ = std::make_unique<https_client>(ex, settings_.client);
    }
    co_return client_.get();
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
    if (!action_url_) {
        out.k = action_outcome::kind::permanent;
        out.detail = "action_url is not an absolute http(s) URL";
        co_return out;
    }
    http_request req;
    req.method = "POST";
    req.url = settings_.action_url;
    req.headers = {{"Idempotency-Key", a.id},
                   {"Content-Type", "application/json"},
                   {"X-Billsync-Action", a.kind}};
    req.body = a.payload;
    req.idempotency_key = a.id;
    req.timeout = settings_.timeout;
    auto* c = co_await client();
    const auto res = co_await c->send(std::move(req));
    const auto status = res.ok() ? res.response.status : 0U;
    if (status >= 200 && status < 300) {
        out.k = action_outcome::kind::done;
        out.detail = fmt::format("http {}", status);
    } else if (status == 0 || status == 429 || status >= 500 || status == 408) {
        out.k = action_outcome::kind::retry;
        out.detail = status == 0 ? res.error : fmt::format("http {}", status);
        if (status != 0) {
            out.retry_after = retry_after_of(res.response);
        }
    } else {
        out.k = action_outcome::kind::permanent;
        out.detail = fmt::format("http {}", status);
    }
    co_return out;
}

net::awaitable<reconcile_outcome> generic_connector::reconcile(state::action a) {
    reconcile_outcome out;
    if (!action_url_) {
        out.k = reconcile_outcome::kind::undecided;
        out.detail = "action_url is not an absolute http(s) URL";
        co_return out;
    }
    const auto sep = settings_.action_url.find('?') == std::string::npos ? '?' : '&';
    http_request req;
    req.url = fmt::format(
        "{}{}idempotency_key={}", settings_.action_url, sep, http::percent_encode(a.id));
    req.timeout = settings_.timeout;
    auto* c = co_await client();
    const auto res = co_await c->send(std::move(req));
    const auto status = res.ok() ? res.response.status : 0U;
    if (status == 200) {
        out.k = reconcile_outcome::kind::happened;
    } else if (status == 404) {
        out.k = reconcile_outcome::kind::absent;
    } else {
        out.k = reconcile_outcome::kind::undecided;
        out.detail = status == 0 ? res.error : fmt::format("http {}", status);
    }
    co_return out;
}

}  // namespace billsync::connectors::generic
