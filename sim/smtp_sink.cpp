#include "sim/smtp_sink.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "http/asio.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {
namespace beast = boost::beast;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

// "<addr>" out of "MAIL FROM:<addr> SIZE=…".
std::string path_of(std::string_view arg) {
    const auto open = arg.find('<');
    const auto close = arg.find('>', open == std::string_view::npos ? 0 : open);
    if (open == std::string_view::npos || close == std::string_view::npos) {
        return {};
    }
    return std::string(arg.substr(open + 1, close - open - 1));
}
}  // namespace

struct smtp_sink::impl : std::enable_shared_from_this<impl> {
    smtp_sink_options options;
    net::io_context ioc{1};
    std::optional<tcp::acceptor> acceptor;
    std::optional<ssl::context> tls;
    std::thread thread;
    std::uint16_t bound_port = 0;

    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::deque<smtp_script> scripts;
    std::vector<smtp_message> messages;
    std::vector<std::string> commands;
    std::uint64_t connections = 0;

    std::optional<smtp_script> take_script(smtp_stage stage) {
        std::lock_guard lock(mutex);
        for (auto it = scripts.begin(); it != scripts.end(); ++it) {
            if (it->stage == stage) {
                auto s = *it;
                scripts.erase(it);
                return s;
            }
        }
        return std::nullopt;
    }

    void record_command(const std::string& line) {
        std::lock_guard lock(mutex);
        commands.push_back(line);
    }

    void record(smtp_message m) {
        {
            std::lock_guard lock(mutex);
            messages.push_back(std::move(m));
        }
        changed.notify_all();
    }

    net::awaitable<void> accept_loop();
    net::awaitable<void> serve(tcp::socket socket);
};

namespace {

// One connection: plain until STARTTLS, TLS afterwards.
class sink_session {
public:
    sink_session(smtp_sink::impl& owner, tcp::socket socket)
        : owner_(owner), plain_(std::move(socket)) {}

    net::awaitable<void> run();

private:
    void expire() {
        if (tls_) {
            beast::get_lowest_layer(*tls_).expires_after(owner_.options.idle_timeout);
        } else {
            plain_.expires_after(owner_.options.idle_timeout);
        }
    }

    net::awaitable<bool> send(std::string text) {
        expire();
        boost::system::error_code ec;
        std::size_t n = 0;
        if (tls_) {
            std::tie(ec, n) =
                co_await net::async_write(*tls_, net::buffer(text), as_tuple_awaitable);
        } else {
            std::tie(ec, n) =
                co_await net::async_write(plain_, net::buffer(text), as_tuple_awaitable);
        }
        co_return !ec;
    }

    net::awaitable<bool> reply(unsigned code, std::string text) {
        co_return co_await send(std::to_string(code) + " " + text + "\r\n");
    }

    // A line without its CRLF; nullopt when the connection ended.
    net::awaitable<std::optional<std::string>> line() {
        expire();
        auto buffer = net::dynamic_buffer(buffer_, 1u << 20);
        boost::system::error_code ec;
        std::size_t n = 0;
        if (tls_) {
            std::tie(ec, n) =
                co_await net::async_read_until(*tls_, buffer, "\r\n", as_tuple_awaitable);
        } else {
            std::tie(ec, n) =
                co_await net::async_read_until(plain_, buffer, "\r\n", as_tuple_awaitable);
        }
        if (ec) {
            co_return std::nullopt;
        }
        std::string l = buffer_.substr(0, n - 2);
        buffer_.erase(0, n);
        co_return l;
    }

    // A scripted reply for stage: true when one was played (or the connection dropped: closed_).
    net::awaitable<bool> scripted(smtp_stage stage) {
        auto s = owner_.take_script(stage);
        if (!s) {
            co_return false;
        }
        if (s->drop) {
            closed_ = true;
            co_return true;
        }
        if (!co_await reply(s->code, s->text)) {
            closed_ = true;
        }
        co_return true;
    }

    net::awaitable<bool> handshake() {
        if (!owner_.tls) {
            co_return false;
        }
        tls_.emplace(std::move(plain_), *owner_.tls);
        beast::get_lowest_layer(*tls_).expires_after(owner_.options.idle_timeout);
        auto [ec] = co_await tls_->async_handshake(ssl::stream_base::server, as_tuple_awaitable);
        co_return !ec;
    }

    net::awaitable<void> auth(std::string args);
    net::awaitable<void> data();
    std::string ehlo_reply() const;

    smtp_sink::impl& owner_;
    beast::tcp_stream plain_;
    std::optional<ssl::stream<beast::tcp_stream>> tls_;
    std::string buffer_;
    bool closed_ = false;
    std::string auth_user_;
    std::optional<std::string> mail_from_;
    std::vector<std::string> rcpt_;
};

std::string sink_session::ehlo_reply() const {
    std::vector<std::string> lines = {"sink.billsync.test greets you", "8BITMIME", "SIZE 10485760"};
    if (owner_.tls && !tls_) {
        lines.push_back("STARTTLS");
    }
    if (!owner_.options.username.empty() && tls_) {
        std::string mechs = "AUTH";
        for (const auto& m : owner_.options.auth_mechanisms) {
            mechs += " " + m;
        }
        lines.push_back(mechs);
    }
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out += "250" + std::string(i + 1 == lines.size() ? " " : "-") + lines[i] + "\r\n";
    }
    return out;
}

net::awaitable<void> sink_session::auth(std::string args) {
    if (co_await scripted(smtp_stage::auth)) {
        co_return;
    }
    const auto space = args.find(' ');
    const auto mech = upper(args.substr(0, space));
    std::string initial = space == std::string::npos ? std::string() : args.substr(space + 1);
    const auto offered = [this](const std::string& m) {
        for (const auto& o : owner_.options.auth_mechanisms) {
            if (o == m) {
                return true;
            }
        }
        return false;
    };
    if (owner_.options.username.empty() || !tls_ || !offered(mech)) {
        co_await reply(504, "5.5.4 Unrecognized authentication type");
        co_return;
    }
    std::string user;
    std::string pass;
    if (mech == "PLAIN") {
        if (initial.empty()) {
            co_await send("334 \r\n");
            auto l = co_await line();
            if (!l) {
                closed_ = true;
                co_return;
            }
            owner_.record_command(*l);
            initial = *l;
        }
        const auto decoded = util::base64_decode(initial).value_or("");
        const auto a = decoded.find('\0');
        const auto b = a == std::string::npos ? a : decoded.find('\0', a + 1);
        if (b != std::string::npos) {
            user = decoded.substr(a + 1, b - a - 1);
            pass = decoded.substr(b + 1);
        }
    } else {  // LOGIN
        co_await send("334 VXNlcm5hbWU6\r\n");
        auto u = co_await line();
        if (!u) {
            closed_ = true;
            co_return;
        }
        owner_.record_command(*u);
        co_await send("334 UGFzc3dvcmQ6\r\n");
        auto p = co_await line();
        if (!p) {
            closed_ = true;
            co_return;
        }
        owner_.record_command(*p);
        user = util::base64_decode(*u).value_or("");
        pass = util::base64_decode(*p).value_or("");
    }
    if (user == owner_.options.username && pass == owner_.options.password) {
        auth_user_ = user;
        co_await reply(235, "2.7.0 Authentication successful");
    } else {
        co_await reply(535, "5.7.8 Authentication credentials invalid");
    }
}

net::awaitable<void> sink_session::data() {
    if (rcpt_.empty()) {
        co_await reply(503, "5.5.1 RCPT first");
        co_return;
    }
    if (co_await scripted(smtp_stage::data)) {
        co_return;
    }
    if (!co_await reply(354, "End data with <CR><LF>.<CR><LF>")) {
        closed_ = true;
        co_return;
    }
    smtp_message m;
    m.mail_from = mail_from_.value_or("");
    m.rcpt_to = rcpt_;
    m.tls = tls_.has_value();
    m.auth_user = auth_user_;
    for (;;) {
        auto l = co_await line();
        if (!l) {
            closed_ = true;
            co_return;
        }
        if (*l == ".") {
            break;
        }
        m.wire += *l + "\r\n";
        m.data += (l->starts_with('.') ? l->substr(1) : *l) + "\r\n";
    }
    mail_from_.reset();
    rcpt_.clear();
    auto s = owner_.take_script(smtp_stage::message);
    if (s && s->drop) {
        m.answered = false;
        owner_.record(std::move(m));
        closed_ = true;
        co_return;
    }
    if (s) {
        co_await reply(s->code, s->text);
        if (s->code / 100 == 2) {
            owner_.record(std::move(m));
        }
        co_return;
    }
    std::size_t n = 0;
    {
        std::lock_guard lock(owner_.mutex);
        n = owner_.messages.size() + 1;
    }
    owner_.record(std::move(m));
    co_await reply(250, "2.0.0 Ok: queued as SINK" + std::to_string(n));
}

net::awaitable<void> sink_session::run() {
    if (owner_.options.implicit_tls) {
        const bool secured = co_await handshake();
        if (!secured) {
            co_return;
        }
    }
    if (co_await scripted(smtp_stage::greeting)) {
        co_return;  // a refusal at the greeting ends the session
    }
    if (!co_await reply(220, "sink.billsync.test ESMTP billsync-sink")) {
        co_return;
    }
    while (!closed_) {
        auto l = co_await line();
        if (!l) {
            co_return;
        }
        owner_.record_command(*l);
        const auto space = l->find(' ');
        const auto verb = upper(l->substr(0, space));
        const std::string args = space == std::string::npos ? std::string() : l->substr(space + 1);
        if (verb == "EHLO" || verb == "HELO") {
            if (co_await scripted(smtp_stage::ehlo)) {
                continue;
            }
            std::string answer = verb == "EHLO" ? ehlo_reply() : "250 sink.billsync.test\r\n";
            co_await send(std::move(answer));
        } else if (verb == "STARTTLS") {
            if (!owner_.tls || tls_) {
                co_await reply(454, "4.7.0 TLS not available");
                continue;
            }
            if (co_await scripted(smtp_stage::starttls)) {
                continue;
            }
            co_await reply(220, "2.0.0 Ready to start TLS");
            if (!co_await handshake()) {
                co_return;
            }
            auth_user_.clear();
            mail_from_.reset();
            rcpt_.clear();
        } else if (verb == "AUTH") {
            co_await auth(args);
        } else if (verb == "MAIL") {
            if (!owner_.options.username.empty() && auth_user_.empty()) {
                co_await reply(530, "5.7.0 Authentication required");
                continue;
            }
            if (co_await scripted(smtp_stage::mail)) {
                continue;
            }
            mail_from_ = path_of(args);
            rcpt_.clear();
            co_await reply(250, "2.1.0 Ok");
        } else if (verb == "RCPT") {
            if (!mail_from_) {
                co_await reply(503, "5.5.1 MAIL first");
                continue;
            }
            if (co_await scripted(smtp_stage::rcpt)) {
                continue;
            }
            rcpt_.push_back(path_of(args));
            co_await reply(250, "2.1.5 Ok");
        } else if (verb == "DATA") {
            co_await data();
        } else if (verb == "RSET") {
            mail_from_.reset();
            rcpt_.clear();
            co_await reply(250, "2.0.0 Ok");
        } else if (verb == "NOOP") {
            co_await reply(250, "2.0.0 Ok");
        } else if (verb == "QUIT") {
            co_await reply(221, "2.0.0 Bye");
            if (tls_) {
                beast::get_lowest_layer(*tls_).expires_after(std::chrono::seconds(2));
                co_await tls_->async_shutdown(as_tuple_awaitable);
            }
            co_return;
        } else {
            co_await reply(500, "5.5.2 Syntax error, command unrecognized");
        }
    }
}

}  // namespace

net::awaitable<void> smtp_sink::impl::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor->async_accept(as_tuple_awaitable);
        if (ec) {
            co_return;
        }
        {
            std::lock_guard lock(mutex);
            ++connections;
        }
        net::co_spawn(ioc, serve(std::move(socket)), net::detached);
    }
}

net::awaitable<void> smtp_sink::impl::serve(tcp::socket socket) {
    sink_session s(*this, std::move(socket));
    co_await s.run();
}

smtp_sink::smtp_sink(smtp_sink_options options) : impl_(std::make_shared<impl>()) {
    impl_->options = std::move(options);
}

smtp_sink::~smtp_sink() { stop(); }

std::string smtp_sink::start() {
    auto& i = *impl_;
    try {
        if (!i.options.cert_file.empty() && !i.options.key_file.empty()) {
            i.tls.emplace(ssl::context::tls_server);
            i.tls->use_certificate_chain_file(i.options.cert_file.string());
            i.tls->use_private_key_file(i.options.key_file.string(), ssl::context::pem);
        }
        const tcp::endpoint ep(net::ip::make_address(i.options.host), i.options.port);
        i.acceptor.emplace(i.ioc, ep);
        i.bound_port = i.acceptor->local_endpoint().port();
    } catch (const std::exception& e) {
        return std::string("smtp sink: ") + e.what();
    }
    net::co_spawn(i.ioc, i.accept_loop(), net::detached);
    i.thread = std::thread([self = impl_] { self->ioc.run(); });
    return {};
}

void smtp_sink::stop() {
    if (!impl_->thread.joinable()) {
        return;
    }
    net::post(impl_->ioc, [self = impl_] {
        boost::system::error_code ec;
        self->acceptor->close(ec);
        self->ioc.stop();
    });
    impl_->thread.join();
}

std::uint16_t smtp_sink::port() const { return impl_->bound_port; }

void smtp_sink::script(smtp_script s) {
    std::lock_guard lock(impl_->mutex);
    impl_->scripts.push_back(std::move(s));
}

std::vector<smtp_message> smtp_sink::messages() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->messages;
}

bool smtp_sink::wait_for_messages(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->messages.size() >= n; });
}

std::uint64_t smtp_sink::connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->connections;
}

std::vector<std::string> smtp_sink::commands() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->commands;
}

}  // namespace billsync::simulators
