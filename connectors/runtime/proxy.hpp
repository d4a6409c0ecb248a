#pragma once

// Which proxy, if any, a request goes through. HTTPS targets tunnel with CONNECT; plain http://
// targets are forwarded in absolute form. Pure functions, so every rule is unit-tested.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::connectors {

struct proxy_settings {
    std::string https_proxy;  // "http://proxy.firm.local:3128" (used for https:// targets)
    std::string http_proxy;   // used for http:// targets
    std::string no_proxy;     // "localhost,.internal,10.0.0.1,example.com:8443" or "*"
};

// HTTPS_PROXY/https_proxy, HTTP_PROXY/http_proxy, NO_PROXY/no_proxy. An empty HTTPS proxy falls
// back to ALL_PROXY.
proxy_settings proxy_from_environment();

struct proxy_endpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string authorization;  // "Basic …" from user:password in the proxy URL; empty if none
};

// NO_PROXY matching: "*" bypasses everything; an entry "example.com" or ".example.com" matches
// that host and its subdomains; an entry with ":port" matches only that port; IP literals match
// exactly. Case-insensitive.
bool bypasses_proxy(std::string_view host, std::uint16_t port, std::string_view no_proxy);

// The proxy for a target, or nullopt: a direct connection when no proxy is configured or the
// target bypasses it; when the proxy URL is unusable, `error` says why and the caller must not
// connect at all (https_client fails the request: a proxy that was meant is never skipped).
std::optional<proxy_endpoint> proxy_for(const proxy_settings& settings,
                                        std::string_view scheme,
                                        std::string_view host,
                                        std::uint16_t port,
                                        std::string* error = nullptr);

}  // namespace billsync::connectors
