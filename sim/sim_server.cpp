#include "sim/sim_server.hpp"

#include <spdlog/logger.h>
#include <zlib.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace billsync::simulators {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string gzip_compress(std::string_view data) {
    z_stream zs{};
    if (deflateInit2(
            &zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        return {};
    }
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

bool path_matches(const std::string& pattern_method,
                  const std::string& pattern_path,
                  const http::request& req) {
    return (pattern_method == "*" || pattern_method == req.method) && pattern_path == req.path;
}

}  // namespace

std::string_view recorded_request::header_value(std::string_view name) const {
    for (const auto& h : headers) {
        if (http::iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

scripted_response scripted_response::ok(std::string body) {
    scripted_response r;
    r.body = std::move(body);
    return r;
}

scripted_response scripted_response::status_code(unsigned status, std::string body) {
    scripted_response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

scripted_response scripted_response::rate_limited(std::chrono::seconds retry_after,
                                                  std::string body) {
    scripted_response r;
    r.status = 429;
    r.headers.push_back({"Retry-After", std::to_string(retry_after.count())});
    r.body = std::move(body);
    return r;
}

scripted_response scripted_response::server_error(unsigned status) {
    scripted_response r;
    r.status = status;
    r.body = R"({"message":"internal error"})";
    return r;
}

scripted_response scripted_response::stall(std::chrono::milliseconds hold) {
    scripted_response r;
    r.what = action::stall;
    r.delay = hold;
    return r;
}

scripted_response scripted_response::drop() {
    scripted_response r;
    r.what = action::drop;
    return r;
}

scripted_response scripted_response::malformed_body() {
    scripted_response r;
    r.body = R"({"Invoice": {"Id": "1", "TotalAmt": )";
    return r;
}

scripted_response scripted_response::garbage() {
    scripted_response r;
    r.what = action::raw;
    r.body = "HTTP/1.1 2x0 Nope\r\nContent-Length: banana\r\n\r\n";
    return r;
}

scripted_response scripted_response::expired_token() {
    scripted_response r;
    r.status = 401;
    r.headers.push_back(
        {"WWW-Authenticate", R"(Bearer error="invalid_token", error_description="expired")"});
    r.body = R"({"error":"invalid_token","error_description":"The access token expired"})";
    return r;
}

void simulator::configure(sim_server& /*server*/) {}

struct sim_server::impl {
    sim_options options;
    http::router router;
    std::vector<rate_limit_rule> limit_rules;
    std::optional<net::io_context> ioc;
    std::optional<ssl::context> tls_context;
    std::optional<tcp::acceptor> acceptor;
    std::thread thread;
    std::uint16_t bound_port = 0;

    mutable std::mutex mutex;  // guards scripts and recorded
    struct script_entry {
        std::string method;
        std::string path;
        std::deque<scripted_response> answers;
    };
    std::vector<script_entry> scripts;
    std::vector<recorded_request> recorded;
    std::shared_ptr<fault_plan> faults;  // guarded by mutex
    std::function<void(const recorded_request&)> observer;

    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::int64_t> response_delay_ms{0};
    std::atomic<std::uint64_t> rejections{0};
    std::atomic<std::uint32_t> in_flight{0};
    std::atomic<std::uint32_t> peak_in_flight{0};
    std::atomic<std::int64_t> held_ms{0};

    // Rate-limit state, touched only on the server thread.
    struct limit_state {
        std::deque<clock_type::time_point> starts;
        std::uint32_t in_flight = 0;
    };
    std::map<std::pair<std::size_t, std::string>, limit_state> limit_states;

    explicit impl(sim_options o) : options(std::move(o)) { ioc.emplace(1); }

    ~impl() { shutdown(); }

    void shutdown() {
        if (ioc) {
            ioc->stop();
        }
        if (thread.joinable()) {
            thread.join();
        }
        acceptor.reset();
        // Destroys suspended sessions while everything they touch is still alive.
        ioc.reset();
    }

    std::optional<scripted_response> next_script(const http::request& req) {
        std::lock_guard lock(mutex);
        for (auto& s : scripts) {
            if (path_matches(s.method, s.path, req) && !s.answers.empty()) {
                auto r = std::move(s.answers.front());
                s.answers.pop_front();
                return r;
            }
        }
        return std::nullopt;
    }

    std::shared_ptr<fault_plan> fault_plan_ptr() const {
        std::lock_guard lock(mutex);
        return faults;
    }

    void note_fault(const recorded_request& which, std::string_view kind) {
        std::lock_guard lock(mutex);
        for (auto it = recorded.rbegin(); it != recorded.rend(); ++it) {
            if (it->connection == which.connection && it->path == which.path && it->fault.empty()) {
                it->fault = std::string(kind);
                return;
            }
        }
    }

    recorded_request record(const http::request& req, std::uint64_t conn) {
        recorded_request r;
        r.method = req.method;
        r.target = req.target;
        r.path = req.path;
        r.query = req.query;
        r.headers = req.headers;
        r.body = req.body;
        r.connection = conn;
        if (options.now) {
            r.at = options.now();
        }
        std::lock_guard lock(mutex);
        recorded.push_back(r);
        return r;
    }

    // Checks every matching rule; on success the request is counted and holds a concurrency slot
    // in each rule until `leave` is called with the returned keys.
    std::optional<http::response> admit(const http::request& req,
                                        std::vector<std::pair<std::size_t, std::string>>& held) {
        const auto now = clock_type::now();
        for (std::size_t i = 0; i < limit_rules.size(); ++i) {
            const auto& rule = limit_rules[i];
            if (!req.path.starts_with(rule.path_prefix)) {
                continue;
            }
            limit_hit hit;
            hit.key = rule.key ? rule.key(req) : std::string();
            auto& st = limit_states[{i, hit.key}];
            while (!st.starts.empty() && st.starts.front() + rule.window <= now) {
                st.starts.pop_front();
            }
            bool refuse = false;
            if (rule.max_concurrent != 0 && st.in_flight >= rule.max_concurrent) {
                hit.concurrency = true;
                refuse = true;
            } else if (rule.requests != 0 && st.starts.size() >= rule.requests) {
                hit.retry_after = std::chrono::ceil<std::chrono::milliseconds>(
                    st.starts[st.starts.size() - rule.requests] + rule.window - now);
                refuse = true;
            }
            if (refuse) {
                leave(held);
                rejections.fetch_add(1);
                if (rule.reject) {
                    return rule.reject(hit);
                }
                auto r = http::response::error(429, "rate_limited", "rate limit exceeded");
                const auto secs = std::chrono::ceil<std::chrono::seconds>(hit.retry_after);
                r.headers.push_back(
                    {"Retry-After",
                     std::to_string(std::max<long long>(1, static_cast<long long>(secs.count())))});
                return r;
            }
            if (rule.requests != 0) {
                st.starts.push_back(now);
            }
            ++st.in_flight;
            held.emplace_back(i, hit.key);
        }
        return std::nullopt;
    }

    void leave(std::vector<std::pair<std::size_t, std::string>>& held) {
        for (const auto& k : held) {
            auto& st = limit_states[k];
            if (st.in_flight > 0) {
                --st.in_flight;
            }
        }
        held.clear();
    }

    static http::request to_request(bhttp::request<bhttp::string_body>& in) {
        http::request req;
        req.method = std::string(in.method_string());
        req.target = std::string(in.target());
        const auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) {
            req.query = req.target.substr(q + 1);
        }
        for (const auto& f : in) {
            req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        }
        req.body = std::move(in.body());
        req.remote = "127.0.0.1";
        return req;
    }

    // Faults that answer (or not) without running the route's handler.
    static bool handled_by_fault(const fault_rule& f) {
        return f.kind == fault_kind::timeout_after_read ||
               f.kind == fault_kind::reset_after_write || f.kind == fault_kind::slow;
    }

    static scripted_response unhandled_answer(const fault_rule& f) {
        switch (f.kind) {
            case fault_kind::rate_limited:
                return scripted_response::rate_limited(f.retry_after);
            case fault_kind::rate_limited_bare:
                return scripted_response::status_code(429, R"({"message":"too many requests"})");
            case fault_kind::timeout_unread:
                return scripted_response::stall(f.hold);
            default:
                return scripted_response::server_error(f.status);
        }
    }

    // Closes with an RST (SO_LINGER 0): the peer sees "connection reset", not a clean close.
    template <class Stream>
    static void reset_stream(Stream& stream) {
        beast::error_code ignored;
        auto& sock = beast::get_lowest_layer(stream).socket();
        sock.set_option(net::socket_base::linger(true, 0), ignored);
        sock.close(ignored);
    }

    template <class Stream>
    static void close_stream(Stream& stream) {
        beast::error_code ignored;
        auto& sock = beast::get_lowest_layer(stream).socket();
        sock.shutdown(tcp::socket::shutdown_both, ignored);
        sock.close(ignored);
    }

    template <class Stream>
    static net::awaitable<void> serve(impl* self,
                                      std::shared_ptr<Stream> stream,
                                      std::uint64_t id) {
        beast::flat_buffer buffer;
        for (;;) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.body_limit(64u << 20);
            beast::get_lowest_layer(*stream).expires_after(120s);
            auto [rec, rn] =
                co_await bhttp::async_read(*stream, buffer, parser, as_tuple_awaitable);
            if (rec) {
                break;
            }
            auto in = parser.release();
            const bool keep_alive = in.keep_alive();
            const unsigned version = in.version();
            auto req = to_request(in);
            const auto rec_copy = self->record(req, id);

            const auto now_in = self->in_flight.fetch_add(1) + 1;
            auto peak = self->peak_in_flight.load();
            while (now_in > peak && !self->peak_in_flight.compare_exchange_weak(peak, now_in)) {
            }
            struct in_flight_guard {
                impl* s;
                ~in_flight_guard() { s->in_flight.fetch_sub(1); }
            } flight{self};

            scripted_response answer;
            std::vector<std::pair<std::size_t, std::string>> held;
            std::optional<fault_rule> fault;
            bool fault_hold = false;  // answer.delay is a fault's hold (sim_options::holds)
            if (auto s = self->next_script(req)) {
                answer = std::move(*s);
            } else if (auto plan = self->fault_plan_ptr();
                       plan && (fault = plan->decide(req.method, req.path)) &&
                       !handled_by_fault(*fault)) {
                // The vendor fails before doing anything.
                self->note_fault(rec_copy, to_string(fault->kind));
                answer = unhandled_answer(*fault);
                fault_hold = fault->kind == fault_kind::timeout_unread;
            } else if (auto refused = self->admit(req, held)) {
                answer.status = refused->status;
                answer.headers = refused->headers;
                answer.content_type = refused->content_type;
                answer.body = refused->body;
            } else {
                if (self->options.service_time > 0ms) {
                    net::steady_timer t(co_await net::this_coro::executor);
                    t.expires_after(self->options.service_time);
                    co_await t.async_wait(as_tuple_awaitable);
                }
                http::response r;
                try {
                    r = co_await self->router.dispatch(std::move(req));
                } catch (const std::exception& e) {
                    r = http::response::error(500, "internal", e.what());
                }
                answer.status = r.status;
                answer.headers = std::move(r.headers);
                answer.content_type = r.content_type;
                answer.body = std::move(r.body);
                if (self->observer) {
                    self->observer(rec_copy);
                }
                if (fault) {
                    // The request took effect; the answer is late or lost.
                    self->note_fault(rec_copy, to_string(fault->kind));
                    if (fault->kind == fault_kind::slow) {
                        answer.delay = fault->hold;
                        fault_hold = true;
                    } else if (fault->kind == fault_kind::timeout_after_read) {
                        answer.what = scripted_response::action::stall;
                        answer.delay = fault->hold;
                        fault_hold = true;
                    } else {
                        self->leave(held);
                        reset_stream(*stream);
                        co_return;
                    }
                }
                // The request took effect; its answer is late (a client may give up or die).
                if (const auto late = std::chrono::milliseconds(self->response_delay_ms.load());
                    late > 0ms) {
                    net::steady_timer t(co_await net::this_coro::executor);
                    t.expires_after(late);
                    co_await t.async_wait(as_tuple_awaitable);
                }
            }

            const auto& holds = self->options.holds;
            if (fault_hold && holds.skip) {
                // The hold passes at no real cost; its end is what the client sees.
                self->held_ms.fetch_add(answer.delay.count());
                if (answer.what == scripted_response::action::respond &&
                    holds.client_deadline > 0ms && answer.delay >= holds.client_deadline) {
                    answer.what = scripted_response::action::stall;  // the client gave up first
                }
            } else if (answer.delay > 0ms) {
                net::steady_timer t(co_await net::this_coro::executor);
                t.expires_after(answer.delay);
                co_await t.async_wait(as_tuple_awaitable);
            }
            if (answer.what == scripted_response::action::drop ||
                answer.what == scripted_response::action::stall) {
                self->leave(held);
                close_stream(*stream);
                co_return;
            }
            if (answer.what == scripted_response::action::raw) {
                co_await net::async_write(*stream, net::buffer(answer.body), as_tuple_awaitable);
                self->leave(held);
                close_stream(*stream);
                co_return;
            }
            bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(answer.status),
                                                    version};
            out.set(bhttp::field::server, "billsync-sim");
            if (!answer.content_type.empty()) {
                out.set(bhttp::field::content_type, answer.content_type);
            }
            for (const auto& h : answer.headers) {
                out.insert(h.name, h.value);
            }
            if (answer.gzip) {
                out.set(bhttp::field::content_encoding, "gzip");
                out.body() = gzip_compress(answer.body);
            } else {
                out.body() = std::move(answer.body);
            }
            out.keep_alive(keep_alive);
            out.prepare_payload();
            beast::get_lowest_layer(*stream).expires_after(30s);
            auto [wec, wn] = co_await bhttp::async_write(*stream, out, as_tuple_awaitable);
            self->leave(held);
            if (wec || !out.keep_alive()) {
                break;
            }
        }
        close_stream(*stream);
    }

    static net::awaitable<void> session(impl* self, tcp::socket socket, std::uint64_t id) {
        if (self->tls_context) {
            auto stream = std::make_shared<beast::ssl_stream<beast::tcp_stream>>(
                beast::tcp_stream(std::move(socket)), *self->tls_context);
            beast::get_lowest_layer(*stream).expires_after(10s);
            auto [hec] =
                co_await stream->async_handshake(ssl::stream_base::server, as_tuple_awaitable);
            if (hec) {
                if (self->options.log) {
                    self->options.log->debug("TLS handshake failed error=\"{}\"", hec.message());
                }
                close_stream(*stream);
                co_return;
            }
            co_await serve(self, std::move(stream), id);
        } else {
            auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
            co_await serve(self, std::move(stream), id);
        }
    }

    static net::awaitable<void> accept_loop(impl* self) {
        for (;;) {
            auto [ec, socket] = co_await self->acceptor->async_accept(as_tuple_awaitable);
            if (ec) {
                if (ec == net::error::operation_aborted) {
                    co_return;
                }
                continue;
            }
            beast::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            const auto id = self->connections.fetch_add(1) + 1;
            net::co_spawn(*self->ioc, session(self, std::move(socket), id), net::detached);
        }
    }
};

sim_server::sim_server(sim_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

sim_server::~sim_server() { stop(); }

http::router& sim_server::routes() { return impl_->router; }

void sim_server::add_limit(rate_limit_rule rule) { impl_->limit_rules.push_back(std::move(rule)); }

std::string sim_server::start() {
    auto& o = impl_->options;
    if (!o.cert_file.empty() || !o.key_file.empty()) {
        impl_->tls_context.emplace(ssl::context::tls_server);
        beast::error_code ec;
        impl_->tls_context->use_certificate_chain_file(o.cert_file.string(), ec);
        if (!ec) {
            impl_->tls_context->use_private_key_file(o.key_file.string(), ssl::context::pem, ec);
        }
        if (ec) {
            return "cannot load the TLS certificate or key: " + ec.message();
        }
    }
    beast::error_code ec;
    const auto address = net::ip::make_address(o.host == "localhost" ? "127.0.0.1" : o.host, ec);
    if (ec) {
        return "invalid address " + o.host;
    }
    impl_->acceptor.emplace(*impl_->ioc);
    auto& a = *impl_->acceptor;
    const tcp::endpoint ep{address, o.port};
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
        return "cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + ec.message();
    }
    impl_->bound_port = a.local_endpoint().port();
    net::co_spawn(*impl_->ioc, impl::accept_loop(impl_.get()), net::detached);
    impl_->thread = std::thread([ioc = &*impl_->ioc] { ioc->run(); });
    return {};
}

void sim_server::stop() {
    if (impl_) {
        impl_->shutdown();
    }
}

std::uint16_t sim_server::port() const { return impl_->bound_port; }

bool sim_server::tls() const {
    return !impl_->options.cert_file.empty() && !impl_->options.key_file.empty();
}

std::string sim_server::base_url() const {
    return (tls() ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port());
}

net::any_io_executor sim_server::executor() { return impl_->ioc->get_executor(); }

void sim_server::script(std::string method,
                        std::string path,
                        std::vector<scripted_response> answers) {
    std::lock_guard lock(impl_->mutex);
    for (auto& s : impl_->scripts) {
        if (s.method == method && s.path == path) {
            s.answers.insert(s.answers.end(), answers.begin(), answers.end());
            return;
        }
    }
    impl_->scripts.push_back(
        {std::move(method), std::move(path), {answers.begin(), answers.end()}});
}

void sim_server::set_response_delay(std::chrono::milliseconds delay) {
    impl_->response_delay_ms = delay.count();
}

void sim_server::set_faults(std::shared_ptr<fault_plan> plan) {
    std::lock_guard lock(impl_->mutex);
    impl_->faults = std::move(plan);
}

void sim_server::on_handled(std::function<void(const recorded_request&)> observer) {
    impl_->observer = std::move(observer);
}

void sim_server::clear_scripts() {
    std::lock_guard lock(impl_->mutex);
    impl_->scripts.clear();
}

std::vector<recorded_request> sim_server::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->recorded;
}

std::vector<recorded_request> sim_server::requests_to(std::string_view path) const {
    std::lock_guard lock(impl_->mutex);
    std::vector<recorded_request> out;
    for (const auto& r : impl_->recorded) {
        if (r.path == path) {
            out.push_back(r);
        }
    }
    return out;
}

std::size_t sim_server::request_count() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->recorded.size();
}

void sim_server::clear_requests() {
    std::lock_guard lock(impl_->mutex);
    impl_->recorded.clear();
}

std::uint64_t sim_server::connections_accepted() const { return impl_->connections.load(); }

std::uint64_t sim_server::limit_rejections() const { return impl_->rejections.load(); }

std::uint32_t sim_server::max_concurrent_seen() const { return impl_->peak_in_flight.load(); }

std::chrono::milliseconds sim_server::held() const {
    return std::chrono::milliseconds(impl_->held_ms.load());
}

}  // namespace billsync::simulators
