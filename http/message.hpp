#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billsync::http {

struct header {
    std::string name;
    std::string value;
};

// A request as the server received it; the body is the raw bytes, untouched, so signatures can
// be verified over exactly what the sender signed.
struct request {
    std::string method;  // "GET", "POST"
    std::string target;  // "/webhooks/qbo?x=1"
    std::string path;    // "/webhooks/qbo"
    std::string query;   // "x=1"
    std::vector<header> headers;
    std::string body;
    std::string remote;  // peer address

    // Case-insensitive; empty when absent.
    std::string_view header_value(std::string_view name) const;
};

struct response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<header> headers;
    std::string route;  // low-cardinality label for metrics, set by the router

    static response text(unsigned status, std::string body);
    static response json(unsigned status, std::string body);
    // {"error": "<code>", "message": "<message>"}
    static response error(unsigned status, std::string_view code, std::string_view message);
};

bool iequals(std::string_view a, std::string_view b) noexcept;

// RFC 3986: unreserved characters pass, every other byte becomes %XX.
std::string percent_encode(std::string_view text);
// %XX sequences decoded; a malformed escape is kept literally. '+' stays '+' unless
// plus_is_space (form encoding).
std::string percent_decode(std::string_view text, bool plus_is_space = false);
// One application/x-www-form-urlencoded component, strictly: '+' is a space, a malformed escape
// makes the whole component invalid (nullopt).
std::optional<std::string> form_decode(std::string_view text);
// The decoded value of `name` in a query string ("a=1&b=2"); empty when absent.
std::string query_param(std::string_view query, std::string_view name);
// The request target ("/path?a=1&token=s&b=2") without the query parameters whose (decoded) name
// matches one of `names`, case-insensitively: "/path?a=1&b=2". For storing a target that may
// carry a credential in its query. Other parameters keep their order and encoding.
std::string without_query_params(std::string_view target, const std::vector<std::string>& names);

}  // namespace billsync::http
