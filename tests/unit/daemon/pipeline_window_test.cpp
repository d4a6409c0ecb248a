// Client-facing actions carry their sending window and deadline: however late an attempt comes
// (a retry after a backoff, a wait, a recovery), the pipeline never performs it outside the
// window, defers it to the next opening, and drops it (audited, with the cause) once its deadline
// passed or the rule that queued it finds the decision stale. Real state in a temp dir, a fake
// connector that records when it was asked to perform, a fake rule, a manual clock.

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/pipeline.hpp"
#include "state/group_commit.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/metrics.hpp"
#include "workflows/send_window.hpp"

namespace billsync::daemon {
namespace {

using namespace std::chrono_literals;

util::instant at(const char* rfc3339) {
    util::instant t;
    EXPECT_TRUE(util::parse_rfc3339(rfc3339, t)) << rfc3339;
    return t;
}

// Performs what it is told to, in order (then "done"), and records when it was asked.
class recording_connector final : public connectors::connector {
public:
    explicit recording_connector(const util::clock& clock) : clock_(clock) {}
    const std::string& name() const noexcept override { return name_; }
    std::string_view kind() const noexcept override { return "fake"; }
    connectors::verify_result verify(const http::request&) const override { return {}; }
    std::string check_payload(std::string_view) const override { return {}; }
    state::result<std::vector<mappings::change>> process(const state::inbox_event&,
                                                         const state::store&,
                                                         state::batch&) override {
        return {state::status::success(), {}};
    }
    net::awaitable<connectors::action_outcome> perform(state::action a) override {
        connectors::action_outcome out;
        {
            std::lock_guard lock(mutex_);
            performed_.emplace_back(a.id, clock_.now());
            if (!script_.empty()) {
                out = script_.front();
                script_.pop_front();
            }
        }
        co_return out;
    }
    net::awaitable<connectors::reconcile_outcome> reconcile(state::action) override {
        connectors::reconcile_outcome out;
        out.k = connectors::reconcile_outcome::kind::absent;
        co_return out;
    }

    void script(connectors::action_outcome o) {
        std::lock_guard lock(mutex_);
        script_.push_back(std::move(o));
    }
    std::vector<std::pair<std::string, util::instant>> performed() const {
        std::lock_guard lock(mutex_);
        return performed_;
    }

private:
    const util::clock& clock_;
    std::string name_ = "fake";
    mutable std::mutex mutex_;
    std::deque<connectors::action_outcome> script_;
    std::vector<std::pair<std::string, util::instant>> performed_;
};

// Stands in for a rule whose decisions can go stale (an invoice paid meanwhile).
class stale_rule final : public workflows::rule {
public:
    std::string_view name() const noexcept override { return "collections"; }
    state::status on_change(const mappings::change&, workflows::context&) const override {
        return state::status::success();
    }
    std::optional<std::string> recheck(const state::action& a, workflows::context&) const override {
        std::lock_guard lock(mutex_);
        if (paid_.contains(a.id)) {
            return std::string("invoice 1005 was paid meanwhile");
        }
        return std::nullopt;
    }
    void mark_paid(const std::string& id) {
        std::lock_guard lock(mutex_);
        paid_.insert(id);
    }

private:
    mutable std::mutex mutex_;
    std::set<std::string> paid_;
};

// New York, weekdays 09:00-17:00 local (14:00-22:00 UTC in January).
std::string office_hours() {
    workflows::send_window w;
    w.time_zone = "America/New_York";
    w.start = 9h;
    w.end = 17h;
    w.days = {false, true, true, true, true, true, false};
    return workflows::encode_window(w);
}

class pipeline_window : public ::testing::Test {
protected:
    void SetUp() override {
        auto opened = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        store_ = std::move(opened.value);
        committer_ = std::make_unique<state::group_commit>(*store_);
        inbox_ = std::move(state::inbox::open(*store_, *committer_).value);
        outbox_ = std::move(state::outbox::open(*store_).value);
        timers_ = std::make_unique<state::timers>(*store_);
        dead_ = std::make_unique<state::dead_letters>(*store_, *inbox_, *outbox_);
        changes_ = std::move(state::change_log::open(*store_).value);
        audit_ = std::move(state::audit_log::open(*store_).value);
        auto rule = std::make_unique<stale_rule>();
        rule_ = rule.get();
        engine_.add(std::move(rule));
        pipeline_options o;
        o.reconcile_every = 0s;
        pipe_ = std::make_unique<pipeline>(
            ioc_.get_executor(),
            pipeline_deps{*store_,
                          *inbox_,
                          *outbox_,
                          *timers_,
                          *dead_,
                          *changes_,
                          *audit_,
                          engine_,
                          {{"fake", &fake_}},
                          clock_,
                          &clock_,
                          std::make_shared<spdlog::logger>(
                              "pipeline", std::make_shared<spdlog::sinks::null_sink_mt>()),
                          metrics_},
            o);
        pipe_->start();
        thread_ = std::thread([this] { ioc_.run(); });
    }

    void TearDown() override {
        net::co_spawn(ioc_, pipe_->stop(), net::use_future).get();
        guard_.reset();
        thread_.join();
        pipe_.reset();
        committer_->stop();
    }

    void advance_to(const char* when) {
        const auto by = std::chrono::duration_cast<std::chrono::seconds>(at(when) - clock_.now());
        ASSERT_GE(by.count(), 0);
        net::co_spawn(ioc_, pipe_->advance(by), net::use_future).get();
    }

    void enqueue_touch(const std::string& id, util::instant deadline) {
        state::batch b(*store_);
        state::action a;
        a.id = id;
        a.connector = "fake";
        a.kind = "message.send";
        a.payload = R"({"invoice":"1005"})";
        a.next_attempt_at = clock_.now();
        a.window = office_hours();
        a.deadline = deadline;
        ASSERT_TRUE(outbox_->enqueue(b, a).ok());
        ASSERT_TRUE(store_->write(b, true).ok);
        pipe_->kick();
    }

    state::action action_of(const std::string& id) { return outbox_->get(id).value.value(); }

    std::vector<nlohmann::json> audit_about(const std::string& id) {
        std::vector<nlohmann::json> out;
        for (const auto& e : audit_->read(util::instant{}, 1000).value) {
            auto j = nlohmann::json::parse(e.line, nullptr, false);
            if (j.is_object() && j.value("action", "") == id) {
                out.push_back(std::move(j));
            }
        }
        return out;
    }

    testing::temp_dir dir_;
    util::manual_clock clock_{at("2026-01-05T14:00:00Z")};  // Monday 09:00 in New York
    util::metrics_registry metrics_;
    workflows::engine engine_;
    stale_rule* rule_ = nullptr;
    recording_connector fake_{clock_};
    std::unique_ptr<state::store> store_;
    std::unique_ptr<state::group_commit> committer_;
    std::unique_ptr<state::inbox> inbox_;
    std::unique_ptr<state::outbox> outbox_;
    std::unique_ptr<state::timers> timers_;
    std::unique_ptr<state::dead_letters> dead_;
    std::unique_ptr<state::change_log> changes_;
    std::unique_ptr<state::audit_log> audit_;
    net::io_context ioc_{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> guard_{
        ioc_.get_executor()};
    std::unique_ptr<pipeline> pipe_;
    std::thread thread_;
};

TEST_F(pipeline_window, a_retry_that_falls_due_at_night_waits_for_the_window_to_open) {
    // The vendor throttles the first attempt and asks for 17 hours: 02:00 in New York.
    connectors::action_outcome throttled;
    throttled.k = connectors::action_outcome::kind::retry;
    throttled.detail = "http 429";
    throttled.retry_after = 17h;
    fake_.script(throttled);
    enqueue_touch("touch-2", at("2026-01-08T14:00:00Z"));
    advance_to("2026-01-05T14:00:00Z");
    ASSERT_EQ(fake_.performed().size(), 1u);

    advance_to("2026-01-06T07:00:00Z");  // 02:00 local: the retry is due, the window closed
    EXPECT_EQ(fake_.performed().size(), 1u);
    const auto waiting = action_of("touch-2");
    EXPECT_EQ(waiting.state, state::action_state::pending);
    EXPECT_EQ(waiting.next_attempt_at, at("2026-01-06T14:00:00Z"));  // 09:00 local
    EXPECT_EQ(waiting.attempts, 1u);                                 // waiting is not an attempt
    const auto lines = audit_about("touch-2");
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().value("decision", ""), "action_deferred");
    EXPECT_EQ(lines.back().value("until", ""), "2026-01-06T14:00:00Z");

    advance_to("2026-01-06T14:00:00Z");
    const auto performed = fake_.performed();
    ASSERT_EQ(performed.size(), 2u);
    EXPECT_EQ(performed[1].second, at("2026-01-06T14:00:00Z"));
    EXPECT_EQ(action_of("touch-2").state, state::action_state::done);
}

TEST_F(pipeline_window, a_deferred_touch_is_rechecked_and_dropped_when_the_invoice_was_paid) {
    advance_to("2026-01-05T23:30:00Z");  // 18:30 local: after hours
    enqueue_touch("touch-3", at("2026-01-08T23:30:00Z"));
    advance_to("2026-01-05T23:30:00Z");
    EXPECT_TRUE(fake_.performed().empty());
    EXPECT_EQ(action_of("touch-3").next_attempt_at, at("2026-01-06T14:00:00Z"));

    rule_->mark_paid("touch-3");  // paid overnight
    advance_to("2026-01-06T14:00:00Z");
    EXPECT_TRUE(fake_.performed().empty());
    const auto a = action_of("touch-3");
    EXPECT_EQ(a.state, state::action_state::done);
    EXPECT_EQ(a.result,
              "dropped: the decision no longer holds: collections: invoice 1005 was paid "
              "meanwhile");
    const auto lines = audit_about("touch-3");
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().value("decision", ""), "action_dropped");
    EXPECT_NE(lines.back().value("cause", "").find("paid meanwhile"), std::string::npos);
}

TEST_F(pipeline_window, an_action_whose_window_opens_only_after_its_deadline_is_dropped) {
    advance_to("2026-01-09T21:30:00Z");  // Friday 16:30 local
    connectors::action_outcome failed;
    failed.k = connectors::action_outcome::kind::retry;
    failed.detail = "timeout";
    failed.retry_after = 1h;  // due again at 17:30 local, after hours; next opening is Monday
    fake_.script(failed);
    enqueue_touch("touch-1", at("2026-01-10T21:30:00Z"));
    advance_to("2026-01-09T21:30:00Z");
    ASSERT_EQ(fake_.performed().size(), 1u);
    advance_to("2026-01-09T22:30:00Z");
    EXPECT_EQ(fake_.performed().size(), 1u);
    const auto a = action_of("touch-1");
    EXPECT_EQ(a.state, state::action_state::done);
    EXPECT_EQ(a.result.rfind("dropped: its sending window next opens at 2026-01-12T14:00:00Z", 0),
              0u)
        << a.result;
    advance_to("2026-01-12T14:00:00Z");
    EXPECT_EQ(fake_.performed().size(), 1u);
}

TEST(send_window, gate_reads_only_what_the_action_carries) {
    state::action a;
    EXPECT_EQ(workflows::gate(a, at("2026-01-06T07:00:00Z")).k, workflows::send_gate::kind::now);
    a.window = office_hours();
    EXPECT_EQ(workflows::gate(a, at("2026-01-06T15:00:00Z")).k, workflows::send_gate::kind::now);
    const auto night = workflows::gate(a, at("2026-01-06T07:00:00Z"));
    EXPECT_EQ(night.k, workflows::send_gate::kind::later);
    EXPECT_EQ(night.at, at("2026-01-06T14:00:00Z"));
    a.deadline = at("2026-01-06T10:00:00Z");
    EXPECT_EQ(workflows::gate(a, at("2026-01-06T07:00:00Z")).k, workflows::send_gate::kind::stale);
    a.window = "not a window";
    a.deadline = {};
    EXPECT_EQ(workflows::gate(a, at("2026-01-06T15:00:00Z")).k, workflows::send_gate::kind::stale);
    // The window and deadline survive the outbox codec; older rows decode without them.
    a.window = office_hours();
    a.deadline = at("2026-01-08T14:00:00Z");
    a.connector = "c";
    state::action back;
    ASSERT_TRUE(state::decode_action(state::encode_action(a), back));
    EXPECT_EQ(back.window, a.window);
    EXPECT_EQ(back.deadline, a.deadline);
}

}  // namespace
}  // namespace billsync::daemon
