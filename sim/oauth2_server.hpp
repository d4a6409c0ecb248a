#pragma once

// A fake OAuth2 authorization server that follows QBO's or Xero's token rules (fact sheets
// qbo.md and xero.md, "Authentication"):
//
//   GET  /oauth2/authorize    auto-approves: 302 to redirect_uri with code and state (and
//                             realmId in QBO mode); PKCE S256 challenge remembered
//   POST /oauth2/token        authorization_code and refresh_token grants, client auth by Basic;
//                             PKCE verified; QBO: the refresh token rotates (optionally), the old
//                             one works 24 h; Xero: rotates on every use, the old one works for a
//                             30-minute grace; unknown, expired or revoked: 400 invalid_grant
//   POST /oauth2/revoke       revokes a refresh (or access) token and its whole grant
//   GET  /connections         Xero tenants for a bearer access token
//   GET  /api/ping            a protected resource: 200 for a valid access token, else 401
//
// Time comes from an injected function so tests move it; every request is recorded by the
// sim_server. lose_next_refresh_answers() processes a refresh and then never answers it (the
// client times out), as when a response is lost on the way back.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sim/sim_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

enum class oauth2_mode : std::uint8_t { qbo, xero };

// application/x-www-form-urlencoded fields (a token request's body, an authorize query); a
// repeated name keeps its last value.
std::map<std::string, std::string> form_fields(std::string_view text);

struct oauth2_tenant {
    std::string id;
    std::string name;
};

struct oauth2_server_options {
    oauth2_mode mode = oauth2_mode::xero;
    std::string client_id = "sim-client-id";
    std::string client_secret = "sim-client-secret";
    std::chrono::seconds access_lifetime{0};    // 0: QBO 3600 s, Xero 1800 s
    std::chrono::seconds old_refresh_valid{0};  // 0: QBO 24 h, Xero 30 min
    std::chrono::seconds code_lifetime{600};
    bool qbo_rotate = true;     // QBO mode: whether a refresh hands back a new refresh token
    bool strict_reuse = false;  // a rotated-away token is refused at once (no grace): races show
    std::string realm_id = "9130350000000001";
    std::vector<oauth2_tenant> tenants = {{"b2c3d4e5-0000-4000-8000-000000000001", "Demo Co"}};
    std::function<util::instant()> now;  // empty: the system clock
    // Non-empty: every token answer carries "scope" with this text (what the user consented to,
    // which may be less than the client asked for). Empty: answers carry no "scope".
    std::string granted_scope;
};

class oauth2_server final : public simulator {
public:
    static constexpr std::string_view authorize_path = "/oauth2/authorize";
    static constexpr std::string_view token_path = "/oauth2/token";
    static constexpr std::string_view revoke_path = "/oauth2/revoke";
    static constexpr std::string_view connections_path = "/connections";
    static constexpr std::string_view ping_path = "/api/ping";

    explicit oauth2_server(oauth2_server_options options = {});

    std::string_view name() const noexcept override;
    void add_routes(http::router& r) override;

    // A grant issued directly (no browser), e.g. to seed a stored credential.
    struct issued {
        std::string access_token;
        std::string refresh_token;
        std::chrono::seconds expires_in{0};
    };
    issued issue_grant();

    // The next n successful refreshes are processed and then left unanswered for `hold`.
    void lose_next_refresh_answers(std::uint32_t n,
                                   std::chrono::milliseconds hold = std::chrono::seconds(5));
    // Every token issued so far stops working (the user disconnected the app).
    void revoke_all();

    bool access_token_valid(std::string_view token) const;
    std::uint64_t refresh_grants() const;  // refresh_token grants answered with tokens
    std::uint64_t code_grants() const;     // authorization_code grants answered with tokens
    std::uint64_t invalid_grants() const;  // invalid_grant answers
    std::vector<std::string> refresh_tokens_presented() const;  // in order

private:
    struct refresh_entry {
        std::uint64_t grant = 0;
        bool current = true;
        util::instant superseded_at{};
    };
    struct access_entry {
        std::uint64_t grant = 0;
        util::instant expires_at{};
    };
    struct code_entry {
        std::string redirect_uri;
        std::string challenge;
        util::instant expires_at{};
    };

    util::instant now() const;
    std::chrono::seconds access_lifetime() const;
    std::chrono::seconds old_refresh_valid() const;
    // Under mutex_.
    issued issue_locked(std::uint64_t grant, bool new_refresh, const std::string& old_refresh);

    net::awaitable<http::response> authorize(http::request req);
    net::awaitable<http::response> token(http::request req);
    net::awaitable<http::response> revoke(http::request req);
    net::awaitable<http::response> connections(http::request req);
    net::awaitable<http::response> ping(http::request req);
    http::response token_locked(const http::request& req, bool& lose);
    bool bearer_valid_locked(const http::request& req) const;

    oauth2_server_options options_;
    mutable std::mutex mutex_;
    std::map<std::string, refresh_entry, std::less<>> refresh_;
    std::map<std::string, access_entry, std::less<>> access_;
    std::map<std::string, code_entry, std::less<>> codes_;
    std::map<std::uint64_t, bool> revoked_grants_;
    std::uint64_t next_grant_ = 1;
    std::uint64_t serial_ = 0;
    std::uint32_t lose_ = 0;
    std::chrono::milliseconds lose_hold_{5000};
    std::uint64_t refresh_grants_ = 0;
    std::uint64_t code_grants_ = 0;
    std::uint64_t invalid_grants_ = 0;
    std::vector<std::string> presented_;
};

}  // namespace billsync::simulators
