#include "connectors/runtime/https_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/logger.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <deque>
#include <map>
#include <mutex>

#include "connectors/runtime/gzip.hpp"
#include "connectors/runtime/retry.hpp"
#include "connectors/runtime/tls_verify.hpp"
#include "http/async_client.hpp"
#include "util/redact.hpp"

namespace billsync::connectors {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::array<std::string_view, 10> always_sensitive = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "accesskey",
    "x-auth-token",
    "www-authenticate",
};

bool is_sensitive(std::string_view name, const std::vector<std::string>& extra) {
    for (auto s : always_sensitive) {
        if (http::iequals(name, s)) {
            return true;
        }
    }
    return std::any_of(
        extra.begin(), extra.end(), [&](const std::string& s) { return http::iequals(name, s); });
}

std::string host_header(const http::url_parts& u) {
    const bool default_port =
        (u.scheme == "https" && u.port == 443) || (u.scheme == "http" && u.port == 80);
    return default_port ? u.host : u.host + ":" + std::to_string(u.port);
}

std::string truncate_for_log(std::string_view body) {
    constexpr std::size_t max = 2048;
    if (body.size() <= max) {
        return util::redact(body);
    }
    return util::redact(body.substr(0, max)) + "…(" + std::to_string(body.size()) + " bytes)";
}

long long millis(clock_type::duration d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// What the verify callback saw; read after a failed handshake to explain it.
struct connection {
    std::string key;
    bool tls = false;
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    clock_type::time_point idle_since{};

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*secure) : *plain; }
    bool is_open() { return lowest().socket().is_open(); }
    // An idle connection must have nothing to read: EOF or stray bytes mean the peer closed it
    // (or broke the protocol), and reusing it would fail or misparse.
    bool quiet() {
        char byte = 0;
        const auto n = ::recv(lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    void close() {
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().close();
    }
};

using connection_ptr = std::shared_ptr<connection>;

// A failed step: the code and a clear message.
struct step_error {
    boost::system::error_code ec;
    std::string message;
    explicit operator bool() const noexcept { return static_cast<bool>(ec); }
};

step_error fail(client_error e, std::string message) {
    return {make_error_code(e), std::move(message)};
}

}  // namespace

std::string_view http_response::header_value(std::string_view name) const {
    for (const auto& h : headers) {
        if (http::iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

std::string loggable_headers(const std::vector<http::header>& headers,
                             const std::vector<std::string>& extra_sensitive) {
    std::string out;
    for (const auto& h : headers) {
        if (!out.empty()) {
            out += ", ";
        }
        out += h.name;
        out += ": ";
        out += is_sensitive(h.name, extra_sensitive) ? std::string("***") : util::redact(h.value);
    }
    return out;
}

std::optional<call_error> classify(const http_result& r) {
    if (r.ec) {
        call_error e;
        e.message = r.error.empty() ? r.ec.message() : r.error;
        const auto cond = r.ec.default_error_condition();
        if (cond.category() == condition_category()) {
            e.cond = static_cast<condition>(cond.value());
        } else {
            e.cond = condition::retryable;  // other transport errors (resets, aborted I/O)
        }
        return e;
    }
    const auto cond = condition_for_status(r.response.status);
    if (!cond) {
        return std::nullopt;
    }
    call_error e;
    e.cond = *cond;
    e.status = r.response.status;
    e.message = "http " + std::to_string(r.response.status);
    if (const auto ra = r.response.header_value("Retry-After"); !ra.empty()) {
        e.retry_after = parse_retry_after(ra, std::chrono::system_clock::now());
    }
    return e;
}

struct https_client::impl : std::enable_shared_from_this<impl> {
    net::any_io_executor executor;
    client_settings settings;
    ssl::context tls_context{ssl::context::tls_client};
    std::string tls_setup_error;
    std::once_flag system_trust_once;
    mutable std::mutex mutex;
    std::map<std::string, std::deque<connection_ptr>, std::less<>> idle;

    impl(net::any_io_executor ex, client_settings s)
        : executor(std::move(ex)), settings(std::move(s)) {
        if (!settings.proxy) {
            settings.proxy = proxy_from_environment();
        }
        tls_context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1);
        beast::error_code ec;
        if (!settings.ca_file.empty()) {
            tls_context.load_verify_file(settings.ca_file, ec);
            if (ec) {
                tls_setup_error = "cannot load CA file " + settings.ca_file + ": " + ec.message();
            }
        }
        tls_context.set_verify_mode(settings.verify_peer ? ssl::verify_peer : ssl::verify_none);
        if (!settings.verify_peer && settings.log) {
            settings.log->warn("TLS peer verification is disabled; use only for diagnostics");
        }
    }

    // Ready for a TLS handshake: the empty string, or why not. Without a ca_file the system's
    // trust store is read here, once, when the first TLS connection needs it, not when the client
    // is made: reading the whole CA bundle costs a start real time (a few tens of ms per client),
    // and a client that only ever speaks plain HTTP (loopback simulators) never needs it.
    const std::string& tls_ready() {
        if (settings.ca_file.empty()) {
            std::call_once(system_trust_once, [this] {
                beast::error_code ec;
                tls_context.set_default_verify_paths(ec);
                if (ec) {
                    tls_setup_error = "cannot load the system trust store: " + ec.message();
                }
            });
        }
        return tls_setup_error;
    }

    void debug(std::string_view what) const {
        if (settings.log && settings.log->should_log(spdlog::level::debug)) {
            settings.log->debug("{}", util::redact(what));
        }
    }

    connection_ptr take_idle(const std::string& key) {
        std::lock_guard lock(mutex);
        auto it = idle.find(key);
        if (it == idle.end()) {
            return nullptr;
        }
        const auto now = clock_type::now();
        while (!it->second.empty()) {
            auto c = std::move(it->second.back());
            it->second.pop_back();
            if (c->is_open() && now - c->idle_since < settings.idle_timeout && c->quiet()) {
                return c;
            }
            c->close();
        }
        return nullptr;
    }

    void give_back(connection_ptr c) {
        std::lock_guard lock(mutex);
        auto& list = idle[c->key];
        if (list.size() >= settings.max_idle_per_host) {
            c->close();
            return;
        }
        c->idle_since = clock_type::now();
        list.push_back(std::move(c));
    }

    static clock_type::time_point earliest(clock_type::time_point a, clock_type::time_point b) {
        return std::min(a, b);
    }

    // Resolves and connects a TCP stream to host:port within the deadline.
    static net::awaitable<step_error> connect_tcp(std::shared_ptr<impl> self,
                                                  beast::tcp_stream* stream,
                                                  std::string host,
                                                  std::uint16_t port,
                                                  clock_type::time_point deadline) {
        auto resolver = std::make_shared<tcp::resolver>(self->executor);
        net::steady_timer guard(self->executor);
        guard.expires_at(deadline);
        std::weak_ptr<tcp::resolver> weak = resolver;
        guard.async_wait([weak](boost::system::error_code ec) {
            if (auto r = weak.lock(); !ec && r) {
                r->cancel();
            }
        });
        auto [rec, endpoints] =
            co_await resolver->async_resolve(host, std::to_string(port), as_tuple_awaitable);
        guard.cancel();
        if (rec) {
            if (rec == net::error::operation_aborted) {
                co_return fail(client_error::timeout, "timed out resolving " + host);
            }
            co_return fail(client_error::resolve_failed,
                           "cannot resolve " + host + ": " + rec.message());
        }
        stream->expires_at(deadline);
        auto [cec, ep] = co_await stream->async_connect(endpoints, as_tuple_awaitable);
        if (cec) {
            if (cec == beast::error::timeout) {
                co_return fail(client_error::timeout,
                               "timed out connecting to " + host + ":" + std::to_string(port));
            }
            co_return fail(
                client_error::connect_failed,
                "connect to " + host + ":" + std::to_string(port) + " failed: " + cec.message());
        }
        beast::error_code ignored;
        stream->socket().set_option(tcp::no_delay(true), ignored);
        co_return step_error{};
    }

    // Asks the proxy for a tunnel to host:port.
    static net::awaitable<step_error> proxy_connect(beast::tcp_stream* stream,
                                                    proxy_endpoint proxy,
                                                    std::string host,
                                                    std::uint16_t port,
                                                    clock_type::time_point deadline) {
        const auto authority = (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                               ":" + std::to_string(port);
        bhttp::request<bhttp::empty_body> req{bhttp::verb::connect, authority, 11};
        req.set(bhttp::field::host, authority);
        if (!proxy.authorization.empty()) {
            req.set(bhttp::field::proxy_authorization, proxy.authorization);
        }
        stream->expires_at(deadline);
        auto [wec, wn] = co_await bhttp::async_write(*stream, req, as_tuple_awaitable);
        if (wec) {
            co_return fail(client_error::proxy_failed,
                           "proxy " + proxy.host + ":" + std::to_string(proxy.port) +
                               " failed: " + wec.message());
        }
        beast::flat_buffer buffer;
        bhttp::response_parser<bhttp::empty_body> parser;
        parser.skip(true);  // a CONNECT answer has no body; the tunnel follows
        auto [rec, rn] = co_await bhttp::async_read(*stream, buffer, parser, as_tuple_awaitable);
        if (rec) {
            co_return fail(
                rec == beast::error::timeout ? client_error::timeout : client_error::proxy_failed,
                "proxy " + proxy.host + ":" + std::to_string(proxy.port) +
                    " failed during CONNECT: " + rec.message());
        }
        const auto status = parser.get().result_int();
        if (status / 100 != 2) {
            co_return fail(client_error::proxy_failed,
                           "proxy " + proxy.host + ":" + std::to_string(proxy.port) +
                               " refused CONNECT " + authority + " with status " +
                               std::to_string(status));
        }
        co_return step_error{};
    }

    struct connect_result {
        step_error err;
        connection_ptr conn;
    };

    static net::awaitable<connect_result> open(std::shared_ptr<impl> self,
                                               http::url_parts url,
                                               std::optional<proxy_endpoint> proxy,
                                               std::string key,
                                               clock_type::time_point deadline) {
        connect_result out;
        auto c = std::make_shared<connection>();
        c->key = std::move(key);
        c->tls = url.scheme == "https";
        c->plain.emplace(self->executor);
        const auto connect_deadline =
            earliest(deadline, clock_type::now() + self->settings.connect_timeout);
        const auto& dial_host = proxy ? proxy->host : url.host;
        const auto dial_port = proxy ? proxy->port : url.port;
        out.err = co_await connect_tcp(self, &*c->plain, dial_host, dial_port, connect_deadline);
        if (out.err) {
            if (proxy) {
                out.err.ec = make_error_code(client_error::proxy_failed);
                out.err.message = "proxy unreachable: " + out.err.message;
            }
            co_return out;
        }
        if (proxy && c->tls) {
            out.err =
                co_await proxy_connect(&*c->plain, *proxy, url.host, url.port, connect_deadline);
            if (out.err) {
                co_return out;
            }
        }
        if (c->tls) {
            if (const auto& error = self->tls_ready(); !error.empty()) {
                out.err = fail(client_error::tls_handshake_failed, error);
                co_return out;
            }
            c->secure.emplace(std::move(*c->plain), self->tls_context);
            c->plain.reset();
            tls::set_server_name(c->secure->native_handle(), url.host);
            auto seen = std::make_shared<tls::peer_check>();
            if (self->settings.verify_peer) {
                c->secure->set_verify_mode(ssl::verify_peer);
                c->secure->set_verify_callback(tls::verifier(url.host, seen));
            } else {
                c->secure->set_verify_mode(ssl::verify_none);
            }
            beast::get_lowest_layer(*c->secure).expires_at(connect_deadline);
            auto [hec] =
                co_await c->secure->async_handshake(ssl::stream_base::client, as_tuple_awaitable);
            if (hec) {
                if (seen->host_mismatch) {
                    out.err = fail(client_error::host_name_mismatch,
                                   "host name mismatch: the certificate presented by " + url.host +
                                       " is not valid for " + url.host);
                } else if (seen->chain_error != X509_V_OK) {
                    out.err = fail(client_error::certificate_verify_failed,
                                   "certificate verify failed for host " + url.host + ": " +
                                       X509_verify_cert_error_string(seen->chain_error));
                } else if (hec == beast::error::timeout) {
                    out.err = fail(client_error::timeout,
                                   "timed out in the TLS handshake with " + url.host);
                } else {
                    out.err = fail(client_error::tls_handshake_failed,
                                   "TLS handshake with " + url.host + " failed: " + hec.message());
                }
                co_return out;
            }
        }
        out.conn = std::move(c);
        co_return out;
    }

    struct exchange_result {
        step_error err;
        bool written = false;   // the whole request went out
        bool got_some = false;  // any byte of a response arrived
        bool keep_alive = false;
        http_response response;
    };

    // Writes the request and reads the response on an open connection.
    static net::awaitable<exchange_result> exchange(std::shared_ptr<impl> self,
                                                    connection_ptr c,
                                                    bhttp::request<bhttp::string_body>* msg,
                                                    std::string host,
                                                    clock_type::time_point deadline) {
        exchange_result out;
        const auto step_deadline =
            earliest(deadline, clock_type::now() + self->settings.read_timeout);
        c->lowest().expires_at(step_deadline);
        boost::system::error_code wec;
        if (c->tls) {
            std::tie(wec, std::ignore) =
                co_await bhttp::async_write(*c->secure, *msg, as_tuple_awaitable);
        } else {
            std::tie(wec, std::ignore) =
                co_await bhttp::async_write(*c->plain, *msg, as_tuple_awaitable);
        }
        if (wec) {
            out.err = wec == beast::error::timeout
                          ? fail(client_error::timeout, "timed out sending to " + host)
                          : fail(client_error::connection_closed,
                                 "sending to " + host + " failed: " + wec.message());
            co_return out;
        }
        out.written = true;
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(self->settings.max_response_bytes);
        parser.header_limit(64 * 1024);
        if (msg->method() == bhttp::verb::head) {
            parser.skip(true);
        }
        boost::system::error_code rec;
        if (c->tls) {
            std::tie(rec, std::ignore) =
                co_await bhttp::async_read(*c->secure, c->buffer, parser, as_tuple_awaitable);
        } else {
            std::tie(rec, std::ignore) =
                co_await bhttp::async_read(*c->plain, c->buffer, parser, as_tuple_awaitable);
        }
        out.got_some = parser.got_some();
        if (rec) {
            if (rec == beast::error::timeout) {
                out.err =
                    fail(client_error::timeout, "timed out waiting for a response from " + host);
            } else if (rec == bhttp::error::body_limit) {
                out.err = fail(client_error::response_too_large,
                               "response from " + host + " exceeds " +
                                   std::to_string(self->settings.max_response_bytes) + " bytes");
            } else if (rec == bhttp::error::end_of_stream || rec == net::error::eof ||
                       rec == net::error::connection_reset ||
                       rec == bhttp::error::partial_message ||
                       rec == ssl::error::stream_truncated || rec == net::error::broken_pipe) {
                out.err = fail(client_error::connection_closed,
                               "connection to " + host + " closed before a complete response (" +
                                   rec.message() + ")");
            } else if (rec.category() ==
                           bhttp::make_error_code(bhttp::error::bad_version).category() ||
                       rec == bhttp::error::header_limit) {
                out.err = fail(client_error::malformed_response,
                               "malformed response from " + host + ": " + rec.message());
            } else {
                out.err = fail(client_error::connection_closed,
                               "reading from " + host + " failed: " + rec.message());
            }
            co_return out;
        }
        auto res = parser.release();
        out.keep_alive = res.keep_alive();
        out.response.status = res.result_int();
        bool gzipped = false;
        for (const auto& f : res) {
            if (f.name() == bhttp::field::content_encoding) {
                if (http::iequals(f.value(), "gzip") || http::iequals(f.value(), "x-gzip")) {
                    gzipped = true;
                    continue;  // the body below is decoded
                }
            }
            if (gzipped && f.name() == bhttp::field::content_length) {
                continue;
            }
            out.response.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        }
        out.response.body = std::move(res.body());
        if (gzipped) {
            auto decoded = gunzip(out.response.body, self->settings.max_response_bytes);
            if (!decoded) {
                out.err = fail(
                    client_error::malformed_response,
                    "response from " + host + " is not valid gzip or decodes beyond the size cap");
                out.keep_alive = false;
                co_return out;
            }
            out.response.body = std::move(*decoded);
        }
        co_return out;
    }

    static net::awaitable<http_result> send(std::shared_ptr<impl> self, http_request req) {
        http_result result;
        const auto started = clock_type::now();
        const auto url = http::parse_url(req.url);
        if (!url) {
            result.ec = make_error_code(client_error::invalid_url);
            result.error = "invalid URL: " + util::redact(req.url);
            co_return result;
        }
        const auto deadline = started + req.timeout.value_or(self->settings.total_timeout);
        std::string proxy_error;
        const auto proxy =
            proxy_for(*self->settings.proxy, url->scheme, url->host, url->port, &proxy_error);
        if (!proxy_error.empty()) {
            // Fail closed: a proxy was configured for this target, so a direct connection
            // would bypass what the network requires (egress filtering, audit).
            result.ec = make_error_code(client_error::proxy_failed);
            result.error = "refusing to connect to " + url->host +
                           " directly: the proxy setting is unusable (" + proxy_error +
                           "); fix HTTPS_PROXY/HTTP_PROXY/ALL_PROXY or list the host in NO_PROXY";
            self->log_failure(req, result, started);
            co_return result;
        }
        std::string key = url->scheme + "://" + url->host + ":" + std::to_string(url->port);
        if (proxy) {
            key += "|proxy=" + proxy->host + ":" + std::to_string(proxy->port);
        }

        // The request message. A plain request through a proxy uses the absolute form.
        const bool forward = proxy && url->scheme == "http";
        const auto verb = bhttp::string_to_verb(req.method);
        bhttp::request<bhttp::string_body> msg;
        msg.version(11);
        if (verb == bhttp::verb::unknown) {
            msg.method_string(req.method);
        } else {
            msg.method(verb);
        }
        msg.target(forward ? "http://" + host_header(*url) + url->target : url->target);
        msg.set(bhttp::field::host, host_header(*url));
        msg.set(bhttp::field::user_agent, self->settings.user_agent);
        if (self->settings.accept_gzip) {
            msg.set(bhttp::field::accept_encoding, "gzip");
        }
        if (forward && !proxy->authorization.empty()) {
            msg.set(bhttp::field::proxy_authorization, proxy->authorization);
        }
        for (const auto& h : req.headers) {
            msg.set(h.name, h.value);
        }
        msg.keep_alive(true);
        msg.body() = std::move(req.body);
        if (!msg.body().empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
            verb == bhttp::verb::patch) {
            msg.prepare_payload();
        }
        if (self->settings.log && self->settings.log->should_log(spdlog::level::debug)) {
            self->debug(
                "Request method=" + req.method + " url=" + req.url +
                (proxy ? " proxy=" + proxy->host + ":" + std::to_string(proxy->port)
                       : std::string()) +
                " headers=[" + loggable_headers(req.headers, self->settings.sensitive_headers) +
                "]" +
                (msg.body().empty() ? std::string() : " body=" + truncate_for_log(msg.body())));
        }

        exchange_result ex;
        bool done = false;
        // A pooled connection may have been closed by the server while idle. When it fails
        // before any byte of an answer arrived, the request was most likely not processed, and a
        // request that may be repeated (see may_retry) goes again on a fresh connection.
        if (auto pooled = self->take_idle(key)) {
            ex = co_await exchange(self, pooled, &msg, url->host, deadline);
            result.request_written = ex.written;
            if (!ex.err || ex.got_some ||
                ex.err.ec != make_error_code(client_error::connection_closed) || !may_retry(req)) {
                done = true;
                result.reused_connection = true;
                if (!ex.err && ex.keep_alive) {
                    self->give_back(pooled);
                } else {
                    pooled->close();
                }
            } else {
                pooled->close();
                self->debug("Pooled connection was closed by the peer; reconnecting url=" +
                            req.url);
            }
        }
        if (!done) {
            auto opened = co_await open(self, *url, proxy, key, deadline);
            if (opened.err) {
                result.ec = opened.err.ec;
                result.error = std::move(opened.err.message);
                self->log_failure(req, result, started);
                co_return result;
            }
            ex = co_await exchange(self, opened.conn, &msg, url->host, deadline);
            result.request_written = result.request_written || ex.written;
            if (!ex.err && ex.keep_alive) {
                self->give_back(opened.conn);
            } else {
                opened.conn->close();
            }
        }
        if (ex.err) {
            result.ec = ex.err.ec;
            result.error = std::move(ex.err.message);
            self->log_failure(req, result, started);
            co_return result;
        }
        result.response = std::move(ex.response);
        if (self->settings.log && self->settings.log->should_log(spdlog::level::debug)) {
            self->debug(
                "Response method=" + req.method + " url=" + req.url +
                " status=" + std::to_string(result.response.status) +
                " took_ms=" + std::to_string(millis(clock_type::now() - started)) +
                " reused=" + (result.reused_connection ? "true" : "false") + " headers=[" +
                loggable_headers(result.response.headers, self->settings.sensitive_headers) + "]" +
                (result.response.body.empty() ? std::string()
                                              : " body=" + truncate_for_log(result.response.body)));
        }
        co_return result;
    }

    void log_failure(const http_request& req,
                     const http_result& r,
                     clock_type::time_point started) const {
        debug("Request failed method=" + req.method + " url=" + req.url + " error=\"" + r.error +
              "\" took_ms=" + std::to_string(millis(clock_type::now() - started)));
    }
};

https_client::https_client(net::any_io_executor executor, client_settings settings)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(settings))) {}

https_client::~https_client() { close_idle(); }

net::awaitable<http_result> https_client::send(http_request req) {
    return impl::send(impl_, std::move(req));
}

std::size_t https_client::idle_connections() const {
    std::lock_guard lock(impl_->mutex);
    std::size_t n = 0;
    for (const auto& [key, list] : impl_->idle) {
        n += list.size();
    }
    return n;
}

void https_client::close_idle() {
    std::lock_guard lock(impl_->mutex);
    for (auto& [key, list] : impl_->idle) {
        for (auto& c : list) {
            c->close();
        }
    }
    impl_->idle.clear();
}

const client_settings& https_client::settings() const noexcept { return impl_->settings; }

}  // namespace billsync::connectors
