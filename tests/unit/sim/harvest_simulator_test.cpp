// The Harvest simulator over loopback HTTP, as a client sees it (shared/vendors/harvest.md).
#include "sim/harvest_simulator.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "sim/sim_server.hpp"

namespace billsync::simulators {
namespace {

using json = nlohmann::json;

class harvest_simulator_test : public ::testing::Test {
protected:
    void SetUp() override {
        sim_.add_routes(server_.routes());
        sim_.configure(server_);
        ASSERT_EQ(server_.start(), "");
        user_ = sim_.add_user("Kim", "Allen", "kim@example-cpa.com");
        client_ = sim_.add_client("Acme Dental");
        project_ = sim_.add_project(client_, "2025 Tax Return");
        task_ = sim_.add_task("Tax Preparation");
        sim_.assign_task(project_, task_);
    }

    std::vector<http::header> headers() const {
        return {{"Authorization", "Bearer sim-harvest-token"},
                {"Harvest-Account-Id", "123456"},
                {"User-Agent", "billsync (it@example-cpa.com)"},
                {"Content-Type", "application/json"}};
    }

    http::simple_response call(const std::string& method,
                               const std::string& target,
                               const std::string& body = {},
                               std::vector<http::header> h = {}) {
        return http::fetch(
            "127.0.0.1", server_.port(), method, target, h.empty() ? headers() : h, body);
    }

    harvest_simulator sim_;
    sim_server server_;
    std::int64_t user_ = 0, client_ = 0, project_ = 0, task_ = 0;
};

TEST_F(harvest_simulator_test, user_agent_token_and_account_are_required) {
    auto h = headers();
    h[2].value = "curl/8";  // no "(contact)"
    EXPECT_EQ(call("GET", "/v2/clients", {}, h).status, 400U);
    h = headers();
    h[0].value = "Bearer wrong";
    const auto unauth = call("GET", "/v2/clients", {}, h);
    EXPECT_EQ(unauth.status, 401U);
    EXPECT_EQ(json::parse(unauth.body)["error"], "invalid_token");
    h = headers();
    h[1].value = "999";
    EXPECT_EQ(call("GET", "/v2/clients", {}, h).status, 404U);
    EXPECT_EQ(call("GET", "/v2/clients").status, 200U);
}

TEST_F(harvest_simulator_test, lists_page_with_a_cursor_in_links_next) {
    for (int i = 0; i < 3; ++i) {
        sim_.add_time_entry(user_, project_, task_, "2026-01-0" + std::to_string(i + 1), "1.5");
    }
    auto first = json::parse(call("GET", "/v2/time_entries?per_page=2").body);
    EXPECT_EQ(first["time_entries"].size(), 2U);
    EXPECT_EQ(first["total_entries"], 3);
    EXPECT_EQ(first["time_entries"][0]["spent_date"], "2026-01-03");  // newest spent_date first
    const auto next = first["links"]["next"].get<std::string>();
    ASSERT_NE(next.find("cursor="), std::string::npos);
    const auto target = next.substr(next.find("/v2/"));
    auto second = json::parse(call("GET", target).body);
    EXPECT_EQ(second["time_entries"].size(), 1U);
    EXPECT_TRUE(second["links"]["next"].is_null());
    EXPECT_EQ(call("GET", "/v2/time_entries?per_page=2001").status, 422U);
}

TEST_F(harvest_simulator_test, create_needs_an_assigned_task_and_is_found_by_external_reference) {
    const json body{{"project_id", project_},
                    {"task_id", task_},
                    {"spent_date", "2026-01-05"},
                    {"hours", 3.5},
                    {"external_reference", {{"id", "k-1"}, {"group_id", "w"}}}};
    const auto created = call("POST", "/v2/time_entries", body.dump());
    ASSERT_EQ(created.status, 201U) << created.body;
    EXPECT_EQ(json::parse(created.body)["hours"], 3.5);
    auto other = body;
    other["task_id"] = sim_.add_task("Unassigned");
    EXPECT_EQ(call("POST", "/v2/time_entries", other.dump()).status, 422U);
    auto timer = body;
    timer.erase("hours");
    const auto running = json::parse(call("POST", "/v2/time_entries", timer.dump()).body);
    EXPECT_TRUE(running["is_running"].get<bool>());
    const auto found = json::parse(call("GET", "/v2/time_entries?external_reference_id=k-1").body);
    ASSERT_EQ(found["time_entries"].size(), 2U);  // the timer carries the same reference
    EXPECT_EQ(
        json::parse(call("GET", "/v2/time_entries?external_reference_id=zz").body)["time_entries"]
            .size(),
        0U);
}

TEST_F(harvest_simulator_test, locked_entries_refuse_edits_and_updated_since_filters) {
    const auto id = sim_.add_time_entry(user_, project_, task_, "2026-01-05", "1");
    sim_.set_flags(id, true, false, false);
    EXPECT_EQ(call("PATCH", "/v2/time_entries/" + std::to_string(id), R"({"hours":2})").status,
              403U);
    EXPECT_EQ(call("DELETE", "/v2/time_entries/" + std::to_string(id)).status, 403U);
    const auto later =
        json::parse(call("GET", "/v2/time_entries?updated_since=2100-01-01T00%3A00%3A00Z").body);
    EXPECT_TRUE(later["time_entries"].empty());
}

TEST_F(harvest_simulator_test, the_limit_answers_429_with_retry_after) {
    http::simple_response last;
    for (int i = 0; i < 101; ++i) {
        last = call("GET", "/v2/company");
    }
    EXPECT_EQ(last.status, 429U);
    EXPECT_FALSE(last.header_value("Retry-After").empty());
    EXPECT_TRUE(json::parse(last.body).contains("message"));
}

// A harness on simulated time (the chaos runner) turns the limit off.
TEST(harvest_simulator_limits, without_enforced_limits_nothing_is_refused) {
    harvest_options o;
    o.enforce_limits = false;
    harvest_simulator sim(o);
    sim_server server;
    sim.add_routes(server.routes());
    sim.configure(server);
    ASSERT_EQ(server.start(), "");
    const std::vector<http::header> h = {{"Authorization", "Bearer sim-harvest-token"},
                                         {"Harvest-Account-Id", "123456"},
                                         {"User-Agent", "billsync (it@example-cpa.com)"}};
    for (int i = 0; i < 110; ++i) {
        ASSERT_EQ(http::fetch("127.0.0.1", server.port(), "GET", "/v2/company", h).status, 200u)
            << i;
    }
    EXPECT_EQ(server.limit_rejections(), 0u);
}

// Harvest ID: the code flow, rotating refresh tokens, OAuth-shaped errors, the accounts list, and
// the API taking the OAuth2 access token like a Personal Access Token.
TEST_F(harvest_simulator_test, harvest_id_issues_rotates_and_refuses_tokens_in_the_oauth_shape) {
    const std::vector<http::header> form = {{"Content-Type", "application/x-www-form-urlencoded"},
                                            {"User-Agent", "billsync (it@example-cpa.com)"}};
    const std::string client = "client_id=sim-harvest-client&client_secret=sim-harvest-secret";
    const auto auth = call("GET",
                           "/oauth2/authorize?client_id=sim-harvest-client&response_type=code&"
                           "redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&state=s1");
    ASSERT_EQ(auth.status, 302U);
    const auto location = std::string(auth.header_value("Location"));
    ASSERT_TRUE(location.starts_with("http://127.0.0.1:8765/callback?code=")) << location;
    EXPECT_TRUE(location.ends_with("&state=s1")) << location;
    const auto code = location.substr(location.find("code=") + 5,
                                      location.find("&state") - location.find("code=") - 5);

    // The client in the form (as Harvest's docs show it); a wrong secret is invalid_client.
    auto bad = call("POST",
                    "/api/v2/oauth2/token",
                    "grant_type=authorization_code&code=" + code +
                        "&client_id=sim-harvest-client&client_secret=wrong",
                    form);
    EXPECT_EQ(bad.status, 401U);
    EXPECT_EQ(json::parse(bad.body)["error"], "invalid_client");
    const auto first = call("POST",
                            "/api/v2/oauth2/token",
                            "grant_type=authorization_code&code=" + code +
                                "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&" + client,
                            form);
    ASSERT_EQ(first.status, 200U) << first.body;
    const auto t1 = json::parse(first.body);
    EXPECT_EQ(t1["token_type"], "bearer");
    EXPECT_EQ(t1["expires_in"], 64799);
    // A code works once.
    const auto again = call("POST",
                            "/api/v2/oauth2/token",
                            "grant_type=authorization_code&code=" + code + "&" + client,
                            form);
    EXPECT_EQ(again.status, 400U);
    EXPECT_EQ(json::parse(again.body)["error"], "invalid_grant");
    EXPECT_TRUE(json::parse(again.body).contains("error_description"));

    // The access token works on the API and lists the accounts.
    auto h = headers();
    h[0].value = "Bearer " + t1["access_token"].get<std::string>();
    EXPECT_EQ(call("GET", "/v2/clients", {}, h).status, 200U);
    const auto accounts = call("GET", "/api/v2/accounts", {}, h);
    ASSERT_EQ(accounts.status, 200U);
    const auto a = json::parse(accounts.body);
    ASSERT_EQ(a["accounts"].size(), 1U);
    EXPECT_EQ(a["accounts"][0]["id"], 123456);
    EXPECT_EQ(a["accounts"][0]["product"], "harvest");
    EXPECT_EQ(a["user"]["email"], "kim@example-cpa.com");

    // The client by HTTP Basic instead of form fields: not the documented form, refused.
    std::vector<http::header> basic = form;
    basic.push_back(
        {"Authorization", "Basic c2ltLWhhcnZlc3QtY2xpZW50OnNpbS1oYXJ2ZXN0LXNlY3JldA=="});
    const auto rt1 = t1["refresh_token"].get<std::string>();
    const auto by_basic = call(
        "POST", "/api/v2/oauth2/token", "grant_type=refresh_token&refresh_token=" + rt1, basic);
    EXPECT_EQ(by_basic.status, 401U);
    EXPECT_EQ(json::parse(by_basic.body)["error"], "invalid_client");
    // A refresh rotates the refresh token; the old one is refused.
    const auto second = call("POST",
                             "/api/v2/oauth2/token",
                             "grant_type=refresh_token&refresh_token=" + rt1 + "&" + client,
                             form);
    ASSERT_EQ(second.status, 200U) << second.body;
    EXPECT_NE(json::parse(second.body)["refresh_token"], rt1);
    const auto reuse = call("POST",
                            "/api/v2/oauth2/token",
                            "grant_type=refresh_token&refresh_token=" + rt1 + "&" + client,
                            form);
    EXPECT_EQ(reuse.status, 400U);
    EXPECT_EQ(json::parse(reuse.body)["error"], "invalid_grant");
    EXPECT_EQ(sim_.refresh_grants(), 1U);
    EXPECT_EQ(sim_.invalid_grants(), 2U);
    EXPECT_EQ(call("POST", "/api/v2/oauth2/token", "grant_type=password&" + client, form).status,
              400U);

    // Revoked: the access token is refused and the refresh token too.
    sim_.revoke_grants();
    h[0].value = "Bearer " + json::parse(second.body)["access_token"].get<std::string>();
    EXPECT_EQ(call("GET", "/v2/clients", {}, h).status, 401U);
    EXPECT_EQ(call("GET", "/api/v2/accounts", {}, h).status, 401U);
}

}  // namespace
}  // namespace billsync::simulators
