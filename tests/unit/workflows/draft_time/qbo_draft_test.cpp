// draft_time against QuickBooks Online: the workflow picks the QBO connector by what its kind
// performs (time_entry.create), staff come from QBO Employees, and a completed work item drafts
// exactly one TimeActivity at the QBO simulator, also when the create's answer is lost and the
// action is performed again (the requestid makes the resend Intuit's replay). The activity, read
// back by the time sync, becomes billsync's created draft; a later edit in QBO marks it edited.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/qbo/qbo_connector.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/draft_time/draft_time_rule.hpp"

namespace billsync::workflows::draft_time {
namespace {

using json = nlohmann::json;
using connectors::testing::run;
using testing_support::at;
namespace cq = connectors::qbo;

constexpr const char* realm = "9130350000000001";

class qbo_draft_test : public testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        simulators::qbo_sim_options o;
        o.realms = {realm};
        o.now = [this] { return clock_.now(); };
        sim_ = std::make_unique<simulators::qbo_simulator>(o);
        sim_->add_routes(server_.routes());
        sim_->configure(server_);
        ASSERT_EQ(server_.start(), "");
        tokens_ = std::make_unique<connectors::token_store>(*store_, std::nullopt);
        const auto grant = sim_->oauth().issue_grant();
        connectors::oauth2::credential c;
        c.id = std::string("qbo/") + realm;
        c.vendor = "qbo";
        c.account = realm;
        c.access_token = grant.access_token;
        c.access_expires_at = clock_.now() + grant.expires_in;
        c.refresh_token = grant.refresh_token;
        ASSERT_TRUE(connectors::oauth2::store_credential(*tokens_, c).ok);
        limiter_.set_limits("qbo", cq::rate_limits());

        employee_ =
            sim_->add_employee(realm,
                               json{{"GivenName", "Kim"},
                                    {"FamilyName", "Allen"},
                                    {"PrimaryEmailAddr", {{"Address", "Kim@Example-CPA.com"}}}})
                .value("Id", "");
        sim_->add_item(realm, json{{"Name", "Tax Preparation"}, {"UnitPrice", 150}});
        customer_ = sim_->add_customer(realm, json{{"DisplayName", "Acme Dental"}}).value("Id", "");

        cq::settings s;
        s.name = "books";
        s.base_url = server_.base_url();
        s.realm_id = realm;
        s.client = {server_.base_url() + "/oauth2/token", "sim-client-id", "sim-client-secret"};
        s.sync_time = true;  // [sources] time_entries names it
        connectors::runtime_deps rt;
        rt.executor = ioc_.get_executor();
        rt.clock = &clock_;
        rt.tokens = tokens_.get();
        rt.limiter = &limiter_;
        rt.http = connectors::testing::test_settings();
        rt.time = connectors::real_time();
        connector_ = std::make_unique<cq::qbo_connector>(s, rt);

        // The workflow, given the enabled connectors as the daemon describes them: the QBO
        // section with its kind's actions.
        settings ds;
        ds.enabled = true;
        ds.connector = "books";
        ds.time_zone = "America/Denver";
        work_type_mapping m;
        m.work_type = "1040 Individual Return";
        m.project = "(not used by QBO)";
        m.task = "Tax Preparation";  // the QBO service item, by name
        m.minutes = 210;
        m.hours = "3.5";
        ds.work_types.push_back(m);
        rule_deps deps;
        const auto kind = cq::describe();
        deps.connectors.push_back({"books", "", false, {kind.actions.begin(), kind.actions.end()}});
        std::string error;
        rule_ = make(ds, deps, &error);
        ASSERT_NE(rule_, nullptr) << error;
    }

    // Polls until the connector has run its time sync, mapping every event and handing the
    // changes to the rule in one committed step.
    void sync() {
        for (int i = 0; i < 10; ++i) {
            auto out = run(ioc_, connector_->poll(*store_));
            ASSERT_EQ(out.error, "");
            auto st = step(
                [&](context& ctx) {
                    for (const auto& [k, v] : out.cursors) {
                        state::put_cursor(ctx.b, k, v);
                    }
                    for (const auto& ev : out.events) {
                        state::inbox_event e;
                        e.connector = "books";
                        e.kind = ev.kind;
                        e.body = ev.body;
                        auto changes = connector_->process(e, *store_, ctx.b);
                        if (!changes.ok()) {
                            return changes.st;
                        }
                        for (const auto& c : changes.value) {
                            if (auto s = rule_->on_change(c, ctx); !s.ok) {
                                return s;
                            }
                        }
                    }
                    return state::status::success();
                },
                clock_.now());
            ASSERT_TRUE(st.ok) << st.message;
            const auto time_cursor = state::get_cursor(*store_, "books/time");
            if (!out.more && time_cursor.ok() && time_cursor.value) {
                return;
            }
        }
        FAIL() << "the time sync never ran";
    }

    state::status complete_work_item() {
        mappings::work_item w;
        w.id = "karbon:work:W1";
        w.client_id = "client:acme";
        w.title = "2025 1040 - Acme";
        w.work_type = "1040 Individual Return";
        w.status = "completed";
        w.assignee_id = "kim@example-cpa.com";
        w.source.system = "practice";
        w.source.id = "W1";
        return step(
            [&](context& ctx) {
                auto applied = state::apply(*store_, ctx.b, "practice", w);
                if (!applied.ok() || !applied.value) {
                    return applied.st;
                }
                return rule_->on_change(*applied.value, ctx);
            },
            clock_.now());
    }

    json row() {
        auto r = state::get_entity(*store_, "draft_time", "karbon:work:W1");
        EXPECT_TRUE(r.ok() && r.value);
        return r.value ? json::parse(*r.value) : json();
    }

    util::manual_clock clock_{at("2026-01-05T21:00:00Z")};
    simulators::sim_server server_;
    std::unique_ptr<simulators::qbo_simulator> sim_;
    std::unique_ptr<connectors::token_store> tokens_;
    connectors::rate_limiter limiter_{connectors::real_time()};
    net::io_context ioc_;
    std::unique_ptr<cq::qbo_connector> connector_;  // after ioc_: destroyed first
    std::unique_ptr<rule> rule_;
    std::string employee_;
    std::string customer_;
};

TEST_F(qbo_draft_test, a_completed_work_item_drafts_exactly_one_time_activity_in_qbo) {
    // The work item's client is linked to the QBO customer (the identity map).
    {
        state::batch b(*store_);
        state::put_xref(b, "books", std::string(realm) + "/client/" + customer_, "client:acme");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    sync();  // Kim, a QBO Employee, is staff of "books"
    ASSERT_TRUE(complete_work_item().ok);
    const auto queued = actions();
    ASSERT_EQ(queued.size(), 1U);
    const auto& a = queued[0];
    EXPECT_EQ(a.connector, "books");
    EXPECT_EQ(a.kind, "time_entry.create");
    EXPECT_EQ(json::parse(a.payload)["user_ref"], employee_);

    // The create reaches QBO but its answer is lost; the action is performed again.
    (void)run(ioc_, connector_->perform(a));
    ASSERT_EQ(sim_->count(realm, "TimeActivity"), 1U);
    const auto retried = run(ioc_, connector_->perform(a));
    ASSERT_EQ(retried.k, connectors::action_outcome::kind::done) << retried.detail;
    EXPECT_EQ(retried.detail, "TimeActivity/1");
    EXPECT_EQ(sim_->count(realm, "TimeActivity"), 1U);
    EXPECT_EQ(sim_->requestid_replays(), 1U);
    const auto t = *sim_->get(realm, "TimeActivity", "1");
    EXPECT_EQ(t["EmployeeRef"]["value"], employee_);
    EXPECT_EQ(t["CustomerRef"]["value"], customer_);
    EXPECT_EQ(t["TxnDate"], "2026-01-05");
    EXPECT_EQ(t["Hours"], 3);
    EXPECT_EQ(t["Minutes"], 30);

    // Read back by the time sync: billsync's created draft, with its review timer.
    clock_.advance(std::chrono::minutes(5));
    sync();
    EXPECT_EQ(row()["state"], "created");
    EXPECT_EQ(row()["entry_id"], "1");
    // Completing again drafts nothing more.
    ASSERT_TRUE(complete_work_item().ok);
    EXPECT_EQ(actions().size(), 1U);  // the first, never performed through the outbox here

    // A bookkeeper changes the hours in QBO: edited by staff, never touched again.
    clock_.advance(std::chrono::minutes(5));
    ASSERT_TRUE(sim_->update(realm, "TimeActivity", "1", json{{"Hours", 4}, {"Minutes", 0}})
                    .contains("Id"));
    sync();
    EXPECT_EQ(row()["state"], "edited");
    EXPECT_EQ(sim_->count(realm, "TimeActivity"), 1U);
}

}  // namespace
}  // namespace billsync::workflows::draft_time
