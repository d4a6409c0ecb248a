#include "connectors/twilio/twilio_connector.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <nlohmann/json.hpp>

#include "connectors/twilio/twilio_kind.hpp"
#include "connectors/twilio/twilio_signature.hpp"
#include "mappings/model.hpp"
#include "mappings/twilio/twilio_mapping.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"
#include "util/redact.hpp"

namespace billsync::connectors::twilio {

namespace {

using json = nlohmann::json;

constexpr std::string_view vendor = "twilio";
constexpr std::string_view send_kind = "sms.send";
constexpr std::string_view suppression_type = "suppression";
using mappings::twilio::opted_out_code;
// A listing longer than this many pages is not searched to the end: undecided.
constexpr int max_pages = 50;

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    for (const auto& [name, value] : fields) {
        out += out.empty() ? "" : "&";
        out += http::percent_encode(name);
        out += '=';
        out += http::percent_encode(value);
    }
    return out;
}

const std::string* param(const form_params& p, std::string_view name) {
    for (const auto& [k, v] : p) {
        if (k == name) {
            return &v;
        }
    }
    return nullptr;
}

std::string param_or_empty(const form_params& p, std::string_view name) {
    const auto* v = param(p, name);
    return v == nullptr ? std::string() : *v;
}

// Twilio's error body: {"code":…,"message":…,"more_info":…,"status":…}.
struct twilio_error {
    int code = 0;
    std::string message;
};

twilio_error parse_error(const http_result& r) {
    twilio_error e;
    const auto j = json::parse(r.response.body, nullptr, false);
    if (j.is_object()) {
        if (const auto it = j.find("code"); it != j.end() && it->is_number_integer()) {
            e.code = it->get<int>();
        }
        if (const auto it = j.find("message"); it != j.end() && it->is_string()) {
            e.message = it->get<std::string>();
        }
    }
    return e;
}

// The shared conditions, refined by Twilio's codes (twilio.md, "Error bodies").
std::optional<call_error> classify_twilio(const http_result& r) {
    auto base = classify(r);
    if (!base || !r.ok()) {
        return base;
    }
    const auto e = parse_error(r);
    if (e.code == 20429 || r.response.status == 429) {
        base->cond = condition::rate_limited;
    } else if (e.code == opted_out_code) {
        base->cond = condition::permanent;
    } else if (e.code == 20404) {
        base->cond = condition::not_found;
    } else if (r.response.status == 401 || r.response.status == 403) {
        // Account SID / Auth Token wrong: no token to refresh, the operator must fix it.
        base->cond = condition::auth_revoked;
    }
    if (e.code != 0) {
        base->message = fmt::format(
            "twilio error {}: {} (http {})", e.code, util::redact(e.message), r.response.status);
    }
    return base;
}

std::string basic_auth(std::string_view user, std::string_view password) {
    return "Basic " + util::base64_encode(std::string(user) + ":" + std::string(password));
}

// Twilio's "Mon, 05 Jan 2026 09:00:00 +0000" (date_created); nullopt when absent or malformed.
std::optional<util::instant> rfc2822_instant(const json& msg, const char* key) {
    if (!msg.contains(key) || !msg[key].is_string()) {
        return std::nullopt;
    }
    const auto text = msg[key].get<std::string>();
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S %z", &tm);
    if (end == nullptr || *end != '\0') {
        return std::nullopt;
    }
    const auto offset = tm.tm_gmtoff;
    const auto secs = ::timegm(&tm);
    if (secs == -1) {
        return std::nullopt;
    }
    return util::instant(std::chrono::seconds(secs - offset));
}

// The query of the request as the intake stored it with the event (":target" in headers_json).
std::string stored_query_param(std::string_view headers_json, std::string_view name) {
    const auto j = json::parse(headers_json, nullptr, false);
    if (!j.is_object()) {
        return {};
    }
    const auto target = j.value(":target", std::string());
    const auto q = target.find('?');
    if (q == std::string::npos) {
        return {};
    }
    const auto query = std::string_view(target).substr(q + 1);
    // A form-style decode: the URL was built with percent_encode, but '+' may appear too.
    std::string raw;
    for (std::string_view rest = query; !rest.empty();) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            raw = std::string(eq == std::string_view::npos ? std::string_view()
                                                           : pair.substr(eq + 1));
            break;
        }
    }
    auto decoded = parse_form("v=" + raw);
    if (!decoded || decoded->empty()) {
        return {};
    }
    return decoded->front().second;
}

}  // namespace

// --- free functions ---------------------------------------------------------------------------

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    if (!s.base_url.empty()) {
        out.base_url = s.base_url;
    }
    if (const auto* v = s.value("account_sid")) {
        out.account_sid = *v;
    }
    if (const auto* secret = s.find_secret("auth_token")) {
        out.auth_token = secret->reveal();
    }
    if (const auto* v = s.value("from")) {
        out.from = *v;
    }
    if (const auto* v = s.value("messaging_service_sid")) {
        out.messaging_service_sid = *v;
    }
    if (const auto* v = s.value("public_url")) {
        out.public_url = *v;
    }
    return out;
}

bool is_suppressed(const state::store& s, std::string_view e164) {
    auto row = state::get_entity(s, suppression_type, "sms:" + std::string(e164));
    if (!row.ok() || !row.value) {
        return false;
    }
    const auto j = json::parse(*row.value, nullptr, false);
    return j.is_object() && j.value("opted_out", false);
}

// --- the connector ----------------------------------------------------------------------------

struct twilio_connector::sms_request {
    std::string to;
    std::string body;
    std::string delivery_id;
};

struct twilio_connector::lookup_result {
    reconcile_outcome::kind k = reconcile_outcome::kind::undecided;
    std::string sid;
    std::string status;
    std::string error;
};

namespace {

// Parses an "sms.send" payload; an error message when it cannot be sent.
std::string parse_sms(std::string_view payload,
                      std::string& to,
                      std::string& body,
                      std::string& delivery_id) {
    const auto j = json::parse(payload, nullptr, false);
    if (!j.is_object()) {
        return "payload is not a JSON object";
    }
    const auto text = [&j](const char* key) {
        const auto it = j.find(key);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto e164 = mappings::normalize_e164(text("to"));
    if (!e164) {
        return "\"to\" is not an E.164 number";
    }
    to = std::move(*e164);
    body = text("body");
    delivery_id = text("delivery_id");
    if (body.empty()) {
        return "\"body\" is missing";
    }
    if (delivery_id.empty()) {
        return "\"delivery_id\" is missing";
    }
    return {};
}

}  // namespace

std::string twilio_connector::parse_action(const state::action& a, sms_request& m) {
    if (a.kind != send_kind) {
        return fmt::format("unknown action kind '{}'", a.kind);
    }
    if (auto problem = parse_sms(a.payload, m.to, m.body, m.delivery_id); !problem.empty()) {
        return "invalid sms.send payload: " + problem;
    }
    return {};
}

twilio_connector::twilio_connector(settings s)
    : settings_(std::move(s)), limiter_(settings_.time.now ? settings_.time : real_time()) {
    if (!settings_.time.now) {
        settings_.time = real_time();
    }
    if (!settings_.now) {
        settings_.now = [] {
            return std::chrono::time_point_cast<util::duration>(std::chrono::system_clock::now());
        };
    }
    // The Auth Token must never reach a log, whatever logs it.
    util::register_secret(settings_.auth_token);
    limiter_.set_limits(std::string(vendor), rate_limits());
}

twilio_connector::~twilio_connector() = default;

std::string twilio_connector::status_callback_url(std::string_view delivery_id) const {
    return request_url(
        settings_.public_url,
        fmt::format(
            "/webhooks/{}/status?delivery={}", settings_.name, http::percent_encode(delivery_id)));
}

net::awaitable<https_client*> twilio_connector::client() {
    auto ex = co_await net::this_coro::executor;
    std::lock_guard lock(client_mutex_);
    if (!client_) {
        client_ = std::make_unique<https_client>(ex, settings_.client);
    }
    co_return client_.get();
}

http_request twilio_connector::authorized(std::string method, std::string url) const {
    http_request req;
    req.method = std::move(method);
    req.url = std::move(url);
    req.headers = {{"Authorization", basic_auth(settings_.account_sid, settings_.auth_token)},
                   {"Accept", "application/json"}};
    return req;
}

std::vector<mappings::change> twilio_connector::sent_effects(const sms_request& m,
                                                             const std::string& sid,
                                                             const std::string& status) const {
    return {mappings::make_change(mappings::twilio::sent_status(m.delivery_id, sid, m.to, status),
                                  1,
                                  mappings::change::op::created,
                                  settings_.name)};
}

// --- webhooks ---------------------------------------------------------------------------------

verify_result twilio_connector::verify(const http::request& req) const {
    verify_result r;
    const auto signature = req.header_value("X-Twilio-Signature");
    if (signature.empty()) {
        r.reason = "missing X-Twilio-Signature header";
        return r;
    }
    const auto url = request_url(settings_.public_url, req.target);
    if (http::query_param(req.query, "bodySHA256").empty()) {
        const auto params = parse_form(req.body);
        if (!params) {
            r.reason = "body is not a well-formed form";
            return r;
        }
        if (!validate_form(settings_.auth_token, url, *params, signature)) {
            r.reason = "signature mismatch";
            return r;
        }
        const auto sid = param_or_empty(*params, "MessageSid");
        const auto status = param_or_empty(*params, "MessageStatus");
        if (!sid.empty()) {
            r.dedup_key = req.path.ends_with("/status") ? fmt::format("status:{}:{}", sid, status)
                                                        : "sms:" + sid;
        }
    } else if (!validate_json(settings_.auth_token, url, req.body, signature)) {
        r.reason = "signature or body hash mismatch";
        return r;
    }
    if (r.dedup_key.empty()) {
        r.dedup_key = "sha256:" + util::hex_encode(util::sha256(req.body));
    }
    r.accepted = true;
    return r;
}

std::string twilio_connector::check_payload(std::string_view body) const {
    const auto params = parse_form(body);
    if (!params) {
        return "body is not a well-formed form";
    }
    if (param_or_empty(*params, "MessageSid").empty()) {
        return "MessageSid is missing";
    }
    if (param(*params, "MessageStatus") != nullptr) {
        if (param_or_empty(*params, "MessageStatus").empty()) {
            return "MessageStatus is empty";
        }
        return {};
    }
    if (param_or_empty(*params, "From").empty() || param_or_empty(*params, "To").empty()) {
        return "From and To are required";
    }
    return {};
}

state::result<std::vector<mappings::change>> twilio_connector::process(const state::inbox_event& e,
                                                                       const state::store& s,
                                                                       state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    const auto params = parse_form(e.body);
    if (!params) {
        return result_t::failure(state::status::failure("body is not a well-formed form"));
    }
    const auto at = util::format_rfc3339(e.received_at);
    std::string error;
    std::optional<std::vector<mappings::entity>> entities;
    if (e.kind == "status") {
        entities = mappings::twilio::map_status(
            *params, stored_query_param(e.headers_json, "delivery"), at, error);
    } else if (e.kind == "sms" || e.kind.empty()) {
        entities = mappings::twilio::map_inbound(*params, at, error);
    } else {
        return result_t::failure(
            state::status::failure("unknown Twilio webhook kind '" + e.kind + "'"));
    }
    if (!entities) {
        return result_t::failure(state::status::failure(error));
    }
    std::vector<mappings::change> out;
    for (auto& entity : *entities) {
        auto applied = state::apply(s, b, settings_.name, std::move(entity));
        if (!applied.ok()) {
            return result_t::failure(applied.st);
        }
        if (!applied.value) {
            continue;
        }
        if (const auto* sup = applied.value->as<mappings::suppression>(); sup && sup->opted_out) {
            ++opt_outs_;
        }
        if (const auto* m = applied.value->as<mappings::message_status>(); m && m->failed) {
            ++failures_;
        }
        out.push_back(std::move(*applied.value));
    }
    return {state::status::success(), std::move(out)};
}

// --- actions ----------------------------------------------------------------------------------

namespace {

// When the action's side effect first started; nullopt for actions stored before it was kept.
std::optional<util::instant> first_attempt_of(const state::action& a) {
    if (a.first_attempt_at == util::instant{}) {
        return std::nullopt;
    }
    return a.first_attempt_at;
}

}  // namespace

net::awaitable<twilio_connector::lookup_result> twilio_connector::look_up(
    sms_request m, std::optional<util::instant> first_attempt) {
    lookup_result out;
    auto* c = co_await client();
    // By To and sender, newest first, without a DateSent filter: a queued message has no
    // date_sent yet. The look-up goes back to the first attempt (minus a margin for clock skew),
    // however long ago that was, and stops at the first older message.
    std::string url = fmt::format("{}/2010-04-01/Accounts/{}/Messages.json?To={}&PageSize={}",
                                  settings_.base_url,
                                  http::percent_encode(settings_.account_sid),
                                  http::percent_encode(m.to),
                                  settings_.page_size);
    if (!settings_.from.empty()) {
        url += "&From=" + http::percent_encode(settings_.from);
    }
    const auto floor = first_attempt
                           ? std::optional<util::instant>(*first_attempt - settings_.lookup_margin)
                           : std::nullopt;
    const auto not_found = [&] {
        // Twilio may list a message a little after creating it: a young attempt not found yet
        // stays undecided rather than being sent again.
        if (first_attempt && settings_.now() - *first_attempt < settings_.lookup_settle) {
            out.error = "not listed yet; the attempt is younger than the settle time";
            return;
        }
        out.k = reconcile_outcome::kind::absent;
    };
    for (int page = 0; page < max_pages; ++page) {
        retry_deps deps;
        deps.send = sender(*c);
        deps.time = settings_.time;
        deps.classify = classify_twilio;
        auto res =
            co_await send_with_retry(authorized("GET", url), settings_.read_retry, std::move(deps));
        if (!res.ok()) {
            out.error = "listing messages failed: " + res.error->message;
            co_return out;
        }
        const auto j = json::parse(res.last.response.body, nullptr, false);
        if (!j.is_object() || !j.contains("messages") || !j["messages"].is_array()) {
            out.error = "listing messages: unexpected response body";
            co_return out;
        }
        bool older = false;
        for (const auto& msg : j["messages"]) {
            if (!msg.is_object()) {
                continue;
            }
            if (const auto created = rfc2822_instant(msg, "date_created");
                floor && created && *created < *floor) {
                older = true;  // newest first: everything after this is older still
                break;
            }
            if (!msg.contains("body") || msg["body"] != m.body) {
                continue;
            }
            const auto mss = msg.value("messaging_service_sid", json()).is_string()
                                 ? msg["messaging_service_sid"].get<std::string>()
                                 : std::string();
            const auto sent_from = msg.value("from", json()).is_string()
                                       ? msg["from"].get<std::string>()
                                       : std::string();
            const bool sender_matches = settings_.from.empty()
                                            ? mss == settings_.messaging_service_sid
                                            : sent_from == settings_.from;
            if (!sender_matches) {
                continue;
            }
            out.k = reconcile_outcome::kind::happened;
            out.sid = msg.value("sid", json()).is_string() ? msg["sid"].get<std::string>() : "";
            out.status =
                msg.value("status", json()).is_string() ? msg["status"].get<std::string>() : "";
            co_return out;
        }
        const auto next = j.value("next_page_uri", json());
        if (older || !next.is_string() || next.get<std::string>().empty()) {
            not_found();
            co_return out;
        }
        url = settings_.base_url + next.get<std::string>();
    }
    out.error = fmt::format("listing messages: more than {} pages", max_pages);
    co_return out;
}

net::awaitable<action_outcome> twilio_connector::perform(state::action a) {
    action_outcome out;
    sms_request m;
    if (auto problem = parse_action(a, m); !problem.empty()) {
        out.k = action_outcome::kind::permanent;
        out.detail = std::move(problem);
        co_return out;
    }
    // An earlier attempt may have reached Twilio (no idempotency key): look before resending.
    if (a.attempts > 0) {
        auto found = co_await look_up(m, first_attempt_of(a));
        if (found.k == reconcile_outcome::kind::happened) {
            out.k = action_outcome::kind::done;
            out.detail = found.sid;
            out.effects = sent_effects(m, found.sid, found.status);
            co_return out;
        }
        if (found.k == reconcile_outcome::kind::undecided) {
            out.k = action_outcome::kind::retry;
            out.detail = found.error;
            co_return out;
        }
    }

    std::vector<std::pair<std::string, std::string>> form{{"To", m.to}};
    if (!settings_.from.empty()) {
        form.emplace_back("From", settings_.from);
    } else {
        form.emplace_back("MessagingServiceSid", settings_.messaging_service_sid);
    }
    form.emplace_back("Body", m.body);
    form.emplace_back("StatusCallback", status_callback_url(m.delivery_id));
    auto req = authorized("POST",
                          fmt::format("{}/2010-04-01/Accounts/{}/Messages.json",
                                      settings_.base_url,
                                      http::percent_encode(settings_.account_sid)));
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.body = form_encode(form);
    // Not marked reconcilable: the client must not resend it on its own (not even on a pooled
    // connection found closed), since a resend is decided only after a look-up (above).

    auto* c = co_await client();
    auto permit = co_await limiter_.acquire(std::string(vendor), settings_.account_sid);
    const auto res = co_await c->send(std::move(req));
    permit.release();
    if (res.ok()) {
        limiter_.observe(std::string(vendor), settings_.account_sid, res.response);
    }
    const auto error = classify_twilio(res);
    if (!error) {
        const auto j = json::parse(res.response.body, nullptr, false);
        const auto sid = j.is_object() ? j.value("sid", std::string()) : std::string();
        const auto status = j.is_object() ? j.value("status", std::string("queued")) : "queued";
        ++sends_;
        out.k = action_outcome::kind::done;
        out.detail = sid;
        out.effects = sent_effects(m, sid, status);
        co_return out;
    }
    out.detail = error->message.empty() ? fmt::format("http {}", error->status) : error->message;
    if (error->cond == condition::rate_limited || error->cond == condition::retryable) {
        out.k = action_outcome::kind::retry;
        if (error->retry_after) {
            out.retry_after = std::chrono::ceil<std::chrono::seconds>(*error->retry_after);
        }
        co_return out;
    }
    ++failures_;
    out.k = action_outcome::kind::permanent;
    if (res.ok() && parse_error(res).code == opted_out_code) {
        ++opt_outs_;
        out.writes.emplace_back(mappings::twilio::sms_suppression(
            m.to, true, std::to_string(opted_out_code), util::format_rfc3339(settings_.now())));
    }
    co_return out;
}

net::awaitable<reconcile_outcome> twilio_connector::reconcile(state::action a) {
    reconcile_outcome out;
    sms_request m;
    if (auto problem = parse_action(a, m); !problem.empty()) {
        // It cannot have been sent: perform() refuses it, and the retry dead-letters it.
        out.k = reconcile_outcome::kind::absent;
        out.detail = std::move(problem);
        co_return out;
    }
    auto found = co_await look_up(m, first_attempt_of(a));
    out.k = found.k;
    if (found.k == reconcile_outcome::kind::happened) {
        out.detail = found.sid;
        out.effects = sent_effects(m, found.sid, found.status);
    } else {
        out.detail = found.error;
    }
    co_return out;
}

std::string twilio_connector::status_json() const {
    return json{
        {"sends", sends_.load()}, {"failures", failures_.load()}, {"opt_outs", opt_outs_.load()}}
        .dump();
}

}  // namespace billsync::connectors::twilio
