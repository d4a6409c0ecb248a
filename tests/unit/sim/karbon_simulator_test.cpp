// The Karbon simulator speaks the sheet: both auth headers, OData paging capped at 100 with a
// nextLink, the spaced-only status filter, the 429 body, one subscription per type.

#include "sim/karbon_simulator.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "sim/sim_server.hpp"

namespace billsync::simulators {
namespace {

using json = nlohmann::json;

class karbon_simulator_test : public ::testing::Test {
protected:
    void start(double scale = 1.0, bool enforce_limits = true) {
        karbon_options o;
        o.scale = scale;
        o.enforce_limits = enforce_limits;
        sim_ = std::make_unique<karbon_simulator>(o);
        sim_->add_routes(server_.routes());
        sim_->configure(server_);
        ASSERT_EQ(server_.start(), "");
    }

    http::simple_response get(const std::string& target, bool auth = true) {
        std::vector<http::header> h;
        if (auth) {
            h = {{"Authorization", "Bearer " + sim_->options().bearer_token},
                 {"AccessKey", sim_->options().access_key}};
        }
        return http::fetch("127.0.0.1", server_.port(), "GET", target, h);
    }

    http::simple_response post(const std::string& target, const json& body) {
        return http::fetch("127.0.0.1",
                           server_.port(),
                           "POST",
                           target,
                           {{"Authorization", "Bearer " + sim_->options().bearer_token},
                            {"AccessKey", sim_->options().access_key},
                            {"Content-Type", "application/json"}},
                           body.dump());
    }

    http::simple_response write(const std::string& method,
                                const std::string& target,
                                const json& body) {
        return http::fetch("127.0.0.1",
                           server_.port(),
                           method,
                           target,
                           {{"Authorization", "Bearer " + sim_->options().bearer_token},
                            {"AccessKey", sim_->options().access_key},
                            {"Content-Type", "application/json"}},
                           body.dump());
    }

    sim_server server_;
    std::unique_ptr<karbon_simulator> sim_;
};

TEST_F(karbon_simulator_test, both_headers_are_required) {
    start();
    EXPECT_EQ(get("/v3/TenantSettings", false).status, 401u);
    const auto only_bearer =
        http::fetch("127.0.0.1",
                    server_.port(),
                    "GET",
                    "/v3/TenantSettings",
                    {{"Authorization", "Bearer " + sim_->options().bearer_token}});
    EXPECT_EQ(only_bearer.status, 401u);
    // Swapped round: 401 as well.
    const auto swapped = http::fetch("127.0.0.1",
                                     server_.port(),
                                     "GET",
                                     "/v3/TenantSettings",
                                     {{"Authorization", "Bearer " + sim_->options().access_key},
                                      {"AccessKey", sim_->options().bearer_token}});
    EXPECT_EQ(swapped.status, 401u);
    EXPECT_EQ(get("/v3/TenantSettings").status, 200u);
}

TEST_F(karbon_simulator_test, lists_page_at_most_100_with_a_next_link_and_spaced_filters) {
    start();
    for (int i = 0; i < 150; ++i) {
        sim_->add_work_item({{"Title", "W" + std::to_string(i)},
                             {"PrimaryStatus", i % 2 == 0 ? "InProgress" : "Planned"}});
    }
    auto first = json::parse(get("/v3/WorkItems?$top=500").body);
    EXPECT_EQ(first["@odata.count"], 150);
    EXPECT_EQ(first["value"].size(), 100u);  // a larger $top is quietly reduced
    const std::string next = first["@odata.nextLink"];
    const auto path = next.substr(next.find("/v3/"));
    auto second = json::parse(get(path).body);
    EXPECT_EQ(second["value"].size(), 50u);
    EXPECT_FALSE(second.contains("@odata.nextLink"));

    const auto spaced =
        json::parse(get("/v3/WorkItems?$filter=PrimaryStatus%20eq%20%27In%20Progress%27").body);
    EXPECT_EQ(spaced["@odata.count"], 75);
    EXPECT_EQ(spaced["value"][0]["PrimaryStatus"], "In Progress");  // lists: spaced
    const auto unspaced =
        json::parse(get("/v3/WorkItems?$filter=PrimaryStatus%20eq%20%27InProgress%27").body);
    EXPECT_EQ(unspaced["@odata.count"], 0);  // silently nothing
    const std::string key = spaced["value"][0]["WorkItemKey"];
    EXPECT_EQ(json::parse(get("/v3/WorkItems/" + key).body)["PrimaryStatus"], "InProgress");
    const auto missing = get("/v3/WorkItems/nope");
    EXPECT_EQ(missing.status, 404u);
    EXPECT_EQ(json::parse(missing.body)["message"], "Resource not found");
}

TEST_F(karbon_simulator_test, over_120_a_minute_answers_429_with_karbons_body) {
    start();
    unsigned last = 0;
    for (int i = 0; i < 121; ++i) {
        last = get("/v3/TenantSettings").status;
    }
    EXPECT_EQ(last, 429u);
    const auto r = get("/v3/TenantSettings");
    EXPECT_EQ(r.status, 429u);
    EXPECT_FALSE(r.header_value("Retry-After").empty());
    const auto body = json::parse(r.body);
    EXPECT_EQ(body["statusCode"], "429");
    EXPECT_TRUE(
        body["message"].get<std::string>().starts_with("Rate limit is exceeded. Try again in"));
    EXPECT_EQ(server_.limit_rejections(), 2u);
}

// A harness on simulated time (the chaos runner) turns the limit off: its window would count
// real time while billsync's budget counts simulated time.
TEST_F(karbon_simulator_test, without_enforced_limits_nothing_is_refused) {
    start(1.0, false);
    for (int i = 0; i < 130; ++i) {
        ASSERT_EQ(get("/v3/TenantSettings").status, 200u) << i;
    }
    EXPECT_EQ(server_.limit_rejections(), 0u);
}

TEST_F(karbon_simulator_test, one_subscription_per_type_and_a_valid_signing_key) {
    start();
    const json sub{{"TargetUrl", "https://x.example/webhooks/karbon"},
                   {"WebhookType", "Work"},
                   {"SigningKey", "abcdefghijklmnop-_0"}};
    EXPECT_EQ(post("/v3/WebhookSubscriptions", sub).status, 201u);
    EXPECT_EQ(post("/v3/WebhookSubscriptions", sub).status, 400u);
    auto bad = sub;
    bad["WebhookType"] = "Contact";
    bad["SigningKey"] = "short";
    EXPECT_EQ(post("/v3/WebhookSubscriptions", bad).status, 400u);
    EXPECT_EQ(get("/v3/WebhookSubscriptions/Work").status, 200u);
    EXPECT_EQ(get("/v3/WebhookSubscriptions/Contact").status, 404u);
}

TEST_F(karbon_simulator_test, a_created_work_item_needs_the_documented_fields) {
    start();
    const auto missing = post("/v3/WorkItems", {{"Title", "T"}});
    EXPECT_EQ(missing.status, 400u);
    EXPECT_EQ(json::parse(missing.body)["error"]["details"].size(), 4u);
    const auto made = post("/v3/WorkItems",
                           {{"Title", "T"},
                            {"AssigneeEmailAddress", "a@b.example"},
                            {"ClientKey", "c"},
                            {"ClientType", "Contact"},
                            {"StartDate", "2026-01-05"},
                            {"PrimaryStatus", "Ready To Start"}});
    EXPECT_EQ(made.status, 201u);
    EXPECT_EQ(json::parse(made.body)["PrimaryStatus"], "ReadyToStart");  // writes: unspaced
}

TEST_F(karbon_simulator_test, contacts_and_organizations_carry_the_user_defined_identifier) {
    start();
    // Seeded: the client code as given, and null (listed, not set) without one.
    const auto org =
        sim_->add_organization({{"FullName", "Acme"}, {"UserDefinedIdentifier", "AC1"}});
    const auto bare = sim_->add_contact({{"FullName", "Ann Archer"}});
    const auto org_key = org.value("OrganizationKey", "");
    auto one = json::parse(get("/v3/Organizations/" + org_key).body);
    EXPECT_EQ(one["UserDefinedIdentifier"], "AC1");
    auto listed = json::parse(get("/v3/Contacts").body)["value"];
    ASSERT_EQ(listed.size(), 1u);
    ASSERT_TRUE(listed[0].contains("UserDefinedIdentifier"));
    EXPECT_TRUE(listed[0]["UserDefinedIdentifier"].is_null());

    // Created over the API (FullName required), then changed: PATCH keeps the other fields and
    // stamps LastModifiedDateTime; PUT replaces the record, its key kept.
    EXPECT_EQ(write("POST", "/v3/Contacts", {{"EmailAddress", "x@y.example"}}).status, 400u);
    const auto made =
        write("POST", "/v3/Contacts", {{"FullName", "Bo Li"}, {"UserDefinedIdentifier", "LI01"}});
    ASSERT_EQ(made.status, 201u);
    const auto key = json::parse(made.body).value("ContactKey", "");
    ASSERT_FALSE(key.empty());
    EXPECT_EQ(json::parse(get("/v3/Contacts/" + key).body)["UserDefinedIdentifier"], "LI01");
    const auto patched = write("PATCH", "/v3/Contacts/" + key, {{"UserDefinedIdentifier", "LI02"}});
    ASSERT_EQ(patched.status, 200u);
    one = json::parse(get("/v3/Contacts/" + key).body);
    EXPECT_EQ(one["UserDefinedIdentifier"], "LI02");
    EXPECT_EQ(one["FullName"], "Bo Li");
    EXPECT_EQ(write("PUT", "/v3/Organizations/" + org_key, {{"FullName", "Acme Ltd"}}).status,
              200u);
    one = json::parse(get("/v3/Organizations/" + org_key).body);
    EXPECT_EQ(one["FullName"], "Acme Ltd");
    EXPECT_TRUE(one["UserDefinedIdentifier"].is_null());
    EXPECT_EQ(one["OrganizationKey"], org_key);
    EXPECT_EQ(write("PATCH", "/v3/Contacts/nope", {{"FullName", "X"}}).status, 404u);

    // A user's edit through the simulator's own hook.
    const auto edited =
        sim_->update_contact(bare.value("ContactKey", ""), {{"UserDefinedIdentifier", "ARCH-001"}});
    EXPECT_EQ(edited["UserDefinedIdentifier"], "ARCH-001");
    EXPECT_EQ(sim_->update_organization("nope", {{"FullName", "X"}}), json());
}

}  // namespace
}  // namespace billsync::simulators
