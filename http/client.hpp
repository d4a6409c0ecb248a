#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "http/message.hpp"

namespace billsync::http {

struct simple_response {
    unsigned status = 0;  // 0 when the request failed; see error
    std::string body;
    std::vector<header> headers;
    std::string error;
    std::string_view header_value(std::string_view name) const;
};

// A blocking plain-HTTP request on loopback, for the CLI talking to a running daemon and for
// tests. Not for vendor traffic (that goes through the connector runtime's HTTPS client).
simple_response fetch(const std::string& host,
                      std::uint16_t port,
                      const std::string& method,
                      const std::string& target,
                      const std::vector<header>& headers = {},
                      const std::string& body = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace billsync::http
