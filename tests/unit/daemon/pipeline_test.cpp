// The pipeline on its own: real state in a temp dir, a fake connector that throws, a manual clock.
// An exception from a connector or a rule fails that item only; the heartbeat shows a live loop.

#include "daemon/pipeline.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "daemon/sd_notify.hpp"
#include "daemon/status.hpp"
#include "daemon/tools.hpp"
#include "state/group_commit.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/metrics.hpp"

namespace billsync::daemon {
namespace {

using namespace std::chrono_literals;

// Maps an event's body to a "record" entity; the body "throw" throws. perform() throws for
// actions of kind "explode" and succeeds otherwise; reconcile() finds nothing happened.
class throwing_connector final : public connectors::connector {
public:
    const std::string& name() const noexcept override { return name_; }
    std::string_view kind() const noexcept override { return "fake"; }
    connectors::verify_result verify(const http::request&) const override { return {}; }
    std::string check_payload(std::string_view) const override { return {}; }
    state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                         const state::store&,
                                                         state::batch& b) override {
        if (e.body == "throw") {
            throw std::runtime_error("null where a string was expected");
        }
        if (e.body == "block") {
            block.get_future().wait();
        }
        state::put_entity(b, "record", e.body, "{}");
        return {state::status::success(), {}};
    }
    // Actions of kind "serial" modify the vendor object their payload names.
    std::string serial_key(const state::action& a) const override {
        return a.kind == "serial" ? a.payload : std::string();
    }
    net::awaitable<connectors::action_outcome> perform(state::action a) override {
        ++performs;
        if (a.kind == "explode") {
            throw std::logic_error("value() on an empty optional");
        }
        if (a.kind == "sleep") {
            // Two waits in the connector runtime's time, as a retry's backoffs would be.
            co_await time.sleep(10min);
            co_await time.sleep(1h);
        }
        if (a.kind == "late_sleep") {
            // Busy first without a wait the runtime knows of (held until the test opens the
            // gate), then a wait in the runtime's time.
            gate = std::make_shared<net::steady_timer>(co_await net::this_coro::executor,
                                                       net::steady_timer::time_point::max());
            gate_ready.set_value();
            boost::system::error_code ec;
            co_await gate->async_wait(net::redirect_error(net::use_awaitable, ec));
            co_await time.sleep(10min);
        }
        if (a.kind == "serial") {
            const int now_running = ++running;
            max_running = std::max(max_running.load(), now_running);
            if (!held.exchange(true)) {
                // The first one holds until the test opens the gate.
                gate = std::make_shared<net::steady_timer>(co_await net::this_coro::executor,
                                                           net::steady_timer::time_point::max());
                gate_ready.set_value();
                boost::system::error_code ec;
                co_await gate->async_wait(net::redirect_error(net::use_awaitable, ec));
                if (clock != nullptr) {
                    time_after_gate = clock->now();
                }
            }
            --running;
        }
        co_return connectors::action_outcome{};
    }
    net::awaitable<connectors::reconcile_outcome> reconcile(state::action) override {
        ++reconciles;
        connectors::reconcile_outcome out;
        out.k = undecided_left.load() > 0 ? connectors::reconcile_outcome::kind::undecided
                                          : connectors::reconcile_outcome::kind::absent;
        if (undecided_left.load() > 0) {
            --undecided_left;
        } else if (!happened_detail.empty()) {
            out.k = connectors::reconcile_outcome::kind::happened;
            out.detail = happened_detail;
        }
        co_return out;
    }
    // Polls while polls_wanted > 0 (each poll takes one), else does not poll.
    std::optional<util::instant> next_poll() const override {
        return polls_wanted.load() > 0 ? std::optional<util::instant>(util::instant{})
                                       : std::nullopt;
    }
    net::awaitable<connectors::poll_outcome> poll(const state::store&) override {
        --polls_wanted;
        ++polls;
        co_return connectors::poll_outcome{};
    }

    std::atomic<int> performs{0};
    std::atomic<int> reconciles{0};
    std::atomic<int> undecided_left{0};  // reconcile() answers "undecided" this many times first
    std::string happened_detail;         // set: reconcile() answers "happened", saying this
    std::atomic<int> polls_wanted{0};
    std::atomic<int> polls{0};
    std::promise<void> block;
    std::atomic<int> running{0};
    std::atomic<int> max_running{0};
    std::atomic<bool> held{false};
    std::shared_ptr<net::steady_timer> gate;
    std::promise<void> gate_ready;
    connectors::time_source time;                  // what actions of kind "sleep" sleep in
    const util::clock* clock = nullptr;            // set: the first "serial" action notes the time
    std::optional<util::instant> time_after_gate;  // when its gate opened

private:
    std::string name_ = "fake";
};

util::instant start_time() {
    util::instant t;
    util::parse_rfc3339("2026-01-05T14:00:00Z", t);
    return t;
}

// Records the actions that ended for good, as a rule counting its deliveries would.
class done_recorder final : public workflows::rule {
public:
    std::string_view name() const noexcept override { return "recorder"; }
    state::status on_change(const mappings::change& /*c*/,
                            workflows::context& /*ctx*/) const override {
        return state::status::success();
    }
    void on_action_done(const state::action& a, workflows::action_result r) const override {
        std::lock_guard lock(mutex_);
        done_.emplace_back(a.id, r);
    }
    std::vector<std::pair<std::string, workflows::action_result>> done() const {
        std::lock_guard lock(mutex_);
        return done_;
    }

private:
    mutable std::mutex mutex_;
    mutable std::vector<std::pair<std::string, workflows::action_result>> done_;
};

class pipeline_unit : public ::testing::Test {
protected:
    pipeline_unit() {
        auto r = std::make_unique<done_recorder>();
        recorder_ = r.get();
        engine_.add(std::move(r));
    }

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
        if (retention_) {
            pruner_ = std::make_unique<state::pruner>(*store_, *retention_, 2);
        }
        pipeline_options o;
        o.max_event_attempts = 2;
        o.action_retry.max_attempts = 2;
        o.reconcile_every = reconcile_every_;
        o.idle_poll = idle_poll_;
        o.skip_after = skip_after_;
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
                          metrics_,
                          pruner_.get(),
                          waits_.get()},
            o);
        pipe_->start();
        thread_ = std::thread([this] { ioc_.run(); });
    }

    void TearDown() override {
        auto stopped = net::co_spawn(ioc_, pipe_->stop(), net::use_future);
        stopped.get();
        EXPECT_FALSE(pipe_->alive());
        guard_.reset();
        thread_.join();
        pipe_.reset();
        committer_->stop();
    }

    util::instant advance(std::chrono::seconds by) {
        return net::co_spawn(ioc_, pipe_->advance(by), net::use_future).get();
    }

    void append(const std::string& body) {
        std::promise<state::append_result> done;
        inbox_->append("fake", "", body, "{}", body, clock_.now(), [&](state::append_result r) {
            done.set_value(std::move(r));
        });
        ASSERT_EQ(done.get_future().get().outcome, state::append_outcome::stored);
        pipe_->kick();
    }

    void enqueue(const std::string& id, const std::string& kind, const std::string& payload = {}) {
        state::batch b(*store_);
        state::action a;
        a.id = id;
        a.connector = "fake";
        a.kind = kind;
        a.payload = payload;
        a.next_attempt_at = clock_.now();
        ASSERT_TRUE(outbox_->enqueue(b, a).ok());
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    bool has_record(const std::string& id) {
        auto r = state::get_entity(*store_, "record", id);
        return r.ok() && r.value.has_value();
    }

    // pipeline::replace for lane "fake"; the future completes with `drained`.
    std::future<bool> replace(connectors::connector* next, std::chrono::milliseconds drain) {
        auto done = std::make_shared<std::promise<bool>>();
        auto f = done->get_future();
        pipe_->replace("fake", next, drain, [done](bool drained) { done->set_value(drained); });
        return f;
    }

    // Opens the held action's gate, then drops the timer on the loop's thread (the fixture's
    // connector outlives the io_context).
    void open_gate() {
        net::post(ioc_, [this] { fake_.gate->cancel(); });
    }
    void drop_gate() {
        std::promise<void> released;
        net::post(ioc_, [this, &released] {
            fake_.gate.reset();
            released.set_value();
        });
        released.get_future().wait();
    }

    state::action_state state_of(const std::string& id) {
        return outbox_->get(id).value.value().state;
    }

    testing::temp_dir dir_;
    util::manual_clock clock_{start_time()};
    util::metrics_registry metrics_;
    workflows::engine engine_;
    done_recorder* recorder_ = nullptr;  // owned by engine_
    throwing_connector fake_;
    throwing_connector second_;  // what a reload builds from new settings
    std::unique_ptr<state::store> store_;
    std::unique_ptr<state::group_commit> committer_;
    std::unique_ptr<state::inbox> inbox_;
    std::unique_ptr<state::outbox> outbox_;
    std::unique_ptr<state::timers> timers_;
    std::unique_ptr<state::dead_letters> dead_;
    std::unique_ptr<state::change_log> changes_;
    std::unique_ptr<state::audit_log> audit_;
    std::optional<state::retention_policy> retention_;  // set before SetUp: prune on a schedule
    std::chrono::seconds reconcile_every_ = 0s;         // set before SetUp
    std::chrono::milliseconds idle_poll_ = 1s;          // set before SetUp
    std::chrono::milliseconds skip_after_ = 2ms;        // set before SetUp
    std::unique_ptr<state::pruner> pruner_;
    std::unique_ptr<connectors::skipping_time> waits_;  // set before SetUp: skip runtime waits
    net::io_context ioc_{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> guard_{
        ioc_.get_executor()};
    std::unique_ptr<pipeline> pipe_;
    std::thread thread_;
};

TEST_F(pipeline_unit,
       a_connector_that_throws_fails_that_event_which_is_dead_lettered_later_ones_flow) {
    append("first");
    append("throw");
    append("after");
    advance(0s);
    EXPECT_TRUE(has_record("first"));
    EXPECT_FALSE(has_record("after"));  // the queue keeps its order: it waits behind the failure
    advance(10s);                       // the second (last) attempt fails too: dead letter
    advance(10s);
    EXPECT_TRUE(has_record("after"));
    const auto dead = dead_->list(10).value;
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_NE(dead[0].error.find("null where a string was expected"), std::string::npos);
    EXPECT_TRUE(pipe_->alive());
    append("later");
    advance(0s);
    EXPECT_TRUE(has_record("later"));
}

TEST_F(pipeline_unit, a_perform_that_throws_is_reconciled_retried_then_dead_lettered_others_go_on) {
    enqueue("a-explode", "explode");
    enqueue("a-fine", "fine");
    advance(0s);
    EXPECT_EQ(state_of("a-fine"), state::action_state::done);
    // Its outcome was unknown: reconciled (not found), then retried after a backoff.
    EXPECT_EQ(state_of("a-explode"), state::action_state::pending);
    advance(1h);
    EXPECT_EQ(state_of("a-explode"), state::action_state::dead);
    EXPECT_EQ(fake_.performs.load(), 3);
    // Each rule hears how each action ended for good, the one that died after its retries too.
    const std::vector<std::pair<std::string, workflows::action_result>> ended = {
        {"a-fine", workflows::action_result::done},
        {"a-explode", workflows::action_result::failed}};
    EXPECT_EQ(recorder_->done(), ended);
    enqueue("a-next", "fine");
    advance(0s);
    EXPECT_EQ(state_of("a-next"), state::action_state::done);
    EXPECT_TRUE(pipe_->alive());
}

// An undecided outcome (the vendor could not say yet whether a send happened) is asked about
// again once reconcile_every has passed on the daemon's clock, not only in real time: under a
// simulated clock (the sandbox, the end-to-end tests) time moves by hours in a moment.
class pipeline_reconcile_unit : public pipeline_unit {
protected:
    pipeline_reconcile_unit() {
        reconcile_every_ = 60s;
        fake_.undecided_left = 1;
    }
};

TEST_F(pipeline_reconcile_unit, an_undecided_outcome_is_asked_again_when_the_daemons_clock_moves) {
    enqueue("a-explode", "explode");
    advance(0s);  // perform throws: the outcome is unknown and reconciled at once (undecided)
    EXPECT_EQ(fake_.reconciles.load(), 1);
    EXPECT_EQ(state_of("a-explode"), state::action_state::in_flight);
    advance(0s);  // neither clock moved by reconcile_every: not asked again
    EXPECT_EQ(fake_.reconciles.load(), 1);
    advance(61s);  // the daemon's clock did: asked again, found absent, retried later
    EXPECT_EQ(fake_.reconciles.load(), 2);
    EXPECT_NE(state_of("a-explode"), state::action_state::in_flight);
}

// Under the simulated clock an advance waits for lane work to end; work asleep in the connector
// runtime (a retry's backoff, a 429's pause) is skipped ahead, not waited out. The runtime's real
// clock is frozen here, so only a skip can end the sleeps: without it the advance never ends.
class pipeline_skip_unit : public pipeline_unit {
protected:
    pipeline_skip_unit() {
        waits_ = std::make_unique<connectors::skipping_time>(
            nullptr, [] { return connectors::steady_time{} + 1000h; });
        fake_.time = waits_->source();
    }
};

TEST_F(pipeline_skip_unit, an_advance_skips_the_runtimes_waits_instead_of_waiting_them_out) {
    enqueue("a-sleep", "sleep");
    auto advanced = net::co_spawn(ioc_, pipe_->advance(0s), net::use_future);
    // A fail-safe only: with the skip the advance ends at once; without it, never.
    ASSERT_EQ(advanced.wait_for(2min), std::future_status::ready) << "the waits were waited out";
    EXPECT_EQ(advanced.get(), start_time());  // the business clock did not move
    EXPECT_EQ(state_of("a-sleep"), state::action_state::done);
    EXPECT_EQ(waits_->skipped(), 70min);  // both waits, one after the other
    EXPECT_EQ(waits_->sleepers(), 0u);
}

// A wait that begins while an advance already waits for lane work to end (and, knowing of no
// wait to skip, would look again only after idle_poll: an hour here) wakes it and is skipped at
// once. Without the wake-up the advance waits the hour out.
class pipeline_skip_late_unit : public pipeline_skip_unit {
protected:
    pipeline_skip_late_unit() { idle_poll_ = 1h; }
};

TEST_F(pipeline_skip_late_unit, a_wait_that_begins_while_an_advance_waits_is_skipped_at_once) {
    enqueue("a-late", "late_sleep");
    auto advanced = net::co_spawn(ioc_, pipe_->advance(0s), net::use_future);
    fake_.gate_ready.get_future().wait();  // the action runs, with no wait the runtime knows of
    open_gate();                           // now it waits ten minutes in the runtime's time
    ASSERT_EQ(advanced.wait_for(2min), std::future_status::ready) << "the wait went unnoticed";
    EXPECT_EQ(state_of("a-late"), state::action_state::done);
    EXPECT_EQ(waits_->skipped(), 10min);
    drop_gate();
}

// When every running job sleeps, nothing but a skip can happen next: it comes at once, without
// waiting skip_after for something else to happen (an hour here, and idle_poll too). Without it
// the advance waits the hour out for each of the two waits.
class pipeline_skip_at_once_unit : public pipeline_skip_unit {
protected:
    pipeline_skip_at_once_unit() {
        skip_after_ = 1h;
        idle_poll_ = 1h;
    }
};

TEST_F(pipeline_skip_at_once_unit, when_every_job_sleeps_the_skip_comes_at_once) {
    enqueue("a-sleep", "sleep");
    auto advanced = net::co_spawn(ioc_, pipe_->advance(0s), net::use_future);
    ASSERT_EQ(advanced.wait_for(2min), std::future_status::ready) << "the skip waited";
    EXPECT_EQ(state_of("a-sleep"), state::action_state::done);
    EXPECT_EQ(waits_->skipped(), 70min);
    EXPECT_EQ(waits_->sleepers(), 0u);
}

// What reconciliation decided is audited with the connector's reason: an email whose outcome
// nobody can know is recorded as sent, and the audit says so rather than claiming it went out.
TEST_F(pipeline_unit, a_reconciled_outcome_is_audited_with_its_reason) {
    fake_.happened_detail = "outcome unknown: the vendor cannot be asked; not resent";
    enqueue("a-explode", "explode");
    advance(0s);  // perform throws: reconciled at once, "happened"
    EXPECT_EQ(state_of("a-explode"), state::action_state::done);
    // The rules hear of it as done (a follow-up counts the message as sent).
    const std::vector<std::pair<std::string, workflows::action_result>> ended = {
        {"a-explode", workflows::action_result::done}};
    EXPECT_EQ(recorder_->done(), ended);
    std::ostringstream lines;
    stream_audit(*store_, util::instant{}, 0, true, lines);
    std::istringstream in(lines.str());
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.value("decision", "") == "reconciled_happened") {
            found = true;
            EXPECT_EQ(j.value("action", ""), "a-explode");
            EXPECT_EQ(j.value("detail", ""), fake_.happened_detail) << line;
        }
    }
    EXPECT_TRUE(found) << lines.str();
}

// A vendor object with one writer at a time (a version token): actions naming the same object
// run one after the other, while the lane runs other work beside them.
TEST_F(pipeline_unit, actions_on_one_vendor_object_run_one_at_a_time) {
    enqueue("s-1", "serial", "invoice/7");
    enqueue("s-2", "serial", "invoice/7");
    enqueue("t-1", "fine");
    auto advanced = net::co_spawn(ioc_, pipe_->advance(0s), net::use_future);
    fake_.gate_ready.get_future().wait();
    // s-1 is held at the vendor: s-2 waits for it.
    EXPECT_EQ(state_of("s-2"), state::action_state::pending);
    net::post(ioc_, [this] { fake_.gate->cancel(); });
    advanced.get();
    drop_gate();
    EXPECT_EQ(state_of("s-1"), state::action_state::done);
    EXPECT_EQ(state_of("s-2"), state::action_state::done);
    EXPECT_EQ(state_of("t-1"), state::action_state::done);
    EXPECT_EQ(fake_.max_running.load(), 1);
}

// Simulated clock: an advance that arrives while a vendor call is under way (started by a kick,
// as a webhook's work is) lets it end at the time it began in before moving the clock; the call
// never sees time jump (a lost refresh answer must be retried inside the vendor's grace).
TEST_F(pipeline_unit, an_advance_moves_the_clock_only_after_work_under_way_has_ended) {
    fake_.clock = &clock_;
    const auto began = clock_.now();
    enqueue("s-1", "serial", "invoice/7");
    pipe_->kick();
    fake_.gate_ready.get_future().wait();  // under way, held at the vendor
    auto advanced = net::co_spawn(ioc_, pipe_->advance(1h), net::use_future);
    // Let the advance reach the loop (it is posted to the pipeline's strand; a few rounds of
    // the io_context), then open the gate.
    std::promise<void> opened;
    std::function<void(int)> later = [&](int n) {
        if (n > 0) {
            net::post(ioc_, [&later, n] { later(n - 1); });
            return;
        }
        fake_.gate->cancel();
        opened.set_value();
    };
    net::post(ioc_, [&later] { later(50); });
    opened.get_future().wait();
    EXPECT_EQ(advanced.get(), began + 1h);
    drop_gate();
    EXPECT_EQ(state_of("s-1"), state::action_state::done);
    ASSERT_TRUE(fake_.time_after_gate.has_value());
    EXPECT_EQ(*fake_.time_after_gate, began) << "the clock moved under the vendor call";
}

// Issue 18 item 24: a reload rebuilt the connector. Its lane starts nothing new, the action in
// flight finishes with the old connector, then the new one performs what is queued: each action
// once, none lost.
TEST_F(pipeline_unit, a_replaced_connector_finishes_its_action_in_flight_and_the_new_one_goes_on) {
    enqueue("s-1", "serial", "invoice/7");
    auto advanced = net::co_spawn(ioc_, pipe_->advance(0s), net::use_future);
    fake_.gate_ready.get_future().wait();
    auto drained = replace(&second_, 1h);
    enqueue("n-1", "fine");
    pipe_->kick();
    // The old connector still holds s-1: the swap waits for it.
    EXPECT_EQ(drained.wait_for(0s), std::future_status::timeout);
    open_gate();
    EXPECT_TRUE(drained.get());
    advanced.get();
    advance(0s);
    drop_gate();
    EXPECT_EQ(state_of("s-1"), state::action_state::done);
    EXPECT_EQ(state_of("n-1"), state::action_state::done);
    EXPECT_EQ(fake_.performs.load(), 1);    // s-1 only
    EXPECT_EQ(second_.performs.load(), 1);  // n-1
    // Events now go through the new connector too.
    append("after-swap");
    advance(0s);
    EXPECT_TRUE(has_record("after-swap"));
}

// Polling goes on with the new connector (its new base_url, interval, page size); the old one
// and a removed one are polled no more.
TEST_F(pipeline_unit, polling_moves_to_the_replacing_connector_and_stops_for_a_removed_one) {
    second_.polls_wanted = 1;
    EXPECT_TRUE(replace(&second_, 1s).get());
    fake_.polls_wanted = 1;
    advance(0s);
    EXPECT_EQ(second_.polls.load(), 1);
    EXPECT_EQ(fake_.polls.load(), 0);
    EXPECT_TRUE(replace(nullptr, 1s).get());
    second_.polls_wanted = 1;
    advance(1h);
    EXPECT_EQ(second_.polls.load(), 1);
}

// The drain is bounded: past it the new connector takes over while the old one's call ends on
// its own, and its outcome is still recorded.
TEST_F(pipeline_unit, a_drain_past_its_bound_swaps_anyway_and_the_old_call_is_still_recorded) {
    enqueue("s-1", "serial", "invoice/7");
    auto advanced = net::co_spawn(ioc_, pipe_->advance(0s), net::use_future);
    fake_.gate_ready.get_future().wait();
    EXPECT_FALSE(replace(&second_, 0ms).get());
    enqueue("n-1", "fine");
    pipe_->kick();
    open_gate();
    advanced.get();
    advance(0s);
    drop_gate();
    EXPECT_EQ(state_of("s-1"), state::action_state::done);
    EXPECT_EQ(state_of("n-1"), state::action_state::done);
    EXPECT_EQ(fake_.performs.load(), 1);
    EXPECT_EQ(second_.performs.load(), 1);
}

// A connector removed by a reload: its actions stay queued (saying why), not dead-lettered, and
// run once a connector of that name is configured again.
TEST_F(pipeline_unit, actions_of_a_removed_connector_wait_for_it_instead_of_dying) {
    EXPECT_TRUE(replace(nullptr, 1s).get());
    enqueue("w-1", "fine");
    advance(0s);
    const auto waiting = outbox_->get("w-1").value.value();
    EXPECT_EQ(waiting.state, state::action_state::pending);
    EXPECT_NE(waiting.last_error.find("no connector named 'fake' is configured"), std::string::npos)
        << waiting.last_error;
    advance(1h);
    EXPECT_EQ(state_of("w-1"), state::action_state::pending);
    EXPECT_TRUE(dead_->list(10).value.empty());
    EXPECT_EQ(fake_.performs.load(), 0);
    EXPECT_TRUE(replace(&second_, 1s).get());
    advance(5min);
    EXPECT_EQ(state_of("w-1"), state::action_state::done);
    EXPECT_EQ(second_.performs.load(), 1);
}

TEST_F(pipeline_unit, the_heartbeat_goes_stale_while_a_step_is_stuck_and_beats_again_after) {
    advance(0s);
    EXPECT_TRUE(pipe_->alive());
    append("block");
    // The loop is stuck inside a step: from now on it shows no sign of life.
    const auto stuck_at = std::chrono::steady_clock::now();
    EXPECT_FALSE(pipe_->alive(stuck_at + 21s));
    fake_.block.set_value();
    advance(0s);
    EXPECT_TRUE(has_record("block"));
    EXPECT_TRUE(pipe_->alive());
}

// /readyz follows the pipeline's heartbeat.
class fixed_status : public status_source {
public:
    status_snapshot s;
    status_snapshot snapshot() const override { return s; }
};

TEST(readiness, readyz_is_503_while_the_pipeline_is_stalled) {
    fixed_status src;
    src.s.config_loaded = true;
    src.s.state_open = true;
    util::metrics_registry metrics;
    http::router routes;
    install_status_routes(routes, src, metrics, std::make_shared<access_policy>());
    auto get = [&] {
        net::io_context ioc;
        http::request req;
        req.method = "GET";
        req.target = req.path = "/readyz";
        auto f = net::co_spawn(ioc, routes.as_handler()(req), net::use_future);
        ioc.run();
        return f.get();
    };
    EXPECT_EQ(get().status, 200u);
    src.s.pipeline_alive = false;
    const auto r = get();
    EXPECT_EQ(r.status, 503u);
    EXPECT_NE(r.body.find("\"pipeline_alive\":false"), std::string::npos) << r.body;
    EXPECT_NE(render_status_json(src.s).find("\"ready\": false"), std::string::npos);
}

TEST(readiness, the_watchdog_is_petted_only_while_the_pipeline_beats) {
    testing::temp_dir dir;
    const auto path = (dir.path() / "notify").string();
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof(addr.sun_path));
    std::copy(path.begin(), path.end(), addr.sun_path);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    auto received = [&] {
        char buf[64];
        const auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    };
    EXPECT_TRUE(sd_watchdog_tick(true));
    EXPECT_EQ(received(), "WATCHDOG=1");
    EXPECT_FALSE(sd_watchdog_tick(false));
    EXPECT_EQ(received(), "");
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd);
}

class pipeline_retention : public pipeline_unit {
protected:
    pipeline_retention() {
        state::retention_policy p;
        p.audit = std::chrono::days(10);
        retention_ = p;
    }
};

// Retention runs from the pipeline's loop, hourly by default, in bounded steps (2 rows here):
// audit lines older than the retention go, younger ones stay, and the figures count them.
TEST_F(pipeline_retention, prunes_old_rows_on_schedule_in_bounded_steps) {
    state::batch b(*store_);
    for (int i = 0; i < 5; ++i) {
        audit_->append(b, clock_.now() - std::chrono::days(20) + std::chrono::seconds(i), "{}");
    }
    audit_->append(b, clock_.now() + std::chrono::hours(2), R"({"young":true})");
    ASSERT_TRUE(store_->write(b, true).ok);

    advance(std::chrono::hours(1) + 1s);  // the pass due at the start, then the hourly one
    const auto figures = pipe_->retention();
    EXPECT_EQ(figures.pruned.at("audit"), 5u);
    EXPECT_GE(figures.passes, 1u);
    EXPECT_TRUE(figures.last_pass_at.has_value());
    auto left = audit_->read(clock_.now() - std::chrono::days(30), 10);
    ASSERT_TRUE(left.ok());
    ASSERT_EQ(left.value.size(), 1u);
    EXPECT_EQ(left.value[0].line, R"({"young":true})");
    EXPECT_NE(metrics_.render().find(R"(billsync_retention_pruned_total{table="audit"} 5)"),
              std::string::npos)
        << metrics_.render();
}

}  // namespace
}  // namespace billsync::daemon
