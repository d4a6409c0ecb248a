#pragma once

// OAuth2 tokens at rest. Tokens live in the state store's `tokens` column family, never in the
// configuration. With a key from `[daemon] secrets_key` every value is sealed with AES-256-GCM
// (a fresh random 96-bit nonce per write, the row's key name as additional authenticated data);
// without one, values are stored unsealed and the daemon insists on a private data directory.
//
// Record format (versioned; the first four bytes say which):
//   "BST" 0x00 | plaintext                                          unsealed
//   "BST" 0x01 | key id (8) | nonce (12) | ciphertext | tag (16)    AES-256-GCM
// The key id (the first 8 bytes of HMAC-SHA256(key, "billsync secrets_key id")) tells a wrong
// key ("sealed with a different secrets_key") apart from a damaged or moved record (tag
// failure), and never yields garbage: nothing is returned unless the tag verifies.

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "state/store.hpp"

namespace billsync::connectors {

// A 32-byte AES-256 key. Never printed.
class sealing_key {
public:
    static constexpr std::size_t size = 32;
    explicit sealing_key(const std::array<unsigned char, size>& bytes) : bytes_(bytes) {}
    const std::array<unsigned char, size>& bytes() const noexcept { return bytes_; }
    // 8 bytes identifying the key without revealing it.
    std::string id() const;

private:
    std::array<unsigned char, size> bytes_;
};

// Parses `[daemon] secrets_key`: base64 (standard or URL-safe, padding optional) or hex of
// exactly 32 bytes, surrounding whitespace ignored. Anything else: nullopt and `error` set to a
// message that never contains the value.
std::optional<sealing_key> parse_secrets_key(std::string_view text, std::string& error);

// A fresh random key, base64 (for docs, tests and `billsync` to suggest one).
std::string generate_secrets_key_base64();

// Seals `plaintext` for the row `aad` (the token key name). Throws std::runtime_error only if
// OpenSSL itself fails (it does not for valid inputs).
std::string seal(const sealing_key& key, std::string_view aad, std::string_view plaintext);
// The unsealed record format.
std::string wrap_plain(std::string_view plaintext);

struct open_result {
    std::optional<std::string> value;  // set on success
    std::string error;                 // set on failure; safe to log
};
// Opens a record written by seal() or wrap_plain(). `key` may be null (no secrets_key).
open_result open_record(const sealing_key* key, std::string_view aad, std::string_view record);

// Returns an error message when the directory is readable, writable or searchable by group or
// others (and empty when it is private, or does not exist yet). For the daemon to call at start
// when no secrets_key is configured, since tokens are then stored unsealed.
std::string check_data_dir_private(const std::filesystem::path& dir);

// Token rows of the state store, sealed when a key is given. Thread-safe (the store is).
class token_store {
public:
    token_store(state::store& store, std::optional<sealing_key> key);

    bool sealing() const noexcept { return key_.has_value(); }
    state::store& store() noexcept { return store_; }

    // With a key: seals every unsealed (format 0) record in place, in one synced batch, and
    // returns how many it sealed. Run once at start-up, before anything reads a token: rows
    // written before `secrets_key` was set are migrated, and from then on get() refuses an
    // unsealed record (one that appears later was not written by this billsync). Without a key:
    // nothing to do, 0.
    state::result<std::size_t> reseal_plain();

    // nullopt value when the row is absent; a failed status for I/O errors and for records that
    // cannot be opened (wrong key, tampering, sealed but no key, unsealed while a key is set).
    state::result<std::optional<std::string>> get(std::string_view key) const;
    // Adds the (sealed) row to b.
    void put(state::batch& b, std::string_view key, std::string_view value) const;
    void del(state::batch& b, std::string_view key) const;
    // put() + a synced write: durable before it returns.
    state::status put_synced(std::string_view key, std::string_view value);

    // Keys of all token rows starting with prefix.
    state::result<std::vector<std::string>> keys(std::string_view prefix) const;

private:
    state::store& store_;
    std::optional<sealing_key> key_;
};

}  // namespace billsync::connectors
