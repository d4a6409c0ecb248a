// The sample configurations shipped in packaging/ must load without errors.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "config/loader.hpp"
#include "connectors/builtin.hpp"
#include "tests/unit/config/test_support.hpp"

namespace billsync::config {
namespace {

using testing::scoped_env;
using testing::temp_dir;

const std::filesystem::path source_dir = BILLSYNC_SOURCE_DIR;

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct sample_result {
    diagnostics diags;
    std::optional<loaded_config> config;
    std::vector<connectors::connector_settings> connectors;
};

// The workflows' tables belong to the daemon's parsers (tests/unit/packaging checks them); here
// they are only accepted.
std::unique_ptr<sample_result> load_sample(const std::filesystem::path& path) {
    auto out = std::make_unique<sample_result>();
    section_parsers sections;
    for (const char* name : {"sources", "followup", "draft_time", "invoicing"}) {
        sections.emplace(name, [](reader& r) { r.accept_rest(); });
    }
    out->config = load(
        path,
        out->diags,
        [&](const auto& section, auto& r) {
            if (auto s = connectors::parse_connector_settings(section, r, out->diags)) {
                out->connectors.push_back(std::move(*s));
            }
        },
        sections);
    return out;
}

TEST(samples, production_sample_loads_when_its_secrets_exist) {
    const auto path = source_dir / "packaging" / "billsync.toml";
    const std::string text = read(path);
    ASSERT_FALSE(text.empty());

    // Provide every credential and environment variable the sample refers to.
    const temp_dir creds;
    const std::regex credential(R"(\$\{credential:([A-Za-z0-9_.-]+)\})");
    for (std::sregex_iterator it(text.begin(), text.end(), credential), end; it != end; ++it) {
        creds.write((*it)[1].str(), "value-of-" + (*it)[1].str() + "-long-enough-for-every-kind\n");
    }
    const scoped_env dir("CREDENTIALS_DIRECTORY", creds.path().string());
    std::vector<std::unique_ptr<scoped_env>> envs;
    const std::regex env(R"(\$\{env:([A-Za-z0-9_]+)\})");
    for (std::sregex_iterator it(text.begin(), text.end(), env), end; it != end; ++it) {
        envs.push_back(std::make_unique<scoped_env>((*it)[1].str(), "value"));
    }

    auto r = load_sample(path);
    ASSERT_TRUE(r->config) << r->diags.render();
    EXPECT_TRUE(r->diags.empty()) << r->diags.render();  // no inline secrets, no warnings
    const auto& d = r->config->daemon;
    EXPECT_EQ(d.data_dir, "/var/lib/billsync");
    EXPECT_EQ(d.clock, clock_mode::system);
    EXPECT_TRUE(d.status.address.is_loopback());
    // The sample writes every daemon key with its default.
    const daemon_settings defaults;
    EXPECT_EQ(d.log_level, defaults.log_level);
    EXPECT_EQ(d.log_fmt, defaults.log_fmt);
    EXPECT_EQ(d.shutdown_grace, defaults.shutdown_grace);
    EXPECT_EQ(d.webhook.address.text(), "0.0.0.0:8080");
    EXPECT_EQ(d.status.address.text(), "127.0.0.1:8081");
    for (const auto* l : {&d.webhook, &d.status}) {
        EXPECT_EQ(l->limits.max_body_bytes, defaults.webhook.limits.max_body_bytes);
        EXPECT_EQ(l->limits.max_header_bytes, defaults.webhook.limits.max_header_bytes);
        EXPECT_EQ(l->limits.read_timeout, defaults.webhook.limits.read_timeout);
        EXPECT_EQ(l->limits.idle_timeout, defaults.webhook.limits.idle_timeout);
        EXPECT_EQ(l->limits.max_connections, defaults.webhook.limits.max_connections);
    }
    EXPECT_EQ(r->config->connectors.size(), r->connectors.size());
    std::vector<std::string> kinds;
    for (const auto& c : r->connectors) {
        kinds.push_back(c.kind);
    }
    EXPECT_EQ(kinds,
              (std::vector<std::string>{
                  "qbo", "xero", "twilio", "sendgrid", "karbon", "harvest", "taxdome"}));
}

TEST(samples, sandbox_sample_needs_no_setup) {
    const scoped_env dir("CREDENTIALS_DIRECTORY", std::nullopt);
    auto r = load_sample(source_dir / "packaging" / "sandbox.toml");
    ASSERT_TRUE(r->config) << r->diags.render();
    EXPECT_FALSE(r->diags.has_errors());
    // The inline demo secret is the only warning.
    ASSERT_EQ(r->diags.warning_count(), 1U) << r->diags.render();
    EXPECT_NE(r->diags.items()[0].message.find("'secret' is an inline secret"), std::string::npos);

    const auto& d = r->config->daemon;
    EXPECT_EQ(d.clock, clock_mode::simulated);
    EXPECT_EQ(util::format_rfc3339(d.clock_start), "2026-01-05T08:00:00Z");
    EXPECT_EQ(d.data_dir, "data");
    EXPECT_EQ(d.time_zone, "America/New_York");
    EXPECT_EQ(d.webhook.address.text(), "127.0.0.1:18080");
    EXPECT_EQ(d.status.address.text(), "127.0.0.1:18081");
    ASSERT_EQ(r->connectors.size(), 1U);
    EXPECT_EQ(r->connectors[0].name, "demo");
    EXPECT_EQ(r->connectors[0].kind, "generic");
}

}  // namespace
}  // namespace billsync::config
