#pragma once

// A throwaway certificate authority for TLS tests and simulators: an EC P-256 CA generated at
// runtime with OpenSSL, which issues leaf certificates for chosen host names and IP addresses.
// Nothing is read from or committed to the repository.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace billsync::simulators {

struct tls_files {
    std::filesystem::path ca_cert;  // PEM of the issuing CA: what a client trusts
    std::filesystem::path cert;     // leaf certificate chain (PEM)
    std::filesystem::path key;      // leaf private key (PEM)
};

class test_ca {
public:
    explicit test_ca(std::string common_name = "billsync test CA");
    ~test_ca();
    test_ca(const test_ca&) = delete;
    test_ca& operator=(const test_ca&) = delete;

    // Writes the CA certificate and a new leaf for the names into dir (created if needed);
    // file names start with `prefix`. Throws std::runtime_error on an OpenSSL failure.
    tls_files issue(const std::filesystem::path& dir,
                    const std::vector<std::string>& dns_names,
                    const std::vector<std::string>& ip_addresses,
                    const std::string& prefix = "sim") const;

    // The usual loopback leaf: DNS localhost, IP 127.0.0.1.
    tls_files issue_loopback(const std::filesystem::path& dir,
                             const std::string& prefix = "sim") const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::simulators
