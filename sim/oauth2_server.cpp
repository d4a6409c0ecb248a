#include "sim/oauth2_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>

#include "http/message.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;

std::string base64url(std::string_view bytes) {
    std::string s = util::base64_encode(bytes);
    while (!s.empty() && s.back() == '=') {
        s.pop_back();
    }
    for (auto& c : s) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return s;
}

http::response oauth_error(unsigned status, std::string_view error) {
    return http::response::json(status, json{{"error", error}}.dump());
}

std::string get(const std::map<std::string, std::string>& m, const std::string& k) {
    const auto it = m.find(k);
    return it == m.end() ? std::string() : it->second;
}

}  // namespace

oauth2_server::oauth2_server(oauth2_server_options options) : options_(std::move(options)) {}

std::string_view oauth2_server::name() const noexcept {
    return options_.mode == oauth2_mode::qbo ? "oauth2-qbo" : "oauth2-xero";
}

void oauth2_server::add_routes(http::router& r) {
    r.add("GET", std::string(authorize_path), [this](http::request req) {
        return authorize(std::move(req));
    });
    r.add("POST", std::string(token_path), [this](http::request req) {
        return token(std::move(req));
    });
    r.add("POST", std::string(revoke_path), [this](http::request req) {
        return revoke(std::move(req));
    });
    r.add("GET", std::string(connections_path), [this](http::request req) {
        return connections(std::move(req));
    });
    r.add(
        "GET", std::string(ping_path), [this](http::request req) { return ping(std::move(req)); });
}

util::instant oauth2_server::now() const {
    if (options_.now) {
        return options_.now();
    }
    return std::chrono::time_point_cast<util::duration>(std::chrono::system_clock::now());
}

std::chrono::seconds oauth2_server::access_lifetime() const {
    if (options_.access_lifetime > std::chrono::seconds(0)) {
        return options_.access_lifetime;
    }
    return options_.mode == oauth2_mode::qbo ? std::chrono::seconds(3600)
                                             : std::chrono::seconds(1800);
}

std::chrono::seconds oauth2_server::old_refresh_valid() const {
    if (options_.old_refresh_valid > std::chrono::seconds(0)) {
        return options_.old_refresh_valid;
    }
    return options_.mode == oauth2_mode::qbo ? std::chrono::seconds(24 * 3600)
                                             : std::chrono::seconds(30 * 60);
}

oauth2_server::issued oauth2_server::issue_locked(std::uint64_t grant,
                                                  bool new_refresh,
                                                  const std::string& old_refresh) {
    const auto t = now();
    ++serial_;
    issued out;
    out.access_token = "sim-at-" + std::to_string(grant) + "-" + std::to_string(serial_) + "-" +
                       base64url(util::sha256(std::to_string(serial_) + "a")).substr(0, 16);
    out.expires_in = access_lifetime();
    access_[out.access_token] = {grant, t + out.expires_in};
    if (new_refresh) {
        out.refresh_token = "sim-rt-" + std::to_string(grant) + "-" + std::to_string(serial_) +
                            "-" +
                            base64url(util::sha256(std::to_string(serial_) + "r")).substr(0, 16);
        refresh_[out.refresh_token] = {grant, true, {}};
        if (!old_refresh.empty()) {
            auto it = refresh_.find(old_refresh);
            if (it != refresh_.end() && it->second.current) {
                it->second.current = false;
                it->second.superseded_at = t;
            }
        }
    } else {
        out.refresh_token = old_refresh;
    }
    return out;
}

oauth2_server::issued oauth2_server::issue_grant() {
    std::lock_guard lock(mutex_);
    return issue_locked(next_grant_++, true, {});
}

void oauth2_server::lose_next_refresh_answers(std::uint32_t n, std::chrono::milliseconds hold) {
    std::lock_guard lock(mutex_);
    lose_ = n;
    lose_hold_ = hold;
}

void oauth2_server::revoke_all() {
    std::lock_guard lock(mutex_);
    for (std::uint64_t g = 1; g < next_grant_; ++g) {
        revoked_grants_[g] = true;
    }
}

bool oauth2_server::access_token_valid(std::string_view token) const {
    std::lock_guard lock(mutex_);
    const auto it = access_.find(token);
    return it != access_.end() && now() < it->second.expires_at &&
           !revoked_grants_.contains(it->second.grant);
}

std::uint64_t oauth2_server::refresh_grants() const {
    std::lock_guard lock(mutex_);
    return refresh_grants_;
}
std::uint64_t oauth2_server::code_grants() const {
    std::lock_guard lock(mutex_);
    return code_grants_;
}
std::uint64_t oauth2_server::invalid_grants() const {
    std::lock_guard lock(mutex_);
    return invalid_grants_;
}
std::vector<std::string> oauth2_server::refresh_tokens_presented() const {
    std::lock_guard lock(mutex_);
    return presented_;
}

net::awaitable<http::response> oauth2_server::authorize(http::request req) {
    const auto q = form_fields(req.query);
    const auto redirect = get(q, "redirect_uri");
    if (get(q, "client_id") != options_.client_id) {
        co_return http::response::error(400, "invalid_client", "unknown client_id");
    }
    if (get(q, "response_type") != "code" || redirect.empty()) {
        co_return http::response::error(400, "invalid_request", "response_type or redirect_uri");
    }
    const auto challenge = get(q, "code_challenge");
    if (!challenge.empty() && get(q, "code_challenge_method") != "S256") {
        co_return http::response::error(400, "invalid_request", "only S256 is supported");
    }
    std::string code;
    {
        std::lock_guard lock(mutex_);
        ++serial_;
        code = "sim-code-" + std::to_string(serial_);
        codes_[code] = {redirect, challenge, now() + options_.code_lifetime};
    }
    std::string location = redirect + (redirect.find('?') == std::string::npos ? "?" : "&");
    location +=
        "code=" + http::percent_encode(code) + "&state=" + http::percent_encode(get(q, "state"));
    if (options_.mode == oauth2_mode::qbo) {
        location += "&realmId=" + http::percent_encode(options_.realm_id);
    }
    http::response r = http::response::text(302, "");
    r.headers.push_back({"Location", location});
    co_return r;
}

http::response oauth2_server::token_locked(const http::request& req, bool& lose) {
    const auto expected =
        "Basic " + util::base64_encode(options_.client_id + ":" + options_.client_secret);
    if (!util::constant_time_equal(req.header_value("Authorization"), expected)) {
        return oauth_error(401, "invalid_client");
    }
    const auto f = form_fields(req.body);
    const auto grant_type = get(f, "grant_type");
    const auto t = now();
    if (grant_type == "authorization_code") {
        const auto it = codes_.find(get(f, "code"));
        if (it == codes_.end() || t >= it->second.expires_at ||
            it->second.redirect_uri != get(f, "redirect_uri")) {
            ++invalid_grants_;
            return oauth_error(400, "invalid_grant");
        }
        const auto entry = it->second;
        codes_.erase(it);  // one use
        if (!entry.challenge.empty() &&
            base64url(util::sha256(get(f, "code_verifier"))) != entry.challenge) {
            ++invalid_grants_;
            return oauth_error(400, "invalid_grant");
        }
        ++code_grants_;
        const auto out = issue_locked(next_grant_++, true, {});
        json j{{"access_token", out.access_token},
               {"refresh_token", out.refresh_token},
               {"token_type", "bearer"},
               {"expires_in", out.expires_in.count()},
               {"x_refresh_token_expires_in", 8726400}};
        if (!options_.granted_scope.empty()) {
            j["scope"] = options_.granted_scope;
        }
        return http::response::json(200, j.dump());
    }
    if (grant_type == "refresh_token") {
        const auto rt = get(f, "refresh_token");
        presented_.push_back(rt);
        const auto it = refresh_.find(rt);
        bool ok = it != refresh_.end() && !revoked_grants_.contains(it->second.grant);
        if (ok && !it->second.current) {
            ok = !options_.strict_reuse && t < it->second.superseded_at + old_refresh_valid();
        }
        if (!ok) {
            ++invalid_grants_;
            return oauth_error(400, "invalid_grant");
        }
        const bool rotate = options_.mode == oauth2_mode::xero || options_.qbo_rotate;
        const auto out = issue_locked(it->second.grant, rotate, rt);
        ++refresh_grants_;
        if (lose_ > 0) {
            --lose_;
            lose = true;
        }
        json j{{"access_token", out.access_token},
               {"refresh_token", out.refresh_token},
               {"token_type", "Bearer"},
               {"expires_in", out.expires_in.count()}};
        if (options_.mode == oauth2_mode::qbo) {
            j["x_refresh_token_expires_in"] = 8726400;
        }
        if (!options_.granted_scope.empty()) {
            j["scope"] = options_.granted_scope;
        }
        return http::response::json(200, j.dump());
    }
    return oauth_error(400, "unsupported_grant_type");
}

net::awaitable<http::response> oauth2_server::token(http::request req) {
    bool lose = false;
    std::chrono::milliseconds hold{};
    http::response r;
    {
        std::lock_guard lock(mutex_);
        r = token_locked(req, lose);
        hold = lose_hold_;
    }
    if (lose) {
        // Processed, but the answer never makes it back in time: the client gives up first.
        net::steady_timer timer(co_await net::this_coro::executor);
        timer.expires_after(hold);
        co_await timer.async_wait(as_tuple_awaitable);
    }
    co_return r;
}

net::awaitable<http::response> oauth2_server::revoke(http::request req) {
    const auto f = form_fields(req.body);
    const auto token = get(f, "token");
    std::lock_guard lock(mutex_);
    if (auto it = refresh_.find(token); it != refresh_.end()) {
        revoked_grants_[it->second.grant] = true;
    } else if (auto at = access_.find(token); at != access_.end()) {
        revoked_grants_[at->second.grant] = true;
    }
    co_return http::response::text(200, "");
}

bool oauth2_server::bearer_valid_locked(const http::request& req) const {
    const auto h = req.header_value("Authorization");
    constexpr std::string_view prefix = "Bearer ";
    if (!h.starts_with(prefix)) {
        return false;
    }
    const auto it = access_.find(h.substr(prefix.size()));
    return it != access_.end() && now() < it->second.expires_at &&
           !revoked_grants_.contains(it->second.grant);
}

net::awaitable<http::response> oauth2_server::connections(http::request req) {
    std::lock_guard lock(mutex_);
    if (!bearer_valid_locked(req)) {
        co_return http::response::json(401, R"({"Title":"Unauthorized","Detail":"TokenExpired"})");
    }
    json out = json::array();
    for (const auto& t : options_.tenants) {
        out.push_back({{"id", "conn-" + t.id},
                       {"authEventId", "auth-event-1"},
                       {"tenantId", t.id},
                       {"tenantType", "ORGANISATION"},
                       {"tenantName", t.name},
                       {"createdDateUtc", "2026-01-05T09:00:00.0000000"},
                       {"updatedDateUtc", "2026-01-05T09:00:00.0000000"}});
    }
    co_return http::response::json(200, out.dump());
}

net::awaitable<http::response> oauth2_server::ping(http::request req) {
    std::lock_guard lock(mutex_);
    if (!bearer_valid_locked(req)) {
        co_return http::response::json(401, R"({"error":"invalid_token"})");
    }
    co_return http::response::json(200, R"({"ok":true})");
}

std::map<std::string, std::string> form_fields(std::string_view text) {
    std::map<std::string, std::string> out;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const auto part = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        const auto eq = part.find('=');
        if (!part.empty()) {
            out[http::percent_decode(part.substr(0, eq), true)] =
                eq == std::string_view::npos ? std::string()
                                             : http::percent_decode(part.substr(eq + 1), true);
        }
    }
    return out;
}

}  // namespace billsync::simulators
