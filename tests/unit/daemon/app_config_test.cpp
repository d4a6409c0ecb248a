// Loading the whole configuration as `billsync validate` does: kinds this build cannot run are
// refused where they are written, and every connector's sample.toml loads.
#include "daemon/app_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "connectors/builtin.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync::daemon {
namespace {

struct loaded {
    config::diagnostics diags;
    std::optional<app_config> cfg;
};

loaded load(const testing::temp_dir& dir, const std::string& text) {
    testing::write_file(dir / "billsync.toml", text);
    loaded out;
    out.cfg = load_app_config(dir / "billsync.toml", out.diags);
    return out;
}

constexpr const char* head = "[daemon]\ndata_dir = \"data\"\ntime_zone = \"America/New_York\"\n\n";

TEST(app_config, without_a_kind_key_the_section_name_is_the_kind) {
    const testing::temp_dir dir;
    auto r = load(dir, std::string(head) + "[connectors.taxdome]\n");
    EXPECT_FALSE(r.cfg);
    const auto text = r.diags.render();
    EXPECT_NE(text.find("billsync.toml:5:1: error: [connectors.taxdome]"), std::string::npos)
        << text;
    EXPECT_NE(text.find("relay_secret"), std::string::npos) << text;
    r = load(dir,
             std::string(head) + "[connectors.taxdome]\nrelay_secret = \"" + std::string(32, 'r') +
                 "\"\n");
    EXPECT_TRUE(r.cfg) << r.diags.render();
}

TEST(app_config, a_short_relay_secret_is_refused_at_its_key) {
    const testing::temp_dir dir;
    const auto r = load(dir,
                        std::string(head) +
                            "[connectors.taxdome]\n"
                            "relay_secret = \"inline-relay-secret\"\n");
    EXPECT_FALSE(r.cfg);
    const auto text = r.diags.render();
    EXPECT_NE(text.find("billsync.toml:6:"), std::string::npos) << text;
    EXPECT_NE(text.find("at least 32 characters"), std::string::npos) << text;
    EXPECT_EQ(text.find("inline-relay-secret"), std::string::npos) << text;
}

TEST(app_config, a_disabled_section_of_such_a_kind_is_kept_and_checked) {
    const testing::temp_dir dir;
    auto r = load(dir,
                  std::string(head) +
                      "[connectors.taxdome]\n"
                      "enabled = false\n"
                      "relay_secret = \"inline-relay-secret-of-32-characters\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    ASSERT_EQ(r.cfg->connectors.size(), 1U);
    EXPECT_FALSE(r.cfg->connectors[0].enabled);
    // Still fully checked: a missing required key is an error even when disabled.
    r = load(dir, std::string(head) + "[connectors.taxdome]\nenabled = false\n");
    EXPECT_FALSE(r.cfg);
    EXPECT_NE(r.diags.render().find("relay_secret"), std::string::npos) << r.diags.render();
}

TEST(app_config, oauth2_use_follows_the_enabled_kinds) {
    const testing::temp_dir dir;
    auto r = load(dir,
                  std::string(head) +
                      "[connectors.texts]\nkind = \"twilio\"\naccount_sid = \"AC1\"\n"
                      "auth_token = \"inline-token\"\nfrom = \"+12125550100\"\n"
                      "public_url = \"https://billsync.example.com\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    EXPECT_FALSE(r.cfg->uses_oauth2());
    r = load(dir,
             std::string(head) +
                 "[connectors.books]\nkind = \"qbo\"\nclient_id = \"id\"\n"
                 "client_secret = \"inline-secret\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    EXPECT_TRUE(r.cfg->uses_oauth2());
    // Without a secrets_key the tokens would be stored unsealed: said once, as a warning.
    EXPECT_NE(r.diags.render().find("OAuth2 tokens will be stored unsealed"), std::string::npos);
}

// A kind may offer OAuth2 next to a static token (Harvest): only a section with an OAuth2 client
// stores tokens, so only that one asks for a secrets_key or a private data_dir.
TEST(app_config, harvest_uses_oauth2_only_with_an_oauth2_client) {
    const testing::temp_dir dir;
    auto r = load(dir,
                  std::string(head) +
                      "[connectors.time]\nkind = \"harvest\"\naccount_id = \"123\"\n"
                      "access_token = \"inline-token\"\ncontact = \"it@example.com\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    EXPECT_FALSE(r.cfg->uses_oauth2());
    EXPECT_EQ(r.diags.render().find("OAuth2 tokens will be stored unsealed"), std::string::npos);
    r = load(dir,
             std::string(head) +
                 "[connectors.time]\nkind = \"harvest\"\nclient_id = \"id\"\n"
                 "client_secret = \"inline-secret\"\ncontact = \"it@example.com\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    EXPECT_TRUE(r.cfg->uses_oauth2());
    EXPECT_NE(r.diags.render().find("OAuth2 tokens will be stored unsealed"), std::string::npos);
}

// Only the QBO company that keeps the firm's time ([sources] time_entries) polls employees and
// time activities, unless a section says otherwise.
TEST(app_config, sync_time_defaults_to_the_time_entries_source) {
    const testing::temp_dir dir;
    const auto qbo = [](const std::string& name, const std::string& extra) {
        return "[connectors." + name + "]\nkind = \"qbo\"\nclient_id = \"id\"\n" +
               "client_secret = \"inline-secret\"\nwebhook_verifier_token = \"inline-v\"\n" + extra;
    };
    auto r = load(dir,
                  std::string(head) + qbo("books", "") + qbo("other", "") +
                      qbo("third", "sync_time = true\n") + "[sources]\ntime_entries = \"books\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    ASSERT_EQ(r.cfg->connectors.size(), 3u);
    EXPECT_EQ(*r.cfg->connectors[0].value("sync_time"), "true");
    EXPECT_EQ(*r.cfg->connectors[1].value("sync_time"), "false");
    EXPECT_EQ(*r.cfg->connectors[2].value("sync_time"), "true");
}

// Karbon invoices drive the workflows only from the [sources] invoices connector; elsewhere
// they are read-only facts, unless a section says otherwise.
TEST(app_config, invoices_source_defaults_to_the_invoices_source) {
    const testing::temp_dir dir;
    const auto karbon = [](const std::string& name, const std::string& extra) {
        return "[connectors." + name + "]\nkind = \"karbon\"\nbearer_token = \"inline-b\"\n" +
               "access_key = \"inline-a\"\nwebhook_signing_key = \"signing-key-0123456789\"\n" +
               "public_url = \"https://hooks.example-cpa.com\"\n" + extra;
    };
    auto r = load(dir,
                  std::string(head) + karbon("practice", "") + karbon("other", "") +
                      "[sources]\ninvoices = \"practice\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    ASSERT_EQ(r.cfg->connectors.size(), 2u);
    EXPECT_EQ(*r.cfg->connectors[0].value("invoices_source"), "true");
    EXPECT_EQ(*r.cfg->connectors[1].value("invoices_source"), "false");
    r = load(dir, std::string(head) + karbon("practice", "invoices_source = true\n"));
    ASSERT_TRUE(r.cfg) << r.diags.render();
    EXPECT_EQ(*r.cfg->connectors[0].value("invoices_source"), "true");
}

// [daemon] public_url is the default of every connector's public_url (issue 18 item 20).
TEST(app_config, a_connector_public_url_defaults_to_the_daemon_one) {
    const testing::temp_dir dir;
    const std::string twilio =
        "[connectors.texts]\nkind = \"twilio\"\naccount_sid = \"AC1\"\n"
        "auth_token = \"inline-token\"\nfrom = \"+12125550100\"\n";
    auto r = load(dir,
                  "[daemon]\ndata_dir = \"data\"\ntime_zone = \"America/New_York\"\n"
                  "public_url = \"https://hooks.example-cpa.com\"\n\n" +
                      twilio);
    ASSERT_TRUE(r.cfg) << r.diags.render();
    ASSERT_NE(r.cfg->connectors[0].value("public_url"), nullptr);
    EXPECT_EQ(*r.cfg->connectors[0].value("public_url"), "https://hooks.example-cpa.com");
    // The connector's own value wins.
    r = load(dir,
             "[daemon]\ndata_dir = \"data\"\ntime_zone = \"America/New_York\"\n"
             "public_url = \"https://hooks.example-cpa.com\"\n\n" +
                 twilio + "public_url = \"https://sms.example-cpa.com\"\n");
    ASSERT_TRUE(r.cfg) << r.diags.render();
    EXPECT_EQ(*r.cfg->connectors[0].value("public_url"), "https://sms.example-cpa.com");
    // Neither: an error at the section.
    r = load(dir, std::string(head) + twilio);
    EXPECT_FALSE(r.cfg);
    EXPECT_NE(r.diags.render().find("billsync.toml:5:1: error: [connectors.texts] 'public_url' is "
                                    "required: set it here or set [daemon] public_url"),
              std::string::npos)
        << r.diags.render();
}

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Every connector folder's sample.toml is a working starting point.
TEST(app_config, every_connector_sample_loads) {
    const std::filesystem::path root = BILLSYNC_SOURCE_DIR;
    const std::regex env(R"(\$\{env:([A-Za-z0-9_]+)\})");
    int samples = 0;
    for (const auto kind : connectors::builtin_kinds().kinds()) {
        const auto path = root / "connectors" / std::string(kind) / "sample.toml";
        if (!std::filesystem::exists(path)) {
            continue;
        }
        const auto text = read(path);
        for (std::sregex_iterator it(text.begin(), text.end(), env), end; it != end; ++it) {
            ::setenv((*it)[1].str().c_str(), "sample-secret-value-long-enough-for-every-kind", 1);
        }
        config::diagnostics diags;
        const auto cfg = load_app_config(path, diags);
        EXPECT_TRUE(cfg) << path << "\n" << diags.render();
        EXPECT_FALSE(diags.has_errors()) << path << "\n" << diags.render();
        ++samples;
    }
    EXPECT_EQ(samples, static_cast<int>(connectors::builtin_kinds().kinds().size()));
}

}  // namespace
}  // namespace billsync::daemon
