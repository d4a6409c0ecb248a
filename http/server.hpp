#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "http/asio.hpp"
#include "http/message.hpp"

namespace spdlog {
class logger;
}
namespace billsync::util {
class metrics_registry;
}

namespace billsync::http {

struct limits {
    std::size_t max_body_bytes = 1024 * 1024;        // larger bodies get 413 (unless body_limit)
    std::size_t max_header_bytes = 16 * 1024;        // larger headers get 431
    std::chrono::milliseconds read_timeout{10'000};  // a request must arrive within this
    std::chrono::milliseconds idle_timeout{60'000};  // keep-alive wait for the next request
    std::size_t max_connections = 1024;              // beyond this, 503 and close
    // Connections open at once from one peer address; beyond this, 503 and close. 0: no cap.
    std::size_t max_connections_per_ip = 256;
    // The hard ceiling on memory for request bodies: body bytes all connections may be receiving
    // at once. Before a body is read, its size (Content-Length, or the route's cap when chunked)
    // is reserved against it; a request that does not fit gets 503 and its body is never read.
    // No single body may exceed it either.
    std::size_t max_buffered_body_bytes = 64 * 1024 * 1024;
    // The body cap of a route, from the method and target, when it differs from max_body_bytes
    // (webhooks of vendors that send small bodies get a small cap). Empty: max_body_bytes.
    std::function<std::size_t(std::string_view method, std::string_view target)> body_limit;
};

using handler = std::function<net::awaitable<response>(request)>;

// An HTTP/1.1 server on Beast and C++20 coroutines. It enforces the limits above, counts requests
// by route and status code, and shuts down in two steps: stop accepting and let in-flight
// requests finish within a grace period, then close whatever is left.
class server {
public:
    server(net::any_io_executor executor,
           std::string name,  // "webhook", "status": a metrics label and log context
           limits lim,
           handler h,
           std::shared_ptr<spdlog::logger> log,
           util::metrics_registry* metrics = nullptr);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds and listens; port 0 picks a free port (see port()). Returns a message on failure.
    std::string listen(const std::string& host, std::uint16_t port);
    std::uint16_t port() const noexcept;
    void start();
    // Limits for connections accepted from now on.
    void set_limits(limits lim);
    // Stops accepting; waits up to `grace` for in-flight requests; then closes every connection.
    net::awaitable<void> shutdown(std::chrono::milliseconds grace);
    std::size_t connections() const noexcept;
    // Body bytes reserved by requests being read or handled (see max_buffered_body_bytes).
    std::size_t buffered_body_bytes() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace billsync::http
