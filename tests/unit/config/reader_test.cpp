#include "config/reader.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/unit/config/test_support.hpp"

namespace billsync::config {
namespace {

using namespace std::chrono_literals;
using testing::lines_of;

struct parsed {
    diagnostics diags;
    std::optional<reader> root;
};

std::unique_ptr<parsed> parse(std::string_view text) {
    auto p = std::make_unique<parsed>();
    p->root = reader::parse(text, "t.toml", p->diags);
    return p;
}

TEST(reader, reads_scalars) {
    auto p = parse(
        "name = \"x\"\n"
        "flag = true\n"
        "count = 42\n"
        "list = [\"a\", \"b\"]\n");
    auto& r = *p->root;
    EXPECT_EQ(r.get_string("name"), "x");
    EXPECT_EQ(r.get_bool("flag"), true);
    EXPECT_EQ(r.get_int("count", 0, 100), 42);
    EXPECT_EQ(r.get_string_array("list"), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(r.get_string("absent"), std::nullopt);
    r.finish();
    EXPECT_TRUE(p->diags.empty()) << p->diags.render();
}

TEST(reader, wrong_type_names_both_types) {
    auto p = parse("[daemon]\nport = \"8080\"\nflag = 1\nname = 1.5\nwhen = 2026-01-05\n");
    auto d = p->root->sub("daemon");
    EXPECT_FALSE(d.get_int("port", 0, 65535));
    EXPECT_FALSE(d.get_bool("flag"));
    EXPECT_FALSE(d.get_string("name"));
    EXPECT_FALSE(d.get_string("when"));
    EXPECT_EQ(
        lines_of(p->diags.render()),
        (std::vector<std::string>{
            "t.toml:2:1: error: [daemon] 'port' must be an integer, not a string",
            "t.toml:3:1: error: [daemon] 'flag' must be a boolean (true or false), not an "
            "integer",
            "t.toml:4:1: error: [daemon] 'name' must be a string, not a floating-point number",
            "t.toml:5:1: error: [daemon] 'when' must be a string, not a date",
        }));
}

TEST(reader, missing_required_key_is_reported_at_the_table_header) {
    auto p = parse("# comment\n\n  [daemon]\nx = 1\n");
    auto d = p->root->sub("daemon");
    d.ignore("x");
    EXPECT_FALSE(d.get_string("data_dir", required));
    EXPECT_FALSE(d.get_string("optional_key"));
    EXPECT_EQ(p->diags.render(), "t.toml:3:3: error: [daemon] missing required key 'data_dir'\n");
}

TEST(reader, missing_required_key_of_an_absent_table_is_reported_at_the_nearest_ancestor) {
    auto p = parse("[other]\n");
    p->root->ignore("other");
    auto d = p->root->sub("daemon");
    EXPECT_FALSE(d.exists());
    EXPECT_FALSE(d.get_string("data_dir", required));
    EXPECT_EQ(p->diags.render(), "t.toml:1:1: error: [daemon] missing required key 'data_dir'\n");
}

TEST(reader, integer_range) {
    auto p = parse("a = 0\nb = 70000\n");
    EXPECT_FALSE(p->root->get_int("a", 1, 10));
    EXPECT_FALSE(p->root->get_int("b", 1, 65535));
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:1:1: error: 'a' must be between 1 and 10, not 0",
                  "t.toml:2:1: error: 'b' must be between 1 and 65535, not 70000",
              }));
}

TEST(reader, durations) {
    auto p = parse(
        "[t]\n"
        "a = \"1h30m\"\n"
        "b = \"10 s\"\n"
        "c = 30\n"
        "d = \"0s\"\n"
        "e = \"2d\"\n");
    auto t = p->root->sub("t");
    EXPECT_EQ(t.get_duration("a"), 90min);
    EXPECT_FALSE(t.get_duration("b"));
    EXPECT_FALSE(t.get_duration("c"));
    EXPECT_FALSE(t.get_duration("d", 1ms, 1h));
    EXPECT_FALSE(t.get_duration("e", 1ms, 1h));
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:3:1: error: [t] malformed duration '10 s' (expected e.g. \"30s\", "
                  "\"5m\", \"1h30m\")",
                  "t.toml:4:1: error: [t] 'c' must be a duration string such as \"30s\", not an "
                  "integer",
                  "t.toml:5:1: error: [t] 'd' must be at least 1ms, not 0s",
                  "t.toml:6:1: error: [t] 'e' must be at most 1h, not 2d",
              }));
}

TEST(reader, sizes) {
    auto p = parse(
        "a = \"1MiB\"\n"
        "b = 4096\n"
        "c = \"1.5MiB\"\n"
        "d = -1\n"
        "e = \"2KiB\"\n"
        "f = true\n");
    auto& r = *p->root;
    EXPECT_EQ(r.get_size("a"), 1048576U);
    EXPECT_EQ(r.get_size("b"), 4096U);
    EXPECT_FALSE(r.get_size("c"));
    EXPECT_FALSE(r.get_size("d"));
    EXPECT_FALSE(r.get_size("e", 4096, 8192));
    EXPECT_FALSE(r.get_size("f"));
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:3:1: error: malformed size '1.5MiB' (expected e.g. \"1MiB\", "
                  "\"512KiB\", \"64KB\" or a number of bytes)",
                  "t.toml:4:1: error: 'd' must not be negative",
                  "t.toml:5:1: error: 'e' must be between 4096 and 8192 bytes, not 2KiB",
                  "t.toml:6:1: error: 'f' must be a size such as \"1MiB\" or a number of bytes, "
                  "not a boolean",
              }));
}

TEST(reader, enums_suggest_the_closest_value) {
    auto p = parse("[daemon]\nlog_format = \"jsn\"\nlog_level = \"info\"\n");
    auto d = p->root->sub("daemon");
    EXPECT_FALSE(d.get_enum("log_format", {"auto", "text", "json", "journald"}));
    EXPECT_EQ(d.get_enum("log_level", {"debug", "info"}), "info");
    EXPECT_EQ(p->diags.render(),
              "t.toml:2:1: error: [daemon] 'log_format' must be one of 'auto', 'text', 'json', "
              "'journald', not 'jsn' (did you mean 'json'?)\n");
}

TEST(reader, time_zones_are_checked_against_tzdata) {
    auto p = parse("a = \"America/New_York\"\nb = \"America/New_Yrok\"\nc = \"Mars/Olympus\"\n");
    auto& r = *p->root;
    EXPECT_EQ(r.get_time_zone("a"), "America/New_York");
    EXPECT_FALSE(r.get_time_zone("b"));
    EXPECT_FALSE(r.get_time_zone("c"));
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:2:1: error: unknown time zone 'America/New_Yrok' (did you mean "
                  "'America/New_York'?)",
                  "t.toml:3:1: error: unknown time zone 'Mars/Olympus' (expected an IANA name "
                  "such as \"America/New_York\" or \"UTC\")",
              }));
}

TEST(reader, instants_from_strings_and_toml_date_times) {
    auto p = parse(
        "a = \"2026-01-05T08:00:00Z\"\n"
        "b = 2026-01-05T03:00:00-05:00\n"
        "c = 2026-01-05T08:00:00\n"
        "d = \"2026-01-05 08:00\"\n"
        "e = 2026-01-05T08:00:00.250Z\n");
    auto& r = *p->root;
    util::instant expected{};
    ASSERT_TRUE(util::parse_rfc3339("2026-01-05T08:00:00Z", expected));
    EXPECT_EQ(r.get_instant("a"), expected);
    EXPECT_EQ(r.get_instant("b"), expected);
    EXPECT_FALSE(r.get_instant("c"));
    EXPECT_FALSE(r.get_instant("d"));
    EXPECT_EQ(r.get_instant("e"), expected + 250ms);
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:3:1: error: 'c' needs a UTC offset (e.g. 2026-01-05T08:00:00Z or "
                  "2026-01-05T03:00:00-05:00)",
                  "t.toml:4:1: error: malformed timestamp '2026-01-05 08:00' (expected RFC 3339, "
                  "e.g. \"2026-01-05T08:00:00Z\")",
              }));
}

TEST(reader, endpoints_and_urls) {
    auto p = parse(
        "a = \"[::1]:8081\"\n"
        "b = \"example.com:80\"\n"
        "c = \"https://api.xero.com\"\n"
        "d = \"api.xero.com\"\n");
    auto& r = *p->root;
    EXPECT_EQ(r.get_endpoint("a")->text(), "[::1]:8081");
    EXPECT_FALSE(r.get_endpoint("b"));
    EXPECT_EQ(r.get_url("c"), "https://api.xero.com");
    EXPECT_FALSE(r.get_url("d"));
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:2:1: error: malformed endpoint 'example.com:80' (expected \"host:port\" "
                  "with an IP address or localhost, e.g. \"127.0.0.1:8081\" or \"[::1]:8081\")",
                  "t.toml:4:1: error: 'd' must be an absolute http or https URL, not "
                  "'api.xero.com'",
              }));
}

TEST(reader, string_array_elements_are_checked_one_by_one) {
    auto p = parse("list = [\"a\", 2, \"c\", false]\nnot_list = \"a\"\n");
    EXPECT_FALSE(p->root->get_string_array("list"));
    EXPECT_FALSE(p->root->get_string_array("not_list"));
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:1:14: error: 'list' must be an array of strings; element 2 is an "
                  "integer",
                  "t.toml:1:22: error: 'list' must be an array of strings; element 4 is a boolean",
                  "t.toml:2:1: error: 'not_list' must be an array of strings, not a string",
              }));
}

TEST(reader, inline_secrets_are_accepted_with_a_warning) {
    auto p = parse("[c]\n  token = \"inline-secret-value\"\n");
    auto c = p->root->sub("c");
    auto s = c.get_secret("token");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->reveal(), "inline-secret-value");
    EXPECT_FALSE(p->diags.has_errors());
    EXPECT_EQ(p->diags.render(),
              "t.toml:2:3: warning: [c] 'token' is an inline secret; prefer a reference such as "
              "\"${credential:NAME}\", \"${env:NAME}\" or \"${file:/path}\"\n");
}

TEST(reader, secrets_too_short_to_mask_in_logs_are_refused_at_their_key) {
    // The log redactor cannot mask a value of a few bytes without hiding ordinary text, so such
    // a secret would reach the logs in the clear: it is refused where it is written.
    auto p = parse("[c]\n  token = \"abc\"\n  pin = \"12\"\n  ok = \"1234\"\n");
    auto c = p->root->sub("c");
    EXPECT_FALSE(c.get_secret("token"));
    EXPECT_FALSE(c.get_secret("pin"));
    EXPECT_TRUE(c.get_secret("ok"));
    EXPECT_TRUE(p->diags.has_errors());
    const auto rendered = p->diags.render();
    EXPECT_NE(rendered.find("t.toml:2:3: error: [c] 'token' is 3 bytes long; secrets must be at "
                            "least 4 bytes"),
              std::string::npos)
        << rendered;
    EXPECT_NE(rendered.find("t.toml:3:3: error: [c] 'pin' is 2 bytes long"), std::string::npos)
        << rendered;
    EXPECT_EQ(rendered.find("\"12\""), std::string::npos) << "a value reached a diagnostic";
    EXPECT_EQ(rendered.find("abc"), std::string::npos) << "a value reached a diagnostic";
}

TEST(reader, unknown_keys_are_reported_by_finish_with_suggestions) {
    auto p = parse(
        "[connectors.qbo]\n"
        "client_id = \"x\"\n"
        "  clinet_secret = \"y\"\n"
        "zzz = 1\n"
        "[connectors.qbo.extra]\n"
        "a = 1\n"
        "[daemon]\n"
        "[deamon.clock]\n");
    auto root = *p->root;
    auto conns = root.sub("connectors");
    auto subs = conns.subtables();
    ASSERT_EQ(subs.size(), 1U);
    EXPECT_EQ(subs[0].name(), "qbo");
    EXPECT_EQ(subs[0].path(), "connectors.qbo");
    EXPECT_EQ(subs[0].get_string("client_id"), "x");
    EXPECT_FALSE(subs[0].get_secret("client_secret"));
    root.sub("daemon");
    root.finish();
    root.finish();  // runs once
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{
                  "t.toml:3:3: error: [connectors.qbo] unknown key 'clinet_secret' (did you mean "
                  "'client_secret'?)",
                  "t.toml:4:1: error: [connectors.qbo] unknown key 'zzz'",
                  "t.toml:5:17: error: [connectors.qbo] unknown table [connectors.qbo.extra]",
                  "t.toml:8:2: error: unknown table [deamon] (did you mean [daemon]?)",
              }));
}

TEST(reader, sub_of_a_non_table_is_an_error_without_cascades) {
    auto p = parse("webhook_listener = \"0.0.0.0:80\"\n");
    auto w = p->root->sub("webhook_listener");
    EXPECT_FALSE(w.exists());
    EXPECT_FALSE(w.get_string("address", required));
    p->root->finish();
    EXPECT_EQ(p->diags.render(),
              "t.toml:1:1: error: 'webhook_listener' must be a table, not a string\n");
}

TEST(reader, subtables_come_in_document_order_and_reject_non_tables) {
    auto p = parse(
        "[connectors]\n"
        "stray = 1\n"
        "[connectors.zeta]\n"
        "[connectors.alpha]\n"
        "[connectors.mid]\n");
    auto subs = p->root->sub("connectors").subtables();
    ASSERT_EQ(subs.size(), 3U);
    EXPECT_EQ(subs[0].name(), "zeta");
    EXPECT_EQ(subs[1].name(), "alpha");
    EXPECT_EQ(subs[2].name(), "mid");
    EXPECT_EQ(subs[1].position().line, 4U);
    EXPECT_EQ(p->diags.render(),
              "t.toml:2:1: error: [connectors] 'stray' must be a table, not an integer\n");
}

TEST(reader, inline_tables_work_like_header_tables) {
    auto p = parse("limits = { max_body = \"2MiB\", typo = 1 }\n");
    auto l = p->root->sub("limits");
    EXPECT_EQ(l.get_size("max_body"), 2U * 1024 * 1024);
    p->root->finish();
    EXPECT_EQ(p->diags.render(), "t.toml:1:31: error: [limits] unknown key 'typo'\n");
}

TEST(reader, accept_rest_silences_unknown_keys_below) {
    auto p = parse("[a]\nx = 1\n[a.b]\ny = 2\n");
    p->root->sub("a").accept_rest();
    p->root->finish();
    EXPECT_TRUE(p->diags.empty()) << p->diags.render();
}

TEST(reader, syntax_errors_have_positions) {
    diagnostics diags;
    EXPECT_FALSE(reader::parse("a = 1\n[x]\nb = = 2\n", "t.toml", diags));
    EXPECT_FALSE(reader::parse("a = 1\na = 2\n", "u.toml", diags));
    EXPECT_EQ(lines_of(diags.render()),
              (std::vector<std::string>{
                  "t.toml:3:5: error: invalid TOML: error while parsing value: could not "
                  "determine value type",
                  "u.toml:2:5: error: invalid TOML: error while parsing key-value pair: cannot "
                  "redefine existing integer 'a'",
              }));
}

TEST(reader, error_and_warning_helpers_use_key_or_table_positions) {
    auto p = parse("[t]\n\n   k = 1\n");
    auto t = p->root->sub("t");
    t.error("k", "bad k");
    t.warning("absent", "about absent");
    EXPECT_EQ(lines_of(p->diags.render()),
              (std::vector<std::string>{"t.toml:1:1: warning: [t] about absent",
                                        "t.toml:3:4: error: [t] bad k"}));
}

}  // namespace
}  // namespace billsync::config
