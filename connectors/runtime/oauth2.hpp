#pragma once

// OAuth2 for the ledger connectors (QBO, Xero): the token endpoint, the stored credential, and a
// per-credential token manager.
//
// The manager hands out a valid access token, refreshing ahead of expiry. Refresh is
// single-flight: callers arriving during a refresh wait for its result. The rotated refresh token
// and the new access token are written in one synced write before the new access token reaches
// anyone. invalid_grant (after trying the previous refresh token while it is still within the
// vendor's overlap) flips the credential to reconnect_needed: an ERROR tells the operator to run
// `billsync connect`, the gauge billsync_connector_reconnect_needed{connector} turns 1, and
// further calls fail at once with auth_revoked without reaching the vendor.
//
// Lost responses and restarts: a refresh whose answer never arrived (timeout, dropped connection)
// is retried with the same refresh token, which Xero honours for 30 minutes and QBO for 24 hours
// after rotating it. Because the store holds either the old record or the new one (one atomic
// write), a crash after the vendor answered but before the write leaves the old refresh token
// stored, and the next start retries with it inside that window. The record also keeps the
// previous refresh token until its overlap ends, as a fallback when the newest one is refused.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/errors.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/oauth2_rules.hpp"
#include "connectors/runtime/timing.hpp"
#include "connectors/runtime/token_store.hpp"
#include "http/asio.hpp"
#include "util/clock.hpp"

namespace spdlog {
class logger;
}
namespace billsync::util {
class metrics_registry;
class gauge;
}  // namespace billsync::util

namespace billsync::connectors::oauth2 {

// ---- small helpers (also used by `billsync connect` and the simulator) ----

// application/x-www-form-urlencoded / query component encoding.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);
std::string url_encode(std::string_view s);
// Parses "a=1&b=x%20y"; later duplicates win.
std::map<std::string, std::string> parse_form(std::string_view text);
std::string base64url(std::string_view bytes);     // no padding
std::string random_token(std::size_t bytes = 32);  // base64url of random bytes
std::string pkce_challenge_s256(std::string_view verifier);
// "Basic base64(client_id:client_secret)"
std::string basic_auth(std::string_view client_id, std::string_view client_secret);

// ---- the token endpoint ----

struct token_response {
    std::string access_token;
    std::string refresh_token;  // may be empty (QBO may not rotate; then keep the old one)
    std::string token_type;
    std::string scope;
    std::chrono::seconds expires_in{0};
    std::optional<std::chrono::seconds> refresh_expires_in;  // QBO x_refresh_token_expires_in
};

struct token_outcome {
    std::optional<token_response> tokens;  // set on success
    call_error error;                      // when !tokens
    std::string oauth_error;               // "invalid_grant", "invalid_client", … when given
    bool answered = false;  // an HTTP answer arrived (false: lost; the grant may have been used)
    bool ok() const noexcept { return tokens.has_value(); }
};

struct client_identity {
    std::string token_url;
    std::string client_id;
    std::string client_secret;
    // How the client authenticates at the token endpoint (RFC 6749 2.3.1): HTTP Basic, or
    // client_id and client_secret as form fields where the vendor documents that.
    bool secret_in_body = false;
};

// POSTs a grant (form fields) to the token endpoint with the client's authentication.
// Never logs the body. `timeout` bounds the whole request.
net::awaitable<token_outcome> request_token(https_client& http,
                                            client_identity client,
                                            std::vector<std::pair<std::string, std::string>> form,
                                            std::chrono::milliseconds timeout);

// ---- the stored credential ----

struct credential {
    std::string id;               // "qbo/<realmId>", "xero/<tenantId>"
    std::string vendor;           // "qbo" | "xero"
    std::string account;          // realmId or tenantId
    std::vector<tenant> tenants;  // Xero: every tenant the grant reaches
    std::string access_token;
    util::instant access_expires_at{};
    std::string refresh_token;
    std::optional<util::instant> refresh_expires_at;
    std::string previous_refresh_token;  // until previous_valid_until
    util::instant previous_valid_until{};
    std::string scope;
    util::instant connected_at{};
    util::instant refreshed_at{};
    bool reconnect_needed = false;
    std::string reconnect_reason;

    std::string to_json() const;
    static std::optional<credential> from_json(std::string_view text, std::string& error);
};

// The scopes a connector needs now (`required`, space-separated: the section's `scope` or the
// kind's default) that a stored grant lacks (`granted`, the token response's `scope` as recorded
// with the credential), in the order `required` names them. A required "X.read" is covered by a
// granted "X". An empty `granted` is unknown (a record written before billsync recorded
// scopes): nothing is reported missing.
std::vector<std::string> missing_scopes(std::string_view granted, std::string_view required);
// What /status tells the admin when a grant lacks scopes: run `billsync connect <name>` again.
std::string reconsent_action(std::string_view connector, const std::vector<std::string>& missing);

// The token row of a credential: "oauth2/<credential id>" (also the sealing AAD).
std::string credential_key(std::string_view credential_id);

// Reads a credential; nullopt value when absent. Errors for I/O and unreadable records.
state::result<std::optional<credential>> load_credential(const token_store& tokens,
                                                         std::string_view credential_id);
// One synced write.
state::status store_credential(token_store& tokens, const credential& c);

// ---- the token manager ----

struct manager_settings {
    std::string connector;      // label for logs and metrics, e.g. "qbo"
    std::string credential_id;  // "qbo/<realm>"
    std::string vendor;         // "qbo" | "xero"
    client_identity client;
    std::chrono::seconds refresh_margin{300};  // refresh this long before the access token ends
    std::uint32_t max_attempts = 4;            // per refresh, for transport failures, 5xx, 429
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_cap{30'000};
    std::chrono::milliseconds request_timeout{30'000};
    // How long a rotated-away refresh token still works (the kind's oauth2 rules); 0: not at all.
    std::chrono::seconds old_refresh_valid{0};
    // The scopes the connector needs now (space-separated; empty: not checked). A stored grant
    // that lacks some of them is reported by missing_scopes() and logged once (WARN).
    std::string required_scope = {};
};

// Test hooks, for crash injection and ordering assertions.
struct manager_hooks {
    // Runs after the token endpoint answered with new tokens, before they are stored. Returning
    // false abandons the refresh as if the process died at that point: nothing is stored and the
    // in-memory credential is left as it was (destroy the manager afterwards).
    std::function<bool()> after_token_response;
    // Runs after the new tokens were durably written, before anyone receives the access token.
    std::function<void()> after_persist;
};

struct access_result {
    std::string token;  // set on success
    std::optional<call_error> error;
    bool ok() const noexcept { return !error; }
};

enum class credential_state : std::uint8_t {
    unknown,           // not loaded yet
    ok,                // usable
    not_connected,     // no stored credential: run `billsync connect`
    reconnect_needed,  // invalid_grant: run `billsync connect`
    unreadable,        // the stored record could not be opened (wrong secrets_key, damage)
};
std::string_view to_string(credential_state s) noexcept;

struct manager_deps {
    https_client* http = nullptr;  // lent; outlives the manager
    token_store* tokens = nullptr;
    const util::clock* clock = nullptr;  // business (wall) time: token expiries
    time_source time;                    // waits between attempts (real_time() in production)
    std::shared_ptr<spdlog::logger> log;
    util::metrics_registry* metrics = nullptr;  // may be null
};

// One credential's tokens. Use it from one strand (the connector's); state() and the counters
// may be read from any thread.
class token_manager {
public:
    token_manager(manager_settings settings, manager_deps deps);
    ~token_manager();
    token_manager(const token_manager&) = delete;
    token_manager& operator=(const token_manager&) = delete;

    // A valid access token, refreshed first when it ends within refresh_margin. Fails with
    // auth_revoked (reconnect needed / not connected, at once and without a vendor call),
    // retryable or rate_limited (refresh failed for now and the current token has already
    // ended), or permanent (the vendor refused our client credentials, the record is unreadable).
    net::awaitable<access_result> access_token();

    // The resource server answered 401 to `token`: the next access_token() refreshes unless a
    // refresh has replaced that token already.
    void invalidate(std::string_view token);

    // Re-reads the stored credential (after `billsync connect` stored a new one).
    void reload();

    credential_state state() const noexcept;
    // The required scopes the stored grant lacks (see the free function): empty while the
    // credential is not loaded, when its record has no scope list, or when nothing is missing.
    // Any thread.
    std::vector<std::string> missing_scopes() const;
    const std::string& credential_id() const noexcept;
    const std::string& connector() const noexcept;
    std::uint64_t refresh_requests() const noexcept;  // token endpoint calls made
    std::uint64_t refreshes_ok() const noexcept;

    void set_hooks(manager_hooks hooks);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace billsync::connectors::oauth2
