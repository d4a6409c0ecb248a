// Durable timers inside the pipeline: one timer that fails to fire must not block the others, and
// it ends as a dead letter instead of failing forever.

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <nlohmann/json.hpp>

#include "daemon/pipeline.hpp"
#include "state/group_commit.hpp"
#include "tests/fakes/log_capture.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/metrics.hpp"
#include "workflows/followup/followup_rule.hpp"
#include "workflows/followup/planner.hpp"
#include "workflows/records/records_rule.hpp"

namespace billsync::daemon {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

// Runs `op` on ioc (beside the pipeline's own endless loop) until it completes.
template <typename T>
T run(net::io_context& ioc, net::awaitable<T> op) {
    auto f = net::co_spawn(ioc, std::move(op), net::use_future);
    while (f.wait_for(0s) != std::future_status::ready) {
        ioc.run_one_for(10ms);
    }
    return f.get();
}

class pipeline_timers_test : public ::testing::Test {
protected:
    void SetUp() override {
        auto s = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(s.ok()) << s.st.message;
        store_ = std::move(s.value);
        committer_ = std::make_unique<state::group_commit>(*store_);
        auto in = state::inbox::open(*store_, *committer_);
        ASSERT_TRUE(in.ok());
        inbox_ = std::move(in.value);
        auto ob = state::outbox::open(*store_);
        ASSERT_TRUE(ob.ok());
        outbox_ = std::move(ob.value);
        timers_ = std::make_unique<state::timers>(*store_);
        dead_ = std::make_unique<state::dead_letters>(*store_, *inbox_, *outbox_, timers_.get());
        auto ch = state::change_log::open(*store_);
        ASSERT_TRUE(ch.ok());
        changes_ = std::move(ch.value);
        auto au = state::audit_log::open(*store_);
        ASSERT_TRUE(au.ok());
        audit_ = std::move(au.value);
        auto p = workflows::followup::planner::make(workflows::followup::default_settings(),
                                                    "America/New_York");
        ASSERT_TRUE(p);
        engine_.add(std::make_unique<workflows::records::records_rule>(
            std::set<std::string, std::less<>>{"demo"}));
        engine_.add(std::make_unique<workflows::followup::followup_rule>(
            std::move(*p), workflows::followup::channel_routes{}));
        log_ = std::make_shared<spdlog::logger>("pipeline", capture_.sink());
    }

    void TearDown() override {
        if (pipe_) {
            run(ioc_, pipe_->stop());
        }
        committer_->stop();
    }

    void start() {
        pipe_ = std::make_unique<pipeline>(ioc_.get_executor(),
                                           pipeline_deps{*store_,
                                                         *inbox_,
                                                         *outbox_,
                                                         *timers_,
                                                         *dead_,
                                                         *changes_,
                                                         *audit_,
                                                         engine_,
                                                         {},
                                                         clock_,
                                                         &clock_,
                                                         log_,
                                                         metrics_});
        pipe_->start();
    }

    void schedule(std::string_view name, util::instant due, const json& payload) {
        state::batch b(*store_);
        ASSERT_TRUE(timers_->schedule(b, name, due, payload.dump()).ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    bool timer_exists(std::string_view name) {
        auto t = timers_->get(name);
        EXPECT_TRUE(t.ok());
        return t.value.has_value();
    }

    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    std::unique_ptr<state::group_commit> committer_;
    std::unique_ptr<state::inbox> inbox_;
    std::unique_ptr<state::outbox> outbox_;
    std::unique_ptr<state::timers> timers_;
    std::unique_ptr<state::dead_letters> dead_;
    std::unique_ptr<state::change_log> changes_;
    std::unique_ptr<state::audit_log> audit_;
    workflows::engine engine_;
    util::manual_clock clock_{at("2026-01-05T14:00:00Z")};
    util::metrics_registry metrics_;
    billsync::testing::log_capture capture_;
    std::shared_ptr<spdlog::logger> log_;
    net::io_context ioc_;
    std::unique_ptr<pipeline> pipe_;
};

// Issue 18 item 5.
TEST_F(pipeline_timers_test, a_failing_timer_backs_off_then_is_dead_lettered_and_blocks_no_other) {
    // A stored invoice that does not decode: its touch fails every time it fires.
    {
        state::batch b(*store_);
        state::put_entity(b, "invoice", "inv-bad", "{\"not\":\"an invoice\"}");
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    const auto now = clock_.now();
    schedule("followup/inv-bad/touch1", now, json{{"invoice", "inv-bad"}});
    schedule("remind/r1", now + 1s, json{{"source", "demo"}, {"entity", "r1"}, {"version", 1}});
    start();

    run(ioc_, pipe_->advance(1s));
    EXPECT_FALSE(timer_exists("remind/r1")) << capture_.joined();  // fired despite the other
    EXPECT_TRUE(timer_exists("followup/inv-bad/touch1"));          // retried later
    EXPECT_FALSE(dead_->get("timer/followup/inv-bad/touch1").value);

    run(ioc_, pipe_->advance(10min));
    EXPECT_FALSE(timer_exists("followup/inv-bad/touch1"));
    const auto dl = dead_->get("timer/followup/inv-bad/touch1");
    ASSERT_TRUE(dl.ok());
    ASSERT_TRUE(dl.value) << capture_.joined();
    EXPECT_EQ(dl.value->origin, "timer");
    EXPECT_EQ(dl.value->attempts, 5u);
    EXPECT_NE(dl.value->error.find("inv-bad"), std::string::npos) << dl.value->error;
    EXPECT_NE(capture_.joined().find("Timer moved to dead letters"), std::string::npos);

    // An operator fixes the cause and retries it: the timer is back, due at once.
    ASSERT_TRUE(dead_->retry("timer/followup/inv-bad/touch1").ok);
    const auto back = timers_->get("followup/inv-bad/touch1");
    ASSERT_TRUE(back.ok() && back.value);
    EXPECT_GE(back.value->due, now);
    EXPECT_LE(back.value->due, clock_.now());  // its last due instant, already past
    EXPECT_FALSE(dead_->get("timer/followup/inv-bad/touch1").value);
}

}  // namespace
}  // namespace billsync::daemon
