#include "connectors/runtime/oauth2.hpp"

#include <openssl/rand.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "http/message.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"
#include "util/redact.hpp"

namespace billsync::connectors::oauth2 {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

template <class... Args>
void log_at(const std::shared_ptr<spdlog::logger>& log,
            spdlog::level::level_enum level,
            spdlog::format_string_t<Args...> fmt,
            Args&&... args) {
    if (log) {
        log->log(level, fmt, std::forward<Args>(args)...);
    }
}

call_error make_error(condition c, std::string message) {
    call_error e;
    e.cond = c;
    e.message = std::move(message);
    return e;
}

std::string instant_text(util::instant t) { return util::format_rfc3339(t); }

util::instant instant_from(const json& j, const char* key) {
    util::instant t{};
    if (j.contains(key) && j[key].is_string()) {
        util::parse_rfc3339(j[key].get<std::string>(), t);
    }
    return t;
}

std::string string_from(const json& j, const char* key) {
    if (j.contains(key) && j[key].is_string()) {
        return j[key].get<std::string>();
    }
    return {};
}

std::optional<std::chrono::seconds> seconds_from(const json& j, const char* key) {
    if (!j.contains(key)) {
        return std::nullopt;
    }
    const auto& v = j[key];
    if (v.is_number_integer()) {
        return std::chrono::seconds(v.get<std::int64_t>());
    }
    if (v.is_string()) {  // some servers send numbers as strings
        try {
            return std::chrono::seconds(std::stoll(v.get<std::string>()));
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    return std::nullopt;
}

}  // namespace

// ---- helpers ----

std::string url_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4U];
            out += hex[c & 15U];
        }
    }
    return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    for (const auto& [k, v] : fields) {
        if (!out.empty()) {
            out += '&';
        }
        out += url_encode(k);
        out += '=';
        out += url_encode(v);
    }
    return out;
}

std::map<std::string, std::string> parse_form(std::string_view text) {
    std::map<std::string, std::string> out;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const auto part = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (part.empty()) {
            continue;
        }
        const auto eq = part.find('=');
        if (eq == std::string_view::npos) {
            out[http::percent_decode(part, true)] = "";
        } else {
            out[http::percent_decode(part.substr(0, eq), true)] =
                http::percent_decode(part.substr(eq + 1), true);
        }
    }
    return out;
}

std::string base64url(std::string_view bytes) {
    std::string s = util::base64_encode(bytes);
    while (!s.empty() && s.back() == '=') {
        s.pop_back();
    }
    for (auto& c : s) {
        if (c == '+') {
            c = '-';
        } else if (c == '/') {
            c = '_';
        }
    }
    return s;
}

std::string random_token(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) !=
        1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return base64url(raw);
}

std::string pkce_challenge_s256(std::string_view verifier) {
    return base64url(util::sha256(verifier));
}

std::string basic_auth(std::string_view client_id, std::string_view client_secret) {
    std::string pair(client_id);
    pair += ':';
    pair += client_secret;
    return "Basic " + util::base64_encode(pair);
}

// ---- token endpoint ----

net::awaitable<token_outcome> request_token(https_client& http,
                                            client_identity client,
                                            std::vector<std::pair<std::string, std::string>> form,
                                            std::chrono::milliseconds timeout) {
    http_request req;
    req.method = "POST";
    req.url = client.token_url;
    if (client.secret_in_body) {
        form.emplace_back("client_id", client.client_id);
        form.emplace_back("client_secret", client.client_secret);
    } else {
        req.headers.push_back(
            {"Authorization", basic_auth(client.client_id, client.client_secret)});
    }
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.headers.push_back({"Accept", "application/json"});
    req.body = form_encode(form);
    req.timeout = timeout;

    token_outcome out;
    const http_result res = co_await http.send(std::move(req));
    if (!res.ok()) {
        out.answered = false;
        out.error = classify(res).value_or(make_error(condition::retryable, "transport failure"));
        co_return out;
    }
    const auto& body = res.response.body;
    const unsigned status = res.response.status;
    const json j = json::parse(body, nullptr, false);
    if (status >= 200 && status < 300) {
        if (j.is_discarded() || !j.is_object() || string_from(j, "access_token").empty()) {
            // The grant may have been used: treat like a lost answer.
            out.answered = false;
            out.error = make_error(condition::retryable,
                                   "token endpoint answered " + std::to_string(status) +
                                       " without a usable token response");
            out.error.status = status;
            co_return out;
        }
        token_response t;
        t.access_token = string_from(j, "access_token");
        t.refresh_token = string_from(j, "refresh_token");
        t.token_type = string_from(j, "token_type");
        t.scope = string_from(j, "scope");
        t.expires_in = seconds_from(j, "expires_in").value_or(std::chrono::seconds(0));
        t.refresh_expires_in = seconds_from(j, "x_refresh_token_expires_in");
        out.tokens = std::move(t);
        out.answered = true;
        co_return out;
    }
    out.answered = true;
    out.error = classify(res).value_or(make_error(condition::permanent, "unexpected status"));
    out.error.status = status;
    if (j.is_object()) {
        out.oauth_error = string_from(j, "error");
    }
    if (out.oauth_error == "invalid_grant") {
        out.error.cond = condition::auth_revoked;
    } else if (out.oauth_error == "invalid_client" || out.oauth_error == "unauthorized_client") {
        out.error.cond = condition::permanent;
    }
    out.error.message = "token endpoint answered " + std::to_string(status) +
                        (out.oauth_error.empty() ? "" : " " + out.oauth_error);
    co_return out;
}

// ---- credential ----

std::string credential::to_json() const {
    json j;
    j["v"] = 1;
    j["id"] = id;
    j["vendor"] = vendor;
    j["account"] = account;
    json ts = json::array();
    for (const auto& t : tenants) {
        ts.push_back({{"id", t.id}, {"name", t.name}, {"type", t.type}});
    }
    j["tenants"] = std::move(ts);
    j["access_token"] = access_token;
    j["access_expires_at"] = instant_text(access_expires_at);
    j["refresh_token"] = refresh_token;
    if (refresh_expires_at) {
        j["refresh_expires_at"] = instant_text(*refresh_expires_at);
    }
    if (!previous_refresh_token.empty()) {
        j["previous_refresh_token"] = previous_refresh_token;
        j["previous_valid_until"] = instant_text(previous_valid_until);
    }
    j["scope"] = scope;
    j["connected_at"] = instant_text(connected_at);
    j["refreshed_at"] = instant_text(refreshed_at);
    if (reconnect_needed) {
        j["reconnect_needed"] = true;
        j["reconnect_reason"] = reconnect_reason;
    }
    return j.dump();
}

std::optional<credential> credential::from_json(std::string_view text, std::string& error) {
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        error = "credential record is not JSON";
        return std::nullopt;
    }
    if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<int>() != 1) {
        error = "credential record has an unknown version";
        return std::nullopt;
    }
    credential c;
    c.id = string_from(j, "id");
    c.vendor = string_from(j, "vendor");
    c.account = string_from(j, "account");
    if (j.contains("tenants") && j["tenants"].is_array()) {
        for (const auto& t : j["tenants"]) {
            if (t.is_object()) {
                c.tenants.push_back(
                    {string_from(t, "id"), string_from(t, "name"), string_from(t, "type")});
            }
        }
    }
    c.access_token = string_from(j, "access_token");
    c.access_expires_at = instant_from(j, "access_expires_at");
    c.refresh_token = string_from(j, "refresh_token");
    if (j.contains("refresh_expires_at")) {
        c.refresh_expires_at = instant_from(j, "refresh_expires_at");
    }
    c.previous_refresh_token = string_from(j, "previous_refresh_token");
    c.previous_valid_until = instant_from(j, "previous_valid_until");
    c.scope = string_from(j, "scope");
    c.connected_at = instant_from(j, "connected_at");
    c.refreshed_at = instant_from(j, "refreshed_at");
    c.reconnect_needed = j.value("reconnect_needed", false);
    c.reconnect_reason = string_from(j, "reconnect_reason");
    if (c.refresh_token.empty()) {
        error = "credential record has no refresh token";
        return std::nullopt;
    }
    return c;
}

namespace {
std::vector<std::string> scope_list(std::string_view text) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '\t')) {
            ++i;
        }
        const auto start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != ',' && text[i] != '\t') {
            ++i;
        }
        if (i > start) {
            out.emplace_back(text.substr(start, i - start));
        }
    }
    return out;
}
}  // namespace

std::string reconsent_action(std::string_view connector, const std::vector<std::string>& missing) {
    std::string names;
    for (const auto& m : missing) {
        names += (names.empty() ? "" : " ") + m;
    }
    return "run `billsync connect " + std::string(connector) +
           " --config FILE` again: the stored grant lacks the scopes " + names;
}

std::vector<std::string> missing_scopes(std::string_view granted, std::string_view required) {
    std::vector<std::string> out;
    const auto have = scope_list(granted);
    if (have.empty()) {
        return out;  // unknown: an old record
    }
    const auto covered = [&have](const std::string& want) {
        if (std::find(have.begin(), have.end(), want) != have.end()) {
            return true;
        }
        constexpr std::string_view read_suffix = ".read";
        if (want.size() > read_suffix.size() && want.ends_with(read_suffix)) {
            const auto full = want.substr(0, want.size() - read_suffix.size());
            return std::find(have.begin(), have.end(), full) != have.end();
        }
        return false;
    };
    for (auto& want : scope_list(required)) {
        if (!covered(want) && std::find(out.begin(), out.end(), want) == out.end()) {
            out.push_back(std::move(want));
        }
    }
    return out;
}

std::string credential_key(std::string_view credential_id) {
    return "oauth2/" + std::string(credential_id);
}

state::result<std::optional<credential>> load_credential(const token_store& tokens,
                                                         std::string_view credential_id) {
    using result_t = state::result<std::optional<credential>>;
    auto raw = tokens.get(credential_key(credential_id));
    if (!raw.ok()) {
        return result_t::failure(raw.st);
    }
    if (!raw.value) {
        return {state::status::success(), std::nullopt};
    }
    std::string error;
    auto c = credential::from_json(*raw.value, error);
    if (!c) {
        return result_t::failure(
            state::status::failure("credential " + std::string(credential_id) + ": " + error));
    }
    return {state::status::success(), std::move(c)};
}

state::status store_credential(token_store& tokens, const credential& c) {
    return tokens.put_synced(credential_key(c.id), c.to_json());
}

// ---- manager ----

std::string_view to_string(credential_state s) noexcept {
    switch (s) {
        case credential_state::unknown:
            return "unknown";
        case credential_state::ok:
            return "ok";
        case credential_state::not_connected:
            return "not_connected";
        case credential_state::reconnect_needed:
            return "reconnect_needed";
        case credential_state::unreadable:
            return "unreadable";
    }
    return "unknown";
}

// How long a refresh whose answer was lost goes on trying past max_attempts (bounded by half the
// vendor's grace for the old refresh token).
constexpr std::chrono::minutes in_doubt_retry_for{10};

struct token_manager::impl {
    manager_settings s;
    manager_deps d;
    manager_hooks hooks;
    std::chrono::seconds old_valid{0};

    std::atomic<credential_state> st{credential_state::unknown};
    std::optional<credential> cred;
    std::optional<credential> unpersisted;  // obtained, but the synced write failed
    std::string invalidated;                // an access token a resource server refused

    // Single flight.
    bool refreshing = false;
    std::shared_ptr<net::steady_timer> flight;
    std::uint64_t generation = 0;
    std::optional<call_error> last_failure;

    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> ok_count{0};
    util::gauge* reconnect_gauge = nullptr;

    // The required scopes the stored grant lacks; read by status from other threads.
    mutable std::mutex scope_mutex;
    std::vector<std::string> missing;
    std::string warned_for;  // the missing list last logged, so it is logged once

    impl(manager_settings settings, manager_deps deps)
        : s(std::move(settings)), d(std::move(deps)) {
        if (d.http == nullptr || d.tokens == nullptr || d.clock == nullptr) {
            throw std::invalid_argument("token_manager: http, tokens and clock are required");
        }
        old_valid = std::max(s.old_refresh_valid, std::chrono::seconds(0));
        if (!d.time.now || !d.time.sleep) {
            d.time = real_time();
        }
        if (d.metrics != nullptr) {
            reconnect_gauge = &d.metrics->get_gauge(
                "billsync_connector_reconnect_needed",
                "1 while a connector's OAuth2 grant must be renewed with `billsync connect`",
                {{"connector", s.connector}});
        }
    }

    void count_refresh(std::string_view outcome) const {
        if (d.metrics != nullptr) {
            d.metrics
                ->get_counter("billsync_oauth2_refreshes_total",
                              "OAuth2 token refreshes by outcome",
                              {{"connector", s.connector}, {"outcome", std::string(outcome)}})
                .inc();
        }
    }

    void set_state(credential_state next) {
        st.store(next);
        if (reconnect_gauge != nullptr) {
            reconnect_gauge->set(
                next == credential_state::ok || next == credential_state::unknown ? 0 : 1);
        }
    }

    std::string connect_hint() const {
        return "run `billsync connect " + s.vendor + " --config FILE`";
    }

    // Compares the credential's recorded scopes with the required ones; logs a new gap once.
    void check_scopes(const credential& c) {
        auto gap = s.required_scope.empty() ? std::vector<std::string>{}
                                            : oauth2::missing_scopes(c.scope, s.required_scope);
        std::string joined;
        for (const auto& g : gap) {
            joined += (joined.empty() ? "" : " ") + g;
        }
        bool log_it = false;
        {
            std::lock_guard lock(scope_mutex);
            missing = std::move(gap);
            log_it = !joined.empty() && joined != warned_for;
            if (log_it || joined.empty()) {
                warned_for = joined;
            }
        }
        if (log_it) {
            log_at(d.log,
                   spdlog::level::warn,
                   "Reconsent needed connector={} credential={} missing_scopes=\"{}\": the stored "
                   "grant lacks scopes the connector needs; run `billsync connect {} --config "
                   "FILE` again",
                   s.connector,
                   s.credential_id,
                   joined,
                   s.connector);
        }
    }

    // False on a transient I/O error (state stays unknown).
    bool load() {
        auto r = load_credential(*d.tokens, s.credential_id);
        if (!r.ok()) {
            if (r.st.io_error) {
                log_at(d.log,
                       spdlog::level::warn,
                       "Cannot read OAuth2 credential={} error=\"{}\"",
                       s.credential_id,
                       r.st.message);
                return false;
            }
            set_state(credential_state::unreadable);
            log_at(d.log,
                   spdlog::level::err,
                   "Cannot open OAuth2 tokens connector={} credential={} error=\"{}\"",
                   s.connector,
                   s.credential_id,
                   r.st.message);
            return true;
        }
        cred = std::move(r.value);
        if (cred) {
            register_tokens(*cred);
            check_scopes(*cred);
        }
        unpersisted.reset();
        invalidated.clear();
        if (!cred) {
            set_state(credential_state::not_connected);
            log_at(d.log,
                   spdlog::level::err,
                   "Not connected connector={} credential={}: {}",
                   s.connector,
                   s.credential_id,
                   connect_hint());
        } else if (cred->reconnect_needed) {
            set_state(credential_state::reconnect_needed);
            log_at(d.log,
                   spdlog::level::err,
                   "Reconnect needed connector={} credential={} reason={}: {}",
                   s.connector,
                   s.credential_id,
                   cred->reconnect_reason,
                   connect_hint());
        } else {
            set_state(credential_state::ok);
        }
        return true;
    }

    std::optional<call_error> state_error() const {
        switch (st.load()) {
            case credential_state::not_connected:
                return make_error(condition::auth_revoked,
                                  "not connected (" + s.credential_id + "): " + connect_hint());
            case credential_state::reconnect_needed:
                return make_error(condition::auth_revoked,
                                  "reconnect needed (" + s.credential_id + "): " + connect_hint());
            case credential_state::unreadable:
                return make_error(condition::permanent,
                                  "stored tokens for " + s.credential_id + " cannot be read");
            default:
                return std::nullopt;
        }
    }

    void flip_reconnect(std::string reason) {
        if (cred) {
            cred->reconnect_needed = true;
            cred->reconnect_reason = reason;
            if (auto w = store_credential(*d.tokens, *cred); !w) {
                log_at(d.log,
                       spdlog::level::warn,
                       "Cannot record reconnect_needed credential={} error=\"{}\"",
                       s.credential_id,
                       w.message);
            }
        }
        set_state(credential_state::reconnect_needed);
        log_at(d.log,
               spdlog::level::err,
               "Reconnect needed connector={} credential={} reason={}: the vendor no longer "
               "accepts the grant; {}",
               s.connector,
               s.credential_id,
               reason,
               connect_hint());
    }

    bool usable(const credential& c, util::instant now, std::chrono::seconds margin) const {
        return !c.access_token.empty() && c.access_token != invalidated &&
               now + margin < c.access_expires_at;
    }

    // Every token this credential holds is masked in logs from now on (the slots replace the
    // tokens they held before, so rotation does not grow the redactor).
    static void register_tokens(const credential& c) {
        const auto slot = "oauth2/" + c.id + "/";
        util::register_secret(slot + "access", c.access_token);
        util::register_secret(slot + "refresh", c.refresh_token);
        util::register_secret(slot + "previous", c.previous_refresh_token);
    }

    credential apply(const token_response& t, const std::string& used, util::instant now) const {
        credential next = *cred;
        next.access_token = t.access_token;
        const auto lifetime =
            t.expires_in > std::chrono::seconds(0) ? t.expires_in : std::chrono::seconds(1800);
        next.access_expires_at = now + lifetime;
        if (!t.refresh_token.empty() && t.refresh_token != used) {
            next.previous_refresh_token = used;
            next.previous_valid_until = now + old_valid;
            next.refresh_token = t.refresh_token;
        } else {
            next.refresh_token = used;
        }
        if (t.refresh_expires_in) {
            next.refresh_expires_at = now + *t.refresh_expires_in;
        }
        if (!t.scope.empty()) {
            next.scope = t.scope;
        }
        next.refreshed_at = now;
        next.reconnect_needed = false;
        next.reconnect_reason.clear();
        return next;
    }

    steady_duration backoff(std::uint32_t attempt, const call_error& e) const {
        if (e.retry_after) {
            return *e.retry_after;
        }
        auto wait = s.backoff_base;
        for (std::uint32_t i = 1; i < attempt && wait < s.backoff_cap; ++i) {
            wait *= 2;
        }
        return std::min(wait, s.backoff_cap);
    }

    // Resets the single-flight state however a refresh ends (success, failure, cancellation).
    struct flight_guard {
        impl* m;
        explicit flight_guard(impl* owner) : m(owner) {}
        flight_guard(const flight_guard&) = delete;
        flight_guard& operator=(const flight_guard&) = delete;
        ~flight_guard() {
            m->refreshing = false;
            ++m->generation;
            if (m->flight) {
                m->flight->cancel();
                m->flight.reset();
            }
        }
    };

    static net::awaitable<access_result> refresh(std::shared_ptr<impl> self);
    static net::awaitable<access_result> access(std::shared_ptr<impl> self);
};

net::awaitable<access_result> token_manager::impl::refresh(std::shared_ptr<impl> self) {
    self->refreshing = true;
    self->flight = std::make_shared<net::steady_timer>(co_await net::this_coro::executor,
                                                       net::steady_timer::time_point::max());
    self->last_failure = make_error(condition::retryable, "refresh interrupted");
    flight_guard guard{self.get()};

    std::string used = self->cred->refresh_token;
    bool tried_previous = false;
    const util::instant first_sent = self->d.clock->now();
    std::uint32_t attempt = 0;
    bool in_doubt = false;  // an answer was lost: the vendor may have rotated the refresh token
    for (;;) {
        ++attempt;
        self->requests.fetch_add(1);
        // Built outside the co_await: GCC 12 miscompiles braced temporaries inside one.
        std::vector<std::pair<std::string, std::string>> form;
        form.emplace_back("grant_type", "refresh_token");
        form.emplace_back("refresh_token", used);
        token_outcome out = co_await request_token(
            *self->d.http, self->s.client, std::move(form), self->s.request_timeout);
        const util::instant now = self->d.clock->now();
        if (out.ok()) {
            if (self->hooks.after_token_response && !self->hooks.after_token_response()) {
                co_return access_result{{},
                                        make_error(condition::retryable,
                                                   "refresh abandoned by a test hook (simulated "
                                                   "crash)")};
            }
            credential next = self->apply(*out.tokens, used, now);
            register_tokens(next);
            const bool rotated = next.refresh_token != self->cred->refresh_token;
            // Persist before use: one synced write holding the new refresh and access tokens.
            if (auto w = store_credential(*self->d.tokens, next); !w) {
                self->unpersisted = std::move(next);
                self->count_refresh("store_failed");
                log_at(self->d.log,
                       spdlog::level::err,
                       "Cannot store refreshed OAuth2 tokens connector={} credential={} "
                       "error=\"{}\"; they are kept in memory and written before use",
                       self->s.connector,
                       self->s.credential_id,
                       w.message);
                auto e = make_error(condition::retryable, "cannot store refreshed tokens");
                self->last_failure = e;
                co_return access_result{{}, std::move(e)};
            }
            self->cred = std::move(next);
            self->check_scopes(*self->cred);
            self->invalidated.clear();
            self->last_failure.reset();
            self->ok_count.fetch_add(1);
            self->count_refresh("ok");
            if (self->hooks.after_persist) {
                self->hooks.after_persist();
            }
            log_at(self->d.log,
                   spdlog::level::info,
                   "Refreshed OAuth2 access token connector={} credential={} expires_in={}s "
                   "refresh_token_rotated={} attempts={}",
                   self->s.connector,
                   self->s.credential_id,
                   out.tokens->expires_in.count(),
                   rotated,
                   attempt);
            co_return access_result{self->cred->access_token, std::nullopt};
        }

        if (out.oauth_error == "invalid_grant") {
            const auto& prev = self->cred->previous_refresh_token;
            if (!tried_previous && !prev.empty() && prev != used &&
                now < self->cred->previous_valid_until) {
                tried_previous = true;
                used = prev;
                log_at(self->d.log,
                       spdlog::level::warn,
                       "Refresh token refused connector={} credential={}; trying the previous "
                       "one while it is still valid",
                       self->s.connector,
                       self->s.credential_id);
                continue;
            }
            self->count_refresh("revoked");
            self->flip_reconnect("invalid_grant");
            auto e = *self->state_error();
            self->last_failure = e;
            co_return access_result{{}, std::move(e)};
        }

        call_error e = out.error;
        const bool transient = e.cond == condition::retryable || e.cond == condition::rate_limited;
        if (!transient) {
            self->count_refresh("failed");
            log_at(self->d.log,
                   spdlog::level::err,
                   "Token endpoint refused the refresh connector={} credential={} status={} "
                   "error={}: check client_id and client_secret",
                   self->s.connector,
                   self->s.credential_id,
                   e.status,
                   out.oauth_error.empty() ? std::string("-") : out.oauth_error);
            self->last_failure = e;
            co_return access_result{{}, std::move(e)};
        }
        if (!out.answered) {
            in_doubt = true;
            log_at(self->d.log,
                   spdlog::level::warn,
                   "Refresh answer lost connector={} credential={} attempt={} error=\"{}\"; "
                   "retrying with the same refresh token",
                   self->s.connector,
                   self->s.credential_id,
                   attempt,
                   e.message);
        } else {
            log_at(self->d.log,
                   spdlog::level::warn,
                   "Refresh failed connector={} credential={} attempt={} error=\"{}\"",
                   self->s.connector,
                   self->s.credential_id,
                   attempt,
                   e.message);
        }
        // The old refresh token works only for a while after the vendor rotated it.
        const bool past_overlap = now - first_sent >= self->old_valid;
        // In doubt, giving up would leave the next try to the next need for a token (an hourly
        // poll), often past a short grace (Xero's 30 minutes): the grant would be lost. So
        // while in doubt the refresh goes on past max_attempts, for half the grace (at most
        // in_doubt_retry_for), while the old token surely still works.
        const bool keep_trying =
            in_doubt &&
            now - first_sent < std::min<util::duration>(self->old_valid / 2, in_doubt_retry_for);
        if ((attempt >= self->s.max_attempts && !keep_trying) || past_overlap) {
            self->count_refresh("retryable");
            self->last_failure = e;
            co_return access_result{{}, std::move(e)};
        }
        co_await self->d.time.sleep(self->backoff(attempt, e));
        if (self->st.load() != credential_state::ok) {
            auto se = self->state_error().value_or(e);
            self->last_failure = se;
            co_return access_result{{}, std::move(se)};
        }
    }
}

net::awaitable<access_result> token_manager::impl::access(std::shared_ptr<impl> self) {
    for (;;) {
        if (self->st.load() == credential_state::unknown && !self->load()) {
            co_return access_result{
                {}, make_error(condition::retryable, "cannot read the state store")};
        }
        if (auto e = self->state_error()) {
            co_return access_result{{}, std::move(e)};
        }
        if (self->unpersisted) {
            if (auto w = store_credential(*self->d.tokens, *self->unpersisted); !w) {
                co_return access_result{
                    {}, make_error(condition::retryable, "cannot store refreshed tokens")};
            }
            self->cred = std::move(self->unpersisted);
            self->unpersisted.reset();
        }
        const util::instant now = self->d.clock->now();
        if (self->usable(*self->cred, now, self->s.refresh_margin)) {
            co_return access_result{self->cred->access_token, std::nullopt};
        }
        if (self->refreshing) {
            const auto flight = self->flight;
            const auto gen = self->generation;
            co_await flight->async_wait(as_tuple_awaitable);
            if (self->generation != gen && self->last_failure) {
                auto e = *self->last_failure;
                if (e.cond != condition::auth_revoked && e.cond != condition::permanent &&
                    self->cred &&
                    self->usable(*self->cred, self->d.clock->now(), std::chrono::seconds(0))) {
                    co_return access_result{self->cred->access_token, std::nullopt};
                }
                co_return access_result{{}, std::move(e)};
            }
            continue;
        }
        auto r = co_await refresh(self);
        if (r.ok()) {
            co_return r;
        }
        // Refreshing ahead failed for now: the current token still works until it ends.
        if (r.error->cond != condition::auth_revoked && r.error->cond != condition::permanent &&
            self->cred &&
            self->usable(*self->cred, self->d.clock->now(), std::chrono::seconds(0))) {
            co_return access_result{self->cred->access_token, std::nullopt};
        }
        co_return r;
    }
}

token_manager::token_manager(manager_settings settings, manager_deps deps)
    : impl_(std::make_shared<impl>(std::move(settings), std::move(deps))) {}

token_manager::~token_manager() = default;

net::awaitable<access_result> token_manager::access_token() { return impl::access(impl_); }

void token_manager::invalidate(std::string_view token) {
    if (impl_->cred && impl_->cred->access_token == token) {
        impl_->invalidated = std::string(token);
    }
}

void token_manager::reload() {
    impl_->set_state(credential_state::unknown);
    impl_->load();
}

credential_state token_manager::state() const noexcept { return impl_->st.load(); }
std::vector<std::string> token_manager::missing_scopes() const {
    std::lock_guard lock(impl_->scope_mutex);
    return impl_->missing;
}
const std::string& token_manager::credential_id() const noexcept { return impl_->s.credential_id; }
const std::string& token_manager::connector() const noexcept { return impl_->s.connector; }
std::uint64_t token_manager::refresh_requests() const noexcept { return impl_->requests.load(); }
std::uint64_t token_manager::refreshes_ok() const noexcept { return impl_->ok_count.load(); }
void token_manager::set_hooks(manager_hooks hooks) { impl_->hooks = std::move(hooks); }

}  // namespace billsync::connectors::oauth2
