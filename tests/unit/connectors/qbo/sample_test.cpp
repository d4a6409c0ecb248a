// connectors/qbo/sample.toml loads without errors, [sources] included.
#include <gtest/gtest.h>

#include <cstdlib>

#include "config/loader.hpp"
#include "config/sources.hpp"
#include "connectors/builtin.hpp"

namespace billsync::config {
namespace {

TEST(qbo_sample, loads_with_its_secrets_present) {
    ::setenv("BILLSYNC_QBO_CLIENT_SECRET", "client-secret", 1);
    ::setenv("BILLSYNC_QBO_VERIFIER_TOKEN", "verifier-token", 1);
    diagnostics diags;
    std::vector<connectors::connector_settings> parsed;
    sources_settings sources;
    const auto cfg =
        load(std::string(BILLSYNC_SOURCE_DIR) + "/connectors/qbo/sample.toml",
             diags,
             [&](const connector_section& section, reader& r) {
                 if (auto s = connectors::parse_connector_settings(section, r, diags)) {
                     parsed.push_back(std::move(*s));
                 }
             },
             {{"sources", [&sources](reader& r) { sources = parse_sources(r); }}});
    ::unsetenv("BILLSYNC_QBO_CLIENT_SECRET");
    ::unsetenv("BILLSYNC_QBO_VERIFIER_TOKEN");
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_TRUE(diags.empty()) << diags.render();
    ASSERT_EQ(parsed.size(), 1U);
    EXPECT_EQ(parsed[0].kind, "qbo");
    ASSERT_NE(parsed[0].value("realm_id"), nullptr);
    EXPECT_EQ(*parsed[0].value("realm_id"), "1185883450");
    EXPECT_EQ(sources.owner("invoices"), "qbo");
    EXPECT_EQ(sources.owner("clients"), "qbo");
}

}  // namespace
}  // namespace billsync::config
