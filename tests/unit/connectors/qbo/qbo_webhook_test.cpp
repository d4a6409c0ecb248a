// QBO webhook signature (official vector) and both payload formats.
#include "connectors/qbo/qbo_webhook.hpp"

#include <gtest/gtest.h>

#include <set>

#include "tests/unit/connectors/qbo/fixture.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::qbo {
namespace {

using billsync::testing::qbo_fixture;

// Java SDK WebhooksServiceTest.java, as quoted in shared/vendors/qbo.md.
constexpr std::string_view official_token = "b5771f19b12ddb4bcdb9f08bdc50bc63878a";
constexpr std::string_view official_payload =
    R"({"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]})";
constexpr std::string_view official_signature = "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q=";

std::string sign(std::string_view token, std::string_view body) {
    return util::base64_encode(util::hmac_sha256(token, body));
}

TEST(qbo_signature, official_vector_passes) {
    EXPECT_EQ(verify_signature(official_token, official_payload, official_signature),
              signature_check::ok);
    // The stored fixture holds the same bytes (no trailing newline).
    EXPECT_EQ(qbo_fixture("webhook_classic_official.json"), official_payload);
    EXPECT_EQ(
        verify_signature(official_token, official_payload, "  " + std::string(official_signature)),
        signature_check::ok);
}

TEST(qbo_signature, official_negative_and_forgeries_fail) {
    EXPECT_EQ(verify_signature(official_token, official_payload, "1234"),
              signature_check::mismatch);
    // Right MAC over a tampered body.
    std::string tampered(official_payload);
    tampered.replace(tampered.find("\"id\":\"1\""), 8, "\"id\":\"2\"");
    EXPECT_EQ(verify_signature(official_token, tampered, official_signature),
              signature_check::mismatch);
    // Signed with another token.
    EXPECT_EQ(verify_signature(official_token, official_payload, sign("other", official_payload)),
              signature_check::mismatch);
    // Re-serialised JSON (a space added) no longer verifies.
    std::string spaced(official_payload);
    spaced.insert(1, " ");
    EXPECT_EQ(verify_signature(official_token, spaced, official_signature),
              signature_check::mismatch);
    // Hex of the right MAC is not accepted: Intuit sends base64.
    EXPECT_NE(
        verify_signature(official_token,
                         official_payload,
                         util::hex_encode(util::hmac_sha256(official_token, official_payload))),
        signature_check::ok);
    EXPECT_EQ(verify_signature(official_token, official_payload, "!!!!"),
              signature_check::malformed);
    EXPECT_EQ(verify_signature(official_token, official_payload, std::string(4096, 'A')),
              signature_check::malformed);
}

TEST(qbo_signature, missing_header_or_token) {
    EXPECT_EQ(verify_signature(official_token, official_payload, ""),
              signature_check::missing_signature);
    EXPECT_EQ(verify_signature(official_token, official_payload, "   "),
              signature_check::missing_signature);
    EXPECT_EQ(verify_signature("", official_payload, official_signature),
              signature_check::no_verifier_token);
    EXPECT_EQ(to_string(signature_check::mismatch), "signature mismatch");
}

TEST(qbo_webhook, classic_official_payload) {
    const auto r = parse_webhook(official_payload, {"1185883450"});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.format, webhook_format::classic);
    ASSERT_EQ(r.events.size(), 1U);
    const auto& e = r.events[0];
    EXPECT_EQ(e.realm_id, "1185883450");
    EXPECT_EQ(e.entity_name, "Customer");
    EXPECT_EQ(e.entity_id, "1");
    EXPECT_EQ(e.op, operation::created);
    EXPECT_EQ(e.operation_text, "Create");
    EXPECT_EQ(e.last_updated, mappings::parse_timestamp("2015-10-05T21:42:19Z"));
    EXPECT_FALSE(e.event_id);
    EXPECT_TRUE(e.realm_known);
    EXPECT_TRUE(e.entity_known);
    EXPECT_EQ(e.dedup_key, "qbo:classic:1185883450:Customer:1:Create:2015-10-05T21:42:19.000000Z");
    EXPECT_TRUE(r.problems.empty());
}

TEST(qbo_webhook, classic_with_several_realms_and_entities) {
    const auto r = parse_webhook(qbo_fixture("webhook_classic_multi.json"), {"1185883450"});
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 6U);
    EXPECT_EQ(r.events[1].op, operation::emailed);
    EXPECT_EQ(r.events[3].op, operation::voided);
    EXPECT_EQ(r.events[4].op, operation::merged);
    EXPECT_EQ(r.events[4].deleted_id, "76");
    const auto& other = r.events[5];
    EXPECT_EQ(other.realm_id, "4620816365");
    EXPECT_FALSE(other.realm_known);   // not a configured realm: flagged, kept
    EXPECT_FALSE(other.entity_known);  // Estimate is not mapped: flagged, kept
    EXPECT_EQ(other.entity_name, "Estimate");
    std::set<std::string> keys;
    for (const auto& e : r.events) {
        keys.insert(e.dedup_key);
    }
    EXPECT_EQ(keys.size(), r.events.size());  // same invoice, different operations: distinct
}

TEST(qbo_webhook, cloudevents_array) {
    const auto r = parse_webhook(qbo_fixture("webhook_cloudevents.json"), {"1185883450"});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.format, webhook_format::cloudevents);
    ASSERT_EQ(r.events.size(), 4U);
    const auto& e = r.events[0];
    EXPECT_EQ(e.realm_id, "1185883450");
    EXPECT_EQ(e.entity_name, "Invoice");
    EXPECT_EQ(e.entity_id, "130");
    EXPECT_EQ(e.op, operation::created);
    EXPECT_EQ(e.event_id, "88cd52aa-33b6-4351-9aa4-47572edbd068");
    EXPECT_EQ(e.dedup_key, "qbo:ce:88cd52aa-33b6-4351-9aa4-47572edbd068");
    ASSERT_TRUE(e.last_updated);
    EXPECT_EQ(mappings::format_timestamp(*e.last_updated), "2026-01-02T17:15:04.179851Z");
    EXPECT_EQ(r.events[1].entity_name, "Payment");
    EXPECT_EQ(r.events[1].op, operation::updated);
    EXPECT_EQ(r.events[2].op, operation::voided);
    EXPECT_FALSE(r.events[2].realm_known);
    EXPECT_EQ(r.events[3].entity_name, "Account");
    EXPECT_FALSE(r.events[3].entity_known);
    EXPECT_FALSE(r.events[3].realm_known);
}

TEST(qbo_webhook, dedup_keys_are_stable_across_redeliveries_and_spellings) {
    const auto a = parse_webhook(qbo_fixture("webhook_cloudevents.json"));
    const auto b = parse_webhook(qbo_fixture("webhook_cloudevents.json"));
    ASSERT_EQ(a.events.size(), b.events.size());
    for (std::size_t i = 0; i < a.events.size(); ++i) {
        EXPECT_EQ(a.events[i].dedup_key, b.events[i].dedup_key);
    }
    // The same classic instant written two ways is one event.
    const auto x = parse_webhook(official_payload);
    std::string colon(official_payload);
    colon.replace(colon.find("-0700"), 5, "-07:00");
    const auto y = parse_webhook(colon);
    ASSERT_EQ(x.events.size(), 1U);
    ASSERT_EQ(y.events.size(), 1U);
    EXPECT_EQ(x.events[0].dedup_key, y.events[0].dedup_key);
    // Separators inside values cannot forge another event's key.
    const auto forged = parse_webhook(
        R"({"eventNotifications":[{"realmId":"1:Customer","dataChangeEvent":{"entities":[
            {"name":"1:Create","id":"7","operation":"x"}]}}]})");
    ASSERT_EQ(forged.events.size(), 1U);
    EXPECT_NE(forged.events[0].dedup_key.find("1%3ACustomer"), std::string::npos);
}

TEST(qbo_webhook, every_realm_is_known_when_none_is_configured) {
    const auto r = parse_webhook(qbo_fixture("webhook_cloudevents.json"));
    for (const auto& e : r.events) {
        EXPECT_TRUE(e.realm_known);
    }
}

TEST(qbo_webhook, incomplete_elements_are_skipped_with_a_reason) {
    const auto r = parse_webhook(R"([
        {"id":"a","type":"qbo.invoice.updated.v1","intuitentityid":"1","intuitaccountid":"9"},
        {"type":"qbo.invoice.updated.v1","intuitentityid":"2","intuitaccountid":"9"},
        {"id":"c","type":"xero.invoice.updated","intuitentityid":"3","intuitaccountid":"9"},
        {"id":"d","type":"qbo.invoice.frobbed.v1","intuitentityid":"4","intuitaccountid":"9",
         "time":"yesterday"},
        42,
        {"id":"e","type":"qbo.invoice.updated.v1","intuitentityid":{"x":1},"intuitaccountid":"9"}
    ])");
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 2U);
    EXPECT_EQ(r.events[0].event_id, "a");
    EXPECT_FALSE(r.events[0].last_updated);
    EXPECT_EQ(r.events[1].event_id, "d");
    EXPECT_EQ(r.events[1].op, operation::unknown);
    EXPECT_EQ(r.events[1].operation_text, "frobbed");
    EXPECT_EQ(r.problems.size(), 5U);  // [1] no id, [2] type, [3] time kept, [4], [5]
    const auto classic = parse_webhook(
        R"({"eventNotifications":[{"dataChangeEvent":{"entities":[]}},{"realmId":"1"},
            {"realmId":"1","dataChangeEvent":{"entities":[{"name":"Invoice"}]}}]})");
    ASSERT_TRUE(classic.ok());
    EXPECT_TRUE(classic.events.empty());
    EXPECT_EQ(classic.problems.size(), 3U);
}

// Issue 18 item 17: an entity id goes into a request path, so only QBO's own shape (digits) is
// accepted.
TEST(qbo_webhook, entity_ids_that_are_not_digits_are_dropped) {
    const auto r = parse_webhook(R"([
        {"id":"a","type":"qbo.invoice.updated.v1","intuitentityid":"130","intuitaccountid":"9"},
        {"id":"b","type":"qbo.invoice.updated.v1","intuitentityid":"1/../2","intuitaccountid":"9"},
        {"id":"c","type":"qbo.invoice.updated.v1","intuitentityid":"1?x=2","intuitaccountid":"9"},
        {"id":"d","type":"qbo.invoice.updated.v1","intuitentityid":"-5","intuitaccountid":"9"},
        {"id":"e","type":"qbo.invoice.updated.v1","intuitentityid":"","intuitaccountid":"9"}
    ])");
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].entity_id, "130");
    EXPECT_GE(r.problems.size(), 3U);
    const auto classic = parse_webhook(
        R"({"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[
            {"name":"Invoice","id":"%2e%2e","operation":"Update"},
            {"name":"Invoice","id":"42","operation":"Update"}]}}]})");
    ASSERT_TRUE(classic.ok()) << classic.error;
    ASSERT_EQ(classic.events.size(), 1U);
    EXPECT_EQ(classic.events[0].entity_id, "42");
}

TEST(qbo_webhook, malformed_and_hostile_bodies_are_clear_errors) {
    for (const std::string_view body : {std::string_view(""),
                                        std::string_view("   "),
                                        std::string_view("null"),
                                        std::string_view("\"eventNotifications\""),
                                        std::string_view("{\"eventNotifications\":"),
                                        std::string_view("{\"eventNotifications\":{}}"),
                                        std::string_view("{}"),
                                        std::string_view("[1,2,"),
                                        std::string_view("{\"a\":1}garbage")}) {
        const auto r = parse_webhook(body);
        EXPECT_FALSE(r.ok()) << body;
        EXPECT_FALSE(r.error.empty()) << body;
        EXPECT_TRUE(r.events.empty()) << body;
    }
    const std::string deep = "[" + std::string(100000, '[') + std::string(100000, ']') + "]";
    const auto d = parse_webhook(deep);
    EXPECT_FALSE(d.ok());
    EXPECT_NE(d.error.find("deeper"), std::string::npos) << d.error;

    webhook_limits small;
    small.max_body_bytes = 16;
    EXPECT_FALSE(parse_webhook(official_payload, {}, small).ok());
    small = {};
    small.max_events = 3;
    const auto many = parse_webhook(qbo_fixture("webhook_classic_multi.json"), {}, small);
    EXPECT_FALSE(many.ok());
    EXPECT_NE(many.error.find("more than 3"), std::string::npos) << many.error;
    small = {};
    small.max_field_bytes = 8;
    const auto long_ids = parse_webhook(qbo_fixture("webhook_cloudevents.json"), {}, small);
    EXPECT_TRUE(long_ids.events.empty());
    EXPECT_FALSE(long_ids.problems.empty());
}

}  // namespace
}  // namespace billsync::connectors::qbo
