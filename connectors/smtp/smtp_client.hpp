#pragma once

// An SMTP submission client (RFC 5321, 3207, 4954) on Asio coroutines: EHLO, STARTTLS with the
// peer's chain and host name verified (SNI set), EHLO again, AUTH PLAIN (or LOGIN when only that
// is offered), MAIL FROM, RCPT TO, DATA with CRLF normalisation and dot-stuffing, QUIT. Every
// step is time-limited; replies are parsed (multi-line); 4xx is transient, 5xx permanent. The
// password never reaches a log line, not even base64-encoded.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/asio.hpp"

namespace spdlog {
class logger;
}

namespace billsync::connectors::smtp {

enum class tls_mode : std::uint8_t {
    starttls,  // plain connect, then STARTTLS (required: never falls back to plain text)
    implicit,  // TLS from the first byte (port 465)
    none,      // plain text throughout (loopback relays only; no AUTH)
};

struct client_settings {
    std::string host;
    std::uint16_t port = 587;
    tls_mode tls = tls_mode::starttls;
    std::string username;  // empty: no AUTH
    std::string password;
    std::string ca_file;                       // PEM bundle to trust; empty: the system store
    std::string helo_name = "billsync.local";  // our name in EHLO
    std::chrono::milliseconds connect_timeout{15'000};  // resolve, connect, TLS handshake
    std::chrono::milliseconds command_timeout{60'000};  // each command and its reply
    std::chrono::milliseconds data_timeout{180'000};    // the message body and its final reply
    std::size_t max_reply_bytes = 64 * 1024;
    std::shared_ptr<spdlog::logger> log;  // protocol trace at debug level; nullptr: silent
};

struct envelope {
    std::string from;             // MAIL FROM address
    std::vector<std::string> to;  // RCPT TO addresses
    std::string data;             // the RFC 5322 message, any line endings, not dot-stuffed
};

struct reply {
    unsigned code = 0;
    std::vector<std::string> lines;  // text after the code, one per line
    std::string text() const;        // lines joined with ' '
};

struct send_result {
    enum class kind : std::uint8_t {
        sent,       // 250 after the message body
        transient,  // 4xx, timeout, connection or TLS trouble before the body was accepted
        permanent,  // 5xx, or a server that cannot do what the settings require
        unknown,    // the connection failed after the body was sent: it may have been accepted
    };
    kind k = kind::transient;
    std::string stage;   // connect tls greeting ehlo starttls auth mail rcpt data message
    unsigned code = 0;   // the server's reply code, 0 when none
    std::string detail;  // loggable: never the password or the message
};

net::awaitable<send_result> send_mail(client_settings settings, envelope e);

// CRLF normalisation (lone CR or LF become CRLF), a final CRLF, dot-stuffing (RFC 5321 4.5.2)
// and the terminating ".\r\n".
std::string dot_stuff(std::string_view data);

// Parses one reply line "250-text" / "250 text" / "250"; nullopt when malformed. `last` is set
// for the final line of a reply.
std::optional<unsigned> parse_reply_line(std::string_view line, bool& last, std::string& text);

}  // namespace billsync::connectors::smtp
