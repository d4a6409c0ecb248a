#include "connectors/runtime/errors.hpp"

#include <charconv>
#include <ctime>

namespace billsync::connectors {
namespace {

// boost::system::error_category has a protected non-virtual destructor by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"

class condition_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "billsync.condition"; }
    std::string message(int ev) const override {
        return std::string(to_string(static_cast<condition>(ev)));
    }
};

class client_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "billsync.http_client"; }
    std::string message(int ev) const override {
        switch (static_cast<client_error>(ev)) {
            case client_error::invalid_url:
                return "invalid URL";
            case client_error::resolve_failed:
                return "cannot resolve host";
            case client_error::connect_failed:
                return "connect failed";
            case client_error::timeout:
                return "timed out";
            case client_error::connection_closed:
                return "connection closed before a complete response";
            case client_error::tls_handshake_failed:
                return "TLS handshake failed";
            case client_error::certificate_verify_failed:
                return "certificate verify failed";
            case client_error::host_name_mismatch:
                return "host name mismatch";
            case client_error::proxy_failed:
                return "proxy failed";
            case client_error::response_too_large:
                return "response too large";
            case client_error::malformed_response:
                return "malformed response";
        }
        return "unknown client error";
    }
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        switch (static_cast<client_error>(ev)) {
            case client_error::resolve_failed:
            case client_error::connect_failed:
            case client_error::timeout:
            case client_error::connection_closed:
            case client_error::tls_handshake_failed:
            case client_error::proxy_failed:
                return make_error_condition(condition::retryable);
            case client_error::malformed_response:
                // A truncated or garbled answer is usually transient (a proxy or server hiccup).
                return make_error_condition(condition::retryable);
            case client_error::invalid_url:
            case client_error::certificate_verify_failed:
            case client_error::host_name_mismatch:
            case client_error::response_too_large:
                return make_error_condition(condition::permanent);
        }
        return make_error_condition(condition::permanent);
    }
};

#pragma GCC diagnostic pop

bool parse_int(std::string_view s, int& out) {
    const auto* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc{} && p == end;
}

// IMF-fixdate, the only HTTP-date form senders may generate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view v) {
    static constexpr std::string_view months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (v.size() != 29 || v[3] != ',' || v.substr(26) != "GMT") {
        return std::nullopt;
    }
    int day = 0;
    int year = 0;
    int hh = 0;
    int mm = 0;
    int ss = 0;
    if (!parse_int(v.substr(5, 2), day) || !parse_int(v.substr(12, 4), year) ||
        !parse_int(v.substr(17, 2), hh) || !parse_int(v.substr(20, 2), mm) ||
        !parse_int(v.substr(23, 2), ss) || v[19] != ':' || v[22] != ':') {
        return std::nullopt;
    }
    unsigned month = 0;
    for (unsigned i = 0; i < 12; ++i) {
        if (v.substr(8, 3) == months[i]) {
            month = i + 1;
        }
    }
    if (month == 0 || hh > 23 || mm > 59 || ss > 60) {
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{year},
                                          std::chrono::month{month},
                                          std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return std::chrono::sys_days{ymd} + std::chrono::hours{hh} + std::chrono::minutes{mm} +
           std::chrono::seconds{ss};
}

}  // namespace

const boost::system::error_category& condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

boost::system::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

std::string_view to_string(condition c) noexcept {
    switch (c) {
        case condition::retryable:
            return "retryable";
        case condition::rate_limited:
            return "rate_limited";
        case condition::auth_expired:
            return "auth_expired";
        case condition::auth_revoked:
            return "auth_revoked";
        case condition::not_found:
            return "not_found";
        case condition::conflict:
            return "conflict";
        case condition::invalid_request:
            return "invalid_request";
        case condition::permanent:
            return "permanent";
    }
    return "unknown";
}

const boost::system::error_category& client_category() noexcept {
    static const client_category_impl instance;
    return instance;
}

boost::system::error_code make_error_code(client_error e) noexcept {
    return {static_cast<int>(e), client_category()};
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
    while (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    while (!value.empty() && value.back() == ' ') {
        value.remove_suffix(1);
    }
    if (value.empty()) {
        return std::nullopt;
    }
    std::int64_t secs = 0;
    const auto* end = value.data() + value.size();
    if (auto [p, ec] = std::from_chars(value.data(), end, secs); ec == std::errc{} && p == end) {
        if (secs < 0) {
            return std::nullopt;
        }
        return std::chrono::seconds(secs);
    }
    const auto when = parse_http_date(value);
    if (!when) {
        return std::nullopt;
    }
    if (*when <= now) {
        return std::chrono::milliseconds::zero();
    }
    return std::chrono::ceil<std::chrono::milliseconds>(*when - now);
}

std::optional<condition> condition_for_status(unsigned status) noexcept {
    if (status >= 200 && status < 400) {
        return std::nullopt;
    }
    switch (status) {
        case 429:
            return condition::rate_limited;
        case 401:
            return condition::auth_expired;
        case 404:
            return condition::not_found;
        case 409:
        case 412:
            return condition::conflict;
        case 400:
        case 422:
            return condition::invalid_request;
        case 408:
            return condition::retryable;
        default:
            break;
    }
    if (status >= 500 && status < 600) {
        return condition::retryable;
    }
    return condition::permanent;
}

}  // namespace billsync::connectors
