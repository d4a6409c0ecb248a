#include "connectors/runtime/https_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "sim/test_ca.hpp"
#include "tests/fakes/log_capture.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors {
namespace {

using namespace std::chrono_literals;
using simulators::scripted_response;
using simulators::sim_server;
using testing::get;
using testing::run;
using testing::start_sim;
using testing::test_settings;
using tcp = net::ip::tcp;

void ping_route(sim_server& s) { s.routes().add("GET", "/ping", testing::text_ok); }

TEST(https_client, plain_get_and_post) {
    auto sim = start_sim([](sim_server& s) {
        ping_route(s);
        s.routes().add("POST", "/echo", [](http::request req) -> net::awaitable<http::response> {
            co_return http::response::json(201, req.body);
        });
    });
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.status, 200u);
    EXPECT_EQ(r.response.body, R"({"ok":true,"path":"/ping"})");

    http_request post;
    post.method = "POST";
    post.url = sim->base_url() + "/echo";
    post.headers = {{"Content-Type", "application/json"}};
    post.body = R"({"a":1})";
    r = run(ioc, client.send(post));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.status, 201u);
    EXPECT_EQ(r.response.body, R"({"a":1})");
    const auto recorded = sim->requests_to("/echo");
    ASSERT_EQ(recorded.size(), 1u);
    EXPECT_EQ(recorded[0].body, R"({"a":1})");
    EXPECT_EQ(recorded[0].header_value("User-Agent"), "billsync/0.1");
}

TEST(https_client, keep_alive_reuses_one_connection) {
    auto sim = start_sim(ping_route);
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    for (int i = 0; i < 5; ++i) {
        auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
        ASSERT_TRUE(r.ok()) << r.error;
        EXPECT_EQ(r.reused_connection, i > 0);
    }
    EXPECT_EQ(sim->connections_accepted(), 1u);
    EXPECT_EQ(client.idle_connections(), 1u);
    for (const auto& req : sim->requests()) {
        EXPECT_EQ(req.connection, 1u);
    }
}

TEST(https_client, reconnects_when_a_pooled_connection_was_closed) {
    auto sim = start_sim([](sim_server& s) {
        ping_route(s);
        s.routes().add("POST", "/ping", testing::text_ok);
    });
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    ASSERT_TRUE(run(ioc, client.send(get(sim->base_url() + "/ping"))).ok());
    // The server drops the kept-alive connection when the next request arrives on it. A GET may
    // be repeated, so it goes again on a fresh connection.
    sim->script("GET", "/ping", {scripted_response::drop()});
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(sim->connections_accepted(), 2u);
    // A POST without an idempotency key is not repeated behind the caller's back.
    sim->script("POST", "/ping", {scripted_response::drop()});
    http_request post;
    post.method = "POST";
    post.url = sim->base_url() + "/ping";
    r = run(ioc, client.send(post));
    EXPECT_EQ(r.ec, make_error_code(client_error::connection_closed)) << r.error;
    EXPECT_EQ(sim->requests_to("/ping").size(), 4u);
}

TEST(https_client, idle_connection_closed_by_the_server_is_not_reused) {
    auto sim = start_sim([](sim_server& s) { s.routes().add("POST", "/ping", testing::text_ok); });
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    http_request post;
    post.method = "POST";
    post.url = sim->base_url() + "/ping";
    ASSERT_TRUE(run(ioc, client.send(post)).ok());
    ASSERT_EQ(client.idle_connections(), 1u);
    const auto port = sim->port();
    sim->stop();  // closes every connection
    simulators::sim_options o;
    o.port = port;  // the same host and port: the same pool entry
    auto sim2 =
        start_sim([](sim_server& s) { s.routes().add("POST", "/ping", testing::text_ok); }, o);
    auto r = run(ioc, client.send(post));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_FALSE(r.reused_connection);
}

TEST(https_client, decodes_gzip) {
    auto sim = start_sim(ping_route);
    std::string big(20000, 'x');
    auto answer = scripted_response::ok(R"({"data":")" + big + "\"}");
    answer.gzip = true;
    sim->script("GET", "/ping", {answer});
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.body, R"({"data":")" + big + "\"}");
    EXPECT_TRUE(r.response.header_value("Content-Encoding").empty());
    EXPECT_EQ(sim->requests()[0].header_value("Accept-Encoding"), "gzip");
}

TEST(https_client, caps_response_size) {
    auto sim = start_sim(ping_route);
    sim->script("GET", "/ping", {scripted_response::ok(std::string(5000, 'a'))});
    auto zipped = scripted_response::ok(std::string(50000, 'a'));
    zipped.gzip = true;  // small on the wire, too large decoded
    sim->script("GET", "/ping", {zipped});
    net::io_context ioc;
    auto settings = test_settings();
    settings.max_response_bytes = 1000;
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::response_too_large)) << r.error;
    EXPECT_NE(r.error.find("exceeds 1000 bytes"), std::string::npos) << r.error;
    r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::malformed_response)) << r.error;
}

TEST(https_client, read_timeout) {
    auto sim = start_sim(ping_route);
    sim->script("GET", "/ping", {scripted_response::stall(10s)});
    net::io_context ioc;
    auto settings = test_settings();
    settings.read_timeout = 200ms;
    https_client client(ioc.get_executor(), settings);
    const auto started = std::chrono::steady_clock::now();
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::timeout)) << r.error;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
    EXPECT_EQ(classify(r)->cond, condition::retryable);
}

TEST(https_client, total_timeout_per_request) {
    auto sim = start_sim(ping_route);
    sim->script("GET", "/ping", {scripted_response::stall(10s)});
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    auto req = get(sim->base_url() + "/ping");
    req.timeout = 150ms;
    auto r = run(ioc, client.send(req));
    EXPECT_EQ(r.ec, make_error_code(client_error::timeout)) << r.error;
}

TEST(https_client, dropped_connection_and_garbage) {
    auto sim = start_sim(ping_route);
    sim->script("GET", "/ping", {scripted_response::drop(), scripted_response::garbage()});
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::connection_closed)) << r.error;
    EXPECT_EQ(classify(r)->cond, condition::retryable);
    r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::malformed_response)) << r.error;
}

TEST(https_client, connection_refused_and_bad_url) {
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    std::uint16_t free_port = 0;
    {
        tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        free_port = a.local_endpoint().port();
    }
    auto r = run(ioc, client.send(get("http://127.0.0.1:" + std::to_string(free_port) + "/")));
    EXPECT_EQ(r.ec, make_error_code(client_error::connect_failed)) << r.error;
    r = run(ioc, client.send(get("ftp://example.com/")));
    EXPECT_EQ(r.ec, make_error_code(client_error::invalid_url));
    EXPECT_EQ(classify(r)->cond, condition::permanent);
}

TEST(https_client, status_codes_classify) {
    auto sim = start_sim(ping_route);
    sim->script("GET",
                "/ping",
                {scripted_response::expired_token(),
                 scripted_response::rate_limited(7s),
                 scripted_response::status_code(404),
                 scripted_response::status_code(409),
                 scripted_response::status_code(422),
                 scripted_response::status_code(403),
                 scripted_response::server_error(502)});
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    const std::vector<condition> expected = {condition::auth_expired,
                                             condition::rate_limited,
                                             condition::not_found,
                                             condition::conflict,
                                             condition::invalid_request,
                                             condition::permanent,
                                             condition::retryable};
    for (auto want : expected) {
        auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
        ASSERT_TRUE(r.ok()) << r.error;
        auto e = classify(r);
        ASSERT_TRUE(e);
        EXPECT_EQ(e->cond, want) << r.response.status;
        if (want == condition::rate_limited) {
            EXPECT_EQ(e->retry_after, std::chrono::milliseconds(7000));
        }
    }
    EXPECT_EQ(sim->connections_accepted(), 1u);  // error answers keep the connection alive
}

TEST(https_client, redacts_credentials_in_debug_logs) {
    billsync::testing::log_capture capture;
    auto log = std::make_shared<spdlog::logger>("http.client", capture.sink());
    log->set_level(spdlog::level::debug);
    auto sim = start_sim([](sim_server& s) {
        s.routes().add("POST", "/token", [](http::request) -> net::awaitable<http::response> {
            co_return http::response::json(
                200, R"({"access_token":"at-SECRET-1","refresh_token":"rt-SECRET-2"})");
        });
    });
    net::io_context ioc;
    auto settings = test_settings();
    settings.log = log;
    settings.sensitive_headers = {"X-Vendor-Key"};
    https_client client(ioc.get_executor(), settings);
    http_request req;
    req.method = "POST";
    req.url = sim->base_url() + "/token?client_secret=cs-SECRET-3";
    req.headers = {{"Authorization", "Bearer bearer-SECRET-4"},
                   {"AccessKey", "jwt-SECRET-5"},
                   {"X-Vendor-Key", "vk-SECRET-6"},
                   {"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = "grant_type=refresh_token&refresh_token=rt-SECRET-7&client_id=abc";
    auto r = run(ioc, client.send(req));
    ASSERT_TRUE(r.ok()) << r.error;
    const auto text = capture.joined();
    EXPECT_NE(text.find("Request method=POST"), std::string::npos) << text;
    EXPECT_NE(text.find("status=200"), std::string::npos) << text;
    EXPECT_NE(text.find("Authorization: ***"), std::string::npos) << text;
    EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
    // Nothing at info level and above.
    for (const auto& line : capture.lines()) {
        EXPECT_TRUE(line.starts_with("debug")) << line;
    }
}

// --- TLS -----------------------------------------------------------------------------------

struct tls_fixture {
    billsync::testing::temp_dir dir;
    simulators::test_ca ca;
};

TEST(https_client_tls, trusted_test_ca) {
    tls_fixture f;
    const auto files = f.ca.issue_loopback(f.dir.path());
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto sim = start_sim(ping_route, o);
    ASSERT_EQ(sim->base_url().substr(0, 8), "https://");
    net::io_context ioc;
    auto settings = test_settings();
    settings.ca_file = files.ca_cert.string();
    https_client client(ioc.get_executor(), settings);
    for (int i = 0; i < 3; ++i) {
        auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
        ASSERT_TRUE(r.ok()) << r.error;
        EXPECT_EQ(r.response.status, 200u);
    }
    EXPECT_EQ(sim->connections_accepted(), 1u);
    // By IP address too: the leaf carries IP:127.0.0.1.
    auto r =
        run(ioc, client.send(get("https://127.0.0.1:" + std::to_string(sim->port()) + "/ping")));
    ASSERT_TRUE(r.ok()) << r.error;
}

TEST(https_client_tls, wrong_host_name_is_a_clear_error) {
    tls_fixture f;
    const auto files = f.ca.issue(f.dir.path(), {"billing.example.com"}, {});
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto sim = start_sim(ping_route, o);
    net::io_context ioc;
    auto settings = test_settings();
    settings.ca_file = files.ca_cert.string();
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::host_name_mismatch)) << r.error;
    EXPECT_NE(r.error.find("host name mismatch"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("localhost"), std::string::npos) << r.error;
    EXPECT_EQ(classify(r)->cond, condition::permanent);
    EXPECT_EQ(sim->request_count(), 0u);
}

TEST(https_client_tls, untrusted_ca_is_a_clear_error) {
    tls_fixture f;
    const auto files = f.ca.issue_loopback(f.dir.path());
    simulators::test_ca other("some other CA");
    const auto other_files = other.issue_loopback(f.dir.path(), "other");
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto sim = start_sim(ping_route, o);
    net::io_context ioc;
    auto settings = test_settings();
    settings.ca_file = other_files.ca_cert.string();
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::certificate_verify_failed)) << r.error;
    EXPECT_NE(r.error.find("certificate verify failed for host localhost"), std::string::npos)
        << r.error;
    EXPECT_EQ(sim->request_count(), 0u);
}

// Without a ca_file the system trust store is read when the first TLS connection needs it, not
// when the client is made (a daemon start pays nothing for it when no vendor speaks TLS).
// SSL_CERT_FILE names the store OpenSSL reads: set only after the client was made, it is the one
// the handshake trusts.
TEST(https_client_tls, the_system_trust_store_is_read_at_the_first_tls_connection) {
    tls_fixture f;
    const auto files = f.ca.issue_loopback(f.dir.path());
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto secure = start_sim(ping_route, o);
    auto plain = start_sim(ping_route);
    const char* before = std::getenv("SSL_CERT_FILE");
    const std::string saved = before != nullptr ? before : "";
    ::unsetenv("SSL_CERT_FILE");
    net::io_context ioc;
    https_client client(ioc.get_executor(), test_settings());
    auto r = run(ioc, client.send(get(plain->base_url() + "/ping")));
    ASSERT_TRUE(r.ok()) << r.error;
    ::setenv("SSL_CERT_FILE", files.ca_cert.c_str(), 1);
    r = run(ioc, client.send(get(secure->base_url() + "/ping")));
    if (before != nullptr) {
        ::setenv("SSL_CERT_FILE", saved.c_str(), 1);
    } else {
        ::unsetenv("SSL_CERT_FILE");
    }
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.status, 200u);
}

TEST(https_client_tls, missing_ca_file_is_reported) {
    tls_fixture f;
    const auto files = f.ca.issue_loopback(f.dir.path());
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto sim = start_sim(ping_route, o);
    net::io_context ioc;
    auto settings = test_settings();
    settings.ca_file = (f.dir.path() / "nope.pem").string();
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("cannot load CA file"), std::string::npos) << r.error;
}

// --- proxy ---------------------------------------------------------------------------------

// A loopback HTTP proxy: CONNECT tunnels, and absolute-form GETs answered directly. Records the
// request lines it saw. Runs on its own thread.
class test_proxy {
public:
    test_proxy() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
        net::co_spawn(ioc_, accept_loop(this), net::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~test_proxy() {
        ioc_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::vector<std::string> seen() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }

private:
    static net::awaitable<void> pump(std::shared_ptr<tcp::socket> from,
                                     std::shared_ptr<tcp::socket> to) {
        std::array<char, 8192> buf{};
        for (;;) {
            auto [ec, n] = co_await from->async_read_some(net::buffer(buf), as_tuple_awaitable);
            if (ec) {
                break;
            }
            auto [wec, wn] =
                co_await net::async_write(*to, net::buffer(buf.data(), n), as_tuple_awaitable);
            if (wec) {
                break;
            }
        }
        boost::system::error_code ignored;
        to->shutdown(tcp::socket::shutdown_send, ignored);
    }

    static net::awaitable<void> handle(test_proxy* self, std::shared_ptr<tcp::socket> client) {
        net::streambuf buf;
        auto [ec, n] = co_await net::async_read_until(*client, buf, "\r\n\r\n", as_tuple_awaitable);
        if (ec) {
            co_return;
        }
        std::string head(static_cast<const char*>(buf.data().data()), n);
        buf.consume(n);
        const auto line = head.substr(0, head.find("\r\n"));
        {
            std::lock_guard lock(self->mutex_);
            self->seen_.push_back(line);
        }
        if (line.starts_with("CONNECT ")) {
            const auto authority = line.substr(8, line.find(' ', 8) - 8);
            const auto colon = authority.rfind(':');
            tcp::resolver resolver(client->get_executor());
            auto [rec, eps] = co_await resolver.async_resolve(
                authority.substr(0, colon), authority.substr(colon + 1), as_tuple_awaitable);
            auto upstream = std::make_shared<tcp::socket>(client->get_executor());
            if (!rec) {
                std::tie(rec, std::ignore) =
                    co_await net::async_connect(*upstream, eps, as_tuple_awaitable);
            }
            const std::string reply = rec ? "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
                                          : "HTTP/1.1 200 Connection Established\r\n\r\n";
            co_await net::async_write(*client, net::buffer(reply), as_tuple_awaitable);
            if (rec) {
                co_return;
            }
            auto ex = client->get_executor();
            net::co_spawn(ex, pump(client, upstream), net::detached);
            co_await pump(upstream, client);
            co_return;
        }
        const std::string body = "forwarded " + line;
        const std::string reply =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        co_await net::async_write(*client, net::buffer(reply), as_tuple_awaitable);
    }

    static net::awaitable<void> accept_loop(test_proxy* self) {
        for (;;) {
            auto [ec, socket] = co_await self->acceptor_.async_accept(as_tuple_awaitable);
            if (ec) {
                co_return;
            }
            auto s = std::make_shared<tcp::socket>(std::move(socket));
            net::co_spawn(self->ioc_, handle(self, s), net::detached);
        }
    }

    net::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<std::string> seen_;
};

TEST(https_client_proxy, tunnels_https_through_connect) {
    tls_fixture f;
    const auto files = f.ca.issue_loopback(f.dir.path());
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto sim = start_sim(ping_route, o);
    test_proxy proxy;
    net::io_context ioc;
    auto settings = test_settings();
    settings.ca_file = files.ca_cert.string();
    settings.proxy = proxy_settings{"http://127.0.0.1:" + std::to_string(proxy.port()), "", ""};
    https_client client(ioc.get_executor(), settings);
    for (int i = 0; i < 2; ++i) {
        auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
        ASSERT_TRUE(r.ok()) << r.error;
        EXPECT_EQ(r.response.status, 200u);
    }
    const auto seen = proxy.seen();
    ASSERT_EQ(seen.size(), 1u);  // the tunnel is kept alive and reused
    EXPECT_EQ(seen[0], "CONNECT localhost:" + std::to_string(sim->port()) + " HTTP/1.1");
    EXPECT_EQ(sim->request_count(), 2u);
}

TEST(https_client_proxy, forwards_plain_http_in_absolute_form) {
    test_proxy proxy;
    net::io_context ioc;
    auto settings = test_settings();
    settings.proxy =
        proxy_settings{"", "http://user:pa%20ss@127.0.0.1:" + std::to_string(proxy.port()), ""};
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get("http://vendor.example:8080/api?x=1")));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.body, "forwarded GET http://vendor.example:8080/api?x=1 HTTP/1.1");
}

TEST(https_client_proxy, no_proxy_bypasses_it) {
    auto sim = start_sim(ping_route);
    test_proxy proxy;
    net::io_context ioc;
    auto settings = test_settings();
    const auto proxy_url = "http://127.0.0.1:" + std::to_string(proxy.port());
    settings.proxy = proxy_settings{proxy_url, proxy_url, "localhost, 127.0.0.1"};
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(proxy.seen().empty());
}

TEST(https_client_proxy, unreachable_proxy_is_a_clear_error) {
    net::io_context ioc;
    std::uint16_t free_port = 0;
    {
        tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        free_port = a.local_endpoint().port();
    }
    auto settings = test_settings();
    settings.proxy = proxy_settings{"http://127.0.0.1:" + std::to_string(free_port), "", ""};
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get("https://vendor.example/")));
    EXPECT_EQ(r.ec, make_error_code(client_error::proxy_failed)) << r.error;
    EXPECT_NE(r.error.find("proxy unreachable"), std::string::npos) << r.error;
}

TEST(https_client_proxy, an_unusable_proxy_url_fails_closed_instead_of_connecting_directly) {
    // The target is reachable directly; a proxy was meant but its URL is unusable (a SOCKS or
    // https:// proxy, a typo): the request must fail with a clear error, not bypass the proxy.
    auto sim = start_sim(ping_route);
    net::io_context ioc;
    auto settings = test_settings();
    settings.proxy = proxy_settings{"socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080", ""};
    https_client client(ioc.get_executor(), settings);
    auto r = run(ioc, client.send(get(sim->base_url() + "/ping")));
    EXPECT_EQ(r.ec, make_error_code(client_error::proxy_failed)) << r.error;
    EXPECT_NE(r.error.find("refusing to connect"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("only http:// proxies"), std::string::npos) << r.error;
    EXPECT_FALSE(r.request_written);
    EXPECT_EQ(sim->request_count(), 0u);

    // A target the proxy does not apply to still connects directly.
    settings.proxy->no_proxy = "127.0.0.1";
    https_client bypass(ioc.get_executor(), settings);
    auto ok = run(ioc, bypass.send(get(sim->base_url() + "/ping")));
    ASSERT_TRUE(ok.ok()) << ok.error;
    EXPECT_EQ(sim->request_count(), 1u);
}

}  // namespace
}  // namespace billsync::connectors
