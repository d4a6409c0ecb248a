#include "connectors/generic/generic_connector.hpp"

#include <gtest/gtest.h>

#include "sim/test_ca.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"
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
    billsync::testing::temp_dir dir;
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

TEST(generic_connector, actions_go_to_an_https_action_url_with_a_verified_certificate) {
    // The action URL of a real system is https:// (plain http:// is only accepted on loopback);
    // the connector sends through the runtime's HTTPS client, trusting the configured CA.
    billsync::testing::temp_dir dir;
    simulators::test_ca ca;
    const auto files = ca.issue_loopback(dir.path());
    simulators::sim_options o;
    o.cert_file = files.cert;
    o.key_file = files.key;
    auto sim = testing::start_sim(
        [](simulators::sim_server& s) {
            s.routes().add("POST", "/actions", [](http::request) -> net::awaitable<http::response> {
                co_return http::response::json(201, "{}");
            });
            s.routes().add("GET", "/actions", [](http::request) -> net::awaitable<http::response> {
                co_return http::response::json(404, "{}");
            });
        },
        o);
    ASSERT_TRUE(sim->tls());
    auto st = demo();
    st.action_url = sim->base_url() + "/actions";
    ASSERT_EQ(st.action_url.rfind("https://", 0), 0u);
    st.client = testing::test_settings();
    st.client.ca_file = files.ca_cert.string();
    net::io_context ioc;  // outlives the connectors (their clients' pooled connections use it)
    generic_connector c(st);

    state::action a;
    a.id = "notify/rec-1/v2";
    a.kind = "notify";
    a.payload = R"({"record":"rec-1"})";
    const auto done = testing::run(ioc, c.perform(a));
    EXPECT_EQ(done.k, action_outcome::kind::done) << done.detail;
    EXPECT_EQ(done.detail, "http 201");
    const auto reconciled = testing::run(ioc, c.reconcile(a));
    EXPECT_EQ(reconciled.k, reconcile_outcome::kind::absent) << reconciled.detail;

    const auto seen = sim->requests();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].method, "POST");
    EXPECT_EQ(seen[0].header_value("Idempotency-Key"), a.id);
    EXPECT_EQ(seen[0].body, a.payload);
    EXPECT_EQ(seen[1].query, "idempotency_key=notify%2Frec-1%2Fv2");

    // An untrusted certificate is refused, and the action is retried later, not sent in clear.
    auto untrusted = demo();
    untrusted.action_url = st.action_url;
    untrusted.client = testing::test_settings();
    generic_connector refused(untrusted);
    const auto r = testing::run(ioc, refused.perform(a));
    EXPECT_NE(r.k, action_outcome::kind::done);
    EXPECT_EQ(sim->requests().size(), 2u);
}

}  // namespace
}  // namespace billsync::connectors::generic
