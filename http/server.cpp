#include "http/server.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <map>
#include <tuple>
#include <unordered_map>

#include "util/metrics.hpp"

namespace billsync::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct server::impl : std::enable_shared_from_this<impl> {
    struct connection {
        beast::tcp_stream* stream = nullptr;
        bool busy = false;  // a request is being handled or answered
    };

    // Body bytes reserved by one request against max_buffered_body_bytes, given back when the
    // request is done (whichever way the session leaves).
    struct body_reservation {
        impl* owner = nullptr;
        std::size_t bytes = 0;
        body_reservation() = default;
        body_reservation(const body_reservation&) = delete;
        body_reservation& operator=(const body_reservation&) = delete;
        ~body_reservation() { release(); }
        void release() {
            if (owner != nullptr) {
                owner->buffered_body -= bytes;
                owner = nullptr;
                bytes = 0;
            }
        }
    };

    net::strand<net::any_io_executor> strand;
    std::string name;
    limits lim;
    handler h;
    std::shared_ptr<spdlog::logger> log;
    util::metrics_registry* metrics;
    tcp::acceptor acceptor;
    bool stopping = false;
    std::uint64_t next_id = 0;
    std::map<std::uint64_t, connection> conns;
    std::unordered_map<std::string, std::size_t> per_ip;  // open connections by peer address
    std::size_t buffered_body = 0;                        // reserved body bytes (strand only)
    std::atomic<std::size_t> buffered_body_seen{0};       // a copy readable from any thread
    net::steady_timer drained;

    // Metric series cached per (route, code); touched only on the strand.
    std::unordered_map<std::string, util::counter*> request_counters;
    std::unordered_map<std::string, util::histogram*> durations;
    util::counter* rejected_connections = nullptr;
    util::gauge* open_connections = nullptr;

    impl(net::any_io_executor ex,
         std::string n,
         limits l,
         handler hd,
         std::shared_ptr<spdlog::logger> lg,
         util::metrics_registry* m)
        : strand(net::make_strand(ex)),
          name(std::move(n)),
          lim(l),
          h(std::move(hd)),
          log(std::move(lg)),
          metrics(m),
          acceptor(strand),
          drained(strand) {
        if (metrics != nullptr) {
            rejected_connections =
                &metrics->get_counter("billsync_http_connections_rejected_total",
                                      "Connections refused because the listener was at capacity.",
                                      {{"listener", name}});
            open_connections = &metrics->get_gauge(
                "billsync_http_open_connections", "Open HTTP connections.", {{"listener", name}});
        }
    }

    void count(const std::string& route, unsigned status, std::chrono::nanoseconds took) {
        if (metrics == nullptr) {
            return;
        }
        const auto code = std::to_string(status);
        auto key = route + '\0' + code;
        auto it = request_counters.find(key);
        if (it == request_counters.end()) {
            it = request_counters
                     .emplace(std::move(key),
                              &metrics->get_counter(
                                  "billsync_http_requests_total",
                                  "HTTP requests by listener, route and code.",
                                  {{"listener", name}, {"route", route}, {"code", code}}))
                     .first;
        }
        it->second->inc();
        auto dit = durations.find(route);
        if (dit == durations.end()) {
            dit = durations
                      .emplace(route,
                               &metrics->get_histogram("billsync_http_request_duration_seconds",
                                                       "HTTP request handling time.",
                                                       {{"listener", name}, {"route", route}}))
                      .first;
        }
        dit->second->observe(took);
    }

    // Writes a canned error response and closes; used for limit violations.
    static net::awaitable<void> reject(beast::tcp_stream& stream,
                                       unsigned status,
                                       std::string_view code,
                                       std::string_view message) {
        auto r = response::error(status, code, message);
        bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(status), 11};
        out.set(bhttp::field::content_type, r.content_type);
        out.set(bhttp::field::connection, "close");
        out.body() = std::move(r.body);
        out.prepare_payload();
        stream.expires_after(std::chrono::seconds(5));
        co_await bhttp::async_write(stream, out, as_tuple_awaitable);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }

    static request to_request(bhttp::request<bhttp::string_body>& in, const std::string& remote) {
        request req;
        req.method = std::string(in.method_string());
        req.target = std::string(in.target());
        const auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) {
            req.query = req.target.substr(q + 1);
        }
        req.headers.reserve(16);
        for (const auto& f : in) {
            req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        }
        req.body = std::move(in.body());
        req.remote = remote;
        return req;
    }

    // The body cap of the request whose header the parser holds.
    std::size_t body_cap(const bhttp::request_parser<bhttp::string_body>& parser) const {
        const auto& hdr = parser.get();
        std::size_t cap =
            lim.body_limit ? lim.body_limit(hdr.method_string(), hdr.target()) : lim.max_body_bytes;
        return std::min(cap, lim.max_buffered_body_bytes);
    }

    void note_buffered() { buffered_body_seen.store(buffered_body, std::memory_order_relaxed); }

    net::awaitable<void> session(tcp::socket socket, std::uint64_t id, std::string remote) {
        auto self = shared_from_this();
        beast::tcp_stream stream(std::move(socket));
        conns[id] = connection{&stream, false};
        if (open_connections != nullptr) {
            open_connections->set(static_cast<std::int64_t>(conns.size()));
        }
        beast::flat_buffer buffer;
        bool first = true;
        while (!stopping) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(lim.max_header_bytes));
            body_reservation reserved;
            // Wait for the next request (idle), then the whole request must arrive in time.
            stream.expires_after(first ? lim.read_timeout : lim.idle_timeout);
            auto [hec, hn] =
                co_await bhttp::async_read_header(stream, buffer, parser, as_tuple_awaitable);
            if (!hec && !parser.is_done()) {
                // The body is read only once its size fits the route's cap and the listener's
                // budget, so unauthenticated clients cannot make the server hold more than
                // max_buffered_body_bytes of bodies however many connections they open.
                const auto cap = body_cap(parser);
                parser.body_limit(cap);
                const auto declared = parser.content_length();
                if (declared && *declared > cap) {
                    hec = bhttp::error::body_limit;
                } else {
                    const std::size_t want = declared ? static_cast<std::size_t>(*declared) : cap;
                    if (buffered_body + want > lim.max_buffered_body_bytes) {
                        count("rejected", 503, {});
                        if (rejected_connections != nullptr) {
                            rejected_connections->inc();
                        }
                        log->debug(
                            "Refusing a body beyond the buffered-body ceiling listener={} "
                            "remote={} bytes={} buffered={}",
                            name,
                            remote,
                            want,
                            buffered_body);
                        co_await reject(
                            stream, 503, "busy", "too many request bodies in flight; retry later");
                        break;
                    }
                    buffered_body += want;
                    reserved.owner = this;
                    reserved.bytes = want;
                    note_buffered();
                    stream.expires_after(lim.read_timeout);
                    auto [bec, bn] =
                        co_await bhttp::async_read(stream, buffer, parser, as_tuple_awaitable);
                    hec = bec;
                }
            }
            first = false;
            if (hec) {
                if (hec == bhttp::error::body_limit) {
                    count("rejected", 413, {});
                    co_await reject(
                        stream, 413, "payload_too_large", "request body exceeds the limit");
                } else if (hec == bhttp::error::header_limit) {
                    count("rejected", 431, {});
                    co_await reject(
                        stream, 431, "header_too_large", "request header exceeds the limit");
                } else if (hec == beast::error::timeout) {
                    log->debug(
                        "Closing slow or idle connection listener={} remote={}", name, remote);
                } else if (hec != bhttp::error::end_of_stream && hec != net::error::eof &&
                           hec != net::error::operation_aborted &&
                           hec != net::error::connection_reset) {
                    count("rejected", 400, {});
                    co_await reject(stream, 400, "bad_request", hec.message());
                }
                break;
            }
            auto& conn = conns[id];
            conn.busy = true;
            const auto started = std::chrono::steady_clock::now();
            auto in = parser.release();
            const bool keep_alive = in.keep_alive();
            const unsigned version = in.version();
            const bool head = in.method() == bhttp::verb::head;
            response r;
            try {
                r = co_await h(to_request(in, remote));
            } catch (const std::exception& e) {
                log->error("Request handler failed listener={} error=\"{}\"", name, e.what());
                r = response::error(500, "internal", "internal error");
                r.route = "error";
            }
            bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(r.status), version};
            out.set(bhttp::field::content_type, r.content_type);
            out.set(bhttp::field::server, "billsync");
            for (const auto& hd : r.headers) {
                out.set(hd.name, hd.value);
            }
            out.body() = std::move(r.body);
            out.keep_alive(keep_alive && !stopping);
            out.prepare_payload();
            // Counted before the answer leaves, so a client that has its answer sees the count.
            count(r.route.empty() ? std::string("unmatched") : r.route,
                  r.status,
                  std::chrono::steady_clock::now() - started);
            stream.expires_after(lim.read_timeout);
            boost::system::error_code wec;
            if (head) {
                // RFC 9110 9.3.2: the same header fields (Content-Length included), no body; a
                // body here would be read as the start of the next response.
                bhttp::response_serializer<bhttp::string_body> sr{out};
                std::tie(wec, std::ignore) =
                    co_await bhttp::async_write_header(stream, sr, as_tuple_awaitable);
            } else {
                std::tie(wec, std::ignore) =
                    co_await bhttp::async_write(stream, out, as_tuple_awaitable);
            }
            conns[id].busy = false;
            reserved.release();
            note_buffered();
            if (wec || !out.keep_alive()) {
                break;
            }
        }
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
        conns.erase(id);
        if (auto it = per_ip.find(remote); it != per_ip.end() && --it->second == 0) {
            per_ip.erase(it);
        }
        if (open_connections != nullptr) {
            open_connections->set(static_cast<std::int64_t>(conns.size()));
        }
        if (stopping && conns.empty()) {
            drained.cancel();
        }
    }

    net::awaitable<void> refuse(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        co_await reject(stream, 503, "too_many_connections", "connection limit reached");
        stream.close();
    }

    net::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (!stopping) {
            auto [ec, socket] = co_await acceptor.async_accept(as_tuple_awaitable);
            if (ec) {
                if (stopping || ec == net::error::operation_aborted) {
                    break;
                }
                log->warn("Accept failed listener={} error=\"{}\"", name, ec.message());
                continue;
            }
            socket.set_option(tcp::no_delay(true), ec);
            beast::error_code ec_remote;
            const auto ep = socket.remote_endpoint(ec_remote);
            std::string remote = ec_remote ? std::string("?") : ep.address().to_string();
            const bool ip_full =
                lim.max_connections_per_ip != 0 && per_ip[remote] >= lim.max_connections_per_ip;
            if (conns.size() >= lim.max_connections || ip_full) {
                if (rejected_connections != nullptr) {
                    rejected_connections->inc();
                }
                if (ip_full) {
                    log->debug(
                        "Refusing a connection beyond the per-address cap listener={} "
                        "remote={} cap={}",
                        name,
                        remote,
                        lim.max_connections_per_ip);
                }
                if (per_ip[remote] == 0) {
                    per_ip.erase(remote);
                }
                net::co_spawn(strand, refuse(std::move(socket)), net::detached);
                continue;
            }
            ++per_ip[remote];
            const auto id = next_id++;
            net::co_spawn(strand,
                          self->session(std::move(socket), id, std::move(remote)),
                          [self](std::exception_ptr e) {
                              if (e) {
                                  try {
                                      std::rethrow_exception(e);
                                  } catch (const std::exception& ex) {
                                      self->log->error("Connection failed listener={} error=\"{}\"",
                                                       self->name,
                                                       ex.what());
                                  }
                              }
                          });
        }
    }
};

server::server(net::any_io_executor executor,
               std::string name,
               limits lim,
               handler h,
               std::shared_ptr<spdlog::logger> log,
               util::metrics_registry* metrics)
    : impl_(std::make_shared<impl>(
          std::move(executor), std::move(name), lim, std::move(h), std::move(log), metrics)) {}

server::~server() {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
}

std::string server::listen(const std::string& host, std::uint16_t port) {
    beast::error_code ec;
    const auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) {
        return "invalid address '" + host + "': " + ec.message();
    }
    const tcp::endpoint ep{address, port};
    auto& a = impl_->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) {
        a.set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        a.bind(ep, ec);
    }
    if (!ec) {
        a.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        beast::error_code ignored;
        a.close(ignored);
        return "cannot listen on " + ep.address().to_string() + ":" + std::to_string(port) + ": " +
               ec.message();
    }
    return {};
}

std::uint16_t server::port() const noexcept {
    beast::error_code ec;
    const auto ep = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void server::start() { net::co_spawn(impl_->strand, impl_->accept_loop(), net::detached); }

void server::set_limits(limits lim) {
    net::dispatch(impl_->strand, [self = impl_, lim] { self->lim = lim; });
}

std::size_t server::connections() const noexcept { return impl_->conns.size(); }

std::size_t server::buffered_body_bytes() const noexcept {
    return impl_->buffered_body_seen.load(std::memory_order_relaxed);
}

net::awaitable<void> server::shutdown(std::chrono::milliseconds grace) {
    auto self = impl_;
    co_await net::dispatch(net::bind_executor(self->strand, use_awaitable));
    self->stopping = true;
    beast::error_code ignored;
    self->acceptor.close(ignored);
    // Idle keep-alive connections are closed at once; busy ones finish their request.
    for (auto& [id, c] : self->conns) {
        if (!c.busy) {
            c.stream->socket().cancel(ignored);
        }
    }
    if (!self->conns.empty()) {
        self->drained.expires_after(grace);
        co_await self->drained.async_wait(as_tuple_awaitable);
    }
    if (!self->conns.empty()) {
        self->log->warn(
            "Closing connections still busy after the grace period listener={} count={}",
            self->name,
            self->conns.size());
        for (auto& [id, c] : self->conns) {
            c.stream->socket().cancel(ignored);
            c.stream->socket().close(ignored);
        }
    }
}

}  // namespace billsync::http
