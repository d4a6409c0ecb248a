#include "sim/test_ca.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdio>
#include <stdexcept>

namespace billsync::simulators {
namespace {

struct pkey_free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_free {
    void operator()(X509* x) const { X509_free(x); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

void check(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("test CA: ") + what + " failed");
    }
}

pkey_ptr new_key() {
    pkey_ptr k(EVP_EC_gen("P-256"));
    check(k != nullptr, "EVP_EC_gen");
    return k;
}

long next_serial() {
    static std::atomic<long> serial{1000};
    return serial++;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

x509_ptr make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), next_serial());
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7L * 24 * 3600);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
    (void)issuer_key;
    return cert;
}

void write_pem(const std::filesystem::path& path, X509* cert, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "wb");
    check(f != nullptr, "fopen");
    bool ok = true;
    if (cert != nullptr) {
        ok = PEM_write_X509(f, cert) == 1;
    }
    if (key != nullptr) {
        ok = ok && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    }
    std::fclose(f);
    check(ok, "PEM write");
}

}  // namespace

struct test_ca::impl {
    pkey_ptr key;
    x509_ptr cert;
};

test_ca::test_ca(std::string common_name) : impl_(std::make_unique<impl>()) {
    impl_->key = new_key();
    impl_->cert = make_cert(common_name, impl_->key.get(), nullptr, nullptr);
    add_ext(impl_->cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(impl_->cert.get(), impl_->cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(impl_->cert.get(), impl_->cert.get(), NID_subject_key_identifier, "hash");
    check(X509_sign(impl_->cert.get(), impl_->key.get(), EVP_sha256()) > 0, "X509_sign (CA)");
}

test_ca::~test_ca() = default;

tls_files test_ca::issue(const std::filesystem::path& dir,
                         const std::vector<std::string>& dns_names,
                         const std::vector<std::string>& ip_addresses,
                         const std::string& prefix) const {
    std::filesystem::create_directories(dir);
    auto key = new_key();
    const std::string cn =
        dns_names.empty() ? (ip_addresses.empty() ? "sim" : ip_addresses[0]) : dns_names[0];
    auto cert = make_cert(cn, key.get(), impl_->cert.get(), impl_->key.get());
    std::string san;
    for (const auto& d : dns_names) {
        san += (san.empty() ? "DNS:" : ",DNS:") + d;
    }
    for (const auto& ip : ip_addresses) {
        san += (san.empty() ? "IP:" : ",IP:") + ip;
    }
    add_ext(cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), impl_->cert.get(), NID_key_usage, "critical,digitalSignature");
    add_ext(cert.get(), impl_->cert.get(), NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), impl_->cert.get(), NID_authority_key_identifier, "keyid:always");
    if (!san.empty()) {
        add_ext(cert.get(), impl_->cert.get(), NID_subject_alt_name, san);
    }
    check(X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) > 0, "X509_sign (leaf)");
    tls_files out;
    out.ca_cert = dir / (prefix + "-ca.pem");
    out.cert = dir / (prefix + "-cert.pem");
    out.key = dir / (prefix + "-key.pem");
    write_pem(out.ca_cert, impl_->cert.get(), nullptr);
    write_pem(out.cert, cert.get(), nullptr);
    write_pem(out.key, nullptr, key.get());
    return out;
}

tls_files test_ca::issue_loopback(const std::filesystem::path& dir,
                                  const std::string& prefix) const {
    return issue(dir, {"localhost"}, {"127.0.0.1"}, prefix);
}

}  // namespace billsync::simulators
