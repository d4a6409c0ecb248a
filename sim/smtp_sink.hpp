#pragma once

// A loopback SMTP server for tests and the sandbox: binds 127.0.0.1:0 on a thread of its own,
// offers STARTTLS with test_ca certificates (or implicit TLS), checks AUTH PLAIN / LOGIN
// against configured credentials, records each message (envelope, the data as received on the
// wire and unstuffed), and plays scripted replies per stage (451 at RCPT, 554 after the message,
// a dropped connection after DATA, …). It is not an http simulator.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace billsync::simulators {

struct smtp_sink_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    // TLS certificate and key (test_ca); STARTTLS is offered when both are set.
    std::filesystem::path cert_file;
    std::filesystem::path key_file;
    bool implicit_tls = false;  // TLS from the first byte instead of STARTTLS
    // AUTH is offered (after TLS) and required when username is set.
    std::string username;
    std::string password;
    std::vector<std::string> auth_mechanisms = {"PLAIN", "LOGIN"};
    std::chrono::milliseconds idle_timeout{10'000};  // a silent client is dropped
};

enum class smtp_stage : std::uint8_t {
    greeting,
    ehlo,
    starttls,
    auth,
    mail,
    rcpt,
    data,     // the reply to DATA (354 normally)
    message,  // the reply after the message body (250 normally)
};

struct smtp_script {
    smtp_stage stage = smtp_stage::rcpt;
    unsigned code = 451;
    std::string text = "4.3.0 Try again later";
    bool drop = false;  // close the connection instead of replying
};

struct smtp_message {
    std::string mail_from;
    std::vector<std::string> rcpt_to;
    std::string wire;  // the DATA lines as received (dot-stuffed), CRLF, without the final "."
    std::string data;  // unstuffed: the message as the receiver stores it
    bool tls = false;
    std::string auth_user;  // empty: no AUTH
    bool answered = true;   // false when a script dropped the connection instead of answering
};

class smtp_sink {
public:
    explicit smtp_sink(smtp_sink_options options = {});
    ~smtp_sink();
    smtp_sink(const smtp_sink&) = delete;
    smtp_sink& operator=(const smtp_sink&) = delete;

    // Binds and serves; an error message, empty on success.
    std::string start();
    void stop();
    std::uint16_t port() const;

    // Queues a reply; consumed by the first session that reaches its stage. Thread-safe.
    void script(smtp_script s);
    std::vector<smtp_message> messages() const;
    // Waits until at least n messages were recorded; false on timeout.
    bool wait_for_messages(std::size_t n, std::chrono::milliseconds timeout) const;
    std::uint64_t connections() const;
    // Every line the clients sent (commands, AUTH exchanges, not the message data).
    std::vector<std::string> commands() const;

    struct impl;  // public only so the session code in smtp_sink.cpp can name it

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace billsync::simulators
