// Draft time end to end: the real billsync binary on a simulated clock against the Karbon and
// Harvest simulators. A completed work item drafts a Harvest entry; staff delete it in Harvest,
// which polling never shows; the daily reconcile re-reads it, finds it gone, and the draft
// becomes final: shown as deleted, off the review list, and not drafted again when the work item
// completes again.

#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "sim/harvest_simulator.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/sim_server.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using testing::eventually;
using testing::parse_time;

// Monday 2026-01-05, 08:00 in Denver.
constexpr const char* start_time = "2026-01-05T15:00:00Z";

class draft_time_e2e : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::harvest_options ho;
        ho.now = [this] { return now(); };
        harvest_ = std::make_unique<simulators::harvest_simulator>(ho);
        harvest_->add_routes(harvest_server_.routes());
        harvest_->configure(harvest_server_);
        karbon_options_.now = [this] { return now(); };
        karbon_ = std::make_unique<simulators::karbon_simulator>(karbon_options_);
        karbon_->add_routes(karbon_server_.routes());
        karbon_->configure(karbon_server_);
        ASSERT_EQ(harvest_server_.start(), "");
        ASSERT_EQ(karbon_server_.start(), "");

        harvest_->add_user("Kim", "Allen", "kim@example-cpa.com");
        harvest_client_ = harvest_->add_client("Acme Dental");
        const auto project = harvest_->add_project(harvest_client_, "2025 Tax Return");
        harvest_->assign_task(project, harvest_->add_task("Tax Preparation"));
        karbon_->add_organization({{"OrganizationKey", "ORG1"}, {"FullName", "Acme Dental"}});
        karbon_->add_work_item({{"WorkItemKey", "W1"},
                                {"Title", "2025 1040 - Acme Dental"},
                                {"ClientKey", "ORG1"},
                                {"ClientType", "Organization"},
                                {"WorkType", "1040 Individual Return"},
                                {"PrimaryStatus", "In Progress"},
                                {"AssigneeKey", "KIM"},
                                {"AssigneeName", "Kim Allen"},
                                {"AssigneeEmailAddress", "kim@example-cpa.com"},
                                {"StartDate", "2026-01-05T00:00:00Z"}});
    }

    util::instant now() {
        std::lock_guard lock(clock_mutex_);
        return now_;
    }

    std::string config() const {
        return testing::simulated_daemon_toml("America/Denver", start_time) +
               "[connectors.time]\n"
               "kind = \"harvest\"\n"
               "base_url = \"" +
               harvest_server_.base_url() +
               "/v2\"\n"
               "account_id = \"123456\"\n"
               "access_token = \"sim-harvest-token\"\n"
               "contact = \"it@example-cpa.com\"\n"
               "[connectors.practice]\n"
               "kind = \"karbon\"\n"
               "base_url = \"" +
               karbon_server_.base_url() +
               "\"\n"
               "bearer_token = \"" +
               karbon_options_.bearer_token +
               "\"\n"
               "access_key = \"" +
               karbon_options_.access_key +
               "\"\n"
               "webhook_signing_key = \"karbon-signing-key-0123456789\"\n"
               "public_url = \"https://billsync.example-cpa.com\"\n"
               "[draft_time]\n"
               "connector = \"time\"\n"
               "[draft_time.work_types.\"1040 Individual Return\"]\n"
               "project = \"2025 Tax Return\"\n"
               "task = \"Tax Preparation\"\n"
               "hours = \"3.5\"\n";
    }

    void advance_to(std::string_view when) {
        const auto target = parse_time(when);
        const auto by = std::chrono::duration_cast<std::chrono::seconds>(target - now());
        ASSERT_GE(by.count(), 0);
        {
            std::lock_guard lock(clock_mutex_);
            now_ = target;
        }
        ASSERT_NE(daemon_->advance(by.count()), "") << daemon_->output();
    }

    // The work item's status changes in Karbon, which notifies billsync; mapped when this returns.
    void set_status(const std::string& status) {
        karbon_->update_work_item("W1", {{"PrimaryStatus", status}});
        ASSERT_EQ(karbon_->notify("Work", "Work", "W1", "Updated"), 200U) << daemon_->output();
        ASSERT_TRUE(eventually([&] {
            const auto s = json::parse(daemon_->status_get("/status").body, nullptr, false);
            return s.is_object() && s["queues"]["inbox"]["count"] == 0;
        })) << daemon_->output();
        ASSERT_NE(daemon_->advance(0), "");
    }

    json view(const std::string& path) {
        return json::parse(
            daemon_->status_get("/workflows/draft_time/" + path).body, nullptr, false);
    }

    json draft() {
        const auto list = view("list");
        return list.is_object() && list["drafts"].size() == 1 ? list["drafts"][0] : json();
    }

    testing::temp_dir dir_;
    std::mutex clock_mutex_;
    util::instant now_ = parse_time(start_time);
    std::unique_ptr<simulators::harvest_simulator> harvest_;
    simulators::karbon_options karbon_options_;
    std::unique_ptr<simulators::karbon_simulator> karbon_;
    simulators::sim_server harvest_server_;
    simulators::sim_server karbon_server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
    std::int64_t harvest_client_ = 0;
};

TEST_F(draft_time_e2e, a_draft_deleted_in_harvest_is_final_after_the_reconcile) {
    daemon_ = std::make_unique<testing::billsync_daemon>(dir_.path(), config());
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    karbon_->set_delivery_base("http://127.0.0.1:" + std::to_string(daemon_->webhook_port()));
    ASSERT_TRUE(eventually([&] { return karbon_->subscriptions().contains("Work"); }))
        << daemon_->output();
    // Both systems synced: the practice organization and the time system's client are one.
    ASSERT_TRUE(eventually([&] {
        return daemon_
                   ->status_post("/identities/link",
                                 json{{"a", "practice:ORG1"},
                                      {"b", "time:" + std::to_string(harvest_client_)}}
                                     .dump())
                   .status == 200;
    })) << daemon_->output();
    ASSERT_TRUE(eventually([&] {
        auto [rc, out] = daemon_->cli({"inspect", "cursor/time/sync"});
        return rc == 0 && out.find("incremental") != std::string::npos;
    })) << daemon_->output();

    // The return is completed: one entry is drafted in Harvest, and the next poll sees it.
    set_status("Completed");
    ASSERT_TRUE(eventually([&] { return harvest_->time_entries().size() == 1; }))
        << daemon_->output();
    const auto entry = harvest_->time_entries().front();
    EXPECT_EQ(entry["hours"], 3.5);
    advance_to("2026-01-05T15:10:00Z");
    ASSERT_TRUE(eventually([&] { return draft().value("state", "") == "created"; }))
        << view("list").dump() << daemon_->output();

    // Staff delete it in Harvest: polling by updated_since never shows that.
    harvest_->remove_time_entry(entry["id"].get<std::int64_t>());
    advance_to("2026-01-05T20:00:00Z");
    EXPECT_EQ(draft().value("state", ""), "created");

    // Tuesday 06:00 in Denver: the reconcile re-reads the draft and finds it gone.
    advance_to("2026-01-06T13:00:00Z");
    ASSERT_TRUE(eventually([&] {
        (void)daemon_->advance(0);
        return draft().value("state", "") == "deleted";
    })) << view("list").dump()
        << daemon_->output();
    const auto list = view("list");
    EXPECT_NE(draft().value("cause", "").find("deleted in time by staff"), std::string::npos)
        << list.dump();
    EXPECT_EQ(list["reconcile"]["last_pass"]["deleted"], 1) << list.dump();
    EXPECT_EQ(list["reconcile"]["next_at"], "2026-01-07T13:00:00Z") << list.dump();

    // Completed again after a re-open: nothing is drafted twice; past the review day it is not
    // on the review list.
    set_status("In Progress");
    set_status("Completed");
    advance_to("2026-01-09T17:00:00Z");  // Friday 10:00 in Denver
    EXPECT_EQ(harvest_->time_entry_creates(), 1U);
    EXPECT_TRUE(harvest_->time_entries().empty());
    EXPECT_EQ(draft().value("state", ""), "deleted");
    const auto review = view("review");
    ASSERT_TRUE(review.is_object()) << review.dump();
    EXPECT_TRUE(review["review"].empty()) << review.dump();

    // The operator's command line shows it too (on the stopped daemon's data).
    ASSERT_TRUE(daemon_->stop().has_value());
    auto [rc, out] = daemon_->cli({"workflow", "draft_time", "list", "--json"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("\"state\": \"deleted\""), std::string::npos) << out;
    EXPECT_NE(out.find("deleted in time by staff"), std::string::npos) << out;
}

}  // namespace
}  // namespace billsync
