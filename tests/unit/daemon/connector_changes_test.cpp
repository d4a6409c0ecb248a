// What a reload does to the running connectors: a stable text of each section's settings decides
// between unchanged, rebuilt, added and removed.
#include "daemon/connector_changes.hpp"

#include <gtest/gtest.h>

namespace billsync::daemon {
namespace {

connectors::connector_settings section(const std::string& name,
                                       const std::string& secret,
                                       const std::string& url = "https://crm.example.com/a") {
    connectors::connector_settings s;
    s.name = name;
    s.kind = "generic";
    s.values.emplace("action_url", url);
    s.values.emplace("signature_header", "X-Signature");
    s.secrets.emplace("secret", config::secret("${env:SECRET}", secret));
    return s;
}

TEST(connector_changes, a_fingerprint_changes_with_any_setting_and_never_holds_a_secret) {
    const auto base = settings_fingerprint(section("crm", "first-secret-value"));
    EXPECT_EQ(base, settings_fingerprint(section("crm", "first-secret-value")));
    EXPECT_NE(base, settings_fingerprint(section("crm", "second-secret-value")));
    EXPECT_NE(base,
              settings_fingerprint(section("crm", "first-secret-value", "https://b.example.com")));
    auto disabled = section("crm", "first-secret-value");
    disabled.enabled = false;
    EXPECT_NE(base, settings_fingerprint(disabled));
    auto base_url = section("crm", "first-secret-value");
    base_url.base_url = "http://127.0.0.1:9000";
    EXPECT_NE(base, settings_fingerprint(base_url));
    EXPECT_EQ(base.find("first-secret-value"), std::string::npos) << base;
}

TEST(connector_changes, a_plan_sorts_connectors_into_unchanged_rebuilt_added_and_removed) {
    const std::map<std::string, std::string, std::less<>> running{
        {"same", settings_fingerprint(section("same", "secret-one"))},
        {"rotated", settings_fingerprint(section("rotated", "secret-one"))},
        {"gone", settings_fingerprint(section("gone", "secret-one"))},
        {"switched_off", settings_fingerprint(section("switched_off", "secret-one"))},
    };
    auto off = section("switched_off", "secret-one");
    off.enabled = false;
    const auto plan = plan_connectors(running,
                                      {section("same", "secret-one"),
                                       section("rotated", "secret-two"),
                                       section("new", "secret-one"),
                                       off});
    EXPECT_EQ(plan.unchanged, std::vector<std::string>{"same"});
    EXPECT_EQ(plan.changed, std::vector<std::string>{"rotated"});
    EXPECT_EQ(plan.added, std::vector<std::string>{"new"});
    EXPECT_EQ(plan.removed, (std::vector<std::string>{"gone", "switched_off"}));
}

}  // namespace
}  // namespace billsync::daemon
