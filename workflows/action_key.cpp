#include "workflows/action_key.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

namespace billsync::workflows {

std::string action_key(std::string_view rule, std::string_view entity, std::uint64_t version) {
    auto plain = fmt::format("{}:{}:{}", rule, entity, version);
    constexpr std::size_t max_len = 50;
    if (plain.size() <= max_len) {
        return plain;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(plain.data(), plain.size(), digest, &len, EVP_sha256(), nullptr);
    // 16 bytes of digest as hex (32 chars) after a short rule prefix keeps keys readable.
    std::string hex;
    for (unsigned int i = 0; i < 16 && i < len; ++i) {
        hex += fmt::format("{:02x}", digest[i]);
    }
    const auto prefix = rule.substr(0, max_len - hex.size() - 1);
    return fmt::format("{}:{}", prefix, hex);
}

}  // namespace billsync::workflows
