#include "connectors/generic/generic_connector.hpp"

#include <gtest/gtest.h>

#include "tests/fakes/temp_dir.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::generic {
namespace {

http::request signed_request(const std::string& body,
                             const std::string& secret,
                             bool base64 = false,
                             const std::string& prefix = "",
                             const std::string& signed_id = "") {
    http::request r;
    r.method = "POST";
    r.path = "/webhooks/demo";
    r.body = body;
    const auto mac = util::hmac_sha256(secret, signed_id.empty() ? body : signed_id + "." + body);
    r.headers.push_back(
        {"X-Signature", prefix + (base64 ? util::base64_encode(mac) : util::hex_encode(mac))});
    return r;
}

settings demo() {
    settings s;
    s.name = "demo";
    s.secret = "topsecret";
    return s;
}

TEST(generic_connector, accepts_a_correct_hex_signature_and_dedups_on_the_body_hash) {
    generic_connector c(demo());
    const auto v = c.verify(signed_request(R"({"id":"a"})", "topsecret"));
    EXPECT_TRUE(v.accepted) << v.reason;
    EXPECT_EQ(v.dedup_key, "sha256:" + util::hex_encode(util::sha256(R"({"id":"a"})")));
}

TEST(generic_connector, hex_signatures_compare_case_insensitively) {
    generic_connector c(demo());
    auto r = signed_request("{}", "topsecret");
    for (auto& ch : r.headers[0].value) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    EXPECT_TRUE(c.verify(r).accepted);
}

TEST(generic_connector, rejects_forged_missing_and_tampered_signatures) {
    generic_connector c(demo());
    EXPECT_FALSE(c.verify(signed_request("{}", "wrong-secret")).accepted);
    auto tampered = signed_request(R"({"amount":1})", "topsecret");
    tampered.body = R"({"amount":2})";
    EXPECT_FALSE(c.verify(tampered).accepted);
    http::request bare;
    bare.body = "{}";
    const auto v = c.verify(bare);
    EXPECT_FALSE(v.accepted);
    EXPECT_EQ(v.reason, "missing X-Signature header");
}

TEST(generic_connector, base64_with_prefix_and_event_id_header) {
    auto s = demo();
    s.base64 = true;
    s.signature_prefix = "sha256=";
    s.event_id_header = "X-Event-Id";
    generic_connector c(s);
    auto r = signed_request("{}", "topsecret", true, "sha256=", "evt-7");
    r.headers.push_back({"x-event-id", "evt-7"});
    const auto v = c.verify(r);
    EXPECT_TRUE(v.accepted) << v.reason;
    EXPECT_EQ(v.dedup_key, "id:evt-7");
    EXPECT_FALSE(c.verify(signed_request("{}", "topsecret", true, "")).accepted);
}

// Issue 18 item 11: the event id is signed with the body, so a captured delivery replayed under
// a new id (which would pass dedup and roll the record back) is rejected.
TEST(generic_connector, a_captured_body_replayed_under_a_new_event_id_is_rejected) {
    auto s = demo();
    s.event_id_header = "X-Event-Id";
    generic_connector c(s);
    const std::string body = R"({"id":"r1","amount":100})";
    auto original = signed_request(body, "topsecret", false, "", "evt-1");
    original.headers.push_back({"X-Event-Id", "evt-1"});
    ASSERT_TRUE(c.verify(original).accepted);
    auto replayed = original;
    replayed.headers.back().value = "evt-2";
    EXPECT_FALSE(c.verify(replayed).accepted);
    auto stripped = original;
    stripped.headers.pop_back();  // without the id the body alone is checked: no match
    EXPECT_FALSE(c.verify(stripped).accepted);
    // A sender that sends no id signs the body; dedup is then on the body's hash.
    const auto plain = c.verify(signed_request(body, "topsecret"));
    EXPECT_TRUE(plain.accepted);
    EXPECT_TRUE(plain.dedup_key.starts_with("sha256:"));
}

TEST(generic_connector, payload_check_names_the_problem) {
    generic_connector c(demo());
    EXPECT_EQ(c.check_payload(R"({"id":"x"})"), "");
    EXPECT_EQ(c.check_payload("not json"), "body is not valid JSON");
    EXPECT_EQ(c.check_payload("[1,2]"), "body is not a JSON object");
    EXPECT_EQ(c.check_payload(R"({"id":1.5})"), "\"id\" must be a non-empty string or an integer");
}

// Issue 18 item 17: bodies that would overflow the stack in a recursive dump or compare, and a
// reminder delay whose instant would overflow, are refused before anything maps them.
TEST(generic_connector, deep_nesting_and_unbounded_reminders_are_refused) {
    generic_connector c(demo());
    const std::string deep =
        R"({"id":"x","v":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
    EXPECT_NE(c.check_payload(deep).find("nested deeper"), std::string::npos)
        << c.check_payload(deep);
    const std::string quoted = R"({"id":"x","v":")" + std::string(5000, '[') + "\"}";
    EXPECT_EQ(c.check_payload(quoted), "");  // brackets inside strings do not nest
    EXPECT_EQ(c.check_payload(R"({"id":"x","remind_after_s":86400})"), "");
    EXPECT_NE(c.check_payload(R"({"id":"x","remind_after_s":9223372036854775807})"), "");
    EXPECT_NE(c.check_payload(R"({"id":"x","remind_after_s":-1})"), "");
}

TEST(generic_connector, processing_versions_real_changes_only) {
    testing::temp_dir dir;
    auto opened = state::store::open(dir.path());
    ASSERT_TRUE(opened.ok()) << opened.st.message;
    auto& s = *opened.value;
    generic_connector c(demo());
    state::inbox_event e;
    e.connector = "demo";
    e.dedup_key = "k1";
    e.body = R"({"id":"r1","amount":100})";
    auto process = [&](const std::string& body) {
        e.body = body;
        state::batch b(s);
        auto res = c.process(e, s, b);
        EXPECT_TRUE(res.ok()) << res.st.message;
        EXPECT_TRUE(s.write(b, false).ok);
        return res.value;
    };
    auto first = process(R"({"id":"r1","amount":100})");
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].entity_id, "demo/r1");
    EXPECT_EQ(first[0].version, 1u);
    EXPECT_EQ(first[0].what, mappings::change::op::created);
    EXPECT_TRUE(process(R"({"amount":100,"id":"r1"})").empty());  // same content, other order
    auto second = process(R"({"id":"r1","amount":50})");
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].version, 2u);
    EXPECT_EQ(second[0].what, mappings::change::op::updated);
}

}  // namespace
}  // namespace billsync::connectors::generic
