#pragma once

// Errors as values. Every failure a connector sees maps onto a small shared set of conditions;
// retry and rate-limit logic look at these conditions only. Transport failures of the HTTPS
// client have their own codes (`client_error`) that map onto the conditions, and each vendor may
// add an `enum class error` of its own whose category maps through default_error_condition.

#include <boost/system/error_code.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace billsync::connectors {

enum class condition : int {
    retryable = 1,    // transient: 5xx, timeout, reset; try again after a backoff
    rate_limited,     // 429 or a vendor throttle; wait (retry_after when the server said)
    auth_expired,     // 401: refresh the access token, then retry once
    auth_revoked,     // invalid_grant or a revoked app: the operator must reconnect
    not_found,        // 404
    conflict,         // 409/412: re-read and re-apply
    invalid_request,  // 400/422: the request is wrong; retrying will not help
    permanent,        // anything else that must not be retried (403, 405, 410, …)
};

const boost::system::error_category& condition_category() noexcept;
boost::system::error_condition make_error_condition(condition c) noexcept;
std::string_view to_string(condition c) noexcept;

// Failures of the HTTPS client itself (no HTTP status arrived, or the answer was unusable).
enum class client_error : int {
    invalid_url = 1,
    resolve_failed,
    connect_failed,
    timeout,
    connection_closed,  // reset or closed before a complete response
    tls_handshake_failed,
    certificate_verify_failed,
    host_name_mismatch,
    proxy_failed,
    response_too_large,
    malformed_response,  // unparsable HTTP, or a body that failed to decode (gzip)
};

const boost::system::error_category& client_category() noexcept;
boost::system::error_code make_error_code(client_error e) noexcept;

// A classified failure: the shared condition, the server's requested wait when it gave one, the
// HTTP status (0 when none arrived) and a message safe to log.
struct call_error {
    condition cond = condition::permanent;
    std::optional<std::chrono::milliseconds> retry_after;
    unsigned status = 0;
    std::string message;
};

// Parses a Retry-After value: delta seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00
// GMT", interpreted against `now`, never negative). nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The default mapping of an HTTP status onto a condition; vendors refine it with their bodies.
// 2xx/3xx are not failures (nullopt).
std::optional<condition> condition_for_status(unsigned status) noexcept;

}  // namespace billsync::connectors

namespace boost::system {
template <>
struct is_error_condition_enum<billsync::connectors::condition> : std::true_type {};
template <>
struct is_error_code_enum<billsync::connectors::client_error> : std::true_type {};
}  // namespace boost::system
