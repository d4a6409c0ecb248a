// bench_webhook_flood: memory under a flood of unauthenticated request bodies.
//
// Webhook bodies are read in full before their signature can be checked, so a client without any
// credential can open many connections and announce a large body on each. This starts the HTTP
// server with the webhook listener's default limits on 127.0.0.1:0, opens --connections
// connections spread over several loopback addresses (127.0.0.1, 127.0.0.2, …, so the per-address
// cap alone does not decide the outcome), announces --body bytes on each and sends all but the
// last byte, holding every connection open. It then reports the process's peak RSS: the server's
// bodies are bounded by max_buffered_body (64 MiB by default), not by connections × body
// (1,024 × 1 MiB ≈ 1 GiB). --unbounded lifts the ceiling and the per-address cap, to show the
// memory the attack costs without them (needs about connections × body of RAM).
//
// Output ends with one JSON line:
//   {"bench":"webhook_flood","connections":N,"body_bytes":B,"accepted":…,"refused":…,
//    "buffered_peak_mb":…,"ceiling_mb":…,"rss_peak_mb":…}

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "http/router.hpp"
#include "http/server.hpp"

namespace {

using namespace billsync;

double peak_rss_mb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::stod(line.substr(6)) / 1024.0;  // kB
        }
    }
    return 0.0;
}

[[noreturn]] void usage(const char* why) {
    std::cerr << "bench_webhook_flood: " << why << "\n"
              << "usage: bench_webhook_flood [--connections N] [--body BYTES] [--addresses K] "
                 "[--unbounded]\n";
    std::exit(2);
}

// A blocking loopback connection from 127.0.0.<k>; -1 on failure.
int connect_from(int k, std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(0x7f000000U | static_cast<std::uint32_t>(k));
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

// Writes all of data; false when the peer refused or closed it.
bool send_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const auto n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t connections = 1024;
    std::size_t body = 1024 * 1024;
    int addresses = 32;
    bool unbounded = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage("missing value");
            }
            return argv[++i];
        };
        if (a == "--connections") {
            connections = std::stoul(next());
        } else if (a == "--body") {
            body = std::stoul(next());
        } else if (a == "--addresses") {
            addresses = std::stoi(next());
        } else if (a == "--unbounded") {
            unbounded = true;
        } else {
            usage("unknown option");
        }
    }
    if (connections == 0 || body < 2 || addresses < 1 || addresses > 250) {
        usage("bad value");
    }

    // The webhook listener's defaults (as [daemon.webhook_listener] without keys): 1 MiB bodies.
    http::limits lim;
    lim.read_timeout = std::chrono::seconds(60);
    if (unbounded) {
        lim.max_buffered_body_bytes = std::size_t{1} << 40;
        lim.max_connections_per_ip = 0;
    }
    lim.max_body_bytes = std::max(lim.max_body_bytes, body);
    const std::size_t ceiling = lim.max_buffered_body_bytes;

    net::io_context ioc;
    http::router routes;
    routes.add("POST", "/webhooks/demo", [](http::request) -> net::awaitable<http::response> {
        co_return http::response::json(401, R"({"error":"invalid_signature"})");
    });
    auto log =
        std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
    http::server srv(ioc.get_executor(), "webhook", lim, routes.as_handler(), log);
    if (auto e = srv.listen("127.0.0.1", 0); !e.empty()) {
        std::cerr << e << "\n";
        return 1;
    }
    srv.start();
    std::thread server_thread([&] { ioc.run(); });
    const auto port = srv.port();

    const std::string header =
        "POST /webhooks/demo HTTP/1.1\r\nHost: bench\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body) + "\r\n\r\n";
    const std::string payload(body - 1, 'x');  // all but the last byte: the body never completes
    std::vector<int> open;
    std::size_t accepted = 0;
    std::size_t refused = 0;
    std::size_t buffered_peak = 0;
    const auto started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < connections; ++i) {
        const int fd =
            connect_from(1 + static_cast<int>(i % static_cast<std::size_t>(addresses)), port);
        if (fd < 0) {
            ++refused;
            continue;
        }
        if (send_all(fd, header.data(), header.size()) &&
            send_all(fd, payload.data(), payload.size())) {
            open.push_back(fd);
        } else {
            ++refused;
            ::close(fd);
        }
        buffered_peak = std::max(buffered_peak, srv.buffered_body_bytes());
    }
    // A send into a refused connection may still have landed in socket buffers: a connection
    // counts as accepted when the server has not answered it (503) nor closed it.
    for (const int fd : open) {
        timeval tv{0, 100'000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char c = 0;
        const auto n = ::recv(fd, &c, 1, MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ++accepted;
        } else {
            ++refused;
        }
        buffered_peak = std::max(buffered_peak, srv.buffered_body_bytes());
    }
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double rss = peak_rss_mb();
    // A write that returned may still sit in socket buffers; what the server holds is bounded by
    // its reservations, which never exceed the ceiling.
    buffered_peak = std::max(buffered_peak, srv.buffered_body_bytes());

    for (const int fd : open) {
        ::close(fd);
    }
    ioc.stop();
    server_thread.join();

    const double mib = 1024.0 * 1024.0;
    std::printf("connections       %zu (body %zu bytes each, from %d addresses)\n",
                connections,
                body,
                addresses);
    std::printf("accepted          %zu (body being read)\n", accepted);
    std::printf("refused           %zu (503 before the body, or closed)\n", refused);
    std::printf("buffered peak     %.1f MB (ceiling %.1f MB)\n",
                static_cast<double>(buffered_peak) / mib,
                static_cast<double>(ceiling) / mib);
    std::printf("peak RSS          %.1f MB\n", rss);
    std::printf("took              %.2f s\n", took);
    std::printf(
        "{\"bench\":\"webhook_flood\",\"connections\":%zu,\"body_bytes\":%zu,\"accepted\":%zu,"
        "\"refused\":%zu,\"buffered_peak_mb\":%.1f,\"ceiling_mb\":%.1f,\"rss_peak_mb\":%.1f}\n",
        connections,
        body,
        accepted,
        refused,
        static_cast<double>(buffered_peak) / mib,
        unbounded ? -1.0 : static_cast<double>(ceiling) / mib,
        rss);
    return 0;
}
