#include "connectors/smtp/smtp_client.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/logger.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <tuple>

#include "connectors/runtime/tls_verify.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::smtp {

namespace {

namespace beast = boost::beast;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using kind = send_result::kind;

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

// One SMTP conversation. Member coroutines run while the session lives on the caller's frame.
class session {
public:
    session(net::any_io_executor ex, client_settings s) : settings_(std::move(s)), plain_(ex) {}

    net::awaitable<send_result> run(envelope e);

private:
    send_result fail(kind k, std::string stage, std::string detail, unsigned code = 0) const {
        send_result r;
        r.k = k;
        r.stage = std::move(stage);
        r.detail = std::move(detail);
        r.code = code;
        if (settings_.log) {
            settings_.log->debug("SMTP failed host={} stage={} code={} detail=\"{}\"",
                                 settings_.host,
                                 r.stage,
                                 r.code,
                                 r.detail);
        }
        return r;
    }

    void expire(std::chrono::milliseconds t) {
        if (tls_) {
            beast::get_lowest_layer(*tls_).expires_after(t);
        } else {
            plain_.expires_after(t);
        }
    }

    net::awaitable<boost::system::error_code> write(std::string data, std::chrono::milliseconds t) {
        expire(t);
        if (tls_) {
            auto [ec, n] = co_await net::async_write(*tls_, net::buffer(data), as_tuple_awaitable);
            co_return ec;
        }
        auto [ec, n] = co_await net::async_write(plain_, net::buffer(data), as_tuple_awaitable);
        co_return ec;
    }

    // One reply, possibly multi-line.
    net::awaitable<std::pair<boost::system::error_code, reply>> read_reply(
        std::chrono::milliseconds t) {
        reply r;
        expire(t);
        for (;;) {
            auto buffer = net::dynamic_buffer(buffer_, settings_.max_reply_bytes);
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
                co_return std::pair{ec, r};
            }
            const std::string line = buffer_.substr(0, n - 2);
            buffer_.erase(0, n);
            if (settings_.log) {
                settings_.log->debug("SMTP S: {}", line);
            }
            bool last = false;
            std::string text;
            const auto code = parse_reply_line(line, last, text);
            if (!code || (r.code != 0 && *code != r.code)) {
                co_return std::pair{boost::system::error_code(net::error::invalid_argument), r};
            }
            r.code = *code;
            r.lines.push_back(std::move(text));
            if (last) {
                co_return std::pair{boost::system::error_code(), r};
            }
        }
    }

    // Sends a command (logged as `shown`, which hides credentials) and reads its reply. A reply
    // outside `ok_class` (2 or 3) becomes a failure of the stage in *failure.
    net::awaitable<std::optional<reply>> command(std::string line,
                                                 std::string shown,
                                                 std::string stage,
                                                 unsigned ok_class,
                                                 std::optional<send_result>* failure,
                                                 std::chrono::milliseconds t) {
        if (settings_.log && !line.empty()) {
            settings_.log->debug("SMTP C: {}", shown);
        }
        if (!line.empty()) {
            if (auto ec = co_await write(line + "\r\n", t)) {
                *failure = fail(kind::transient, stage, transport_message(ec, stage));
                co_return std::nullopt;
            }
        }
        auto [ec, r] = co_await read_reply(t);
        if (ec) {
            *failure = fail(kind::transient, stage, transport_message(ec, stage));
            co_return std::nullopt;
        }
        if (r.code / 100 == ok_class) {
            co_return r;
        }
        const auto k = r.code / 100 == 5 ? kind::permanent : kind::transient;
        *failure = fail(k, stage, fmt::format("{} {} (at {})", r.code, r.text(), stage), r.code);
        co_return std::nullopt;
    }

    std::string transport_message(boost::system::error_code ec, std::string_view stage) const {
        if (ec == beast::error::timeout) {
            return fmt::format("timed out at {} with {}", stage, settings_.host);
        }
        if (ec == net::error::invalid_argument) {
            return fmt::format("malformed SMTP reply at {} from {}", stage, settings_.host);
        }
        return fmt::format(
            "connection to {} failed at {}: {}", settings_.host, stage, ec.message());
    }

    net::awaitable<std::optional<send_result>> start_tls();
    // EHLO; fills extensions_.
    net::awaitable<std::optional<send_result>> ehlo();
    net::awaitable<std::optional<send_result>> authenticate();

    bool offers(std::string_view keyword) const {
        for (const auto& e : extensions_) {
            if (e == keyword || e.starts_with(std::string(keyword) + " ")) {
                return true;
            }
        }
        return false;
    }

    client_settings settings_;
    beast::tcp_stream plain_;
    std::optional<ssl::context> context_;
    std::optional<ssl::stream<beast::tcp_stream>> tls_;
    std::string buffer_;
    std::vector<std::string> extensions_;  // upper-cased EHLO lines after the first
};

net::awaitable<std::optional<send_result>> session::start_tls() {
    context_.emplace(ssl::context::tls_client);
    context_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (!settings_.ca_file.empty()) {
        context_->load_verify_file(settings_.ca_file, ec);
    } else {
        context_->set_default_verify_paths(ec);
    }
    if (ec) {
        co_return fail(kind::permanent,
                       "tls",
                       fmt::format("cannot load the trusted certificates{}: {}",
                                   settings_.ca_file.empty() ? "" : " from " + settings_.ca_file,
                                   ec.message()));
    }
    tls_.emplace(std::move(plain_), *context_);
    tls::set_server_name(tls_->native_handle(), settings_.host);
    auto seen = std::make_shared<tls::peer_check>();
    tls_->set_verify_mode(ssl::verify_peer);
    tls_->set_verify_callback(tls::verifier(settings_.host, seen));
    beast::get_lowest_layer(*tls_).expires_after(settings_.connect_timeout);
    auto [hec] = co_await tls_->async_handshake(ssl::stream_base::client, as_tuple_awaitable);
    if (!hec) {
        co_return std::nullopt;
    }
    std::string why;
    if (seen->host_mismatch) {
        why = "host name mismatch: the certificate presented by " + settings_.host +
              " is not valid for that name";
    } else if (seen->chain_error != X509_V_OK) {
        why = fmt::format("certificate verify failed for {}: {}",
                          settings_.host,
                          X509_verify_cert_error_string(seen->chain_error));
    } else if (hec == beast::error::timeout) {
        why = "timed out in the TLS handshake with " + settings_.host;
    } else {
        why = "TLS handshake with " + settings_.host + " failed: " + hec.message();
    }
    co_return fail(kind::transient, "tls", why);
}

net::awaitable<std::optional<send_result>> session::ehlo() {
    std::optional<send_result> failure;
    const auto line = "EHLO " + settings_.helo_name;
    auto r = co_await command(line, line, "ehlo", 2, &failure, settings_.command_timeout);
    if (!r) {
        co_return failure;
    }
    extensions_.clear();
    for (std::size_t i = 1; i < r->lines.size(); ++i) {
        extensions_.push_back(upper(r->lines[i]));
    }
    co_return std::nullopt;
}

net::awaitable<std::optional<send_result>> session::authenticate() {
    std::optional<send_result> failure;
    std::string mechanisms;
    for (const auto& e : extensions_) {
        if (e.starts_with("AUTH ") || e.starts_with("AUTH=")) {
            mechanisms += " " + e.substr(5) + " ";
        }
    }
    const auto t = settings_.command_timeout;
    if (mechanisms.find(" PLAIN ") != std::string::npos) {
        const std::string creds =
            std::string(1, '\0') + settings_.username + std::string(1, '\0') + settings_.password;
        auto r = co_await command("AUTH PLAIN " + util::base64_encode(creds),
                                  "AUTH PLAIN <credentials hidden>",
                                  "auth",
                                  2,
                                  &failure,
                                  t);
        co_return r ? std::nullopt : failure;
    }
    if (mechanisms.find(" LOGIN ") != std::string::npos) {
        if (!co_await command("AUTH LOGIN", "AUTH LOGIN", "auth", 3, &failure, t)) {
            co_return failure;
        }
        if (!co_await command(util::base64_encode(settings_.username),
                              "<username hidden>",
                              "auth",
                              3,
                              &failure,
                              t)) {
            co_return failure;
        }
        auto r = co_await command(
            util::base64_encode(settings_.password), "<password hidden>", "auth", 2, &failure, t);
        co_return r ? std::nullopt : failure;
    }
    co_return fail(
        kind::permanent, "auth", settings_.host + " offers neither AUTH PLAIN nor AUTH LOGIN");
}

net::awaitable<send_result> session::run(envelope e) {
    std::optional<send_result> failure;
    // Connect.
    tcp::resolver resolver(plain_.get_executor());
    plain_.expires_after(settings_.connect_timeout);
    auto [rec, endpoints] = co_await resolver.async_resolve(
        settings_.host, std::to_string(settings_.port), as_tuple_awaitable);
    if (rec) {
        co_return fail(
            kind::transient, "connect", "cannot resolve " + settings_.host + ": " + rec.message());
    }
    auto [cec, ep] = co_await plain_.async_connect(endpoints, as_tuple_awaitable);
    if (cec) {
        co_return fail(kind::transient,
                       "connect",
                       fmt::format("connect to {}:{} failed: {}",
                                   settings_.host,
                                   settings_.port,
                                   cec == beast::error::timeout ? "timed out" : cec.message()));
    }
    if (settings_.tls == tls_mode::implicit) {
        if (auto f = co_await start_tls()) {
            co_return *f;
        }
    }
    // Greeting.
    if (!co_await command("", "<greeting>", "greeting", 2, &failure, settings_.connect_timeout)) {
        co_return *failure;
    }
    if (auto f = co_await ehlo()) {
        co_return *f;
    }
    if (settings_.tls == tls_mode::starttls) {
        if (!offers("STARTTLS")) {
            co_return fail(kind::permanent,
                           "starttls",
                           settings_.host + " does not offer STARTTLS (tls = \"starttls\")");
        }
        if (!co_await command(
                "STARTTLS", "STARTTLS", "starttls", 2, &failure, settings_.command_timeout)) {
            co_return *failure;
        }
        // Anything already buffered was sent before TLS and must not be trusted (CVE-2011-0411).
        if (!buffer_.empty()) {
            co_return fail(
                kind::transient, "starttls", "the server sent data before the TLS handshake");
        }
        if (auto f = co_await start_tls()) {
            co_return *f;
        }
        if (auto f = co_await ehlo()) {
            co_return *f;
        }
    }
    if (!settings_.username.empty()) {
        if (!tls_) {
            co_return fail(kind::permanent, "auth", "refusing to send credentials without TLS");
        }
        if (auto f = co_await authenticate()) {
            co_return *f;
        }
    }
    const auto t = settings_.command_timeout;
    const auto mail = "MAIL FROM:<" + e.from + ">";
    if (!co_await command(mail, mail, "mail", 2, &failure, t)) {
        co_return *failure;
    }
    for (const auto& to : e.to) {
        const auto rcpt = "RCPT TO:<" + to + ">";
        if (!co_await command(rcpt, rcpt, "rcpt", 2, &failure, t)) {
            co_return *failure;
        }
    }
    if (!co_await command("DATA", "DATA", "data", 3, &failure, t)) {
        co_return *failure;
    }
    // The body: from here on a lost connection leaves the outcome unknown.
    if (settings_.log) {
        settings_.log->debug("SMTP C: <message, {} bytes>", e.data.size());
    }
    if (auto ec = co_await write(dot_stuff(e.data), settings_.data_timeout)) {
        co_return fail(kind::unknown, "message", transport_message(ec, "message"));
    }
    auto [ec, r] = co_await read_reply(settings_.data_timeout);
    if (ec) {
        co_return fail(kind::unknown, "message", transport_message(ec, "message"));
    }
    if (r.code / 100 != 2) {
        co_return fail(r.code / 100 == 5 ? kind::permanent : kind::transient,
                       "message",
                       fmt::format("{} {} (at message)", r.code, r.text()),
                       r.code);
    }
    send_result out;
    out.k = kind::sent;
    out.stage = "message";
    out.code = r.code;
    out.detail = fmt::format("{} {}", r.code, r.text());
    // QUIT is a courtesy: the message is accepted whatever happens now.
    std::optional<send_result> ignored;
    co_await command("QUIT", "QUIT", "quit", 2, &ignored, std::chrono::milliseconds(5'000));
    if (tls_) {
        beast::get_lowest_layer(*tls_).expires_after(std::chrono::milliseconds(2'000));
        co_await tls_->async_shutdown(as_tuple_awaitable);
    }
    co_return out;
}

}  // namespace

std::string reply::text() const {
    std::string out;
    for (const auto& l : lines) {
        out += out.empty() ? "" : " ";
        out += l;
    }
    return out;
}

std::optional<unsigned> parse_reply_line(std::string_view line, bool& last, std::string& text) {
    if (line.size() < 3) {
        return std::nullopt;
    }
    unsigned code = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        const char c = line[i];
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        code = code * 10 + static_cast<unsigned>(c - '0');
    }
    if (code < 200 || code > 599) {
        return std::nullopt;
    }
    if (line.size() == 3) {
        last = true;
        text.clear();
        return code;
    }
    if (line[3] != ' ' && line[3] != '-') {
        return std::nullopt;
    }
    last = line[3] == ' ';
    text = std::string(line.substr(4));
    return code;
}

std::string dot_stuff(std::string_view data) {
    std::string out;
    out.reserve(data.size() + data.size() / 64 + 8);
    bool line_start = true;
    for (std::size_t i = 0; i < data.size(); ++i) {
        const char c = data[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') {
                ++i;
            }
            out += "\r\n";
            line_start = true;
            continue;
        }
        if (line_start && c == '.') {
            out += '.';
        }
        out += c;
        line_start = false;
    }
    if (!line_start) {
        out += "\r\n";
    }
    out += ".\r\n";
    return out;
}

net::awaitable<send_result> send_mail(client_settings settings, envelope e) {
    session s(co_await net::this_coro::executor, std::move(settings));
    co_return co_await s.run(std::move(e));
}

}  // namespace billsync::connectors::smtp
