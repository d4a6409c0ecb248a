// [sources]: the source of truth per data type.
#include "config/sources.hpp"

#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace billsync::config {
namespace {

constexpr std::string_view head =
    "[daemon]\n"
    "data_dir = \"/var/lib/billsync\"\n"
    "time_zone = \"UTC\"\n"
    "[connectors.qbo]\n"
    "client_id = \"x\"\n"
    "[connectors.harvest]\n"
    "enabled = false\n"
    "[connectors.karbon]\n";

struct result {
    diagnostics diags;
    std::optional<loaded_config> config;
    sources_settings sources;
    std::string rendered() const { return diags.render(); }
};

std::unique_ptr<result> load(std::string_view sources_text) {
    auto out = std::make_unique<result>();
    const section_parsers sections = {
        {"sources", [&out](reader& r) { out->sources = parse_sources(r); }}};
    out->config = load_string(
        std::string(head) + std::string(sources_text), "billsync.toml", out->diags, {}, sections);
    return out;
}

TEST(sources, owners_by_data_type) {
    const auto r = load(
        "[sources]\n"
        "invoices = \"qbo\"\n"
        "payments = \"qbo\"\n"
        "customers = \"karbon\"\n"
        "work_items = \"karbon\"\n");
    ASSERT_TRUE(r->config) << r->rendered();
    EXPECT_TRUE(r->diags.empty()) << r->rendered();
    EXPECT_EQ(r->sources.owner("invoices"), "qbo");
    EXPECT_EQ(r->sources.owner("payments"), "qbo");
    EXPECT_EQ(r->sources.owner("clients"), "karbon");
    EXPECT_EQ(r->sources.owner("customers"), "karbon");
    EXPECT_EQ(r->sources.owner("time_entries"), "");
    EXPECT_TRUE(r->sources.owns("qbo", "invoices"));
    EXPECT_FALSE(r->sources.owns("karbon", "invoices"));
    EXPECT_FALSE(r->sources.owns("", "time_entries"));
    EXPECT_EQ(r->sources.where.at("clients").line, 12U);
}

TEST(sources, absent_table_is_empty) {
    const auto r = load("");
    ASSERT_TRUE(r->config) << r->rendered();
    EXPECT_TRUE(r->sources.owners.empty());
}

TEST(sources, unknown_key_gets_a_suggestion_at_its_position) {
    const auto r = load(
        "[sources]\n"
        "invoice = \"qbo\"\n");
    EXPECT_FALSE(r->config);
    EXPECT_EQ(r->rendered(),
              "billsync.toml:10:1: error: [sources] unknown key 'invoice' (did you mean "
              "'invoices'?)\n");
}

TEST(sources, unknown_connector_gets_a_suggestion) {
    const auto r = load(
        "[sources]\n"
        "invoices = \"qb\"\n");
    EXPECT_FALSE(r->config);
    const auto text = r->rendered();
    EXPECT_NE(text.find("billsync.toml:10:1: error: [sources] 'invoices' must be one of"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("(did you mean 'qbo'?)"), std::string::npos) << text;
}

TEST(sources, wrong_type_alias_clash_and_disabled_connector) {
    auto r = load(
        "[sources]\n"
        "invoices = 3\n");
    EXPECT_FALSE(r->config);
    EXPECT_NE(r->rendered().find("billsync.toml:10:1: error: [sources] 'invoices'"),
              std::string::npos)
        << r->rendered();

    r = load(
        "[sources]\n"
        "clients = \"qbo\"\n"
        "customers = \"karbon\"\n");
    EXPECT_FALSE(r->config);
    EXPECT_NE(r->rendered().find("billsync.toml:11:1: error: [sources] 'customers' and "
                                 "'clients' are the same data type"),
              std::string::npos)
        << r->rendered();

    r = load(
        "[sources]\n"
        "time_entries = \"harvest\"\n");
    ASSERT_TRUE(r->config) << r->rendered();
    ASSERT_EQ(r->diags.warning_count(), 1U);
    EXPECT_NE(r->rendered().find("warning: [sources] 'time_entries' names connector 'harvest', "
                                 "which is disabled"),
              std::string::npos)
        << r->rendered();
    EXPECT_EQ(r->sources.owner("time_entries"), "harvest");
}

TEST(sources, no_connectors_at_all) {
    diagnostics diags;
    sources_settings s;
    const section_parsers sections = {{"sources", [&s](reader& r) { s = parse_sources(r); }}};
    const auto cfg = load_string(
        "[daemon]\ndata_dir = \"/d\"\ntime_zone = \"UTC\"\n[sources]\ninvoices = \"qbo\"\n",
        "b.toml",
        diags,
        {},
        sections);
    EXPECT_FALSE(cfg);
    EXPECT_NE(diags.render().find("b.toml:5:1: error: [sources] 'invoices' names connector "
                                  "'qbo', but no [connectors.*] section is configured"),
              std::string::npos)
        << diags.render();
}

TEST(sources, explicit_connector_list) {
    diagnostics diags;
    auto root = reader::parse("invoices = \"xero\"\n", "s.toml", diags);
    ASSERT_TRUE(root);
    const auto s = parse_sources(*root, {"qbo", "xero"});
    root->finish();
    EXPECT_TRUE(diags.empty()) << diags.render();
    EXPECT_EQ(s.owner("invoices"), "xero");
    EXPECT_EQ(canonical_data_type("customers"), "clients");
}

}  // namespace
}  // namespace billsync::config
