#pragma once

// The connector runtime's HTTP(S) client: Beast + OpenSSL under C++20 coroutines. TLS verifies
// the peer's chain and host name by default (SNI set); connections are kept alive and reused per
// (scheme, host, port); every step is time-limited; responses are capped in size and gzip is
// decoded; an HTTP proxy is used through CONNECT (https) or absolute-form forwarding (http).
// Requests and responses are logged at debug level with credentials redacted.

#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/errors.hpp"
#include "connectors/runtime/proxy.hpp"
#include "http/asio.hpp"
#include "http/message.hpp"

namespace spdlog {
class logger;
}

namespace billsync::connectors {

struct client_settings {
    std::string ca_file;      // PEM bundle to trust; empty: the system's default trust store
    bool verify_peer = true;  // turning it off is for diagnostics only and is logged as a warning
    std::chrono::milliseconds connect_timeout{10'000};  // resolve + connect + proxy + handshake
    std::chrono::milliseconds read_timeout{30'000};     // write the request, read the response
    std::chrono::milliseconds total_timeout{60'000};    // one send() end to end
    std::size_t max_response_bytes = 16u << 20;         // body, after gzip decoding
    std::optional<proxy_settings> proxy;  // nullopt: from the environment (HTTPS_PROXY, …)
    std::size_t max_idle_per_host = 8;    // idle keep-alive connections kept per host
    std::chrono::milliseconds idle_timeout{50'000};  // an idle connection older than this is closed
    std::string user_agent = "billsync/0.1";
    bool accept_gzip = true;  // send Accept-Encoding: gzip (unless the request sets it)
    // Header names whose values never reach a log (Authorization, cookies and the usual API key
    // headers are always masked; add vendor ones such as Karbon's "AccessKey").
    std::vector<std::string> sensitive_headers;
    std::shared_ptr<spdlog::logger> log;  // "http.client"; nullptr: no logging
};

struct http_request {
    std::string method = "GET";
    std::string url;  // absolute http:// or https:// URL
    std::vector<http::header> headers;
    std::string body;
    // For the retry policy: a non-idempotent request (POST, PATCH) is retried only when it
    // carries the vendor's idempotency key (the key itself travels in a header or the query, as
    // the vendor wants it; this field records that it does) or the connector can reconcile it.
    std::string idempotency_key;
    bool reconcilable = false;
    std::optional<std::chrono::milliseconds> timeout;  // overrides total_timeout for this request
};

struct http_response {
    unsigned status = 0;
    std::vector<http::header> headers;
    std::string body;  // decoded (gzip removed)
    // Case-insensitive; empty when absent.
    std::string_view header_value(std::string_view name) const;
};

struct http_result {
    boost::system::error_code
        ec;                  // a client_error (or another transport error); empty: got an answer
    std::string error;       // a clear, loggable message when ec is set
    http_response response;  // valid when !ec (any status, including 4xx/5xx)
    bool reused_connection = false;
    // The whole request was handed to the connection (on any attempt): after a failure the
    // server may have processed it. False when it failed before (DNS, connect, proxy, TLS, or
    // a write that did not complete), so the request surely had no effect.
    bool request_written = false;
    bool ok() const noexcept { return !ec; }
};

// Default classification: a transport failure by its code; a 4xx/5xx by condition_for_status,
// with Retry-After read into retry_after. nullopt when the result is a success (1xx-3xx).
std::optional<call_error> classify(const http_result& r);

class https_client {
public:
    https_client(net::any_io_executor executor, client_settings settings);
    ~https_client();
    https_client(const https_client&) = delete;
    https_client& operator=(const https_client&) = delete;

    // One request, one response. Never throws for network or protocol failures; cancellation
    // of the awaiting coroutine propagates as usual. The client must outlive the call.
    net::awaitable<http_result> send(http_request req);

    // Idle pooled connections (all hosts); for tests and the status page.
    std::size_t idle_connections() const;
    // Closes every idle connection.
    void close_idle();

    // Settings as given, with the proxy resolved from the environment when it was not set.
    const client_settings& settings() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

// Formats headers for a log line with credential values masked.
std::string loggable_headers(const std::vector<http::header>& headers,
                             const std::vector<std::string>& extra_sensitive = {});

}  // namespace billsync::connectors
