#include "connectors/runtime/token_store.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <memory>
#include <stdexcept>
#include <system_error>

#include "state/tables.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors {

namespace {

constexpr std::string_view magic = "BST";
constexpr char version_plain = '\x00';
constexpr char version_gcm = '\x01';
constexpr std::size_t header_size = 4;
constexpr std::size_t key_id_size = 8;
constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;

struct cipher_ctx_deleter {
    void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

std::string trim(std::string_view s) {
    while (!s.empty() &&
           (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return std::string(s);
}

std::optional<std::string> decode_base64_any(std::string text) {
    for (auto& c : text) {
        if (c == '-') {
            c = '+';
        } else if (c == '_') {
            c = '/';
        }
    }
    while (text.size() % 4 != 0) {
        text += '=';
    }
    return util::base64_decode(text);
}

bool is_hex(std::string_view s) {
    for (const char c : s) {
        const bool digit = c >= '0' && c <= '9';
        const bool lower = c >= 'a' && c <= 'f';
        const bool upper = c >= 'A' && c <= 'F';
        if (!digit && !lower && !upper) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string sealing_key::id() const {
    const std::string_view k(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
    return util::hmac_sha256(k, "billsync secrets_key id").substr(0, key_id_size);
}

std::optional<sealing_key> parse_secrets_key(std::string_view text, std::string& error) {
    const std::string t = trim(text);
    std::optional<std::string> raw;
    if (t.size() == 2 * sealing_key::size && is_hex(t)) {
        raw = util::hex_decode(t);
    } else if (!t.empty()) {
        raw = decode_base64_any(t);
    }
    if (!raw || raw->size() != sealing_key::size) {
        error =
            "secrets_key must be 32 random bytes written as base64 (44 characters) or hex (64 "
            "characters); generate one with: openssl rand -base64 32";
        return std::nullopt;
    }
    std::array<unsigned char, sealing_key::size> b{};
    for (std::size_t i = 0; i < b.size(); ++i) {
        b[i] = static_cast<unsigned char>((*raw)[i]);
    }
    return sealing_key(b);
}

std::string generate_secrets_key_base64() {
    std::string raw(sealing_key::size, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) !=
        1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return util::base64_encode(raw);
}

std::string wrap_plain(std::string_view plaintext) {
    std::string out(magic);
    out += version_plain;
    out += plaintext;
    return out;
}

std::string seal(const sealing_key& key, std::string_view aad, std::string_view plaintext) {
    std::string out(magic);
    out += version_gcm;
    out += key.id();
    std::string nonce(nonce_size, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                   static_cast<int>(nonce.size())) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    out += nonce;

    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    std::string ct(plaintext.size(), '\0');
    auto* ct_out = reinterpret_cast<unsigned char*>(ct.data());
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(
            ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce_size), nullptr) != 1 ||
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.bytes().data(), bytes(nonce)) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) !=
            1 ||
        EVP_EncryptUpdate(
            ctx.get(), ct_out, &len, bytes(plaintext), static_cast<int>(plaintext.size())) != 1) {
        throw std::runtime_error("AES-256-GCM encryption failed");
    }
    int fin = 0;
    std::string tag(tag_size, '\0');
    if (EVP_EncryptFinal_ex(ctx.get(), ct_out + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(),
                            EVP_CTRL_GCM_GET_TAG,
                            static_cast<int>(tag_size),
                            reinterpret_cast<unsigned char*>(tag.data())) != 1) {
        throw std::runtime_error("AES-256-GCM encryption failed");
    }
    out += ct;
    out += tag;
    return out;
}

open_result open_record(const sealing_key* key, std::string_view aad, std::string_view record) {
    if (record.size() < header_size || record.substr(0, 3) != magic) {
        return {std::nullopt, "token record has an unknown format"};
    }
    const char version = record[3];
    if (version == version_plain) {
        return {std::string(record.substr(header_size)), {}};
    }
    if (version != version_gcm) {
        return {std::nullopt,
                "token record has format version " +
                    std::to_string(static_cast<unsigned char>(version)) +
                    ", which this billsync does not know (written by a newer version?)"};
    }
    if (key == nullptr) {
        return {std::nullopt,
                "tokens are sealed but no [daemon] secrets_key is configured; set the key they "
                "were sealed with"};
    }
    constexpr std::size_t fixed = header_size + key_id_size + nonce_size + tag_size;
    if (record.size() < fixed) {
        return {std::nullopt, "token record is truncated"};
    }
    if (!util::constant_time_equal(record.substr(header_size, key_id_size), key->id())) {
        return {std::nullopt,
                "tokens were sealed with a different secrets_key; restore that key, or run "
                "`billsync connect` again to replace them"};
    }
    const std::string_view nonce = record.substr(header_size + key_id_size, nonce_size);
    const std::string_view ct =
        record.substr(header_size + key_id_size + nonce_size, record.size() - fixed);
    std::string tag(record.substr(record.size() - tag_size));

    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    std::string pt(ct.size(), '\0');
    auto* pt_out = reinterpret_cast<unsigned char*>(pt.data());
    int len = 0;
    int fin = 0;
    const bool ok =
        ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(
            ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce_size), nullptr) == 1 &&
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key->bytes().data(), bytes(nonce)) == 1 &&
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) ==
            1 &&
        EVP_DecryptUpdate(ctx.get(), pt_out, &len, bytes(ct), static_cast<int>(ct.size())) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx.get(),
                            EVP_CTRL_GCM_SET_TAG,
                            static_cast<int>(tag_size),
                            reinterpret_cast<unsigned char*>(tag.data())) == 1 &&
        EVP_DecryptFinal_ex(ctx.get(), pt_out + len, &fin) == 1;
    if (!ok) {
        return {std::nullopt,
                "token record failed authentication (damaged, tampered with, or moved from "
                "another key name)"};
    }
    return {std::move(pt), {}};
}

std::string check_data_dir_private(const std::filesystem::path& dir) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) {
        return {};  // created later with private permissions by whoever creates it
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777U));
        return "data_dir " + dir.string() + " is accessible by group or others (mode " + mode +
               ") and OAuth2 tokens are stored unsealed because no [daemon] secrets_key is set; "
               "run `chmod 700 " +
               dir.string() + "` or set secrets_key";
    }
    return {};
}

token_store::token_store(state::store& store, std::optional<sealing_key> key)
    : store_(store), key_(std::move(key)) {}

state::result<std::optional<std::string>> token_store::get(std::string_view key) const {
    auto raw = state::get_token(store_, key);
    if (!raw.ok() || !raw.value) {
        return raw;
    }
    const auto& record = *raw.value;
    if (key_ && record.size() >= header_size && record.substr(0, 3) == magic &&
        record[3] == version_plain) {
        // reseal_plain() sealed every unsealed row at start-up; this one came later.
        return state::result<std::optional<std::string>>::failure(state::status::failure(
            "token '" + std::string(key) +
            "': the record is unsealed although [daemon] secrets_key is set; it was not written "
            "by this billsync (restart to seal rows written before the key was set, or run "
            "`billsync connect` again)"));
    }
    auto opened = open_record(key_ ? &*key_ : nullptr, key, record);
    if (!opened.value) {
        return state::result<std::optional<std::string>>::failure(
            state::status::failure("token '" + std::string(key) + "': " + opened.error));
    }
    return {state::status::success(), std::move(opened.value)};
}

state::result<std::size_t> token_store::reseal_plain() {
    if (!key_) {
        return {state::status::success(), 0};
    }
    state::batch b(store_);
    std::size_t sealed = 0;
    auto st = store_.for_each(state::cf::tokens, "", [&](std::string_view k, std::string_view v) {
        if (v.size() >= header_size && v.substr(0, 3) == magic && v[3] == version_plain) {
            state::put_token(b, k, seal(*key_, k, v.substr(header_size)));
            ++sealed;
        }
        return true;
    });
    if (st.ok && sealed > 0) {
        st = store_.write(b, true);
    }
    if (!st.ok) {
        return state::result<std::size_t>::failure(std::move(st));
    }
    return {state::status::success(), sealed};
}

void token_store::put(state::batch& b, std::string_view key, std::string_view value) const {
    state::put_token(b, key, key_ ? seal(*key_, key, value) : wrap_plain(value));
}

void token_store::del(state::batch& b, std::string_view key) const { state::delete_token(b, key); }

state::status token_store::put_synced(std::string_view key, std::string_view value) {
    state::batch b(store_);
    put(b, key, value);
    return store_.write(b, true);
}

state::result<std::vector<std::string>> token_store::keys(std::string_view prefix) const {
    std::vector<std::string> out;
    auto st = store_.for_each(state::cf::tokens, prefix, [&](std::string_view k, std::string_view) {
        out.emplace_back(k);
        return true;
    });
    return {std::move(st), std::move(out)};
}

}  // namespace billsync::connectors
