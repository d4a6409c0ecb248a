#include "config/diagnostics.hpp"

#include <gtest/gtest.h>

namespace billsync::config {
namespace {

TEST(diagnostics, renders_compiler_style) {
    const diagnostic d{severity::error,
                       {"billsync.toml", 14, 3},
                       "[connectors.qbo] unknown key 'clinet_id' (did you mean 'client_id'?)"};
    EXPECT_EQ(d.to_string(),
              "billsync.toml:14:3: error: [connectors.qbo] unknown key 'clinet_id' (did you mean "
              "'client_id'?)");
}

TEST(diagnostics, renders_warnings) {
    const diagnostic d{severity::warning, {"/etc/billsync/billsync.toml", 2, 1}, "careful"};
    EXPECT_EQ(d.to_string(), "/etc/billsync/billsync.toml:2:1: warning: careful");
}

TEST(diagnostics, leaves_out_unknown_position_parts) {
    EXPECT_EQ((diagnostic{severity::error, {"f.toml", 0, 0}, "m"}.to_string()), "f.toml: error: m");
    EXPECT_EQ((diagnostic{severity::error, {"f.toml", 3, 0}, "m"}.to_string()),
              "f.toml:3: error: m");
    EXPECT_EQ((diagnostic{severity::error, {"", 0, 0}, "m"}.to_string()), "error: m");
}

TEST(diagnostics, counts_errors_and_warnings) {
    diagnostics d;
    EXPECT_FALSE(d.has_errors());
    EXPECT_TRUE(d.empty());
    d.warning({"f", 1, 1}, "w");
    EXPECT_FALSE(d.has_errors());
    d.error({"f", 1, 1}, "e");
    EXPECT_TRUE(d.has_errors());
    EXPECT_EQ(d.error_count(), 1U);
    EXPECT_EQ(d.warning_count(), 1U);
    ASSERT_EQ(d.items().size(), 2U);
    EXPECT_EQ(d.items()[0].message, "w");
}

TEST(diagnostics, render_sorts_by_position_and_keeps_report_order_for_ties) {
    diagnostics d;
    d.error({"f", 9, 1}, "third");
    d.error({"f", 2, 5}, "second");
    d.warning({"f", 2, 1}, "first");
    d.error({"f", 9, 1}, "fourth");
    EXPECT_EQ(d.render(),
              "f:2:1: warning: first\n"
              "f:2:5: error: second\n"
              "f:9:1: error: third\n"
              "f:9:1: error: fourth\n");
    EXPECT_EQ(d.items()[0].message, "third");  // items() keeps the reporting order
}

}  // namespace
}  // namespace billsync::config
