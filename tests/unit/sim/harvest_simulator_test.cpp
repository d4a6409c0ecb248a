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

}  // namespace
}  // namespace billsync::simulators
