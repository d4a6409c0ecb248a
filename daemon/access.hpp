#pragma once

// Who may use the status listener.
//
// Reads (GET): with a configured [daemon.status_listener] bearer_token, every route but /healthz
// and /readyz needs it, as "Authorization: Bearer <token>" or, for a browser, HTTP Basic with any
// user name and the token as the password (a 401 answers with a Basic challenge so the browser
// prompts). Without one (a loopback-only listener), reads are open.
//
// Writes (every POST): always need the operator token as "Authorization: Bearer <token>", even on
// loopback: the configured bearer_token, or else one the daemon generates into
// <data_dir>/status_token (mode 0600) where the CLI reads it. Basic credentials are not taken for
// writes (a browser resends them by itself). A write must also name an allowed Host (loopback
// names, the listener's own address, [daemon.status_listener] allowed_hosts) and carry
// "Content-Type: application/json", so a page open in a browser on the host cannot make one (DNS
// rebinding, cross-site form posts). Refused: 403 (Host), 401 (token), 415 (Content-Type), with a
// JSON error, and nothing changes.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.hpp"

namespace billsync::daemon {

inline constexpr std::string_view status_token_file_name = "status_token";

// Read on every request (on the listener's thread), so a reload that changes bearer_token or
// allowed_hosts takes effect for the next request without a restart.
struct access_policy {
    std::optional<std::string> read_token;   // the configured bearer_token, if any
    std::string write_token;                 // configured, or generated into the data dir
    std::string listener_host;               // [daemon.status_listener] address host
    std::vector<std::string> allowed_hosts;  // [daemon.status_listener] allowed_hosts
};

// "Bearer <token>" (or, with basic_too, "Basic base64(<any user>:<token>)"), compared in
// constant time.
bool credentials_match(std::string_view authorization, std::string_view token, bool basic_too);

// Whether a Host header value ("127.0.0.1:8081", "[::1]:8081", "localhost") names a loopback
// address, the listener's own (non-wildcard) host or one of the allowed names; compared without
// case, port and a trailing dot.
bool host_allowed(std::string_view host_header, const access_policy& policy);

// "application/json", with or without parameters, in any case.
bool is_json_content_type(std::string_view content_type);

// A GET route behind the read check. `browser`: the 401 challenges with Basic (the dashboard).
http::handler guard_read(std::shared_ptr<const access_policy> policy,
                         http::handler inner,
                         bool browser = false);

// A POST route behind the write checks (Host, token, Content-Type).
http::handler guard_write(std::shared_ptr<const access_policy> policy, http::handler inner);

// The operator token for writes when no bearer_token is configured: the one in
// <data_dir>/status_token when it is there (mode 0600, owned by us, 64 hex digits), otherwise a
// new random one written there (0600, synced, renamed into place). Empty with `error` set when
// neither works.
std::string ensure_status_token(const std::filesystem::path& data_dir, std::string& error);

// The token in <data_dir>/status_token, which a client (the CLI, a test) sends with writes when
// no bearer_token is configured. Empty with `error` set (naming the file) when it cannot be read.
std::string read_status_token(const std::filesystem::path& data_dir, std::string& error);

}  // namespace billsync::daemon
