// SIGHUP and connectors (issue 18 item 24): the real binary, a generic connector, recording fake
// vendors for its actions. A connector whose settings changed is rebuilt (new secret, new action
// URL), one added is started, one removed is stopped with its queued actions kept; a rejected file
// keeps the running one.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "tests/fakes/action_recorder.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

constexpr const char* old_secret = "reload-test-old-secret";
constexpr const char* new_secret = "reload-test-new-secret";

std::string daemon_section() {
    return "[daemon]\n"
           "data_dir = \"data\"\n"
           "time_zone = \"America/New_York\"\n"
           "log_format = \"text\"\n"
           "[daemon.webhook_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.status_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.clock]\n"
           "mode = \"simulated\"\n"
           "start = \"2026-01-05T14:00:00Z\"\n";
}

// One generic connector; `secret_env` names the variable that holds its HMAC key.
std::string connector_section(const std::string& name,
                              const std::string& secret_env,
                              const std::string& action_url) {
    return "[connectors." + name +
           "]\n"
           "kind = \"generic\"\n"
           "secret = \"${env:" +
           secret_env +
           "}\"\n"
           "event_id_header = \"X-Event-Id\"\n"
           "action_url = \"" +
           action_url + "\"\n";
}

class reload_test : public ::testing::Test {
protected:
    void SetUp() override {
        daemon_ = std::make_unique<testing::billsync_daemon>(
            dir_.path(),
            daemon_section() + connector_section("demo", "OLD_SECRET", first_.url()),
            std::vector<std::string>{std::string("OLD_SECRET=") + old_secret,
                                     std::string("NEW_SECRET=") + new_secret});
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
    }
    void TearDown() override {
        if (daemon_) {
            EXPECT_EQ(daemon_->stop(), 0) << daemon_->output();
            EXPECT_EQ(daemon_->output().find(old_secret), std::string::npos);
            EXPECT_EQ(daemon_->output().find(new_secret), std::string::npos);
        }
    }
    // Writes the file and sends SIGHUP.
    void reload(const std::string& connectors) {
        testing::write_file(daemon_->config_path(), daemon_section() + connectors);
        daemon_->process().signal(SIGHUP);
    }
    http::simple_response deliver(const std::string& connector,
                                  const std::string& secret,
                                  const std::string& id) {
        return testing::post_signed(daemon_->webhook_port(),
                                    connector,
                                    secret,
                                    R"({"id":")" + id + R"(","amount":100})",
                                    "evt-" + connector + "-" + id);
    }
    nlohmann::json status() { return nlohmann::json::parse(daemon_->status_get("/status").body); }

    testing::temp_dir dir_;
    testing::action_recorder first_;
    testing::action_recorder second_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(reload_test, a_changed_connector_is_rebuilt_with_its_new_secret_and_action_url) {
    ASSERT_EQ(deliver("demo", old_secret, "r1").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_EQ(first_.counts().at("notify:demo/r1:1"), 1);

    reload(connector_section("demo", "NEW_SECRET", second_.url()));
    ASSERT_TRUE(daemon_->process().wait_for_line("Connector rebuilt connector=demo"))
        << daemon_->output();
    // Verification uses the new secret from now on.
    EXPECT_EQ(deliver("demo", old_secret, "r2").status, 401u);
    ASSERT_EQ(deliver("demo", new_secret, "r2").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    // The next action goes to the new vendor URL; the old one hears nothing more.
    EXPECT_EQ(second_.counts().at("notify:demo/r2:1"), 1);
    EXPECT_EQ(second_.counts().size(), 1u);
    EXPECT_EQ(first_.counts().size(), 1u);

    const auto s = status();
    EXPECT_EQ(s["config"]["reloads"], 1);
    EXPECT_EQ(s["config"]["reload_failures"], 0);
    EXPECT_EQ(s["connectors"][0]["state"], "running");
    // The same file again changes nothing.
    reload(connector_section("demo", "NEW_SECRET", second_.url()));
    ASSERT_TRUE(daemon_->process().wait_for_line("unchanged=1 rebuilt=0")) << daemon_->output();
    EXPECT_EQ(daemon_->process().count_lines("Connector rebuilt"), 1u);
}

TEST_F(reload_test, a_rejected_connector_section_keeps_the_running_connector) {
    reload(connector_section("demo", "NEW_SECRET", "/not-absolute"));
    ASSERT_TRUE(daemon_->process().wait_for_line("Configuration rejected")) << daemon_->output();
    EXPECT_EQ(deliver("demo", new_secret, "r1").status, 401u);
    ASSERT_EQ(deliver("demo", old_secret, "r1").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_EQ(first_.counts().at("notify:demo/r1:1"), 1);
    const auto s = status();
    EXPECT_EQ(s["config"]["reload_failures"], 1);
    EXPECT_EQ(s["config"]["reloads"], 0);
    EXPECT_NE(s["config"]["last_reload_error"].get<std::string>().find("connectors.demo"),
              std::string::npos)
        << s.dump();
}

TEST_F(reload_test, a_removed_connector_keeps_its_queued_actions_until_it_is_added_back) {
    // The vendor fails the first attempt: the action waits in the outbox for its retry.
    first_.fail_next(1, 503);
    ASSERT_EQ(deliver("demo", old_secret, "r1").status, 200u);
    ASSERT_NE(daemon_->advance(0), "");
    EXPECT_TRUE(first_.counts().empty());

    // demo goes, crm comes.
    reload(connector_section("crm", "NEW_SECRET", second_.url()));
    ASSERT_TRUE(daemon_->process().wait_for_line("Connector removed connector=demo"))
        << daemon_->output();
    ASSERT_TRUE(daemon_->process().wait_for_line("Connector added connector=crm"))
        << daemon_->output();
    EXPECT_EQ(deliver("demo", old_secret, "r2").status, 404u);
    ASSERT_EQ(deliver("crm", new_secret, "c1").status, 200u);
    ASSERT_NE(daemon_->advance(3600), "");
    EXPECT_EQ(second_.counts().at("notify:crm/c1:1"), 1);
    EXPECT_TRUE(first_.counts().empty());
    auto s = status();
    // demo's action is still queued, reported as waiting for a connector that is not configured,
    // and not dead-lettered.
    EXPECT_EQ(s["queues"]["outbox"]["by_connector"]["demo"]["count"], 1) << s.dump();
    EXPECT_EQ(s["queues"]["dead_letters"]["count"], 0) << s.dump();
    bool listed = false;
    for (const auto& c : s["connectors"]) {
        if (c["name"] == "demo") {
            listed = true;
            EXPECT_EQ(c["state"], "not_configured");
        }
    }
    EXPECT_TRUE(listed) << s.dump();

    // demo comes back: its queued action is performed, once.
    reload(connector_section("crm", "NEW_SECRET", second_.url()) +
           connector_section("demo", "OLD_SECRET", first_.url()));
    ASSERT_TRUE(daemon_->process().wait_for_line("Connector added connector=demo"))
        << daemon_->output();
    ASSERT_NE(daemon_->advance(600), "");
    EXPECT_EQ(first_.counts().at("notify:demo/r1:1"), 1);
    s = status();
    EXPECT_EQ(s["queues"]["outbox"]["count"], 0) << s.dump();
    EXPECT_EQ(s["config"]["reloads"], 2);
}

// The status listener's bearer_token and allowed_hosts take effect at a reload: reads need the
// new token from then on, the generated token for changes gives way to it, and a POST may name
// the newly allowed host.
TEST_F(reload_test, the_status_token_and_allowed_hosts_change_at_a_reload) {
    const auto port = daemon_->status_port();
    const http::header json_type{"Content-Type", "application/json"};
    const http::header proxy_host{"Host", "billing-proxy.example"};
    const auto retry = [&](const std::string& token) {
        return http::fetch("127.0.0.1",
                           port,
                           "POST",
                           "/deadletters/retry",
                           {json_type, proxy_host, {"Authorization", "Bearer " + token}},
                           R"({"id": "none"})");
    };
    EXPECT_EQ(http::fetch("127.0.0.1", port, "GET", "/status").status, 200u);
    EXPECT_EQ(retry(daemon_->status_token()).status, 403u) << "the proxy's name is not allowed";

    auto with_access = daemon_section();
    const std::string listener = "[daemon.status_listener]\naddress = \"127.0.0.1:0\"\n";
    const auto at = with_access.find(listener);
    ASSERT_NE(at, std::string::npos);
    with_access.insert(at + listener.size(),
                       "bearer_token = \"${env:NEW_SECRET}\"\n"
                       "allowed_hosts = [\"billing-proxy.example\"]\n");
    testing::write_file(daemon_->config_path(),
                        with_access + connector_section("demo", "OLD_SECRET", first_.url()));
    daemon_->process().signal(SIGHUP);
    ASSERT_TRUE(daemon_->process().wait_for_line("Status listener access changed"))
        << daemon_->output();

    EXPECT_EQ(http::fetch("127.0.0.1", port, "GET", "/status").status, 401u);
    const auto with_token = http::fetch("127.0.0.1",
                                        port,
                                        "GET",
                                        "/status",
                                        {{"Authorization", std::string("Bearer ") + new_secret}});
    ASSERT_EQ(with_token.status, 200u) << with_token.body;
    EXPECT_EQ(nlohmann::json::parse(with_token.body)["config"]["reloads"], 1);
    EXPECT_EQ(retry(daemon_->status_token()).status, 401u) << "the generated token gave way";
    const auto allowed = retry(new_secret);
    EXPECT_NE(allowed.status, 403u) << allowed.body;
    EXPECT_NE(allowed.status, 401u) << allowed.body;
    daemon_->use_status_token(new_secret);
}

}  // namespace
}  // namespace billsync
