#include "connectors/runtime/token_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/oauth2_test_support.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors {
namespace {

using oauth2_test::test_key;
using oauth2_test::test_key_base64;

sealing_key other_key() {
    std::string error;
    auto k = parse_secrets_key(std::string(64, 'a'), error);
    EXPECT_TRUE(k) << error;
    return *k;
}

TEST(secrets_key, accepts_base64_and_hex_of_32_bytes) {
    std::string error;
    auto b64 = parse_secrets_key(test_key_base64(), error);
    ASSERT_TRUE(b64) << error;
    std::string raw(reinterpret_cast<const char*>(b64->bytes().data()), 32);
    auto hex = parse_secrets_key(util::hex_encode(raw), error);
    ASSERT_TRUE(hex) << error;
    EXPECT_EQ(hex->bytes(), b64->bytes());
    // URL-safe, unpadded, surrounded by a newline from a file.
    std::string url = test_key_base64();
    for (auto& c : url) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    while (url.back() == '=') {
        url.pop_back();
    }
    auto u = parse_secrets_key(url + "\n", error);
    ASSERT_TRUE(u) << error;
    EXPECT_EQ(u->bytes(), b64->bytes());
}

TEST(secrets_key, rejects_anything_else_without_echoing_it) {
    for (const std::string& bad :
         std::vector<std::string>{"",
                                  "key-material-123",
                                  std::string(62, 'a'),
                                  util::base64_encode(std::string(31, 'x')),
                                  util::base64_encode(std::string(33, 'x')),
                                  std::string(64, 'g')}) {
        std::string error;
        EXPECT_FALSE(parse_secrets_key(bad, error)) << bad;
        EXPECT_NE(error.find("32"), std::string::npos);
        if (bad.size() > 4) {
            EXPECT_EQ(error.find(bad), std::string::npos);
        }
    }
    std::string error;
    EXPECT_TRUE(parse_secrets_key(generate_secrets_key_base64(), error));
}

TEST(sealing, round_trip_uses_a_fresh_nonce_and_hides_the_plaintext) {
    const auto key = test_key();
    const std::string secret = R"({"refresh_token":"rt-very-secret-value"})";
    const auto a = seal(key, "oauth2/qbo/1", secret);
    const auto b = seal(key, "oauth2/qbo/1", secret);
    EXPECT_NE(a, b);
    EXPECT_EQ(a.find("rt-very-secret-value"), std::string::npos);
    EXPECT_EQ(a.substr(0, 4), std::string("BST\x01", 4));
    auto opened = open_record(&key, "oauth2/qbo/1", a);
    ASSERT_TRUE(opened.value) << opened.error;
    EXPECT_EQ(*opened.value, secret);
    EXPECT_EQ(*open_record(&key, "oauth2/qbo/1", b).value, secret);
    EXPECT_EQ(*open_record(&key, "k", seal(key, "k", "")).value, "");
}

TEST(sealing, wrong_key_is_a_clear_error) {
    const auto record = seal(test_key(), "oauth2/xero/t", "payload");
    const auto k2 = other_key();
    auto opened = open_record(&k2, "oauth2/xero/t", record);
    EXPECT_FALSE(opened.value);
    EXPECT_NE(opened.error.find("sealed with a different secrets_key"), std::string::npos);
    auto nokey = open_record(nullptr, "oauth2/xero/t", record);
    EXPECT_FALSE(nokey.value);
    EXPECT_NE(nokey.error.find("no [daemon] secrets_key"), std::string::npos);
}

TEST(sealing, tampered_ciphertext_tag_or_nonce_fails_authentication) {
    const auto key = test_key();
    const auto record = seal(key, "oauth2/qbo/1", "the refresh token");
    for (std::size_t pos : {std::size_t{12}, std::size_t{24}, std::size_t{30}, record.size() - 1}) {
        auto bad = record;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
        auto opened = open_record(&key, "oauth2/qbo/1", bad);
        EXPECT_FALSE(opened.value) << pos;
        EXPECT_NE(opened.error.find("failed authentication"), std::string::npos) << opened.error;
    }
    EXPECT_FALSE(open_record(&key, "oauth2/qbo/1", record.substr(0, 30)).value);
    EXPECT_FALSE(open_record(&key, "oauth2/qbo/1", "garbage").value);
    auto future = record;
    future[3] = '\x07';
    EXPECT_NE(open_record(&key, "oauth2/qbo/1", future).error.find("version 7"), std::string::npos);
}

TEST(sealing, aad_binds_the_record_to_its_key_name) {
    const auto key = test_key();
    const auto record = seal(key, "oauth2/qbo/1", "tokens of realm 1");
    auto moved = open_record(&key, "oauth2/qbo/2", record);
    EXPECT_FALSE(moved.value);
    EXPECT_NE(moved.error.find("failed authentication"), std::string::npos);
}

TEST(token_store, seals_in_the_state_store_and_reports_a_key_change) {
    testing::temp_dir dir;
    auto opened = state::store::open(dir / "state");
    ASSERT_TRUE(opened.ok()) << opened.st.message;
    auto& db = *opened.value;
    token_store sealed(db, test_key());
    ASSERT_TRUE(sealed.put_synced("oauth2/qbo/1", "rt-plain-text-1"));
    auto raw = state::get_token(db, "oauth2/qbo/1");
    ASSERT_TRUE(raw.ok() && raw.value);
    EXPECT_EQ(raw.value->find("rt-plain-text-1"), std::string::npos);
    auto got = sealed.get("oauth2/qbo/1");
    ASSERT_TRUE(got.ok()) << got.st.message;
    EXPECT_EQ(*got.value, "rt-plain-text-1");
    EXPECT_FALSE(sealed.get("oauth2/qbo/absent").value);

    token_store wrong(db, other_key());
    auto bad = wrong.get("oauth2/qbo/1");
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.st.message.find("different secrets_key"), std::string::npos);

    // Without a key: stored unsealed (sealed at the next start with a key: see below).
    token_store plain(db, std::nullopt);
    ASSERT_TRUE(plain.put_synced("oauth2/xero/t", "rt-plain-text-2"));
    EXPECT_EQ(*state::get_token(db, "oauth2/xero/t").value,
              std::string("BST\0rt-plain-text-2", 19));
    auto keys = sealed.keys("oauth2/");
    ASSERT_TRUE(keys.ok());
    EXPECT_EQ(keys.value.size(), 2u);
}

TEST(token_store, unsealed_records_are_sealed_at_start_and_refused_afterwards_when_a_key_is_set) {
    testing::temp_dir dir;
    auto opened = state::store::open(dir / "state");
    ASSERT_TRUE(opened.ok()) << opened.st.message;
    auto& db = *opened.value;
    // Written before secrets_key was set.
    token_store plain(db, std::nullopt);
    ASSERT_TRUE(plain.put_synced("oauth2/xero/t", "rt-plain-text-2"));
    ASSERT_TRUE(plain.put_synced("oauth2/qbo/1", "rt-plain-text-3"));
    EXPECT_EQ(plain.reseal_plain().value, 0u);  // nothing to seal with

    // A key is set: start-up seals both rows, in place.
    token_store sealed(db, test_key());
    auto n = sealed.reseal_plain();
    ASSERT_TRUE(n.ok()) << n.st.message;
    EXPECT_EQ(n.value, 2u);
    for (const auto* k : {"oauth2/xero/t", "oauth2/qbo/1"}) {
        auto raw = state::get_token(db, k);
        ASSERT_TRUE(raw.ok() && raw.value);
        EXPECT_EQ(raw.value->find("rt-plain-text"), std::string::npos) << k;
        EXPECT_EQ((*raw.value)[3], '\x01') << k;
    }
    EXPECT_EQ(*sealed.get("oauth2/xero/t").value, "rt-plain-text-2");
    EXPECT_EQ(*sealed.get("oauth2/qbo/1").value, "rt-plain-text-3");
    EXPECT_EQ(sealed.reseal_plain().value, 0u);

    // An unsealed record that appears later (planted, or written by a process without the key)
    // is refused, not trusted.
    state::batch b(db);
    state::put_token(b, "oauth2/qbo/1", wrap_plain("rt-attacker"));
    ASSERT_TRUE(db.write(b, true));
    auto got = sealed.get("oauth2/qbo/1");
    EXPECT_FALSE(got.ok());
    EXPECT_NE(got.st.message.find("unsealed although [daemon] secrets_key is set"),
              std::string::npos)
        << got.st.message;
    EXPECT_EQ(got.st.message.find("rt-attacker"), std::string::npos);
}

TEST(data_dir, must_be_private_when_tokens_are_unsealed) {
    testing::temp_dir dir;
    const auto p = dir / "data";
    EXPECT_EQ(check_data_dir_private(p), "");  // not there yet
    std::filesystem::create_directories(p);
    ::chmod(p.c_str(), 0700);
    EXPECT_EQ(check_data_dir_private(p), "");
    ::chmod(p.c_str(), 0750);
    const auto err = check_data_dir_private(p);
    EXPECT_NE(err.find("0750"), std::string::npos) << err;
    EXPECT_NE(err.find("chmod 700"), std::string::npos);
    ::chmod(p.c_str(), 0705);
    EXPECT_NE(check_data_dir_private(p), "");
}

}  // namespace
}  // namespace billsync::connectors
