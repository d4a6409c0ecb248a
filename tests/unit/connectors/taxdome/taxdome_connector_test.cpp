// The TaxDome relay connector: a bearer secret (two during a rotation) is the only proof, so
// anything else is refused; the relay time bounds replays; the body is checked strictly.

#include "connectors/taxdome/taxdome_connector.hpp"

#include <gtest/gtest.h>

#include "mappings/model.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync::connectors::taxdome {
namespace {

const std::string secret(40, 'k');
const std::string previous(40, 'p');

settings relay_settings() {
    settings s;
    s.name = "portal";
    s.relay_secret = secret;
    s.relay_secret_previous = previous;
    s.wall_clock = [] {
        return std::chrono::system_clock::time_point(
            mappings::parse_timestamp("2026-01-05T16:00:00Z")->time_since_epoch());
    };
    return s;
}

std::string body(std::string_view relayed_at = "2026-01-05T15:04:05Z") {
    return R"({"event":"New Account","id":"7351024","name":"Acme Dental",)"
           R"("emails":"ap@acme-dental.example","relayed_at":")" +
           std::string(relayed_at) + R"("})";
}

http::request relay(const std::string& b, const std::string& authorization) {
    http::request r;
    r.method = "POST";
    r.path = "/webhooks/portal";
    r.body = b;
    if (!authorization.empty()) {
        r.headers.push_back({"Authorization", authorization});
    }
    return r;
}

TEST(taxdome_connector, the_current_and_the_previous_secret_are_accepted) {
    taxdome_connector c(relay_settings());
    const auto v = c.verify(relay(body(), "Bearer " + secret));
    EXPECT_TRUE(v.accepted) << v.reason;
    EXPECT_EQ(v.dedup_key, "New Account:7351024:2026-01-05T15:04:05.000000Z");
    EXPECT_TRUE(c.verify(relay(body(), "bearer " + previous)).accepted);
}

TEST(taxdome_connector, a_wrong_missing_or_malformed_secret_is_refused) {
    taxdome_connector c(relay_settings());
    EXPECT_FALSE(c.verify(relay(body(), "Bearer " + std::string(40, 'x'))).accepted);
    EXPECT_FALSE(c.verify(relay(body(), "Bearer " + secret + "x")).accepted);
    EXPECT_FALSE(c.verify(relay(body(), secret)).accepted);
    EXPECT_FALSE(c.verify(relay(body(), "Basic " + secret)).accepted);
    EXPECT_FALSE(c.verify(relay(body(), "Bearer ")).accepted);
    const auto none = c.verify(relay(body(), ""));
    EXPECT_FALSE(none.accepted);
    EXPECT_EQ(none.reason, "missing bearer secret");
    // Without a previous secret configured, an empty bearer never matches it.
    auto s = relay_settings();
    s.relay_secret_previous.clear();
    taxdome_connector only(s);
    EXPECT_FALSE(only.verify(relay(body(), "Bearer " + previous)).accepted);
}

TEST(taxdome_connector, a_relay_older_than_the_bound_or_from_the_future_is_a_replay) {
    taxdome_connector c(relay_settings());  // now: 2026-01-05T16:00:00Z, bound 1 day
    EXPECT_TRUE(c.verify(relay(body("2026-01-04T16:00:01Z"), "Bearer " + secret)).accepted);
    const auto old = c.verify(relay(body("2026-01-04T15:59:59Z"), "Bearer " + secret));
    EXPECT_FALSE(old.accepted);
    EXPECT_NE(old.reason.find("relayed_at"), std::string::npos);
    EXPECT_FALSE(c.verify(relay(body("2026-01-05T16:06:00Z"), "Bearer " + secret)).accepted);
}

TEST(taxdome_connector, an_authentic_but_malformed_relay_is_dead_lettered_with_the_field) {
    taxdome_connector c(relay_settings());
    const std::string bad = R"({"event":"New Account","id":"1","name":"A","email":"x@y.example",)"
                            R"("relayed_at":"2026-01-05T15:04:05Z"})";
    const auto v = c.verify(relay(bad, "Bearer " + secret));
    EXPECT_TRUE(v.accepted);  // authentic: kept as a dead letter, not a 401
    const auto why = c.check_payload(bad);
    EXPECT_NE(why.find("unknown field 'email'"), std::string::npos) << why;
    EXPECT_EQ(c.check_payload(body()), "");
}

TEST(taxdome_connector, a_relay_becomes_a_versioned_client_and_redeliveries_change_nothing) {
    testing::temp_dir dir;
    auto opened = state::store::open(dir.path() / "db");
    ASSERT_TRUE(opened.ok());
    auto& s = *opened.value;
    taxdome_connector c(relay_settings());
    state::inbox_event e;
    e.body = body();
    for (int i = 0; i < 2; ++i) {
        state::batch b(s);
        auto r = c.process(e, s, b);
        ASSERT_TRUE(r.ok()) << r.st.message;
        EXPECT_EQ(r.value.size(), i == 0 ? 1U : 0U);
        ASSERT_TRUE(s.write(b, true).ok);
    }
    auto row = state::get_entity(s, "client", "portal:client:7351024");
    ASSERT_TRUE(row.ok() && row.value);
    EXPECT_NE(row.value->find("Acme Dental"), std::string::npos);
}

}  // namespace
}  // namespace billsync::connectors::taxdome
