// Twilio webhooks through the real daemon: the simulator texts and reports statuses to the
// webhook listener, signed for the configured public_url.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "sim/twilio_simulator.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/crypto.hpp"

namespace billsync {
namespace {

const std::string public_url = "https://billsync.example.com";

class twilio_daemon_test : public ::testing::Test {
protected:
    void SetUp() override {
        sim_.add_routes(server_.routes());
        sim_.configure(server_);
        ASSERT_EQ(server_.start(), "");
        const auto& o = sim_.options();
        daemon_ = std::make_unique<testing::billsync_daemon>(
            dir_.path(),
            "[daemon]\n"
            "data_dir = \"data\"\n"
            "time_zone = \"America/New_York\"\n"
            "log_format = \"text\"\n"
            "[daemon.webhook_listener]\n"
            "address = \"127.0.0.1:0\"\n"
            "[daemon.status_listener]\n"
            "address = \"127.0.0.1:0\"\n"
            "[daemon.clock]\n"
            "mode = \"simulated\"\n"
            "start = \"2026-01-05T14:00:00Z\"\n"
            "[connectors.twilio]\n"
            "base_url = \"" +
                server_.base_url() +
                "\"\n"
                "account_sid = \"" +
                o.account_sid +
                "\"\n"
                "auth_token = \"${env:TWILIO_TOKEN}\"\n"
                "from = \"" +
                o.numbers.front() +
                "\"\n"
                "public_url = \"" +
                public_url + "\"\n",
            std::vector<std::string>{"TWILIO_TOKEN=" + o.auth_token});
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
        sim_.set_callback_base("http://127.0.0.1:" + std::to_string(daemon_->webhook_port()));
    }
    void TearDown() override {
        if (daemon_) {
            EXPECT_EQ(daemon_->stop(), 0) << daemon_->output();
        }
    }
    std::string webhook(const std::string& kind) const {
        return "http://127.0.0.1:" + std::to_string(daemon_->webhook_port()) + "/webhooks/twilio/" +
               kind;
    }
    nlohmann::json status() { return nlohmann::json::parse(daemon_->status_get("/status").body); }

    testing::temp_dir dir_;
    simulators::twilio_simulator sim_;
    simulators::sim_server server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(twilio_daemon_test, signed_texts_and_status_callbacks_are_stored_and_processed) {
    EXPECT_EQ(sim_.send_inbound(webhook("sms"),
                                "+14155550123",
                                sim_.options().numbers.front(),
                                "STOP",
                                public_url + "/webhooks/twilio/sms"),
              std::vector<unsigned>{200});
    // Signed for the loopback address instead of the public URL: refused.
    EXPECT_EQ(sim_.send_inbound(webhook("sms"), "+14155550123", "+15005550006", "hello"),
              std::vector<unsigned>{401});

    // A message sent through the simulator reports its statuses to billsync.
    const auto& o = sim_.options();
    const auto res = http::fetch(
        "127.0.0.1",
        server_.port(),
        "POST",
        "/2010-04-01/Accounts/" + o.account_sid + "/Messages.json",
        {{"Authorization", "Basic " + util::base64_encode(o.account_sid + ":" + o.auth_token)},
         {"Content-Type", "application/x-www-form-urlencoded"}},
        "To=%2B14155550199&From=%2B15005550006&Body=Hi&StatusCallback=" +
            http::percent_encode(public_url + "/webhooks/twilio/status?delivery=inv-7"));
    ASSERT_EQ(res.status, 201u) << res.body;
    EXPECT_EQ(sim_.flush_status_callbacks(), (std::vector<unsigned>{200, 200}));

    ASSERT_NE(daemon_->advance(0), "");
    const auto s = status();
    EXPECT_EQ(s["queues"]["inbox"]["count"], 0) << s.dump();
    EXPECT_EQ(s["queues"]["dead_letters"]["count"], 0) << s.dump();
    const auto m = daemon_->status_get("/metrics").body;
    EXPECT_NE(m.find(R"(billsync_webhook_events_total{connector="twilio",outcome="verified"} 3)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find(R"(billsync_webhook_events_total{connector="twilio",outcome="rejected"} 1)"),
              std::string::npos)
        << m;
    EXPECT_EQ(daemon_->output().find(o.auth_token), std::string::npos);
}

}  // namespace
}  // namespace billsync
