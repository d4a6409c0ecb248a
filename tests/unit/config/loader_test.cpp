#include "config/loader.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "tests/unit/config/test_support.hpp"

namespace billsync::config {
namespace {

// A secret the connector sections below resolve from the environment (long enough to be masked).
[[maybe_unused]] const int secret_env_set =
    ::setenv("BILLSYNC_LOADER_TEST_SECRET", "loader-test-secret-value-of-32-chars+", 1);

using namespace std::chrono_literals;
using testing::lines_of;
using testing::load_text;
using testing::scoped_env;

constexpr std::string_view minimal =
    "[daemon]\n"
    "data_dir = \"/var/lib/billsync\"\n"
    "time_zone = \"UTC\"\n";

TEST(loader, minimal_file_gets_every_default) {
    auto r = load_text(minimal);
    ASSERT_TRUE(r.config) << r.rendered();
    EXPECT_TRUE(r.diags.empty());
    const auto& d = r.config->daemon;
    EXPECT_EQ(d.data_dir, "/var/lib/billsync");
    EXPECT_EQ(d.time_zone, "UTC");
    EXPECT_EQ(d.log_level, "info");
    EXPECT_EQ(d.log_fmt, log_format::automatic);
    EXPECT_EQ(d.shutdown_grace, 10s);
    EXPECT_EQ(d.refresh_wait, 10s);
    EXPECT_EQ(d.webhook.address.text(), "0.0.0.0:8080");
    EXPECT_EQ(d.status.address.text(), "127.0.0.1:8081");
    for (const auto* l : {&d.webhook, &d.status}) {
        EXPECT_EQ(l->limits.max_body_bytes, 1024U * 1024U);
        EXPECT_EQ(l->limits.max_header_bytes, 16U * 1024U);
        EXPECT_EQ(l->limits.read_timeout, 10s);
        EXPECT_EQ(l->limits.idle_timeout, 60s);
        EXPECT_EQ(l->limits.max_connections, 1024U);
    }
    EXPECT_FALSE(d.status_token);
    EXPECT_FALSE(d.secrets_key);
    EXPECT_EQ(d.public_url, "");
    EXPECT_EQ(d.clock, clock_mode::system);
    EXPECT_TRUE(r.config->connectors.empty());
    EXPECT_EQ(r.config->file, "billsync.toml");
    EXPECT_EQ(d.where.data_dir.line, 2U);
    EXPECT_EQ(d.where.webhook_address.line, 1U);  // absent: the nearest table
}

TEST(loader, retention_defaults_dotted_keys_and_bounds) {
    auto defaults = load_text(minimal);
    ASSERT_TRUE(defaults.config) << defaults.rendered();
    const auto& dr = defaults.config->daemon.retention;
    EXPECT_EQ(dr.dedup_days, 30);
    EXPECT_EQ(dr.connector_events_days, 30);
    EXPECT_EQ(dr.audit_days, 400);
    EXPECT_EQ(dr.changes_days, 30);
    EXPECT_EQ(dr.outbox_days, 30);
    EXPECT_EQ(dr.outbox_seen_days, 400);
    EXPECT_EQ(dr.interval, 1h);
    EXPECT_EQ(dr.chunk, 1000);

    auto r = load_text(std::string(minimal) +
                       "retention.dedup_days = 7\n"
                       "retention.audit_days = 0\n"
                       "retention.interval = \"15m\"\n");
    ASSERT_TRUE(r.config) << r.rendered();
    EXPECT_EQ(r.config->daemon.retention.dedup_days, 7);
    EXPECT_EQ(r.config->daemon.retention.audit_days, 0);  // keep for ever
    EXPECT_EQ(r.config->daemon.retention.interval, 15min);

    // Shorter than SendGrid's 3-day redelivery window, or markers shorter than dedup: refused.
    auto bad = load_text(std::string(minimal) +
                         "[daemon.retention]\n"
                         "dedup_days = 2\n"
                         "outbox_seen_days = 20\n"
                         "dedup_day = 5\n");
    EXPECT_FALSE(bad.config);
    const auto text = bad.rendered();
    EXPECT_NE(text.find("'dedup_days' must be 0 (keep for ever) or at least 3 days"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("'outbox_seen_days' must be 0 (keep for ever) or at least 90 days"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("unknown key 'dedup_day'"), std::string::npos) << text;
}

TEST(loader, reads_every_daemon_key) {
    const scoped_env key("BILLSYNC_TEST_SECRETS_KEY", "key-material-123");
    const scoped_env token("BILLSYNC_TEST_STATUS_TOKEN", "status-token-456");
    auto r = load_text(R"(
[daemon]
data_dir = "/srv/billsync"
time_zone = "America/Chicago"
log_level = "debug"
log_format = "json"
shutdown_grace = "1m30s"
refresh_wait = "30s"
secrets_key = "${env:BILLSYNC_TEST_SECRETS_KEY}"
public_url = "https://billsync.example.com/base"

[daemon.webhook_listener]
address = "[::]:9000"
max_body = "2MiB"
max_header = "8KiB"
read_timeout = "5s"
idle_timeout = "2m"
max_connections = 64

[daemon.status_listener]
address = "0.0.0.0:9001"
bearer_token = "${env:BILLSYNC_TEST_STATUS_TOKEN}"
max_body = 4096

[daemon.clock]
mode = "simulated"
start = "2026-01-05T08:00:00Z"
)");
    ASSERT_TRUE(r.config) << r.rendered();
    EXPECT_TRUE(r.diags.empty()) << r.rendered();
    const auto& d = r.config->daemon;
    EXPECT_EQ(d.data_dir, "/srv/billsync");
    EXPECT_EQ(d.time_zone, "America/Chicago");
    EXPECT_EQ(d.log_level, "debug");
    EXPECT_EQ(d.log_fmt, log_format::json);
    EXPECT_EQ(d.shutdown_grace, 90s);
    EXPECT_EQ(d.refresh_wait, 30s);
    ASSERT_TRUE(d.secrets_key);
    EXPECT_EQ(d.secrets_key->reveal(), "key-material-123");
    EXPECT_EQ(d.public_url, "https://billsync.example.com/base");
    EXPECT_EQ(d.webhook.address.text(), "[::]:9000");
    EXPECT_EQ(d.webhook.limits.max_body_bytes, 2U * 1024 * 1024);
    EXPECT_EQ(d.webhook.limits.max_header_bytes, 8U * 1024);
    EXPECT_EQ(d.webhook.limits.read_timeout, 5s);
    EXPECT_EQ(d.webhook.limits.idle_timeout, 2min);
    EXPECT_EQ(d.webhook.limits.max_connections, 64U);
    EXPECT_EQ(d.status.address.text(), "0.0.0.0:9001");
    EXPECT_EQ(d.status.limits.max_body_bytes, 4096U);
    ASSERT_TRUE(d.status_token);
    EXPECT_EQ(d.status_token->reveal(), "status-token-456");
    EXPECT_EQ(d.clock, clock_mode::simulated);
    EXPECT_EQ(util::format_rfc3339(d.clock_start), "2026-01-05T08:00:00Z");
    EXPECT_EQ(d.where.webhook_address.line, 13U);
    EXPECT_EQ(d.where.status_address.line, 21U);
}

TEST(loader, missing_required_keys) {
    auto r = load_text("[daemon]\nlog_level = \"info\"\n");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines_of(r.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:1:1: error: [daemon] missing required key 'data_dir'",
                  "billsync.toml:1:1: error: [daemon] missing required key 'time_zone'",
              }));
}

TEST(loader, empty_file_reports_what_is_required) {
    auto r = load_text("");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(lines_of(r.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:1:1: error: [daemon] missing required key 'data_dir'",
                  "billsync.toml:1:1: error: [daemon] missing required key 'time_zone'",
              }));
}

TEST(loader, invalid_time_zone) {
    auto r = load_text("[daemon]\ndata_dir = \"/d\"\ntime_zone = \"Atlantis/Poseidonia\"\n");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(r.rendered(),
              "billsync.toml:3:1: error: [daemon] unknown time zone 'Atlantis/Poseidonia' "
              "(expected an IANA name such as \"America/New_York\" or \"UTC\")\n");
    auto near = load_text("[daemon]\ndata_dir = \"/d\"\ntime_zone = \"america/new_york\"\n");
    EXPECT_EQ(near.rendered(),
              "billsync.toml:3:1: error: [daemon] unknown time zone 'america/new_york' (did you "
              "mean 'America/New_York'?)\n");
}

TEST(loader, every_error_at_once_in_source_order) {
    auto r = load_text(R"([daemon]
data_dir = 42
time_zone = "Europe/Lodnon"
log_levle = "debug"
shutdown_grace = "ten seconds"

[daemon.webhook_listener]
address = "localhost"
max_body = "1 megabyte"

[daemon.status_listener]
address = "0.0.0.0:8081"

[daemon.clock]
mode = "simulated"

[conectors.qbo]
)");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(
        lines_of(r.rendered()),
        (std::vector<std::string>{
            "billsync.toml:2:1: error: [daemon] 'data_dir' must be a string, not an integer",
            "billsync.toml:3:1: error: [daemon] unknown time zone 'Europe/Lodnon' (did you mean "
            "'Europe/London'?)",
            "billsync.toml:4:1: error: [daemon] unknown key 'log_levle' (did you mean "
            "'log_level'?)",
            "billsync.toml:5:1: error: [daemon] malformed duration 'ten seconds' (expected e.g. "
            "\"30s\", \"5m\", \"1h30m\")",
            "billsync.toml:8:1: error: [daemon.webhook_listener] malformed endpoint 'localhost' "
            "(expected \"host:port\" with an IP address or localhost, e.g. \"127.0.0.1:8081\" or "
            "\"[::1]:8081\")",
            "billsync.toml:9:1: error: [daemon.webhook_listener] malformed size '1 megabyte' "
            "(expected e.g. \"1MiB\", \"512KiB\", \"64KB\" or a number of bytes)",
            "billsync.toml:12:1: error: [daemon.status_listener] address '0.0.0.0:8081' is not "
            "loopback; set 'bearer_token' so the status endpoint is not open to the network",
            "billsync.toml:14:1: error: [daemon.clock] missing required key 'start' (the "
            "simulated clock needs a start instant, e.g. start = \"2026-01-05T08:00:00Z\")",
            "billsync.toml:17:2: error: unknown table [conectors] (did you mean [connectors]?)",
        }));
    EXPECT_EQ(r.diags.error_count(), 9U);
}

TEST(loader, status_listener_beyond_loopback_is_fine_with_a_token) {
    const scoped_env token("BILLSYNC_TEST_STATUS_TOKEN", "status-token-456");
    auto r = load_text(std::string(minimal) +
                       "[daemon.status_listener]\naddress = \"0.0.0.0:8081\"\n"
                       "bearer_token = \"${env:BILLSYNC_TEST_STATUS_TOKEN}\"\n");
    EXPECT_TRUE(r.config) << r.rendered();
    for (const char* loopback : {"127.0.0.1:9", "[::1]:9", "localhost:9"}) {
        auto l = load_text(std::string(minimal) + "[daemon.status_listener]\naddress = \"" +
                           loopback + "\"\n");
        EXPECT_TRUE(l.config) << l.rendered();
    }
}

TEST(loader, status_listener_allowed_hosts_are_host_names) {
    auto r =
        load_text(std::string(minimal) +
                  "[daemon.status_listener]\n"
                  "allowed_hosts = [\"billsync.firm.example\", \"10.0.0.5\", \"[fd00::1]\"]\n");
    ASSERT_TRUE(r.config) << r.rendered();
    EXPECT_EQ(r.config->daemon.status_allowed_hosts,
              (std::vector<std::string>{"billsync.firm.example", "10.0.0.5", "[fd00::1]"}));
    for (const char* bad : {"https://billsync.firm.example",
                            "billsync.firm.example:8081",
                            "*.firm",
                            "",
                            "fd00::1",
                            "a b"}) {
        auto b = load_text(std::string(minimal) + "[daemon.status_listener]\nallowed_hosts = [\"" +
                           bad + "\"]\n");
        EXPECT_FALSE(b.config) << bad;
        EXPECT_NE(b.rendered().find("allowed_hosts entry"), std::string::npos) << b.rendered();
    }
    auto webhook = load_text(std::string(minimal) +
                             "[daemon.webhook_listener]\nallowed_hosts = [\"x.example\"]\n");
    EXPECT_FALSE(webhook.config) << "only the status listener has allowed_hosts";
}

TEST(loader, clock_start_only_with_simulated_mode) {
    auto r = load_text(std::string(minimal) + "[daemon.clock]\nstart = \"2026-01-05T08:00:00Z\"\n");
    EXPECT_EQ(r.rendered(),
              "billsync.toml:5:1: error: [daemon.clock] 'start' is only allowed with mode = "
              "\"simulated\"\n");
    auto bad_mode = load_text(std::string(minimal) + "[daemon.clock]\nmode = \"simulate\"\n");
    EXPECT_EQ(bad_mode.rendered(),
              "billsync.toml:5:1: error: [daemon.clock] 'mode' must be one of 'system', "
              "'simulated', not 'simulate' (did you mean 'simulated'?)\n");
}

TEST(loader, listeners_must_not_collide) {
    auto r = load_text(std::string(minimal) +
                       "[daemon.webhook_listener]\naddress = \"0.0.0.0:8090\"\n"
                       "[daemon.status_listener]\naddress = \"127.0.0.1:8090\"\n");
    EXPECT_EQ(r.rendered(),
              "billsync.toml:7:1: error: [daemon.status_listener] address '127.0.0.1:8090' "
              "collides with the webhook listener's '0.0.0.0:8090'\n");
    auto zero = load_text(std::string(minimal) +
                          "[daemon.webhook_listener]\naddress = \"127.0.0.1:0\"\n"
                          "[daemon.status_listener]\naddress = \"127.0.0.1:0\"\n");
    EXPECT_TRUE(zero.config) << zero.rendered();
}

TEST(loader, limits_have_ranges) {
    auto r = load_text(std::string(minimal) +
                       "[daemon.webhook_listener]\n"
                       "max_connections = 0\n"
                       "read_timeout = \"0s\"\n"
                       "max_header = 100\n");
    EXPECT_EQ(lines_of(r.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:5:1: error: [daemon.webhook_listener] 'max_connections' must be "
                  "between 1 and 1000000, not 0",
                  "billsync.toml:6:1: error: [daemon.webhook_listener] 'read_timeout' must be at "
                  "least 1ms, not 0s",
                  "billsync.toml:7:1: error: [daemon.webhook_listener] 'max_header' must be "
                  "between 1024 and 1048576 bytes, not 100",
              }));
}

TEST(loader, syntax_error_has_file_line_column) {
    auto r = load_text("[daemon]\ndata_dir = \"/d\n");
    EXPECT_FALSE(r.config);
    ASSERT_EQ(r.diags.items().size(), 1U);
    EXPECT_EQ(r.diags.items()[0].where.file, "billsync.toml");
    EXPECT_EQ(r.diags.items()[0].where.line, 2U);
    EXPECT_EQ(r.rendered(),
              "billsync.toml:2:15: error: invalid TOML: error while parsing string: unescaped "
              "control characters other than TAB (U+0009) are explicitly prohibited\n");
}

TEST(loader, secret_errors_and_values_never_leak_into_diagnostics) {
    const scoped_env env("BILLSYNC_TEST_LEAK", "super-secret-env-value");
    const scoped_env unset("BILLSYNC_TEST_NOT_SET", std::nullopt);
    const scoped_env creds("CREDENTIALS_DIRECTORY", std::nullopt);
    testing::temp_dir dir;
    const auto file = dir.write("s", "super-secret-file-value\n");
    auto r = load_text(std::string(minimal) +
                       "secrets_key = \"super-secret-inline-value\"\n"
                       "[daemon.status_listener]\n"
                       "bearer_token = \"${env:BILLSYNC_TEST_LEAK}\"\n"
                       "[connectors.qbo]\n"
                       "client_id = \"id\"\n"
                       "client_secret = \"${file:" +
                       file.string() +
                       "}\"\n"
                       "webhook_verifier_token = \"${env:BILLSYNC_TEST_NOT_SET}\"\n"
                       "realm_id = 7\n"
                       "[connectors.karbon]\n"
                       "bearer_token = \"${credential:karbon_bearer}\"\n"
                       "access_key = \"${file:/nonexistent/billsync/key}\"\n"
                       "webhook_signing_key = \"${env:BILLSYNC_TEST_LEAK}\"\n");
    const auto text = r.rendered();
    EXPECT_EQ(lines_of(text),
              (std::vector<std::string>{
                  "billsync.toml:4:1: warning: [daemon] 'secrets_key' is an inline secret; prefer "
                  "a reference such as \"${credential:NAME}\", \"${env:NAME}\" or "
                  "\"${file:/path}\"",
                  "billsync.toml:10:1: error: [connectors.qbo] 'webhook_verifier_token': "
                  "environment variable 'BILLSYNC_TEST_NOT_SET' is not set",
                  "billsync.toml:11:1: error: [connectors.qbo] 'realm_id' must be a string, not an "
                  "integer",
                  "billsync.toml:13:1: error: [connectors.karbon] 'bearer_token': secret "
                  "${credential:karbon_bearer} needs $CREDENTIALS_DIRECTORY, which is not set "
                  "(provide it with systemd LoadCredential= or SetCredential=, or use ${env:...} "
                  "or ${file:...})",
                  "billsync.toml:14:1: error: [connectors.karbon] 'access_key': cannot read secret "
                  "file '/nonexistent/billsync/key': No such file or directory",
              }));
    for (const char* value :
         {"super-secret-env-value", "super-secret-file-value", "super-secret-inline-value"}) {
        EXPECT_EQ(text.find(value), std::string::npos) << value;
    }
}

TEST(loader, connector_sections) {
    auto r = load_text(std::string(minimal) +
                       "[connectors.crm]\n"
                       "kind = \"generic\"\n"
                       "secret = \"${env:BILLSYNC_LOADER_TEST_SECRET}\"\n"
                       "[connectors.taxdome]\n"
                       "enabled = false\n"
                       "relay_secret = \"${env:BILLSYNC_LOADER_TEST_SECRET}\"\n");
    ASSERT_TRUE(r.config) << r.rendered();
    const auto& c = r.config->connectors;
    ASSERT_EQ(c.size(), 2U);
    EXPECT_EQ(c[0].name, "crm");
    EXPECT_EQ(c[0].kind, "generic");
    EXPECT_TRUE(c[0].enabled);
    EXPECT_EQ(c[0].where.line, 4U);
    EXPECT_EQ(c[0].where.column, 1U);
    EXPECT_EQ(c[1].name, "taxdome");
    EXPECT_EQ(c[1].kind, "taxdome");  // defaults to the name
    EXPECT_FALSE(c[1].enabled);
    ASSERT_EQ(r.connectors.size(), 2U);
    EXPECT_EQ(r.connectors[1].name, "taxdome");
    EXPECT_FALSE(r.connectors[1].enabled);
}

TEST(loader, connector_keys_are_checked_after_the_connector_parser_ran) {
    const std::string text = std::string(minimal) +
                             "[connectors.crm]\n"
                             "kind = \"generic\"\n"
                             "secret = \"${env:BILLSYNC_LOADER_TEST_SECRET}\"\n"
                             "signature_hedaer = \"X-Sig\"\n";
    auto r = load_text(text);
    EXPECT_EQ(r.rendered(),
              "billsync.toml:7:1: error: [connectors.crm] unknown key 'signature_hedaer' (did you "
              "mean 'signature_header'?)\n");

    // Without a connector parser, only kind and enabled are checked.
    diagnostics diags;
    auto cfg = load_string(text, "billsync.toml", diags);
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_TRUE(diags.empty());

    // A fresh reader for a connector, e.g. for a parser run later.
    diagnostics later;
    auto cr = cfg->connector_reader(0, later);
    EXPECT_EQ(cr.path(), "connectors.crm");
    EXPECT_EQ(cr.get_string("signature_hedaer"), "X-Sig");
    EXPECT_TRUE(cr.get_secret("secret"));
    cr.finish();
    EXPECT_TRUE(later.empty()) << later.render();
}

TEST(loader, connector_names_must_be_url_safe) {
    auto r = load_text(std::string(minimal) +
                       "[connectors.\"My CRM\"]\nkind = \"generic\"\n"
                       "secret = \"${env:BILLSYNC_LOADER_TEST_SECRET}\"\n");
    EXPECT_EQ(r.rendered(),
              "billsync.toml:4:1: error: [connectors] connector name 'My CRM' may only contain "
              "a-z, 0-9, '_' and '-' (it is used in URLs)\n");
}

TEST(loader, load_reads_files_and_reports_unreadable_ones) {
    testing::temp_dir dir;
    const auto path = dir.write("b.toml", minimal);
    diagnostics diags;
    auto cfg = load(path, diags);
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_EQ(cfg->file, path);

    diagnostics missing;
    EXPECT_FALSE(load(dir.path() / "nope.toml", missing));
    EXPECT_EQ(missing.render(),
              (dir.path() / "nope.toml").string() +
                  ": error: cannot open configuration file: No such file or directory\n");
}

}  // namespace
}  // namespace billsync::config
