#pragma once

// Peer verification for every TLS client billsync runs (HTTPS to vendors, SMTP submission): the
// certificate chain, then the host name, with the reason kept for the error message. Security
// code that exists once.

#include <functional>
#include <memory>
#include <string>

using SSL = struct ssl_st;

namespace boost::asio::ssl {
class verify_context;
}

namespace billsync::connectors::tls {

// What the handshake's verification found; read after a failed handshake.
struct peer_check {
    int chain_error = 0;  // X509_V_OK, else the first chain error OpenSSL reported
    bool host_mismatch = false;
};

bool is_ip_literal(const std::string& host);

// SNI: the server picks its certificate by it. Not sent for IP literals.
void set_server_name(SSL* ssl, const std::string& host);

// The verify callback: OpenSSL's chain verdict, then RFC 6125 host name matching; the first
// failure is recorded in `seen`.
std::function<bool(bool, boost::asio::ssl::verify_context&)> verifier(
    std::string host, std::shared_ptr<peer_check> seen);

}  // namespace billsync::connectors::tls
