// The production sample (packaging/billsync.toml) loads as the daemon loads it, with every
// workflow's table, and `validate --no-environment` accepts it on a machine without its secrets.
#include <gtest/gtest.h>

#include "config/secret.hpp"
#include "daemon/app_config.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/packaging/packaging_support.hpp"

namespace billsync::packaging {
namespace {

using testing::credentials_referenced;
using testing::read;
using testing::source_dir;

class scoped_env {
public:
    scoped_env(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) {
            old_ = old;
            had_ = true;
        }
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env() {
        if (had_) {
            ::setenv(name_.c_str(), old_.c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }

private:
    std::string name_;
    std::string old_;
    bool had_ = false;
};

const std::filesystem::path sample = source_dir / "packaging" / "billsync.toml";

TEST(production_sample, runs_every_workflow_when_its_credentials_are_in_place) {
    const auto names = credentials_referenced(read(sample));
    ASSERT_FALSE(names.empty());
    const billsync::testing::temp_dir creds;
    for (const auto& name : names) {
        // secrets_key is 32 bytes in base64; a Karbon signing key is A-Za-z0-9-_ only.
        billsync::testing::write_file(creds / name,
                                      name == "secrets_key"
                                          ? "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n"
                                          : "value-of-" + name + "-long-enough-for-every-kind\n");
    }
    const scoped_env dir("CREDENTIALS_DIRECTORY", creds.path().c_str());
    config::diagnostics diags;
    const auto cfg = daemon::load_app_config(sample, diags);
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_TRUE(diags.empty()) << diags.render();  // no warning either

    // The three workflows are configured (before, the sample had no [followup] and ran none).
    for (const char* rule : {"followup", "draft_time", "invoicing"}) {
        EXPECT_TRUE(cfg->workflow_settings.contains(rule)) << rule;
    }
    EXPECT_EQ(cfg->sources.owner("invoices"), "qbo");
    EXPECT_EQ(cfg->sources.owner("work_items"), "karbon");
    std::vector<std::string> enabled;
    for (const auto& c : cfg->connectors) {
        if (c.enabled) {
            enabled.push_back(c.name);
        }
    }
    EXPECT_EQ(enabled,
              (std::vector<std::string>{"qbo", "twilio", "sendgrid", "karbon", "harvest"}));
    ASSERT_TRUE(cfg->daemon().secrets_key);
    EXPECT_TRUE(cfg->daemon().secrets_key->resolved());
}

TEST(production_sample, without_credentials_fails_and_names_the_reference) {
    const billsync::testing::temp_dir empty;
    const scoped_env dir("CREDENTIALS_DIRECTORY", empty.path().c_str());
    config::diagnostics diags;
    EXPECT_FALSE(daemon::load_app_config(sample, diags));
    const auto text = diags.render();
    EXPECT_NE(text.find("cannot read credential 'qbo_client_secret'"), std::string::npos) << text;
}

TEST(production_sample, checks_without_the_machine_with_secret_syntax_only) {
    const scoped_env dir("CREDENTIALS_DIRECTORY", nullptr);
    config::diagnostics diags;
    std::optional<daemon::app_config> cfg;
    {
        const config::secret_syntax_only syntax_only;
        cfg = daemon::load_app_config(sample, diags);
    }
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_TRUE(diags.empty()) << diags.render();
    ASSERT_TRUE(cfg->daemon().secrets_key);
    EXPECT_FALSE(cfg->daemon().secrets_key->resolved());
    EXPECT_EQ(cfg->daemon().secrets_key->reference(), "${credential:secrets_key}");
}

TEST(production_sample, syntax_only_still_refuses_a_malformed_reference) {
    const billsync::testing::temp_dir dir;
    auto text = read(sample);
    const std::string good = "\"${credential:twilio_auth_token}\"";
    const auto at = text.find(good);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, good.size(), "\"${credential:../twilio}\"");
    billsync::testing::write_file(dir / "billsync.toml", text);
    billsync::testing::write_file(dir / "engagements.toml",
                                  read(source_dir / "packaging" / "engagements.toml"));
    config::diagnostics diags;
    const config::secret_syntax_only syntax_only;
    EXPECT_FALSE(daemon::load_app_config(dir / "billsync.toml", diags));
    const auto rendered = diags.render();
    EXPECT_NE(rendered.find("[connectors.twilio] 'auth_token': malformed secret reference "
                            "'${credential:../twilio}' (bad credential name)"),
              std::string::npos)
        << rendered;
}

}  // namespace
}  // namespace billsync::packaging
