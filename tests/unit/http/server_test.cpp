#include "http/server.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "http/client.hpp"
#include "http/router.hpp"
#include "tests/fakes/prometheus.hpp"
#include "util/metrics.hpp"

namespace billsync::http {
namespace {

using tcp = net::ip::tcp;
using namespace std::chrono_literals;

net::awaitable<response> echo(request req) {
    co_return response::text(200, req.method + " " + req.path + " " + req.body);
}

// A server on 127.0.0.1:0 running on its own thread.
class running_server {
public:
    explicit running_server(limits lim, handler h = nullptr) {
        routes_.add("POST", "/echo", [](request r) { return echo(std::move(r)); });
        routes_.add("GET", "/echo", [](request r) { return echo(std::move(r)); });
        if (h) {
            routes_.add("POST", "/custom", std::move(h));
        }
        auto log = std::make_shared<spdlog::logger>(
            "test", std::make_shared<spdlog::sinks::null_sink_mt>());
        srv_ = std::make_unique<server>(
            ioc_.get_executor(), "test", lim, routes_.as_handler(), log, &metrics_);
        const auto err = srv_->listen("127.0.0.1", 0);
        EXPECT_EQ(err, "");
        srv_->start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~running_server() {
        if (thread_.joinable()) {
            stop(100ms);
        }
    }
    void stop(std::chrono::milliseconds grace) {
        auto done = net::co_spawn(ioc_, srv_->shutdown(grace), net::use_future);
        done.get();
        ioc_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return srv_->port(); }
    server& srv() { return *srv_; }
    util::metrics_registry& metrics() { return metrics_; }
    net::io_context& ioc() { return ioc_; }

private:
    net::io_context ioc_;
    util::metrics_registry metrics_;
    router routes_;
    std::unique_ptr<server> srv_;
    std::thread thread_;
};

// Reads from a raw socket until the peer closes it; returns what arrived.
std::string read_until_closed(tcp::socket& s) {
    std::string all;
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
        const auto n = s.read_some(net::buffer(buf), ec);
        all.append(buf, n);
        if (ec) {
            break;
        }
    }
    return all;
}

tcp::socket connect_raw(net::io_context& ioc, std::uint16_t port) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    return s;
}

TEST(http_server, serves_routes_with_keep_alive) {
    running_server srv({});
    auto r = fetch("127.0.0.1", srv.port(), "POST", "/echo", {}, "hello");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "POST /echo hello");
    EXPECT_EQ(fetch("127.0.0.1", srv.port(), "GET", "/nope").status, 404u);
    auto m = fetch("127.0.0.1", srv.port(), "DELETE", "/echo");
    EXPECT_EQ(m.status, 405u);
    EXPECT_NE(m.header_value("Allow").find("POST"), std::string_view::npos);
}

// Issue 18 item 18: HEAD gets the GET headers and no body, so a keep-alive client reads the next
// response where it starts; where only POST works, HEAD is 405 without a body.
TEST(http_server, head_is_answered_like_get_without_a_body) {
    limits lim;
    running_server srv(lim, [](request r) { return echo(std::move(r)); });
    net::io_context ioc;
    auto s = connect_raw(ioc, srv.port());
    const std::string requests =
        "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        "HEAD /custom HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    net::write(s, net::buffer(requests));
    const auto all = read_until_closed(s);
    // Three responses, back to back: header blocks only, then the GET with its body.
    const auto first_end = all.find("\r\n\r\n");
    ASSERT_NE(first_end, std::string::npos) << all;
    const auto first = all.substr(0, first_end);
    EXPECT_TRUE(first.starts_with("HTTP/1.1 200")) << all;
    EXPECT_NE(first.find("Content-Length: 11"), std::string::npos) << first;  // "HEAD /echo "
    const auto second_start = first_end + 4;
    ASSERT_TRUE(all.substr(second_start).starts_with("HTTP/1.1 405")) << all;
    const auto second_end = all.find("\r\n\r\n", second_start);
    ASSERT_NE(second_end, std::string::npos);
    EXPECT_NE(all.substr(second_start, second_end - second_start).find("Allow: POST"),
              std::string::npos)
        << all;
    const auto third = all.substr(second_end + 4);
    EXPECT_TRUE(third.starts_with("HTTP/1.1 200")) << all;
    EXPECT_TRUE(third.ends_with("\r\n\r\nGET /echo ")) << all;

    // GET routes list HEAD as allowed too.
    auto m = fetch("127.0.0.1", srv.port(), "DELETE", "/echo");
    EXPECT_EQ(m.status, 405u);
    EXPECT_NE(m.header_value("Allow").find("HEAD"), std::string::npos) << m.header_value("Allow");
}

TEST(http_server, oversized_body_is_413_without_reading_it) {
    limits lim;
    lim.max_body_bytes = 1024;
    running_server srv(lim);
    auto r = fetch("127.0.0.1", srv.port(), "POST", "/echo", {}, std::string(1025, 'x'));
    EXPECT_EQ(r.status, 413u);
    EXPECT_NE(r.body.find("payload_too_large"), std::string::npos);
    EXPECT_EQ(fetch("127.0.0.1", srv.port(), "POST", "/echo", {}, std::string(1024, 'x')).status,
              200u);
    // The handler never ran for the oversized one; the metrics saw it.
    const auto text = srv.metrics().render();
    EXPECT_NE(text.find("code=\"413\""), std::string::npos) << text;
}

// Polls a condition the server thread makes true (no fixed sleep); false after `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

std::string partial_post(std::size_t content_length, std::size_t sent) {
    return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(content_length) +
           "\r\n\r\n" + std::string(sent, 'x');
}

TEST(http_server, unverified_clients_cannot_make_it_buffer_more_bodies_than_the_ceiling) {
    // Bodies are read in full before any signature can be checked: each connection that
    // announces a body reserves it against the listener's ceiling first, and one that does not
    // fit is answered 503 without its body being read.
    limits lim;
    lim.max_body_bytes = 64 * 1024;
    lim.max_buffered_body_bytes = 256 * 1024;
    lim.max_connections_per_ip = 0;
    running_server srv(lim);
    net::io_context ioc;
    std::vector<tcp::socket> slow;
    for (std::size_t i = 0; i < 4; ++i) {
        slow.push_back(connect_raw(ioc, srv.port()));
        net::write(slow.back(), net::buffer(partial_post(64 * 1024, 1000)));
        ASSERT_TRUE(eventually([&] { return srv.srv().buffered_body_bytes() == (i + 1) * 65536; }))
            << srv.srv().buffered_body_bytes();
    }
    for (int i = 0; i < 3; ++i) {
        auto s = connect_raw(ioc, srv.port());
        net::write(s, net::buffer(partial_post(64 * 1024, 1000)));
        const auto reply = read_until_closed(s);
        EXPECT_TRUE(reply.starts_with("HTTP/1.1 503")) << reply;
        EXPECT_NE(reply.find("\"busy\""), std::string::npos) << reply;
    }
    EXPECT_EQ(srv.srv().buffered_body_bytes(), 256u * 1024u);
    // Once one slow body completes, its reservation is given back and others fit again.
    net::write(slow[0], net::buffer(std::string(64 * 1024 - 1000, 'x')));
    char buf[64];
    boost::system::error_code ec;
    const auto n = slow[0].read_some(net::buffer(buf), ec);
    EXPECT_TRUE(std::string_view(buf, n).starts_with("HTTP/1.1 200")) << ec.message();
    ASSERT_TRUE(eventually([&] { return srv.srv().buffered_body_bytes() == 3u * 65536u; }));
    EXPECT_EQ(fetch("127.0.0.1", srv.port(), "POST", "/echo", {}, "hello").status, 200u);
}

TEST(http_server, a_route_cap_refuses_a_larger_body_from_its_content_length_alone) {
    limits lim;
    lim.body_limit = [](std::string_view, std::string_view target) -> std::size_t {
        return target.starts_with("/custom") ? 100 : 1024 * 1024;
    };
    running_server srv(lim, [](request r) { return echo(std::move(r)); });
    EXPECT_EQ(fetch("127.0.0.1", srv.port(), "POST", "/custom", {}, std::string(100, 'x')).status,
              200u);
    EXPECT_EQ(fetch("127.0.0.1", srv.port(), "POST", "/echo", {}, std::string(5000, 'x')).status,
              200u);
    // Only the header is sent: the announced size alone is refused.
    net::io_context ioc;
    auto s = connect_raw(ioc, srv.port());
    net::write(s,
               net::buffer(std::string(
                   "POST /custom HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")));
    const auto reply = read_until_closed(s);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply;
    EXPECT_EQ(srv.srv().buffered_body_bytes(), 0u);
}

TEST(http_server, connections_from_one_address_are_capped) {
    limits lim;
    lim.max_connections_per_ip = 2;
    running_server srv(lim);
    net::io_context ioc;
    auto a = connect_raw(ioc, srv.port());
    auto b = connect_raw(ioc, srv.port());
    ASSERT_TRUE(eventually([&] { return srv.srv().connections() == 2; }));
    auto c = connect_raw(ioc, srv.port());
    const auto reply = read_until_closed(c);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 503")) << reply;
    a.close();
    ASSERT_TRUE(eventually([&] { return srv.srv().connections() == 1; }));
    EXPECT_EQ(fetch("127.0.0.1", srv.port(), "GET", "/echo").status, 200u);
}

TEST(http_server, oversized_header_is_431) {
    limits lim;
    lim.max_header_bytes = 512;
    running_server srv(lim);
    auto r = fetch("127.0.0.1", srv.port(), "GET", "/echo", {{"X-Big", std::string(1000, 'a')}});
    EXPECT_EQ(r.status, 431u);
}

TEST(http_server, malformed_request_is_400) {
    running_server srv({});
    net::io_context ioc;
    auto s = connect_raw(ioc, srv.port());
    net::write(s, net::buffer(std::string("GARBAGE\r\n\r\n")));
    const auto reply = read_until_closed(s);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
}

TEST(http_server, slow_client_is_cut_off_after_the_read_timeout) {
    limits lim;
    lim.read_timeout = 200ms;
    running_server srv(lim);
    net::io_context ioc;
    auto s = connect_raw(ioc, srv.port());
    // Half a request, then silence: the server must close the connection by itself.
    net::write(s,
               net::buffer(
                   std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")));
    const auto started = std::chrono::steady_clock::now();
    const auto reply = read_until_closed(s);
    EXPECT_EQ(reply, "");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(http_server, connections_beyond_the_cap_get_503) {
    limits lim;
    lim.max_connections = 2;
    running_server srv(lim);
    net::io_context ioc;
    // Two keep-alive connections, each proven accepted by a completed request.
    std::vector<tcp::socket> held;
    for (int i = 0; i < 2; ++i) {
        held.push_back(connect_raw(ioc, srv.port()));
        net::write(held.back(), net::buffer(std::string("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")));
        char buf[512];
        const auto n = held.back().read_some(net::buffer(buf));
        ASSERT_TRUE(std::string(buf, n).starts_with("HTTP/1.1 200"));
    }
    auto third = connect_raw(ioc, srv.port());
    const auto reply = read_until_closed(third);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 503")) << reply;
    held.clear();
}

net::awaitable<response> slow_handler(request,
                                      std::shared_ptr<std::promise<void>> entered,
                                      std::shared_ptr<std::shared_future<void>> release) {
    entered->set_value();
    // Waits for the test to let it finish, without blocking the event loop thread forever.
    auto ex = co_await net::this_coro::executor;
    net::steady_timer t(ex);
    while (release->wait_for(0s) != std::future_status::ready) {
        t.expires_after(1ms);
        co_await t.async_wait(use_awaitable);
    }
    co_return response::text(200, "finished");
}

TEST(http_server, shutdown_lets_in_flight_requests_finish) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    auto release_promise = std::make_shared<std::promise<void>>();
    auto release =
        std::make_shared<std::shared_future<void>>(release_promise->get_future().share());
    running_server srv(
        {}, [entered, release](request r) { return slow_handler(std::move(r), entered, release); });
    auto reply = std::async(std::launch::async, [port = srv.port()] {
        return fetch("127.0.0.1", port, "POST", "/custom", {}, "x");
    });
    entered_future.wait();
    auto stopped = std::async(std::launch::async, [&srv] { srv.stop(5s); });
    // Release the handler only once shutdown has begun, i.e. the listener refuses connections.
    for (;;) {
        net::io_context ioc;
        tcp::socket probe(ioc);
        boost::system::error_code ec;
        probe.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), srv.port()), ec);
        if (ec) {
            break;
        }
    }
    release_promise->set_value();
    stopped.get();
    const auto r = reply.get();
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "finished");
    EXPECT_EQ(r.header_value("Connection"), "close");
}

TEST(http_server, request_metrics_parse_as_prometheus_text) {
    running_server srv({});
    fetch("127.0.0.1", srv.port(), "GET", "/echo");
    fetch("127.0.0.1", srv.port(), "GET", "/missing");
    const auto text = srv.metrics().render();
    std::string error;
    EXPECT_TRUE(testing::valid_prometheus_text(text, error)) << error;
    EXPECT_NE(
        text.find("billsync_http_requests_total{listener=\"test\",route=\"/echo\",code=\"200\"} 1"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("route=\"unmatched\",code=\"404\""), std::string::npos);
    EXPECT_NE(text.find("billsync_http_request_duration_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace billsync::http

namespace billsync::http {
namespace {

TEST(http_message, percent_encoding_round_trips_vendor_ids) {
    const std::string id = "notify:demo/inv 7&x=1:2";
    const auto enc = percent_encode(id);
    EXPECT_EQ(enc, "notify%3Ademo%2Finv%207%26x%3D1%3A2");
    EXPECT_EQ(percent_decode(enc), id);
    EXPECT_EQ(query_param("a=1&idempotency_key=" + enc + "&b=2", "idempotency_key"), id);
    EXPECT_EQ(query_param("a=1", "idempotency_key"), "");
    EXPECT_EQ(percent_decode("100%"), "100%");  // a malformed escape stays as it is
    EXPECT_EQ(percent_decode("%zz"), "%zz");
}

}  // namespace
}  // namespace billsync::http
