#include "connectors/sendgrid/sendgrid_connector.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "connectors/runtime/https_client.hpp"
#include "http/multipart.hpp"
#include "mappings/json_depth.hpp"
#include "mappings/sendgrid/sendgrid_mapping.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::sendgrid {

namespace {

using json = nlohmann::json;
namespace ms = mappings::sendgrid;
using changes_result = state::result<std::vector<mappings::change>>;

constexpr std::string_view provider = "sendgrid";
constexpr std::string_view seen_type = seen_event_type;

std::string sha256_hex(std::string_view body) { return util::hex_encode(util::sha256(body)); }

// "events" or "inbound" for /webhooks/<name>/<kind>; empty otherwise.
std::string route_kind(const std::string& name, std::string_view path) {
    const auto prefix = "/webhooks/" + name + "/";
    if (!path.starts_with(prefix)) {
        return {};
    }
    return std::string(path.substr(prefix.size()));
}

std::optional<std::int64_t> header_int(const http_response& r, std::string_view name) {
    const auto v = r.header_value(name);
    std::int64_t n = 0;
    const auto* end = v.data() + v.size();
    if (v.empty() || std::from_chars(v.data(), end, n).ptr != end) {
        return std::nullopt;
    }
    return n;
}

// SendGrid's errors[] messages, joined; the status alone when the body has none.
std::string error_messages(const http_response& r) {
    const auto j = json::parse(r.body, nullptr, false);
    std::string out;
    if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
        for (const auto& e : j["errors"]) {
            if (!e.is_object() || !e.contains("message") || !e["message"].is_string()) {
                continue;
            }
            out += out.empty() ? "" : "; ";
            if (e.contains("field") && e["field"].is_string()) {
                out += e["field"].get<std::string>() + ": ";
            }
            out += e["message"].get<std::string>();
        }
    }
    return out.empty() ? fmt::format("http {}", r.status)
                       : fmt::format("http {}: {}", r.status, out);
}

}  // namespace

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    out.base_url = s.base_url;
    if (const auto* k = s.find_secret("api_key")) {
        out.api_key = k->reveal();
    }
    if (const auto* k = s.find_secret("inbound_secret")) {
        out.inbound_secret = k->reveal();
    }
    if (const auto* v = s.value("from_email")) {
        out.from_email = *v;
    }
    if (const auto* v = s.value("from_name")) {
        out.from_name = *v;
    }
    if (const auto* v = s.value("event_webhook_public_key")) {
        out.event_webhook_public_key = *v;
    }
    if (const auto* v = s.value("event_max_age_s")) {
        std::int64_t secs = 0;
        if (std::from_chars(v->data(), v->data() + v->size(), secs).ec == std::errc()) {
            out.event_max_age = std::chrono::seconds(secs);  // bounded by the schema
        }
    }
    return out;
}

sendgrid_connector::sendgrid_connector(settings s) : settings_(std::move(s)) {
    while (settings_.base_url.ends_with('/')) {
        settings_.base_url.pop_back();
    }
    if (!settings_.event_webhook_public_key.empty()) {
        verifier_ =
            event_verifier::from_base64_der(settings_.event_webhook_public_key, &verifier_error_);
    } else {
        verifier_error_ = "event_webhook_public_key is not configured";
    }
}

std::chrono::system_clock::time_point sendgrid_connector::wall_now() const {
    return settings_.wall_clock ? settings_.wall_clock() : std::chrono::system_clock::now();
}

// --- webhooks ----------------------------------------------------------------------------------

verify_result sendgrid_connector::verify(const http::request& req) const {
    verify_result r;
    const auto kind = route_kind(settings_.name, req.path);
    if (kind == "events") {
        if (!verifier_) {
            r.reason = "cannot verify events: " + verifier_error_;
            return r;
        }
        const auto signature = req.header_value(signature_header);
        const auto timestamp = req.header_value(timestamp_header);
        if (signature.empty() || timestamp.empty()) {
            r.reason = fmt::format("missing {} or {} header", signature_header, timestamp_header);
            return r;
        }
        if (!verifier_->verify(timestamp, req.body, signature)) {
            r.reason = "signature mismatch";
            return r;
        }
        // Replays: SendGrid documents no window, so the tolerance covers its retries (default 3
        // days); dedup rows alone stop protecting once they are pruned.
        std::int64_t signed_at = 0;
        const auto* end = timestamp.data() + timestamp.size();
        if (std::from_chars(timestamp.data(), end, signed_at).ptr != end) {
            r.reason = "signed timestamp is not a number";
            return r;
        }
        const auto age =
            std::chrono::duration_cast<std::chrono::seconds>(wall_now().time_since_epoch()) -
            std::chrono::seconds(signed_at);
        if (age > settings_.event_max_age || age < -std::chrono::minutes(5)) {
            r.reason = fmt::format("signed timestamp is {} s old, outside the tolerance of {} s",
                                   age.count(),
                                   settings_.event_max_age.count());
            return r;
        }
        r.accepted = true;
        r.dedup_key = "events:sha256:" + sha256_hex(req.body);
        return r;
    }
    if (kind == "inbound") {
        if (settings_.inbound_secret.empty()) {
            r.reason = "cannot authenticate inbound mail: inbound_secret is not configured";
            return r;
        }
        // Inbound Parse is unsigned: the configured URL carries the secret, as ?token=<secret> or
        // as the password of basic auth (https://parse:<secret>@host/...).
        std::string given = http::query_param(req.query, "token");
        if (given.empty()) {
            const auto auth = req.header_value("Authorization");
            if (auth.size() > 6 && http::iequals(auth.substr(0, 6), "basic ")) {
                if (const auto decoded = util::base64_decode(auth.substr(6))) {
                    const auto colon = decoded->find(':');
                    if (colon != std::string::npos) {
                        given = decoded->substr(colon + 1);
                    }
                }
            }
        }
        if (given.empty()) {
            r.reason = "missing inbound token";
            return r;
        }
        if (!util::constant_time_equal(given, settings_.inbound_secret)) {
            r.reason = "inbound token mismatch";
            return r;
        }
        r.accepted = true;
        r.dedup_key = "inbound:sha256:" + sha256_hex(req.body);
        return r;
    }
    r.reason = "unknown route (expected /events or /inbound)";
    return r;
}

std::string sendgrid_connector::check_payload(std::string_view body) const {
    if (const auto boundary = http::leading_boundary(body)) {
        const auto form = http::parse_multipart(body, *boundary);
        if (!form.ok()) {
            return "malformed multipart/form-data: " + form.error;
        }
        if (form.find("email") == nullptr &&
            (form.find("from") == nullptr || form.find("to") == nullptr)) {
            return "inbound mail without 'from' and 'to' (or a raw 'email') field";
        }
        return {};
    }
    if (auto deep = mappings::json_depth_error(body); !deep.empty()) {
        return deep;
    }
    const auto j = json::parse(body, nullptr, false);
    if (j.is_discarded()) {
        return "body is neither JSON nor multipart/form-data";
    }
    if (!j.is_array()) {
        return "event body is not a JSON array";
    }
    for (const auto& ev : j) {
        if (!ev.is_object() || !ev.contains("event") || !ev["event"].is_string()) {
            return "every event must be an object with a string \"event\"";
        }
    }
    return {};
}

changes_result sendgrid_connector::process(const state::inbox_event& e,
                                           const state::store& s,
                                           state::batch& b) {
    if (e.kind == "events") {
        return process_events(e, s, b);
    }
    if (e.kind == "inbound") {
        return process_inbound(e, s, b);
    }
    return changes_result::failure(
        state::status::failure("unknown sendgrid event kind '" + e.kind + "'"));
}

std::optional<util::instant> seen_event_time(std::string_view row) {
    const auto j = json::parse(row, nullptr, false);
    if (!j.is_object()) {
        return std::nullopt;
    }
    for (const char* key : {"seen", "at"}) {
        util::instant t{};
        if (j.contains(key) && j[key].is_string() &&
            util::parse_rfc3339(j[key].get<std::string>(), t)) {
            return t;
        }
    }
    return std::nullopt;
}

changes_result sendgrid_connector::process_events(const state::inbox_event& e,
                                                  const state::store& s,
                                                  state::batch& b) {
    std::string error;
    auto events = ms::map_events(e.body, error);
    if (!events) {
        return changes_result::failure(state::status::failure(error));
    }
    std::vector<mappings::change> out;
    for (auto& ev : *events) {
        bool seen = false;
        for (const auto& k : ev.dedup_keys) {
            auto row = state::get_entity(s, b, seen_type, k);
            if (!row.ok()) {
                return changes_result::failure(row.st);
            }
            seen = seen || row.value.has_value();
        }
        if (seen) {
            continue;
        }
        const json seen_row{
            {"event", ev.name}, {"at", ev.at}, {"seen", util::format_rfc3339(e.received_at)}};
        for (const auto& k : ev.dedup_keys) {
            state::put_entity(b, seen_type, k, seen_row.dump());
        }
        for (auto& entity : ev.entities) {
            auto applied = state::apply(s, b, settings_.name, std::move(entity));
            if (!applied.ok()) {
                return changes_result::failure(applied.st);
            }
            if (applied.value) {
                out.push_back(std::move(*applied.value));
            }
        }
    }
    return {state::status::success(), std::move(out)};
}

changes_result sendgrid_connector::process_inbound(const state::inbox_event& e,
                                                   const state::store& s,
                                                   state::batch& b) {
    std::optional<std::string> boundary;
    const auto headers = json::parse(e.headers_json, nullptr, false);
    if (headers.is_object() && headers.contains("content-type") &&
        headers["content-type"].is_string()) {
        boundary = http::multipart_boundary(headers["content-type"].get<std::string>());
    }
    if (!boundary) {
        boundary = http::leading_boundary(e.body);
    }
    if (!boundary) {
        return changes_result::failure(state::status::failure("inbound mail is not multipart"));
    }
    const auto form = http::parse_multipart(e.body, *boundary);
    if (!form.ok()) {
        return changes_result::failure(
            state::status::failure("malformed multipart/form-data: " + form.error));
    }
    const auto field = [&form](std::string_view name) -> std::string {
        const auto* p = form.find(name);
        return p == nullptr ? std::string() : p->data;
    };
    const ms::inbound_parts parts{.from = field("from"),
                                  .to = field("to"),
                                  .subject = field("subject"),
                                  .text = field("text"),
                                  .headers = field("headers"),
                                  .email = field("email"),
                                  .spf = field("SPF"),
                                  .dkim = field("dkim")};
    auto applied = state::apply(s, b, settings_.name, ms::map_inbound(parts, e.body));
    if (!applied.ok()) {
        return changes_result::failure(applied.st);
    }
    std::vector<mappings::change> out;
    if (applied.value) {
        out.push_back(std::move(*applied.value));
    }
    return {state::status::success(), std::move(out)};
}

// --- actions -----------------------------------------------------------------------------------

std::string sendgrid_connector::mail_send_body(const email::email_message& m) const {
    json to{{"email", m.to}};
    if (!m.to_name.empty()) {
        to["name"] = m.to_name;
    }
    json from{{"email", settings_.from_email}};
    if (!settings_.from_name.empty()) {
        from["name"] = settings_.from_name;
    }
    json content = json::array({{{"type", "text/plain"}, {"value", m.text}}});
    if (!m.html.empty()) {
        content.push_back({{"type", "text/html"}, {"value", m.html}});
    }
    json body{{"personalizations", json::array({{{"to", json::array({to})}}})},
              {"from", from},
              {"subject", m.subject},
              {"content", content},
              {"custom_args", {{"billsync_delivery_id", m.delivery_id}}}};
    if (!m.reply_to.empty()) {
        body["reply_to"] = {{"email", m.reply_to}};
    }
    if (!m.headers.empty()) {
        json h = json::object();
        for (const auto& [name, value] : m.headers) {
            h[name] = value;
        }
        body["headers"] = h;
    }
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

net::awaitable<action_outcome> sendgrid_connector::perform(state::action a) {
    action_outcome out;
    std::string error;
    const auto message = email::parse_send_action(a, provider, error);
    if (!message) {
        out.k = action_outcome::kind::permanent;
        out.detail = error;
        co_return out;
    }
    const auto now = wall_now();
    {
        std::lock_guard lock(mutex_);
        if (paused_until_ && *paused_until_ > now) {
            out.k = action_outcome::kind::retry;
            out.detail = "paced: the SendGrid rate limit resets later";
            out.retry_after = std::chrono::ceil<std::chrono::seconds>(*paused_until_ - now);
            co_return out;
        }
    }

    http_request req;
    req.method = "POST";
    req.url = settings_.base_url + "/v3/mail/send";
    req.headers = {{"Authorization", "Bearer " + settings_.api_key},
                   {"Content-Type", "application/json"}};
    req.body = mail_send_body(*message);
    // Not reconcilable (Mail Send has no idempotency key and no lookup): the client must never
    // send it a second time on its own, not even on a pooled connection found closed.
    client_settings cs;
    cs.ca_file = settings_.ca_file;
    cs.total_timeout = settings_.timeout;
    cs.log = settings_.log;
    cs.proxy = settings_.proxy;
    // A client per send: no pooled socket outlives the call (mail volume is low).
    https_client client(co_await net::this_coro::executor, std::move(cs));
    const auto r = co_await client.send(std::move(req));
    if (!r.ok()) {
        if (r.request_written) {
            // Timed out or reset after the request went out: SendGrid may have queued it.
            co_return unknown_outcome(a, *message, r.error);
        }
        out.k = action_outcome::kind::retry;  // DNS, connect, TLS: nothing reached SendGrid
        out.detail = r.error;
        co_return out;
    }
    const auto& res = r.response;
    // Pacing: the server's own count and reset (Unix seconds).
    const auto reset = header_int(res, "X-RateLimit-Reset");
    const auto remaining = header_int(res, "X-RateLimit-Remaining");
    const auto reset_at =
        reset ? std::optional(std::chrono::system_clock::time_point(std::chrono::seconds(*reset)))
              : std::nullopt;
    if (reset_at && (res.status == 429 || (remaining && *remaining <= 0))) {
        std::lock_guard lock(mutex_);
        paused_until_ = *reset_at;
    }
    if (res.status >= 200 && res.status < 300) {
        out.k = action_outcome::kind::done;
        out.detail = std::string(res.header_value("X-Message-Id"));
        out.effects.push_back(
            email::accepted_change(settings_.name, message->delivery_id, out.detail));
        if (settings_.log) {
            settings_.log->info("Email accepted connector={} delivery={} message_id={}",
                                settings_.name,
                                message->delivery_id,
                                out.detail);
        }
        co_return out;
    }
    out.detail = error_messages(res);
    if (res.status == 429) {
        out.k = action_outcome::kind::retry;
        const auto wait = reset_at ? std::chrono::ceil<std::chrono::seconds>(*reset_at - now)
                                   : std::chrono::seconds(60);
        out.retry_after = std::max(wait, std::chrono::seconds(1));
    } else if (res.status >= 500 || res.status == 408) {
        // The request was read; whether a 5xx or 408 left the mail queued is not known.
        co_return unknown_outcome(a, *message, out.detail);
    } else {
        out.k = action_outcome::kind::permanent;
    }
    if (settings_.log) {
        settings_.log->warn("Email not accepted connector={} delivery={} status={} detail=\"{}\"",
                            settings_.name,
                            message->delivery_id,
                            res.status,
                            out.detail);
    }
    co_return out;
}

action_outcome sendgrid_connector::unknown_outcome(const state::action& a,
                                                   const email::email_message& m,
                                                   std::string_view why) const {
    if (settings_.log) {
        settings_.log->warn("Email outcome unknown connector={} delivery={} detail=\"{}\"",
                            settings_.name,
                            m.delivery_id,
                            why);
    }
    return email::unknown_send_result(provider, a, why);
}

net::awaitable<reconcile_outcome> sendgrid_connector::reconcile(state::action a) {
    // Mail Send has no idempotency key and no lookup by custom_args (sendgrid.md, "Idempotency"):
    // an unknown outcome is recorded as sent, never resent. Events carrying the delivery id still
    // arrive and settle the real status.
    co_return email::unknown_send_outcome(provider, a);
}

std::string sendgrid_connector::status_json() const {
    std::lock_guard lock(mutex_);
    json j{{"events_verifiable", verifier_.has_value()},
           {"inbound_protected", !settings_.inbound_secret.empty()}};
    if (paused_until_) {
        j["paused_until_unix"] =
            std::chrono::duration_cast<std::chrono::seconds>(paused_until_->time_since_epoch())
                .count();
    }
    return j.dump();
}

}  // namespace billsync::connectors::sendgrid
