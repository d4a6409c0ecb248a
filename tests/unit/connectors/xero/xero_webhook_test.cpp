// x-xero-signature on the raw body and the thin-event parser. The vectors were computed with an
// independent tool over the fixture files as stored (shared/vendors/xero.md, "Signature"):
//   openssl dgst -sha256 -hmac "$KEY" -binary < fixture | base64
#include "connectors/xero/xero_webhook.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "util/crypto.hpp"

namespace billsync::connectors::xero {
namespace {

constexpr std::string_view key = "Xw0N4ctbVE/xFAKE+KEY/looksLikeBase64==";

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(BILLSYNC_SOURCE_DIR) + "/connectors/xero/fixtures/" + name,
                     std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(xero_signature, computed_vectors_match) {
    EXPECT_EQ(verify_signature(key,
                               fixture("webhook_contact_update.json"),
                               "FBLorAsdj/WOxtYM9RZA2P9PmIFbVL+ezdhKbyEsYoA="),
              signature_check::ok);
    EXPECT_EQ(verify_signature(key,
                               fixture("webhook_intent_to_receive.json"),
                               "amMEy3MJRKHwe8YCxfsywVzwAOhHUL8jli/u3vAlOIc="),
              signature_check::ok);
    EXPECT_EQ(sign(key, fixture("webhook_intent_to_receive.json")),
              "amMEy3MJRKHwe8YCxfsywVzwAOhHUL8jli/u3vAlOIc=");
}

TEST(xero_signature, intent_to_receive_one_character_off_is_refused) {
    const auto body = fixture("webhook_intent_to_receive.json");
    std::string wrong = "amMEy3MJRKHwe8YCxfsywVzwAOhHUL8jli/u3vAlOIc=";
    for (std::size_t i = 0; i < wrong.size(); ++i) {
        auto w = wrong;
        w[i] = w[i] == 'x' ? 'y' : 'x';
        EXPECT_EQ(verify_signature(key, body, w), signature_check::mismatch) << i;
    }
    // No lenience: whitespace, missing padding, the unpadded or url-safe spelling.
    EXPECT_EQ(verify_signature(key, body, wrong + " "), signature_check::mismatch);
    EXPECT_EQ(verify_signature(key, body, wrong.substr(0, wrong.size() - 1)),
              signature_check::mismatch);
}

TEST(xero_signature, the_raw_body_is_signed_not_a_reserialisation) {
    auto body = fixture("webhook_contact_update.json");
    body.pop_back();  // the trailing newline is part of what was signed
    EXPECT_EQ(verify_signature(key, body, "FBLorAsdj/WOxtYM9RZA2P9PmIFbVL+ezdhKbyEsYoA="),
              signature_check::mismatch);
}

TEST(xero_signature, the_key_is_used_as_its_literal_bytes) {
    // A key that is valid base64 (as Xero's look): decoding it first gives another MAC.
    constexpr std::string_view b64_key = "c2ltLXhlcm8td2ViaG9vay1rZXktMDEyMzQ1Njc4OQ==";
    const auto body = fixture("webhook_intent_to_receive.json");
    const auto decoded = util::base64_decode(b64_key);
    ASSERT_TRUE(decoded);
    const auto wrong = util::base64_encode(util::hmac_sha256(*decoded, body));
    EXPECT_EQ(verify_signature(b64_key, body, wrong), signature_check::mismatch);
    EXPECT_EQ(verify_signature(b64_key, body, sign(b64_key, body)), signature_check::ok);
}

TEST(xero_signature, missing_header_or_key) {
    EXPECT_EQ(verify_signature(key, "{}", ""), signature_check::missing_signature);
    EXPECT_EQ(verify_signature("", "{}", sign("", "{}")), signature_check::no_webhook_key);
}

TEST(xero_webhook_parse, thin_events) {
    const auto p = parse_webhook(fixture("webhook_contact_update.json"));
    ASSERT_TRUE(p.ok()) << p.error;
    ASSERT_EQ(p.events.size(), 1u);
    EXPECT_EQ(p.events[0].category, "CONTACT");
    EXPECT_EQ(p.events[0].type, "UPDATE");
    EXPECT_EQ(p.events[0].resource_id, "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777");
    EXPECT_EQ(p.events[0].tenant_id, "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f");
    EXPECT_TRUE(p.events[0].tenant_known);
}

TEST(xero_webhook_parse, intent_to_receive_has_no_events_and_is_fine) {
    const auto p = parse_webhook(fixture("webhook_intent_to_receive.json"));
    EXPECT_TRUE(p.ok()) << p.error;
    EXPECT_TRUE(p.events.empty());
}

TEST(xero_webhook_parse, other_tenants_are_flagged_and_broken_elements_skipped) {
    const auto p = parse_webhook(
        R"({"events":[{"resourceId":"a","eventCategory":"INVOICE","tenantId":"other"},
                      {"eventCategory":"INVOICE","tenantId":"t"},
                      7,
                      {"resourceId":"b","eventCategory":"INVOICE","tenantId":"t"}]})",
        {"t"});
    ASSERT_TRUE(p.ok()) << p.error;
    ASSERT_EQ(p.events.size(), 2u);
    EXPECT_FALSE(p.events[0].tenant_known);
    EXPECT_TRUE(p.events[1].tenant_known);
    EXPECT_EQ(p.problems.size(), 2u);
}

TEST(xero_webhook_parse, unusable_bodies) {
    EXPECT_FALSE(parse_webhook("not json").ok());
    EXPECT_FALSE(parse_webhook(R"({"entropy":"x"})").ok());
    EXPECT_FALSE(parse_webhook(R"({"events":{}})").ok());
    EXPECT_FALSE(parse_webhook(std::string(10'000, '[')).ok());
    webhook_limits small;
    small.max_events = 1;
    EXPECT_FALSE(parse_webhook(R"({"events":[{},{}]})", {}, small).ok());
}

}  // namespace
}  // namespace billsync::connectors::xero
