// The generic operator surface: GET /workflows[/<rule>[/<path>]] and POST /workflows/<rule>/<verb>
// route to the rule of that name, which answers its views and decides its commands in one batch.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/workflows/operator.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/followup/followup_rule.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::daemon {
namespace {

using json = nlohmann::json;
using workflows::context;
using workflows::operator_answer;

// A rule with one view ("items/<id>") and one command ("touch", {"id": ...}) that writes a row.
class sample_rule final : public workflows::rule {
public:
    std::string_view name() const noexcept override { return "sample"; }
    state::status on_change(const mappings::change&, context&) const override {
        return state::status::success();
    }
    std::vector<workflows::verb_spec> verbs() const override {
        return {{"items", "", false, "every item"}, {"touch", "ID", true, "touch an item"}};
    }
    operator_answer view(std::string_view path, const state::store& s) const override {
        if (path.empty()) {
            return operator_answer::ok(json{{"root", true}});
        }
        if (path.starts_with("items/")) {
            auto row = state::get_entity(s, "sample", path.substr(6));
            if (row.ok() && row.value) {
                return operator_answer::ok(json{{"id", path.substr(6)}, {"row", *row.value}});
            }
            return operator_answer::fail(
                404, "not_found", "no item " + std::string(path.substr(6)));
        }
        return rule::view(path, s);
    }
    operator_answer command(std::string_view verb, const json& args, context& ctx) const override {
        if (verb != "touch") {
            return rule::command(verb, args, ctx);
        }
        if (!args.is_object() || !args.contains("id") || !args["id"].is_string()) {
            return operator_answer::fail(400, "bad_request", R"(expected {"id": "..."})");
        }
        const auto id = args["id"].get<std::string>();
        state::put_entity(ctx.b, "sample", id, "touched");
        auto out = operator_answer::ok(nullptr);
        out.then_view = "items/" + id;
        return out;
    }
};

class workflow_operator_test : public workflows::testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        engine_.add(std::make_unique<sample_rule>());
    }

    http::response post(std::string_view rule, std::string_view verb, const std::string& body) {
        state::batch b(*store_);
        context ctx{
            b, *outbox_, *timers_, *audit_, workflows::testing_support::at("2026-01-05T15:00:00Z")};
        ctx.store = store_.get();
        const command_deps deps{*store_, [this, &b] {
                                    ++written_;
                                    return store_->write(b, true);
                                }};
        return workflow_command(engine_, rule, verb, body, ctx, deps);
    }

    static json body(const http::response& r) { return json::parse(r.body, nullptr, false); }

    workflows::engine engine_;
    int written_ = 0;
};

TEST_F(workflow_operator_test, views_route_by_rule_name_and_path) {
    auto r = workflow_view(engine_, "sample", *store_);
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(body(r)["root"], true);
    r = workflow_view(engine_, "sample/items/a%20b", *store_);
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(body(r)["message"], "no item a b");  // the path is percent-decoded
    r = workflow_view(engine_, "sample/nothing", *store_);
    EXPECT_EQ(r.status, 404u);
}

TEST_F(workflow_operator_test, unknown_and_disabled_rules) {
    auto r = workflow_view(engine_, "nosuch", *store_);
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(body(r)["error"], "not_found");
    // A built-in workflow that is not on in this configuration.
    r = workflow_view(engine_, "followup/tasks", *store_);
    EXPECT_EQ(r.status, 409u);
    EXPECT_EQ(body(r)["error"], "disabled");
    r = post("followup", "resume", R"({"invoice":"1"})");
    EXPECT_EQ(r.status, 409u);
    EXPECT_EQ(written_, 0);
}

TEST_F(workflow_operator_test, a_command_commits_its_batch_then_answers_with_its_view) {
    auto r = post("sample", "touch", R"({"id":"a"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(written_, 1);
    EXPECT_EQ(body(r)["id"], "a");
    EXPECT_EQ(body(r)["row"], "touched");
    auto v = workflow_view(engine_, "sample/items/a", *store_);
    EXPECT_EQ(v.status, 200u);
}

TEST_F(workflow_operator_test, a_refused_command_writes_nothing) {
    auto r = post("sample", "touch", "not json");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(body(r)["error"], "bad_request");
    r = post("sample", "explode", "{}");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(written_, 0);
    EXPECT_EQ(workflow_view(engine_, "sample/items/a", *store_).status, 404u);
}

TEST_F(workflow_operator_test, the_rule_list_names_rules_and_verbs) {
    const auto j = workflows_json(engine_);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["rule"], "sample");
    ASSERT_EQ(j[0]["verbs"].size(), 2u);
    EXPECT_EQ(j[0]["verbs"][1]["verb"], "touch");
    EXPECT_EQ(j[0]["verbs"][1]["changes_state"], true);
}

TEST_F(workflow_operator_test, followups_come_a_page_at_a_time_with_a_cursor) {
    // Without the follow-up workflow: the same answer as GET /workflows/followup.
    auto r = followups_response(engine_, "", *store_);
    EXPECT_EQ(r.status, 409u);
    EXPECT_EQ(body(r)["error"], "disabled");

    auto p = workflows::followup::planner::make(workflows::followup::default_settings(),
                                                "America/New_York");
    ASSERT_TRUE(p);
    engine_.add(std::make_unique<workflows::followup::followup_rule>(
        std::move(*p), workflows::followup::channel_routes{}));
    state::batch b(*store_);
    for (int i = 0; i < 150; ++i) {
        workflows::followup::sequence_state st;
        st.invoice_id = fmt::format("inv {:03}", i);  // a space: the cursor is URL-encoded
        st.seen = true;
        st.current = workflows::followup::phase::active;
        st.due_date = st.anchor = date::year(2026) / date::month(1) / date::day(5);
        state::put_entity(b, "followup", st.invoice_id, workflows::followup::encode(st));
    }
    ASSERT_TRUE(store_->write(b, true).ok);

    r = followups_response(engine_, "", *store_);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body.find('\n'), std::string::npos);  // compact
    auto page = body(r);
    EXPECT_EQ(page["limit"], followups_default_limit);
    ASSERT_EQ(page["followups"].size(), followups_default_limit);
    EXPECT_EQ(page["next"], "inv 099");

    r = followups_response(engine_, "after=inv%20099&limit=1000", *store_);
    ASSERT_EQ(r.status, 200u) << r.body;
    page = body(r);
    ASSERT_EQ(page["followups"].size(), 50u);
    EXPECT_EQ(page["followups"][0]["invoice"], "inv 100");
    EXPECT_TRUE(page["next"].is_null());

    EXPECT_EQ(body(followups_response(engine_, "limit=7", *store_))["followups"].size(), 7u);
    for (const auto* bad : {"limit=0", "limit=1001", "limit=-1", "limit=ten", "limit=5x"}) {
        r = followups_response(engine_, bad, *store_);
        EXPECT_EQ(r.status, 400u) << bad;
        EXPECT_EQ(body(r)["error"], "bad_request");
        EXPECT_EQ(body(r)["message"], "limit must be a whole number from 1 to 1000");
    }
}

}  // namespace
}  // namespace billsync::daemon
