// The Karbon signature (one function, vectors computed independently) and the payload parser.

#include "connectors/karbon/karbon_webhook.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace billsync::connectors::karbon {
namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(BILLSYNC_SOURCE_DIR) + "/connectors/karbon/fixtures/" + name,
                     std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

constexpr std::string_view key = "sim-signing-key-0123456789";
// hex(HMAC-SHA256(key, bytes of fixtures/webhook_work_updated.json)), computed with Python's hmac.
constexpr std::string_view work_updated_signature =
    "abb66d6336008c89eb758d31b4c17471552e19b78bce91d44407965e06476d35";

TEST(karbon_signature, matches_the_published_hmac_sha256_vector) {
    EXPECT_EQ(sign("key", "The quick brown fox jumps over the lazy dog"),
              "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

TEST(karbon_signature, covers_the_raw_body_bytes) {
    const auto body = fixture("webhook_work_updated.json");
    EXPECT_EQ(sign(key, body), work_updated_signature);
    EXPECT_EQ(verify_signature(key, body, work_updated_signature), signature_check::ok);
    // Upper-case hex and surrounding spaces are the same signature.
    std::string upper(work_updated_signature);
    for (auto& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    EXPECT_EQ(verify_signature(key, body, " " + upper + " "), signature_check::ok);
}

TEST(karbon_signature, anything_else_is_refused) {
    const auto body = fixture("webhook_work_updated.json");
    EXPECT_EQ(verify_signature(key, body, ""), signature_check::missing);
    EXPECT_EQ(verify_signature(key, body + " ", work_updated_signature), signature_check::mismatch);
    EXPECT_EQ(verify_signature("another-signing-key-xyz", body, work_updated_signature),
              signature_check::mismatch);
    EXPECT_EQ(verify_signature(key, body, std::string(work_updated_signature).substr(0, 63)),
              signature_check::mismatch);
    EXPECT_EQ(verify_signature("", body, work_updated_signature),
              signature_check::no_key_configured);
}

TEST(karbon_signature, signing_keys_follow_karbons_rule) {
    EXPECT_EQ(signing_key_problem("abcdefghijklmnop"), "");
    EXPECT_EQ(signing_key_problem("abc-DEF_0123456789"), "");
    EXPECT_NE(signing_key_problem("short-key"), "");
    EXPECT_NE(signing_key_problem("has spaces in the key"), "");
    EXPECT_NE(signing_key_problem("has/slash/0123456789"), "");
}

TEST(karbon_webhook, parses_the_recorded_payloads) {
    const auto w = parse_webhook(fixture("webhook_work_updated.json"));
    ASSERT_TRUE(w.ok()) << w.error;
    EXPECT_EQ(w.value->key, "4ndQ2tSh7yPk");
    EXPECT_EQ(w.value->resource_type, "Work");
    EXPECT_EQ(w.value->action_type, "Updated");
    EXPECT_EQ(util::format_rfc3339(w.value->timestamp), "2026-01-05T15:04:05Z");
    const auto c = parse_webhook(fixture("webhook_contact_deleted.json"));
    ASSERT_TRUE(c.ok()) << c.error;
    EXPECT_EQ(c.value->action_type, "Deleted");
}

TEST(karbon_webhook, refuses_malformed_bodies_naming_the_field) {
    EXPECT_FALSE(parse_webhook("").ok());
    EXPECT_FALSE(parse_webhook("[]").ok());
    const auto no_key = parse_webhook(
        R"({"ResourceType":"Work","ActionType":"Updated","TimeStamp":"2026-01-05T15:04:05Z"})");
    EXPECT_NE(no_key.error.find("ResourcePermaKey"), std::string::npos) << no_key.error;
    const auto bad_time = parse_webhook(
        R"({"ResourcePermaKey":"k","ResourceType":"Work","ActionType":"Updated","TimeStamp":"yesterday"})");
    EXPECT_NE(bad_time.error.find("TimeStamp"), std::string::npos) << bad_time.error;
    EXPECT_FALSE(parse_webhook(std::string(10'000, '[')).ok());
}

TEST(karbon_webhook, resource_types_map_to_their_webhook_type) {
    EXPECT_EQ(webhook_type_of("Work"), "Work");
    EXPECT_EQ(webhook_type_of("Contact"), "Contact");
    EXPECT_EQ(webhook_type_of("NoteComment"), "Note");
    EXPECT_EQ(webhook_type_of("Estimate"), "EstimateSummary");
    EXPECT_EQ(webhook_type_of("CustomFieldValue"), "CustomField");
    EXPECT_EQ(webhook_type_of("Spaceship"), "");
}

}  // namespace
}  // namespace billsync::connectors::karbon
