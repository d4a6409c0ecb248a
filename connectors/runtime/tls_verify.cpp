#include "connectors/runtime/tls_verify.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_context.hpp>

namespace billsync::connectors::tls {

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address(host, ec);
    return !ec;
}

void set_server_name(SSL* ssl, const std::string& host) {
    if (!is_ip_literal(host)) {
        SSL_set_tlsext_host_name(ssl, host.c_str());
    }
}

std::function<bool(bool, boost::asio::ssl::verify_context&)> verifier(
    std::string host, std::shared_ptr<peer_check> seen) {
    return [seen = std::move(seen), host = std::move(host)](bool preverified,
                                                            boost::asio::ssl::verify_context& ctx) {
        if (!preverified) {
            if (seen->chain_error == X509_V_OK) {
                seen->chain_error = X509_STORE_CTX_get_error(ctx.native_handle());
            }
            return false;
        }
        if (!boost::asio::ssl::host_name_verification(host)(preverified, ctx)) {
            seen->host_mismatch = true;
            return false;
        }
        return true;
    };
}

}  // namespace billsync::connectors::tls
