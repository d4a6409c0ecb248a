// connectors/xero/sample.toml loads without errors, [sources] included.
#include <gtest/gtest.h>

#include <cstdlib>

#include "config/loader.hpp"
#include "config/sources.hpp"
#include "connectors/builtin.hpp"

namespace billsync::config {
namespace {

TEST(xero_sample, loads_enabled_with_its_secrets_present) {
    ::setenv("BILLSYNC_XERO_CLIENT_SECRET", "client-secret", 1);
    ::setenv("BILLSYNC_XERO_WEBHOOK_KEY", "webhook-key-0123456789abcdef", 1);
    diagnostics diags;
    std::vector<connectors::connector_settings> parsed;
    sources_settings sources;
    const auto cfg =
        load(std::string(BILLSYNC_SOURCE_DIR) + "/connectors/xero/sample.toml",
             diags,
             [&](const connector_section& section, reader& r) {
                 if (auto s = connectors::parse_connector_settings(section, r, diags)) {
                     parsed.push_back(std::move(*s));
                 }
             },
             {{"sources", [&sources](reader& r) { sources = parse_sources(r); }}});
    ::unsetenv("BILLSYNC_XERO_CLIENT_SECRET");
    ::unsetenv("BILLSYNC_XERO_WEBHOOK_KEY");
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_TRUE(diags.empty()) << diags.render();
    ASSERT_EQ(parsed.size(), 1U);
    EXPECT_EQ(parsed[0].kind, "xero");
    EXPECT_TRUE(parsed[0].enabled);
    ASSERT_NE(parsed[0].value("tenant_id"), nullptr);
    EXPECT_EQ(sources.owner("invoices"), "xero");
    EXPECT_EQ(sources.owner("payments"), "xero");
    EXPECT_EQ(sources.owner("clients"), "xero");
}

}  // namespace
}  // namespace billsync::config
