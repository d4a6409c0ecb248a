// The durable pipeline end to end: the real binary, signed deliveries, the simulated clock and a
// recording fake vendor for outbox actions.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "tests/fakes/action_recorder.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/prometheus.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

constexpr const char* secret = "pipeline-test-secret";

std::string config_text(const std::string& action_url) {
    return std::string(
               "[daemon]\n"
               "data_dir = \"data\"\n"
               "time_zone = \"America/New_York\"\n"
               "log_format = \"text\"\n"
               "[daemon.webhook_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "max_body = \"64KiB\"\n"
               "[daemon.status_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[daemon.clock]\n"
               "mode = \"simulated\"\n"
               "start = \"2026-01-05T14:00:00Z\"\n"
               "[connectors.demo]\n"
               "kind = \"generic\"\n"
               "secret = \"${env:PIPELINE_SECRET}\"\n"
               "event_id_header = \"X-Event-Id\"\n"
               "action_url = \"") +
           action_url + "\"\n";
}

class pipeline_test : public ::testing::Test {
protected:
    void SetUp() override {
        daemon_ = std::make_unique<testing::billsync_daemon>(
            dir_.path(),
            config_text(recorder_.url()),
            std::vector<std::string>{std::string("PIPELINE_SECRET=") + secret});
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
    }
    void TearDown() override {
        if (daemon_) {
            EXPECT_EQ(daemon_->stop(), 0) << daemon_->output();
        }
    }
    http::simple_response deliver(const std::string& body, const std::string& event_id = {}) {
        return testing::post_signed(daemon_->webhook_port(), "demo", secret, body, event_id);
    }
    nlohmann::json status() { return nlohmann::json::parse(daemon_->status_get("/status").body); }
    std::string metrics() { return daemon_->status_get("/metrics").body; }

    testing::temp_dir dir_;
    testing::action_recorder recorder_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(pipeline_test, a_delivery_is_stored_processed_and_acted_on_once) {
    auto r = deliver(R"({"id":"r1","amount":100})", "evt-1");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find("stored"), std::string::npos);
    auto dup = deliver(R"({"id":"r1","amount":100})", "evt-1");
    EXPECT_EQ(dup.status, 200u);
    EXPECT_NE(dup.body.find("duplicate"), std::string::npos);

    ASSERT_NE(daemon_->advance(0), "");
    const auto counts = recorder_.counts();
    ASSERT_EQ(counts.size(), 1u);
    EXPECT_EQ(counts.at("notify:demo/r1:1"), 1);
    EXPECT_NE(recorder_.body_of("notify:demo/r1:1").find("\"amount\":100"), std::string::npos);

    const auto s = status();
    EXPECT_EQ(s["queues"]["inbox"]["count"], 0);
    EXPECT_EQ(s["queues"]["outbox"]["count"], 0);
    const auto m = metrics();
    std::string error;
    EXPECT_TRUE(testing::valid_prometheus_text(m, error)) << error;
    EXPECT_NE(m.find(R"(billsync_webhook_events_total{connector="demo",outcome="received"} 2)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find(R"(billsync_webhook_events_total{connector="demo",outcome="deduplicated"} 1)"),
              std::string::npos);
    EXPECT_NE(m.find(R"(billsync_actions_total{connector="demo",outcome="done"} 1)"),
              std::string::npos);

    // A new version of the record is a new action; the same content again is not.
    ASSERT_EQ(deliver(R"({"id":"r1","amount":50})", "evt-2").status, 200u);
    ASSERT_EQ(deliver(R"({"amount":50,"id":"r1"})", "evt-3").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_EQ(recorder_.counts().at("notify:demo/r1:2"), 1);
    EXPECT_EQ(recorder_.counts().size(), 2u);
}

TEST_F(pipeline_test, a_forged_signature_is_401_counted_logged_without_body_and_changes_nothing) {
    const std::string body = R"({"id":"forged","secret_marker":"do-not-log-me"})";
    auto r = http::fetch("127.0.0.1",
                         daemon_->webhook_port(),
                         "POST",
                         "/webhooks/demo",
                         {{"X-Signature", std::string(64, 'a')}},
                         body);
    EXPECT_EQ(r.status, 401u);
    auto unsigned_r =
        http::fetch("127.0.0.1", daemon_->webhook_port(), "POST", "/webhooks/demo", {}, body);
    EXPECT_EQ(unsigned_r.status, 401u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_TRUE(recorder_.counts().empty());
    EXPECT_NE(
        metrics().find(R"(billsync_webhook_events_total{connector="demo",outcome="rejected"} 2)"),
        std::string::npos);
    EXPECT_TRUE(daemon_->process().wait_for_line("Rejected webhook connector=demo"));
    EXPECT_EQ(daemon_->output().find("do-not-log-me"), std::string::npos);
    const auto [rc, out] = daemon_->cli({"inspect", "counts"});
    EXPECT_EQ(rc, 0) << out;
    const auto counts = nlohmann::json::parse(out.substr(out.find('{')));
    EXPECT_EQ(counts["inbox"], 0);
    EXPECT_EQ(counts["entities"], 0);
}

TEST_F(pipeline_test, unknown_connector_is_404_and_oversized_body_is_413) {
    EXPECT_EQ(testing::post_signed(daemon_->webhook_port(), "nobody", secret, "{}").status, 404u);
    // Issue 18 item 17: a connector without kinds takes no /<kind>, and dot segments are no kind.
    for (const auto* path : {"demo/extra", "demo/..", "demo/.", "demo/", "demo/%2e%2e"}) {
        EXPECT_EQ(
            testing::post_signed(daemon_->webhook_port(), path, secret, R"({"id":"k"})").status,
            404u)
            << path;
    }
    EXPECT_EQ(deliver(std::string(70 * 1024, ' ')).status, 413u);
}

TEST_F(pipeline_test, malformed_json_after_a_valid_signature_is_dead_lettered_and_acknowledged) {
    auto r = deliver("this is not json", "evt-bad");
    EXPECT_EQ(r.status, 200u);
    EXPECT_NE(r.body.find("dead_lettered"), std::string::npos);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_TRUE(recorder_.counts().empty());
    EXPECT_NE(metrics().find(R"(outcome="malformed"} 1)"), std::string::npos);
    // The operator sees it, read-only while the daemon runs.
    const auto [rc, out] = daemon_->cli({"deadletters", "list"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("intake/demo/id:evt-bad"), std::string::npos) << out;
    EXPECT_NE(out.find("body is not valid JSON"), std::string::npos) << out;
    EXPECT_EQ(status()["queues"]["dead_letters"]["count"], 1);
    // Dropping it goes through the running daemon.
    const auto [drc, dout] = daemon_->cli({"deadletters", "drop", "intake/demo/id:evt-bad"});
    EXPECT_EQ(drc, 0) << dout;
    EXPECT_EQ(status()["queues"]["dead_letters"]["count"], 0);
}

TEST_F(pipeline_test, durable_timers_fire_in_order_on_the_simulated_clock_and_survive_restart) {
    ASSERT_EQ(deliver(R"({"id":"late","remind_after_s":7200})", "e1").status, 200u);
    ASSERT_EQ(deliver(R"({"id":"early","remind_after_s":3600})", "e2").status, 200u);
    ASSERT_EQ(deliver(R"({"id":"restart","remind_after_s":86400})", "e3").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_EQ(recorder_.counts().size(), 3u);  // three notify actions
    EXPECT_EQ(daemon_->advance(10'800), "2026-01-05T17:00:00Z");
    auto order = recorder_.order();
    ASSERT_EQ(order.size(), 5u);
    EXPECT_EQ(order[3], "remind:demo/early:1");
    EXPECT_EQ(order[4], "remind:demo/late:1");

    // The third timer is still pending; it survives a restart (even a hard kill).
    daemon_->kill();
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    const auto [rc, out] = daemon_->cli({"inspect", "timer/remind/demo/restart"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("2026-01-06T14:00:00Z"), std::string::npos) << out;
    ASSERT_NE(daemon_->advance(86'400), "");
    EXPECT_EQ(recorder_.counts().at("remind:demo/restart:1"), 1);
}

TEST_F(pipeline_test, the_simulated_clock_resumes_at_the_stored_time_after_a_restart) {
    EXPECT_EQ(daemon_->advance(10'800), "2026-01-05T17:00:00Z");
    // A hard kill, then a clean stop: neither sends business time back to [daemon.clock] start.
    daemon_->kill();
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    EXPECT_EQ(status()["now"], "2026-01-05T17:00:00Z");
    EXPECT_EQ(daemon_->advance(3600), "2026-01-05T18:00:00Z");
    EXPECT_EQ(daemon_->stop(), 0);
    ASSERT_TRUE(daemon_->start()) << daemon_->output();
    EXPECT_EQ(status()["now"], "2026-01-05T18:00:00Z");
    EXPECT_EQ(daemon_->advance(0), "2026-01-05T18:00:00Z");
}

TEST(pipeline, the_configured_clock_start_applies_to_an_empty_state) {
    testing::temp_dir dir;
    testing::action_recorder recorder;
    testing::billsync_daemon d(
        dir.path(), config_text(recorder.url()), {std::string("PIPELINE_SECRET=") + secret});
    ASSERT_TRUE(d.start()) << d.output();
    EXPECT_EQ(d.advance(0), "2026-01-05T14:00:00Z");
    EXPECT_EQ(d.stop(), 0);
}

// After a burst is drained, /status and /metrics say so: no events or actions waiting, no age
// growing, and the timers the burst scheduled counted exactly.
TEST_F(pipeline_test, queue_depths_and_ages_are_true_after_a_drained_burst) {
    constexpr int threads = 4;
    constexpr int per_thread = 150;
    std::vector<std::thread> senders;
    std::atomic<int> acked{0};
    for (int t = 0; t < threads; ++t) {
        senders.emplace_back([this, t, &acked] {
            for (int i = 0; i < per_thread; ++i) {
                const auto id = "burst-" + std::to_string(t) + "-" + std::to_string(i);
                const auto r = deliver(R"({"id":")" + id + R"(","remind_after_s":3600})", id);
                acked += r.status == 200 ? 1 : 0;
            }
        });
    }
    for (auto& s : senders) {
        s.join();
    }
    ASSERT_EQ(acked.load(), threads * per_thread);
    ASSERT_NE(daemon_->advance(0), "");
    ASSERT_EQ(recorder_.counts().size(), static_cast<std::size_t>(threads * per_thread));

    const auto s = status();
    EXPECT_EQ(s["queues"]["inbox"]["count"], 0) << s.dump(2);
    EXPECT_EQ(s["queues"]["outbox"]["count"], 0) << s.dump(2);
    EXPECT_EQ(s["queues"]["timers"]["count"], threads * per_thread) << s.dump(2);
    const auto m = metrics();
    for (const auto* queue : {"inbox", "outbox"}) {
        for (const auto* series : {"billsync_queue_depth", "billsync_queue_oldest_age_seconds"}) {
            const auto prefix =
                std::string(series) + "{queue=\"" + queue + "\",connector=\"demo\"} ";
            const auto at = m.find(prefix);
            if (at != std::string::npos) {
                EXPECT_EQ(m.substr(at + prefix.size(), 2), "0\n") << prefix << "\n" << m;
            }
        }
    }
    // An hour later the reminders fire and the timers are gone.
    ASSERT_NE(daemon_->advance(3600), "");
    EXPECT_EQ(status()["queues"]["timers"]["count"], 0);
    EXPECT_EQ(status()["queues"]["outbox"]["count"], 0);
}

TEST_F(pipeline_test, failing_actions_back_off_honour_retry_after_and_run_once) {
    recorder_.fail_next(2, 503, 600);
    ASSERT_EQ(deliver(R"({"id":"flaky"})", "f1").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_EQ(recorder_.posts(), 1u);
    ASSERT_NE(daemon_->advance(599), "");
    EXPECT_EQ(recorder_.posts(), 1u);  // Retry-After: 600 is honoured
    ASSERT_NE(daemon_->advance(1), "");
    EXPECT_EQ(recorder_.posts(), 2u);
    ASSERT_NE(daemon_->advance(600), "");
    EXPECT_EQ(recorder_.posts(), 3u);
    EXPECT_EQ(recorder_.counts().at("notify:demo/flaky:1"), 1);
}

TEST_F(pipeline_test, a_permanently_refused_action_becomes_a_dead_letter_and_can_be_retried) {
    recorder_.fail_next(1, 422);
    ASSERT_EQ(deliver(R"({"id":"refused"})", "p1").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_TRUE(recorder_.counts().empty());
    auto [rc, out] = daemon_->cli({"deadletters", "list"});
    EXPECT_NE(out.find("outbox/notify:demo/refused:1"), std::string::npos) << out;
    std::tie(rc, out) = daemon_->cli({"deadletters", "retry", "outbox/notify:demo/refused:1"});
    EXPECT_EQ(rc, 0) << out;
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_EQ(recorder_.counts().at("notify:demo/refused:1"), 1);
}

TEST(pipeline, a_full_disk_answers_503_turns_not_ready_and_loses_no_acknowledged_delivery) {
    testing::temp_dir dir;
    testing::action_recorder recorder;
    testing::billsync_daemon d(
        dir.path(), config_text(recorder.url()), {std::string("PIPELINE_SECRET=") + secret});
    // Files may not grow past 1 MiB: the write-ahead log fills up after a few hundred deliveries.
    ASSERT_TRUE(d.start(1u << 20)) << d.output();
    const std::string pad(900, 'x');
    int acked = 0;
    unsigned refused = 0;
    for (int i = 0; i < 5000 && refused == 0; ++i) {
        const auto body = R"({"id":"big)" + std::to_string(i) + R"(","pad":")" + pad + "\"}";
        const auto r =
            testing::post_signed(d.webhook_port(), "demo", secret, body, "big" + std::to_string(i));
        if (r.status == 200) {
            ++acked;
        } else {
            refused = r.status;
        }
    }
    EXPECT_EQ(refused, 503u);
    EXPECT_GT(acked, 0);
    const auto ready = d.status_get("/readyz");
    EXPECT_EQ(ready.status, 503u);
    EXPECT_NE(ready.body.find("\"state_writable\":false"), std::string::npos) << ready.body;
    d.kill();

    // With room again, every acknowledged delivery is there and gets processed.
    ASSERT_TRUE(d.start()) << d.output();
    ASSERT_NE(d.advance(0), "");
    const auto [rc, out] = d.cli({"inspect", "counts"});
    ASSERT_EQ(rc, 0) << out;
    const auto rows = nlohmann::json::parse(out.substr(out.find('{')));
    EXPECT_GE(rows["entities"].get<int>(), acked);
    EXPECT_EQ(rows["inbox"], 0);
    EXPECT_GE(recorder.counts().size(), static_cast<std::size_t>(acked));
    EXPECT_EQ(d.stop(), 0);
}

// A WAL append that failed (here: the file size cap, as on a full disk) stops RocksDB's writes.
// The daemon retries DB::Resume with backoff; RocksDB 7.8 classes a failed WAL append as fatal
// (it cannot resume in place), so once there is room again the daemon exits with EX_TEMPFAIL
// (75) for the service manager to restart it (Restart=on-failure), never sooner, and the
// restarted daemon is ready with every acknowledged delivery. (A resumable error clears in place
// and logs "State is writable again".)
TEST(pipeline, after_a_full_disk_clears_the_daemon_recovers_without_an_operator) {
    testing::temp_dir dir;
    testing::action_recorder recorder;
    testing::billsync_daemon d(
        dir.path(), config_text(recorder.url()), {std::string("PIPELINE_SECRET=") + secret});
    ASSERT_TRUE(d.start(1u << 20)) << d.output();
    const std::string pad(900, 'x');
    unsigned refused = 0;
    int acked = 0;
    for (int i = 0; i < 5000 && refused == 0; ++i) {
        const auto body = R"({"id":"big)" + std::to_string(i) + R"(","pad":")" + pad + "\"}";
        const auto r =
            testing::post_signed(d.webhook_port(), "demo", secret, body, "big" + std::to_string(i));
        if (r.status == 200) {
            ++acked;
        } else {
            refused = r.status;
        }
    }
    ASSERT_EQ(refused, 503u);
    // While the disk stays full the daemon keeps trying and stays up, not ready.
    ASSERT_TRUE(d.process().wait_for_line("State still not writable", std::chrono::seconds(30)))
        << d.output();
    EXPECT_EQ(d.status_get("/readyz").status, 503u);

    ASSERT_TRUE(d.process().set_max_file_bytes(0));  // room again
    const auto rc = d.process().wait_exit(std::chrono::seconds(60));
    ASSERT_TRUE(rc.has_value()) << d.output();
    EXPECT_EQ(*rc, 75) << d.output();
    EXPECT_NE(d.output().find("exiting to be restarted"), std::string::npos) << d.output();

    // What the service manager does: start it again. Ready, nothing acknowledged lost.
    ASSERT_TRUE(d.start()) << d.output();
    EXPECT_EQ(d.status_get("/readyz").status, 200u);
    ASSERT_NE(d.advance(0), "");
    const auto [code, out] = d.cli({"inspect", "counts"});
    ASSERT_EQ(code, 0) << out;
    const auto rows = nlohmann::json::parse(out.substr(out.find('{')));
    EXPECT_GE(rows["entities"].get<int>(), acked);
    EXPECT_EQ(rows["inbox"], 0);
    EXPECT_EQ(d.stop(), 0);
}

TEST(pipeline, clock_advance_does_not_exist_in_system_mode) {
    testing::temp_dir dir;
    testing::billsync_daemon d(dir.path(),
                               "[daemon]\ndata_dir = \"data\"\ntime_zone = \"UTC\"\n"
                               "[daemon.webhook_listener]\naddress = \"127.0.0.1:0\"\n"
                               "[daemon.status_listener]\naddress = \"127.0.0.1:0\"\n");
    ASSERT_TRUE(d.start()) << d.output();
    EXPECT_EQ(d.status_post("/clock/advance", R"({"seconds":60})").status, 404u);
    EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace billsync
