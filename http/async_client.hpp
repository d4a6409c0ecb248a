#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/asio.hpp"
#include "http/client.hpp"

namespace billsync::http {

struct url_parts {
    std::string scheme;  // "http" | "https"
    std::string host;
    std::uint16_t port = 0;
    std::string target;  // path and query, at least "/"
};

// Parses an absolute http(s) URL; nullopt when it is not one.
std::optional<url_parts> parse_url(std::string_view url);

struct outgoing_request {
    std::string method = "GET";
    std::string host;
    std::uint16_t port = 80;
    std::string target = "/";
    std::vector<header> headers;
    std::string body;
    std::chrono::milliseconds timeout{10'000};  // connect, write and read together
    std::size_t max_response_bytes = 8u << 20;
};

// One plain-HTTP request on its own connection, as a coroutine. Failures (refused, timeout,
// oversized answer) come back as status 0 with `error` set. The connector runtime's HTTPS client
// builds on this shape.
net::awaitable<simple_response> async_fetch(outgoing_request req);

}  // namespace billsync::http
