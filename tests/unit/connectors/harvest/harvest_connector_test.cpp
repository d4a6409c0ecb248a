// The Harvest connector in-process against the Harvest simulator: headers, cursor paging with
// shared timestamps, overlap dedup, 429 with Retry-After, the external_reference lookup before
// any create, and locked entries left alone.

#include "connectors/harvest/harvest_connector.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors::harvest {
namespace {

using json = nlohmann::json;
using connectors::testing::run;
using namespace std::chrono_literals;

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

class harvest_connector_test : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::harvest_options o;
        o.now = [this] { return clock_.now(); };
        o.max_per_page = 2000;
        sim_ = std::make_unique<simulators::harvest_simulator>(o);
        sim_->add_routes(server_.routes());
        sim_->configure(server_);
        ASSERT_EQ(server_.start(), "");
        auto st = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(st.ok());
        store_ = std::move(st.value);
        limiter_.set_limits("harvest", rate_limits());
        settings_.name = "time";
        settings_.base_url = server_.base_url() + "/v2";
        settings_.account_id = "123456";
        settings_.access_token = "sim-harvest-token";
        settings_.contact = "it@example-cpa.com";
        settings_.per_page = 2;
        settings_.overlap = 60s;
        kim_ = sim_->add_user("Kim", "Allen", "kim@example-cpa.com");
        client_ = sim_->add_client("Acme Dental");
        project_ = sim_->add_project(client_, "2025 Tax Return");
        task_ = sim_->add_task("Tax Preparation");
        sim_->assign_task(project_, task_, true);
        internal_ = sim_->add_task("Internal");
        sim_->assign_task(project_, internal_, false);
    }

    harvest_connector& connector() {
        if (!connector_) {
            runtime_deps rt;
            rt.executor = ioc_.get_executor();
            rt.clock = &clock_;
            rt.limiter = &limiter_;
            rt.http = connectors::testing::test_settings();
            rt.time = steady_.source();
            connector_ = std::make_unique<harvest_connector>(settings_, rt);
        }
        return *connector_;
    }

    // One poll, committed as the pipeline commits it, and its events processed.
    poll_outcome poll() {
        auto out = run(ioc_, connector().poll(*store_));
        if (out.error.empty()) {
            state::batch b(*store_);
            for (const auto& [k, v] : out.cursors) {
                state::put_cursor(b, k, v);
            }
            for (const auto& e : out.events) {
                state::inbox_event ev;
                ev.kind = e.kind;
                ev.body = e.body;
                auto r = connector().process(ev, *store_, b);
                EXPECT_TRUE(r.ok()) << r.st.message;
            }
            EXPECT_TRUE(store_->write(b, true).ok);
        }
        return out;
    }

    // Polls until a pass over every resource ends; the time entry ids each poll emitted.
    std::vector<std::string> poll_pass() {
        std::vector<std::string> ids;
        for (int i = 0; i < 100; ++i) {
            auto out = poll();
            EXPECT_EQ(out.error, "");
            for (const auto& e : out.events) {
                const auto j = json::parse(e.body);
                if (j["resource"] == "time_entries") {
                    for (const auto& r : j["rows"]) {
                        ids.push_back(std::to_string(r["id"].get<std::int64_t>()));
                    }
                }
            }
            if (!out.more) {
                break;
            }
        }
        return ids;
    }

    state::action create_action(const std::string& key, json extra = json::object()) {
        json p{{"key", key},
               {"group_id", "wi-1"},
               {"permalink", ""},
               {"client_ref", "123456/client/" + std::to_string(client_)},
               {"user_ref", std::to_string(kim_)},
               {"project", "2025 Tax Return"},
               {"task", "Tax Preparation"},
               {"spent_date", "2026-01-05"},
               {"hours", "3.5"},
               {"notes", "1040 for Acme - drafted by billsync"},
               {"billable", true}};
        p.update(extra);
        state::action a;
        a.id = key;
        a.connector = "time";
        a.kind = "time_entry.create";
        a.payload = p.dump();
        return a;
    }

    util::manual_clock clock_{at("2026-01-05T14:00:00Z")};
    manual_steady_time steady_;
    simulators::sim_server server_;
    std::unique_ptr<simulators::harvest_simulator> sim_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    rate_limiter limiter_{steady_.source()};
    settings settings_;
    net::io_context ioc_;
    std::unique_ptr<harvest_connector> connector_;
    std::int64_t kim_ = 0, client_ = 0, project_ = 0, task_ = 0, internal_ = 0;
};

TEST_F(harvest_connector_test, every_call_carries_token_account_and_user_agent_in_headers) {
    poll();
    const auto reqs = server_.requests();
    ASSERT_FALSE(reqs.empty());
    for (const auto& r : reqs) {
        EXPECT_EQ(r.header_value("Authorization"), "Bearer sim-harvest-token");
        EXPECT_EQ(r.header_value("Harvest-Account-Id"), "123456");
        EXPECT_EQ(r.header_value("User-Agent"), "billsync (it@example-cpa.com)");
        EXPECT_EQ(r.target.find("sim-harvest-token"), std::string::npos);
        EXPECT_EQ(r.target.find("access_token"), std::string::npos);
    }
}

TEST_F(harvest_connector_test, backfill_follows_links_next_then_polls_from_updated_since) {
    // Five entries written in the same second: they share updated_at across pages of two.
    std::set<std::string> made;
    for (int i = 0; i < 5; ++i) {
        made.insert(std::to_string(
            sim_->add_time_entry(kim_, project_, task_, "2026-01-0" + std::to_string(i + 1), "1")));
    }
    const auto first = poll_pass();
    EXPECT_EQ(std::set<std::string>(first.begin(), first.end()), made);
    EXPECT_EQ(first.size(), 5U);
    // Every page after the first was read through links.next (a cursor URL).
    std::size_t cursor_pages = 0;
    for (const auto& r : server_.requests_to("/v2/time_entries")) {
        cursor_pages += r.query.find("cursor=") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(cursor_pages, 2U);
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["cursor"]["phase"], "incremental");
    EXPECT_EQ(status["cursor"]["resources"]["time_entries"]["done"], 5);
    EXPECT_EQ(status["cursor"]["resources"]["time_entries"]["total"], 5);

    // The next pass overlaps the newest timestamp: the same rows come back and are dropped.
    server_.clear_requests();
    EXPECT_TRUE(poll_pass().empty());
    const auto again = server_.requests_to("/v2/time_entries");
    ASSERT_FALSE(again.empty());
    EXPECT_NE(again.front().query.find("updated_since=2026-01-05T13%3A59%3A00Z"), std::string::npos)
        << again.front().query;
    EXPECT_GE(json::parse(connector().status_json())["overlap_duplicates_dropped"], 5);

    // A row edited in the same second as the old ones is new (id + updated_at), the rest not.
    clock_.advance(1s);
    const auto edited = *made.begin();
    sim_->edit_time_entry(std::stoll(edited), json{{"notes", "fixed"}});
    const auto added = sim_->add_time_entry(kim_, project_, task_, "2025-12-01", "2");
    auto third = poll_pass();
    std::sort(third.begin(), third.end());
    std::vector<std::string> want{edited, std::to_string(added)};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(third, want);
}

TEST_F(harvest_connector_test, polled_entries_reach_the_canonical_model_with_their_links) {
    sim_->add_time_entry(kim_, project_, task_, "2026-01-05", "1.25");
    poll_pass();
    int entries = 0;
    (void)state::for_each_entity(*store_, "time_entry", [&](std::string_view, std::string_view v) {
        const auto j = json::parse(v);
        EXPECT_EQ(j["minutes"], 75);
        EXPECT_EQ(j["client_id"], "time:123456:client:" + std::to_string(client_));
        ++entries;
        return true;
    });
    EXPECT_EQ(entries, 1);
    auto staff = state::get_entity(*store_, "staff", "time:123456:staff:" + std::to_string(kim_));
    ASSERT_TRUE(staff.ok() && staff.value);
    auto link = state::local_id(*store_, "time", "123456/project/" + std::to_string(project_));
    ASSERT_TRUE(link.ok() && link.value);
    EXPECT_EQ(*link.value, "time:123456:project:" + std::to_string(project_));
}

TEST_F(harvest_connector_test, a_429_is_waited_out_for_its_retry_after) {
    server_.script("GET",
                   "/v2/clients",
                   {simulators::scripted_response::rate_limited(
                       7s, R"({"message":"Too many requests. Retry later."})")});
    const auto before = steady_.now();
    auto out = poll();
    EXPECT_EQ(out.error, "");
    EXPECT_GE(steady_.now() - before, 7s);
    EXPECT_EQ(server_.requests_to("/v2/clients").size(), 2U);
}

TEST_F(harvest_connector_test, errors_on_list_calls_are_errors_not_empty_results) {
    settings_.account_id = "999";
    auto out = poll();
    EXPECT_NE(out.error.find("404"), std::string::npos) << out.error;
    EXPECT_TRUE(out.cursors.empty());
}

TEST_F(harvest_connector_test, create_sends_hours_and_external_reference_and_resolves_names) {
    auto o = run(ioc_, connector().perform(create_action("draft_time:wi-1:1")));
    ASSERT_EQ(o.k, action_outcome::kind::done) << o.detail;
    const auto entries = sim_->time_entries();
    ASSERT_EQ(entries.size(), 1U);
    const auto& e = entries.front();
    EXPECT_EQ(e["hours"], 3.5);
    EXPECT_FALSE(e["is_running"].get<bool>());
    EXPECT_EQ(e["task"]["id"], task_);
    EXPECT_EQ(e["project"]["id"], project_);
    EXPECT_EQ(e["user"]["id"], kim_);
    EXPECT_EQ(e["external_reference"]["id"], "draft_time:wi-1:1");
    EXPECT_EQ(e["external_reference"]["account_id"], "123456");
    EXPECT_EQ(o.detail, "time_entry/" + std::to_string(e["id"].get<std::int64_t>()));
}

TEST_F(harvest_connector_test, an_existing_entry_with_the_key_is_adopted_never_created_again) {
    const auto a = create_action("draft_time:wi-1:1");
    ASSERT_EQ(run(ioc_, connector().perform(a)).k, action_outcome::kind::done);
    auto r = run(ioc_, connector().reconcile(a));
    EXPECT_EQ(r.k, reconcile_outcome::kind::happened);
    // A resend after an unknown outcome adopts it.
    auto again = run(ioc_, connector().perform(a));
    EXPECT_EQ(again.k, action_outcome::kind::done);
    EXPECT_NE(again.detail.find("existing"), std::string::npos);
    EXPECT_EQ(sim_->time_entry_creates(), 1U);
    EXPECT_EQ(run(ioc_, connector().reconcile(create_action("other"))).k,
              reconcile_outcome::kind::absent);
}

TEST_F(harvest_connector_test, unknown_task_or_project_is_permanent_and_shown_in_status) {
    auto o = run(ioc_, connector().perform(create_action("k1", {{"task", "Bookkeeping"}})));
    EXPECT_EQ(o.k, action_outcome::kind::permanent);
    EXPECT_NE(o.detail.find("Bookkeeping"), std::string::npos);
    o = run(ioc_, connector().perform(create_action("k2", {{"project", "Audit 2030"}})));
    EXPECT_EQ(o.k, action_outcome::kind::permanent);
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["missing_in_harvest"].size(), 2U);
    EXPECT_TRUE(sim_->time_entries().empty());
}

TEST_F(harvest_connector_test, a_non_billable_draft_needs_a_non_billable_task) {
    auto o = run(ioc_, connector().perform(create_action("k1", {{"billable", false}})));
    EXPECT_EQ(o.k, action_outcome::kind::permanent);
    EXPECT_NE(o.detail.find("non-billable"), std::string::npos);
    o = run(ioc_,
            connector().perform(create_action("k2", {{"billable", false}, {"task", "Internal"}})));
    EXPECT_EQ(o.k, action_outcome::kind::done) << o.detail;
    EXPECT_FALSE(sim_->time_entries().front()["billable"].get<bool>());
}

TEST_F(harvest_connector_test, locked_closed_billed_or_staff_edited_entries_are_never_edited) {
    const auto id = sim_->add_time_entry(kim_, project_, task_, "2026-01-05", "1");
    const auto stamp = sim_->time_entries().front()["updated_at"].get<std::string>();
    state::action a;
    a.id = "u1";
    a.connector = "time";
    a.kind = "time_entry.update";
    for (const auto& flags : {std::array<bool, 3>{true, false, false},
                              std::array<bool, 3>{false, true, false},
                              std::array<bool, 3>{false, false, true}}) {
        sim_->set_flags(id, flags[0], flags[1], flags[2]);
        a.payload = json{{"id", id}, {"hours", "2"}}.dump();
        auto o = run(ioc_, connector().perform(a));
        EXPECT_EQ(o.k, action_outcome::kind::permanent);
        EXPECT_NE(o.detail.find("never edits"), std::string::npos) << o.detail;
        a.kind = "time_entry.delete";
        EXPECT_EQ(run(ioc_, connector().perform(a)).k, action_outcome::kind::permanent);
        a.kind = "time_entry.update";
    }
    EXPECT_EQ(server_.requests_to("/v2/time_entries/" + std::to_string(id)).size(), 6U);  // GETs
    sim_->set_flags(id, false, false, false);
    // Changed since billsync's write (updated_at moved): left alone.
    a.payload = json{{"id", id}, {"hours", "2"}, {"updated_at", stamp}}.dump();
    clock_.advance(5s);
    sim_->edit_time_entry(id, json{{"notes", "staff"}});
    auto o = run(ioc_, connector().perform(a));
    EXPECT_EQ(o.k, action_outcome::kind::permanent);
    EXPECT_NE(o.detail.find("changed in Harvest"), std::string::npos);
    EXPECT_EQ(sim_->time_entries().front()["hours"], 1.0);
    // Untouched and unlocked: updated.
    a.payload = json{{"id", id}, {"hours", "2.25"}}.dump();
    EXPECT_EQ(run(ioc_, connector().perform(a)).k, action_outcome::kind::done);
    EXPECT_EQ(sim_->time_entries().front()["hours"], 2.25);
}

// Before a decision depends on a time entry (the draft-time reconcile), it is re-read by id: a
// changed entry arrives as an update, a 404 (with the account answering) as a delete.
TEST_F(harvest_connector_test, a_re_read_entry_is_mapped_and_a_deleted_one_arrives_as_a_delete) {
    const auto id = sim_->add_time_entry(kim_, project_, task_, "2026-01-05", "1");
    poll_pass();
    const auto canonical = "time:123456:time_entry:" + std::to_string(id);
    const mappings::source_ref ref{"time", "123456", std::to_string(id), "", std::nullopt};
    EXPECT_EQ(connector().refresh_kind(), "page");
    const auto process = [&](const resolve_outcome& r) {
        EXPECT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
        EXPECT_TRUE(r.body);
        state::inbox_event ev;
        ev.kind = connector().refresh_kind();
        ev.body = r.body.value_or("");
        state::batch b(*store_);
        auto changes = connector().process(ev, *store_, b);
        EXPECT_TRUE(changes.ok()) << changes.st.message;
        EXPECT_TRUE(store_->write(b, true).ok);
        return changes.value;
    };

    // Staff changed it: the re-read copy is an update.
    clock_.advance(5s);
    sim_->edit_time_entry(id, json{{"hours", 2}});
    auto changes = process(run(ioc_, connector().refresh("time_entry", ref)));
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].what, mappings::change::op::updated);
    EXPECT_EQ(server_.requests_to("/v2/time_entries/" + std::to_string(id)).size(), 1U);

    // Deleted by staff: Harvest keeps no tombstone; the 404 arrives as a delete that keeps the
    // last known fields.
    sim_->remove_time_entry(id);
    changes = process(run(ioc_, connector().refresh("time_entry", ref)));
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].what, mappings::change::op::deleted);
    const auto* t = changes[0].as<mappings::time_entry>();
    ASSERT_NE(t, nullptr);
    EXPECT_TRUE(t->deleted);
    EXPECT_EQ(t->id, canonical);
    EXPECT_EQ(t->minutes, 120);
    auto stored = state::get_entity(*store_, "time_entry", canonical);
    ASSERT_TRUE(stored.ok() && stored.value);
    EXPECT_TRUE(json::parse(*stored.value)["deleted"].get<bool>());

    // Other entities, and another account's entries, are not re-read here.
    auto other = run(ioc_, connector().refresh("invoice", ref));
    EXPECT_EQ(other.k, resolve_outcome::kind::ready);
    EXPECT_FALSE(other.body);
    auto foreign = ref;
    foreign.account = "999";
    EXPECT_FALSE(run(ioc_, connector().refresh("time_entry", foreign)).body);
}

TEST_F(harvest_connector_test, a_404_is_no_delete_when_the_account_itself_does_not_answer) {
    const auto id = sim_->add_time_entry(kim_, project_, task_, "2026-01-05", "1");
    settings_.account_id = "999";  // every call answers 404 "Account not found"
    const mappings::source_ref ref{"time", "", std::to_string(id), "", std::nullopt};
    const auto r = run(ioc_, connector().refresh("time_entry", ref));
    EXPECT_EQ(r.k, resolve_outcome::kind::retry);
    EXPECT_FALSE(r.body);
    EXPECT_NE(r.detail.find("404"), std::string::npos) << r.detail;
}

TEST_F(harvest_connector_test, no_webhook_route_is_accepted) {
    EXPECT_FALSE(connector().accepts_route_kind(""));
    http::request req;
    EXPECT_FALSE(connector().verify(req).accepted);
}

}  // namespace
}  // namespace billsync::connectors::harvest
