// The built-in connector kinds: what each declares, and what the registry answers for them.
#include "connectors/builtin.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors {
namespace {

std::vector<std::string_view> where(bool (kind_registry::*pred)(std::string_view) const) {
    std::vector<std::string_view> out;
    const auto& kinds = builtin_kinds();
    for (const auto k : kinds.kinds()) {
        if ((kinds.*pred)(k)) {
            out.push_back(k);
        }
    }
    return out;
}

TEST(builtin_kinds, lists_every_kind_sorted) {
    EXPECT_EQ(builtin_kinds().kinds(),
              (std::vector<std::string_view>{"generic",
                                             "harvest",
                                             "karbon",
                                             "qbo",
                                             "sendgrid",
                                             "smtp",
                                             "taxdome",
                                             "twilio",
                                             "xero"}));
}

TEST(builtin_kinds, only_kinds_with_a_factory_are_available) {
    EXPECT_EQ(where(&kind_registry::available),
              (std::vector<std::string_view>{"generic",
                                             "harvest",
                                             "karbon",
                                             "qbo",
                                             "sendgrid",
                                             "smtp",
                                             "taxdome",
                                             "twilio",
                                             "xero"}));
    EXPECT_FALSE(builtin_kinds().available("nosuchkind"));
}

TEST(builtin_kinds, oauth2_is_declared_by_the_kind) {
    EXPECT_EQ(where(&kind_registry::uses_oauth2),
              (std::vector<std::string_view>{"harvest", "qbo", "xero"}));
    const auto* qbo = builtin_kinds().find("qbo");
    ASSERT_NE(qbo, nullptr);
    ASSERT_TRUE(qbo->oauth2);
    EXPECT_EQ(qbo->oauth2->vendor, "qbo");
    EXPECT_EQ(qbo->oauth2->account_redirect_param, "realmId");
    EXPECT_EQ(qbo->oauth2->old_refresh_valid, std::chrono::hours(24));
    EXPECT_FALSE(qbo->oauth2->pkce);
    const auto* xero = builtin_kinds().find("xero");
    ASSERT_NE(xero, nullptr);
    ASSERT_TRUE(xero->oauth2);
    EXPECT_TRUE(xero->oauth2->pkce);
    EXPECT_EQ(xero->oauth2->old_refresh_valid, std::chrono::minutes(30));
    ASSERT_NE(xero->oauth2->parse_connections, nullptr);
    const auto tenants = xero->oauth2->parse_connections(
        R"([{"id":"c1","tenantId":"t-1","tenantType":"ORGANISATION","tenantName":"Demo Co"},
            {"tenantName":"no id"}, 7])");
    ASSERT_EQ(tenants.size(), 1U);
    EXPECT_EQ(tenants[0].id, "t-1");
    EXPECT_EQ(tenants[0].name, "Demo Co");
    EXPECT_TRUE(xero->oauth2->parse_connections("not json").empty());
    // Harvest ID: the accounts endpoint lists Harvest and Forecast accounts; only Harvest ones
    // are Harvest-Account-Ids.
    const auto* harvest = builtin_kinds().find("harvest");
    ASSERT_NE(harvest, nullptr);
    ASSERT_TRUE(harvest->oauth2);
    EXPECT_FALSE(harvest->oauth2->pkce);
    EXPECT_EQ(harvest->oauth2->token_url, "https://id.getharvest.com/api/v2/oauth2/token");
    EXPECT_EQ(harvest->oauth2->authorize_url, "https://id.getharvest.com/oauth2/authorize");
    EXPECT_EQ(harvest->oauth2->account_setting, "account_id");
    ASSERT_NE(harvest->oauth2->parse_connections, nullptr);
    const auto accounts = harvest->oauth2->parse_connections(
        R"({"user":{"id":1},"accounts":[{"id":123456,"name":"Sim CPA","product":"harvest"},
            {"id":777,"name":"Sim CPA","product":"forecast"},{"name":"no id","product":"harvest"}]})");
    ASSERT_EQ(accounts.size(), 1U);
    EXPECT_EQ(accounts[0].id, "123456");
    EXPECT_EQ(accounts[0].name, "Sim CPA");
    EXPECT_TRUE(harvest->oauth2->parse_connections("[]").empty());
}

TEST(builtin_kinds, workflows_route_by_the_actions_a_kind_performs) {
    const auto& k = builtin_kinds();
    EXPECT_TRUE(k.performs("sendgrid", "email.send"));
    EXPECT_TRUE(k.performs("smtp", "email.send"));
    EXPECT_TRUE(k.performs("twilio", "sms.send"));
    EXPECT_FALSE(k.performs("twilio", "email.send"));
    EXPECT_FALSE(k.performs("qbo", "sms.send"));
    EXPECT_FALSE(k.performs("nosuchkind", "email.send"));
}

TEST(builtin_kinds, limits_come_from_the_vendor_folders) {
    const auto& k = builtin_kinds();
    for (const auto kind : {"qbo", "xero", "harvest", "karbon", "twilio"}) {
        const auto* d = k.find(kind);
        ASSERT_NE(d, nullptr) << kind;
        EXPECT_TRUE(d->limits.has_value()) << kind;
    }
    EXPECT_EQ(k.find("qbo")->limits->max_concurrent, 10U);
    EXPECT_EQ(k.find("xero")->limits->windows.size(), 2U);
    EXPECT_FALSE(k.find("generic")->limits.has_value());
}

TEST(builtin_kinds, an_unavailable_kind_builds_nothing) {
    connector_settings s;
    s.name = "harvest";
    s.kind = "harvest";
    EXPECT_EQ(make_connector(s, runtime_deps{}), nullptr);
    s.kind = "nosuchkind";
    EXPECT_EQ(make_connector(s, runtime_deps{}), nullptr);
}

TEST(builtin_kinds, a_kind_that_needs_the_runtime_is_not_built_without_it) {
    connector_settings s;
    s.name = "qbo";
    s.kind = "qbo";
    EXPECT_EQ(make_connector(s, runtime_deps{}), nullptr);
}

TEST(kind_registry, refuses_a_kind_registered_twice) {
    kind_registry r;
    r.add({.kind = "a"});
    EXPECT_THROW(r.add({.kind = "a"}), std::logic_error);
    EXPECT_EQ(r.kinds(), (std::vector<std::string_view>{"a"}));
}

// Every connector folder documents itself: README (setup, webhook URLs), a loadable sample and
// fixtures in the vendor's documented shapes; a kind not built yet too (its sample disabled).
TEST(builtin_kinds, every_kind_has_readme_sample_and_fixtures) {
    const std::filesystem::path root = BILLSYNC_SOURCE_DIR;
    for (const auto kind : builtin_kinds().kinds()) {
        const auto dir = root / "connectors" / std::string(kind);
        ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
        EXPECT_TRUE(std::filesystem::exists(dir / "README.md")) << kind;
        EXPECT_TRUE(std::filesystem::exists(dir / "sample.toml")) << kind;
        const auto fixtures = dir / "fixtures";
        ASSERT_TRUE(std::filesystem::is_directory(fixtures)) << kind;
        EXPECT_FALSE(std::filesystem::is_empty(fixtures)) << kind;
    }
}

}  // namespace
}  // namespace billsync::connectors
