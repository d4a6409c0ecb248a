#include "connectors/sendgrid/sendgrid_signature.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>

#include "util/crypto.hpp"

namespace billsync::connectors::sendgrid {

struct event_verifier::key {
    EVP_PKEY* pkey = nullptr;
    key() = default;
    key(const key&) = delete;
    key& operator=(const key&) = delete;
    ~key() { EVP_PKEY_free(pkey); }
};

std::optional<event_verifier> event_verifier::from_base64_der(std::string_view public_key,
                                                              std::string* error) {
    const auto fail = [error](const char* why) {
        if (error != nullptr) {
            *error = why;
        }
        return std::nullopt;
    };
    const auto der = util::base64_decode(public_key);
    if (!der || der->empty()) {
        return fail("the public key is not valid base64");
    }
    auto k = std::make_shared<key>();
    const auto* p = reinterpret_cast<const unsigned char*>(der->data());
    k->pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size()));
    if (k->pkey == nullptr ||
        p != reinterpret_cast<const unsigned char*>(der->data()) + der->size()) {
        ERR_clear_error();
        return fail("the public key is not a DER SubjectPublicKeyInfo");
    }
    if (EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_EC) {
        return fail("the public key is not an EC key");
    }
    std::array<char, 64> group{};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(
            k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &len) != 1 ||
        std::strcmp(group.data(), "prime256v1") != 0) {
        return fail("the public key is not on curve P-256");
    }
    return event_verifier(std::move(k));
}

bool event_verifier::verify(std::string_view timestamp,
                            std::string_view body,
                            std::string_view signature_base64) const {
    if (!key_ || timestamp.empty() || signature_base64.empty()) {
        return false;
    }
    const auto signature = util::base64_decode(signature_base64);
    if (!signature || signature->empty()) {
        return false;
    }
    std::string message;
    message.reserve(timestamp.size() + body.size());
    message.append(timestamp);
    message.append(body);

    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) {
        return false;
    }
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
              EVP_DigestVerify(ctx,
                               reinterpret_cast<const unsigned char*>(signature->data()),
                               signature->size(),
                               reinterpret_cast<const unsigned char*>(message.data()),
                               message.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();  // a bad signature is an expected outcome, not an OpenSSL fault
    }
    return ok;
}

bool verify_event_signature(std::string_view public_key_base64,
                            std::string_view timestamp,
                            std::string_view body,
                            std::string_view signature_base64) {
    const auto v = event_verifier::from_base64_der(public_key_base64);
    return v && v->verify(timestamp, body, signature_base64);
}

}  // namespace billsync::connectors::sendgrid
