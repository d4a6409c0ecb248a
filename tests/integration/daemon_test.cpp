// Starts the real billsync binary and exercises its status routes, reload and stop.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "tests/fakes/daemon_process.hpp"
#include "tests/fakes/prometheus.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using namespace std::chrono_literals;

std::string config_text(const std::filesystem::path& data_dir, const std::string& log_level) {
    return "[daemon]\n"
           "data_dir = \"" +
           data_dir.string() +
           "\"\n"
           "time_zone = \"America/New_York\"\n"
           "log_level = \"" +
           log_level +
           "\"\n"
           "log_format = \"text\"\n"
           "shutdown_grace = \"5s\"\n"
           "[daemon.webhook_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.status_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[connectors.demo]\n"
           "kind = \"generic\"\n"
           "secret = \"${env:BILLSYNC_TEST_SECRET}\"\n";
}

// Receives sd_notify datagrams on a socket of our own, as systemd would.
class notify_socket {
public:
    explicit notify_socket(const std::filesystem::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~notify_socket() { ::close(fd_); }
    // Next datagram, or "" after a 10 s timeout.
    std::string next() {
        char buf[512];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    std::string env() const { return "NOTIFY_SOCKET=" + path_.string(); }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

TEST(daemon, serves_status_routes_reloads_and_stops_cleanly) {
    testing::temp_dir dir;
    const auto config = dir / "billsync.toml";
    const auto ports = dir / "ports.json";
    testing::write_file(config, config_text(dir / "data", "info"));
    notify_socket notify(dir / "notify.sock");

    testing::daemon_process d({testing::billsync_binary(),
                               "run",
                               "--config",
                               config.string(),
                               "--ports-file",
                               ports.string()},
                              {"BILLSYNC_TEST_SECRET=hmac-secret-for-tests", notify.env()});
    ASSERT_TRUE(d.wait_for_line("Started")) << d.output();
    EXPECT_EQ(notify.next(), "READY=1");
    const auto p = nlohmann::json::parse(testing::read_file(ports));
    const std::uint16_t status_port = p.at("status_port");

    auto health = http::fetch("127.0.0.1", status_port, "GET", "/healthz");
    EXPECT_EQ(health.status, 200u);
    auto ready = http::fetch("127.0.0.1", status_port, "GET", "/readyz");
    EXPECT_EQ(ready.status, 200u) << ready.body;

    auto status = http::fetch("127.0.0.1", status_port, "GET", "/status");
    ASSERT_EQ(status.status, 200u);
    auto s = nlohmann::json::parse(status.body);
    EXPECT_TRUE(s.at("version").is_string());
    EXPECT_TRUE(s.at("uptime_s").is_number_integer());
    EXPECT_EQ(s.at("config").at("file"), config.string());
    EXPECT_TRUE(s.at("config").at("loaded_at").is_string());
    EXPECT_EQ(s.at("connectors").at(0).at("name"), "demo");
    EXPECT_EQ(s.at("connectors").at(0).at("kind"), "generic");
    EXPECT_TRUE(s.at("queues").is_object());
    EXPECT_EQ(s.at("ready"), true);
    EXPECT_EQ(status.body.find("hmac-secret-for-tests"), std::string::npos);

    auto metrics = http::fetch("127.0.0.1", status_port, "GET", "/metrics");
    ASSERT_EQ(metrics.status, 200u);
    std::string error;
    EXPECT_TRUE(testing::valid_prometheus_text(metrics.body, error)) << error;
    EXPECT_NE(metrics.body.find("billsync_build_info{"), std::string::npos);
    EXPECT_NE(
        metrics.body.find(
            "billsync_http_requests_total{listener=\"status\",route=\"/status\",code=\"200\"} 1"),
        std::string::npos)
        << metrics.body;

    // A broken config is rejected and the old one keeps running.
    testing::write_file(config, config_text(dir / "data", "info") + "[daemon.bogus]\n");
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("Configuration rejected")) << d.output();
    EXPECT_EQ(notify.next().rfind("RELOADING=1", 0), 0u);
    EXPECT_EQ(notify.next(), "READY=1");
    s = nlohmann::json::parse(http::fetch("127.0.0.1", status_port, "GET", "/status").body);
    EXPECT_EQ(s.at("config").at("reload_failures"), 1);
    EXPECT_EQ(s.at("config").at("reloads"), 0);

    // A valid one takes effect.
    testing::write_file(config, config_text(dir / "data", "debug"));
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_line("Configuration reloaded")) << d.output();
    EXPECT_EQ(notify.next().rfind("RELOADING=1", 0), 0u);
    EXPECT_EQ(notify.next(), "READY=1");
    s = nlohmann::json::parse(http::fetch("127.0.0.1", status_port, "GET", "/status").body);
    EXPECT_EQ(s.at("config").at("reloads"), 1);
    EXPECT_TRUE(s.at("config").at("last_reload_error").is_null());

    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0) << d.output();
    EXPECT_EQ(notify.next(), "STOPPING=1");
    EXPECT_EQ(d.output().find("hmac-secret-for-tests"), std::string::npos);
}

TEST(daemon, validate_reports_every_error_with_position_and_exit_78) {
    testing::temp_dir dir;
    const auto config = dir / "bad.toml";
    testing::write_file(config,
                        "[daemon]\n"
                        "data_dir = \"/tmp/x\"\n"
                        "time_zone = \"Mars/Olympus\"\n"
                        "shutdown_grace = \"soon\"\n");
    testing::daemon_process v(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", config.string()});
    EXPECT_EQ(v.wait_exit(), 78);
    const auto out = v.output();
    EXPECT_NE(out.find(config.string() + ":3:1: error:"), std::string::npos) << out;
    EXPECT_NE(out.find(config.string() + ":4:1: error:"), std::string::npos) << out;
}

TEST(daemon, validate_accepts_a_good_file_and_prints_no_secret) {
    testing::temp_dir dir;
    const auto config = dir / "good.toml";
    testing::write_file(config, config_text(dir / "data", "info"));
    testing::daemon_process v({testing::billsync_binary(), "validate", "--config", config.string()},
                              {"BILLSYNC_TEST_SECRET=hmac-secret-for-tests"});
    EXPECT_EQ(v.wait_exit(), 0) << v.output();
    EXPECT_EQ(v.output().find("hmac-secret-for-tests"), std::string::npos);
}

TEST(daemon, validate_no_environment_checks_the_production_sample_without_its_secrets) {
    const auto sample = std::filesystem::path(BILLSYNC_SOURCE_DIR) / "packaging" / "billsync.toml";
    testing::daemon_process v(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", sample.string()},
        {"CREDENTIALS_DIRECTORY="},
        true);
    EXPECT_EQ(v.wait_exit(), 0) << v.output();
    EXPECT_EQ(v.output().find("error"), std::string::npos) << v.output();
    EXPECT_NE(v.output().find("ok (7 connectors; secrets, data_dir and listeners not checked)"),
              std::string::npos)
        << v.output();
    // Without the flag the same file needs its credentials.
    testing::daemon_process full(
        {testing::billsync_binary(), "validate", "--config", sample.string()},
        {"CREDENTIALS_DIRECTORY="});
    EXPECT_EQ(full.wait_exit(), 78);
    EXPECT_NE(full.output().find("needs $CREDENTIALS_DIRECTORY"), std::string::npos)
        << full.output();
}

// A workflow that the daemon could not build (here: a weekly report with recipients and no email
// connector) is an error of `validate`, at its table, not only an ERROR in the daemon's log.
TEST(daemon, validate_reports_a_workflow_that_cannot_run_at_its_table) {
    testing::temp_dir dir;
    const auto config = dir / "report.toml";
    testing::write_file(config,
                        "[daemon]\n"
                        "data_dir = \"data\"\n"
                        "time_zone = \"America/New_York\"\n"
                        "\n"
                        "[report]\n"
                        "to = [\"partner@firm.example\"]\n");
    testing::daemon_process v(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", config.string()});
    EXPECT_EQ(v.wait_exit(), 78);
    const auto out = v.output();
    EXPECT_NE(out.find(config.string() +
                       ":5:1: error: workflow 'weekly_report' cannot run: [report] has recipients "
                       "in 'to' but no email connector is enabled"),
              std::string::npos)
        << out;
    // Without recipients the same file is fine: snapshots are kept, nothing is emailed.
    testing::write_file(config,
                        "[daemon]\n"
                        "data_dir = \"data\"\n"
                        "time_zone = \"America/New_York\"\n"
                        "\n"
                        "[report]\n"
                        "enabled = true\n");
    testing::daemon_process ok(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", config.string()});
    EXPECT_EQ(ok.wait_exit(), 0) << ok.output();
}

TEST(daemon, validate_refuses_a_task_connector_that_creates_no_tasks) {
    testing::temp_dir dir;
    const auto config = dir / "tasks.toml";
    testing::write_file(config,
                        "[daemon]\n"
                        "data_dir = \"data\"\n"
                        "time_zone = \"America/New_York\"\n"
                        "\n"
                        "[connectors.mail]\n"
                        "kind = \"smtp\"\n"
                        "host = \"smtp.firm.example\"\n"
                        "tls = \"none\"\n"
                        "from_email = \"billing@firm.example\"\n"
                        "\n"
                        "[followup]\n"
                        "firm_name = \"Smith & Lee CPA\"\n"
                        "firm_phone = \"+1 555 0100\"\n"
                        "task_connector = \"mail\"\n");
    testing::daemon_process v(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", config.string()});
    EXPECT_EQ(v.wait_exit(), 78);
    const auto out = v.output();
    EXPECT_NE(out.find(":11:1: error: workflow 'followup' cannot run: [followup] task_connector "
                       "'mail' is not an enabled connector that creates tasks (task.create)"),
              std::string::npos)
        << out;
}

// Issue 12: time kept in QuickBooks Online. [draft_time] takes any connector whose kind performs
// time_entry.create (QBO's does) and refuses one that drafts no time, naming the action.
TEST(daemon, validate_takes_a_qbo_time_connector_and_refuses_one_that_drafts_no_time) {
    testing::temp_dir dir;
    const auto config = dir / "time.toml";
    const auto text = [](const std::string& time_connector) {
        return "[daemon]\n"
               "data_dir = \"data\"\n"
               "time_zone = \"America/New_York\"\n"
               "\n"
               "[connectors.books]\n"
               "kind = \"qbo\"\n"
               "client_id = \"ABcdEFgh0123456789\"\n"
               "client_secret = \"${env:BILLSYNC_QBO_CLIENT_SECRET}\"\n"
               "realm_id = \"1185883450\"\n"
               "\n"
               "[connectors.mail]\n"
               "kind = \"smtp\"\n"
               "host = \"smtp.firm.example\"\n"
               "tls = \"none\"\n"
               "from_email = \"billing@firm.example\"\n"
               "\n"
               "[sources]\n"
               "time_entries = \"books\"\n"
               "\n"
               "[draft_time]\n"
               "connector = \"" +
               time_connector +
               "\"\n"
               "\n"
               "[draft_time.work_types.\"1040 Individual Return\"]\n"
               "project = \"-\"\n"
               "task = \"Tax Preparation\"\n"
               "hours = \"3.5\"\n";
    };
    testing::write_file(config, text("books"));
    testing::daemon_process ok(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", config.string()});
    EXPECT_EQ(ok.wait_exit(), 0) << ok.output();
    testing::write_file(config, text("mail"));
    testing::daemon_process v(
        {testing::billsync_binary(), "validate", "--no-environment", "--config", config.string()});
    EXPECT_EQ(v.wait_exit(), 78);
    EXPECT_NE(v.output().find("workflow 'draft_time' cannot run: [draft_time] connector 'mail' "
                              "does not draft time entries (its kind does not perform "
                              "time_entry.create)"),
              std::string::npos)
        << v.output();
}

// Under journald the daemon's log goes through the platform layer's system log: one
// sd-daemon priority-prefixed line per message, secrets redacted as everywhere.
TEST(daemon, under_journald_logs_priority_prefixed_lines) {
    testing::temp_dir dir;
    const auto config = dir / "billsync.toml";
    auto text = config_text(dir / "data", "info");
    const std::string text_format = "log_format = \"text\"";
    text.replace(text.find(text_format), text_format.size(), "log_format = \"journald\"");
    testing::write_file(config, text);
    testing::daemon_process d({testing::billsync_binary(), "run", "--config", config.string()},
                              {"BILLSYNC_TEST_SECRET=hmac-secret-for-tests"});
    ASSERT_TRUE(d.wait_for_line("Started")) << d.output();
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0) << d.output();
    const auto out = d.output();
    EXPECT_NE(out.find("<6>[daemon] Started version="), std::string::npos) << out;
    EXPECT_NE(out.find("<6>[daemon] Stopped"), std::string::npos) << out;
    EXPECT_EQ(out.find("hmac-secret-for-tests"), std::string::npos) << out;
}

TEST(daemon, version_names_the_libraries) {
    testing::daemon_process v({testing::billsync_binary(), "version"});
    EXPECT_EQ(v.wait_exit(), 0);
}

TEST(daemon, refuses_to_start_on_a_bad_config) {
    testing::temp_dir dir;
    const auto config = dir / "bad.toml";
    testing::write_file(config, "[daemon]\ndata_dir = 5\n");
    testing::daemon_process d({testing::billsync_binary(), "run", "--config", config.string()});
    EXPECT_EQ(d.wait_exit(), 78);
}

}  // namespace
}  // namespace billsync
