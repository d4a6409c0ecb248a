#include "config/secret.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "tests/unit/config/test_support.hpp"

namespace billsync::config {
namespace {

using testing::scoped_env;
using testing::temp_dir;

// A secret cannot be printed by accident: no operator<<, no fmt formatter, no conversions.
template <typename T>
concept streamable = requires(std::ostream& os, const T& v) { os << v; };
static_assert(!streamable<secret>);
static_assert(!fmt::is_formattable<secret>::value);
static_assert(!std::is_convertible_v<secret, std::string>);

std::string resolve_error(std::string_view text) {
    std::string error;
    EXPECT_FALSE(resolve_secret(text, error)) << text;
    return error;
}

TEST(secret, resolves_environment_variables) {
    const scoped_env env("BILLSYNC_TEST_SECRET", "s3cr3t-from-env");
    std::string error;
    auto s = resolve_secret("${env:BILLSYNC_TEST_SECRET}", error);
    ASSERT_TRUE(s) << error;
    EXPECT_EQ(s->reference(), "${env:BILLSYNC_TEST_SECRET}");
    EXPECT_EQ(s->reveal(), "s3cr3t-from-env");
    EXPECT_FALSE(s->is_inline());
}

TEST(secret, unset_environment_variable_is_an_error) {
    const scoped_env env("BILLSYNC_TEST_UNSET", std::nullopt);
    EXPECT_EQ(resolve_error("${env:BILLSYNC_TEST_UNSET}"),
              "environment variable 'BILLSYNC_TEST_UNSET' is not set");
}

TEST(secret, empty_value_is_an_error) {
    const scoped_env env("BILLSYNC_TEST_EMPTY", "");
    EXPECT_EQ(resolve_error("${env:BILLSYNC_TEST_EMPTY}"),
              "secret ${env:BILLSYNC_TEST_EMPTY} is empty");
    EXPECT_EQ(resolve_error(""), "secret is empty");
}

TEST(secret, reads_files_and_strips_one_trailing_newline) {
    const temp_dir dir;
    const auto lf = dir.write("lf", "value-one\n");
    const auto crlf = dir.write("crlf", "value-two\r\n");
    const auto two = dir.write("two", "value-three\n\n");
    const auto none = dir.write("none", "value-four");
    std::string error;
    EXPECT_EQ(resolve_secret("${file:" + lf.string() + "}", error)->reveal(), "value-one");
    EXPECT_EQ(resolve_secret("${file:" + crlf.string() + "}", error)->reveal(), "value-two");
    EXPECT_EQ(resolve_secret("${file:" + two.string() + "}", error)->reveal(), "value-three\n");
    EXPECT_EQ(resolve_secret("${file:" + none.string() + "}", error)->reveal(), "value-four");
    EXPECT_EQ(resolve_secret("${file:" + lf.string() + "}", error)->reference(),
              "${file:" + lf.string() + "}");

    const auto blank = dir.write("blank", "\n");
    EXPECT_EQ(resolve_error("${file:" + blank.string() + "}"),
              "secret ${file:" + blank.string() + "} is empty");
}

TEST(secret, unreadable_file_names_the_path_only) {
    const temp_dir dir;
    const auto missing = (dir.path() / "missing").string();
    EXPECT_EQ(resolve_error("${file:" + missing + "}"),
              "cannot read secret file '" + missing + "': No such file or directory");
    EXPECT_EQ(resolve_error("${file:" + dir.path().string() + "}"),
              "cannot read secret file '" + dir.path().string() + "': is a directory");
    EXPECT_EQ(resolve_error("${file:relative/path}"),
              "secret file path must be absolute in '${file:relative/path}'");
}

TEST(secret, reads_systemd_credentials) {
    const temp_dir dir;
    dir.write("qbo_secret", "cred-value\n");
    const scoped_env env("CREDENTIALS_DIRECTORY", dir.path().string());
    std::string error;
    auto s = resolve_secret("${credential:qbo_secret}", error);
    ASSERT_TRUE(s) << error;
    EXPECT_EQ(s->reveal(), "cred-value");
    EXPECT_EQ(s->reference(), "${credential:qbo_secret}");

    EXPECT_EQ(resolve_error("${credential:absent}"),
              "cannot read credential 'absent' at '" + dir.path().string() +
                  "/absent': No such file or directory");
    EXPECT_EQ(resolve_error("${credential:../etc/passwd}"),
              "malformed secret reference '${credential:../etc/passwd}' (bad credential name)");
}

TEST(secret, credential_without_credentials_directory_is_a_clear_error) {
    const scoped_env env("CREDENTIALS_DIRECTORY", std::nullopt);
    EXPECT_EQ(resolve_error("${credential:qbo_secret}"),
              "secret ${credential:qbo_secret} needs $CREDENTIALS_DIRECTORY, which is not set "
              "(provide it with systemd LoadCredential= or SetCredential=, or use ${env:...} or "
              "${file:...})");
}

TEST(secret, malformed_references_are_errors_not_literals) {
    EXPECT_EQ(resolve_error("${vault:x}"),
              "unknown secret source 'vault' in '${vault:x}' (expected ${env:NAME}, "
              "${file:/absolute/path} or ${credential:NAME})");
    EXPECT_EQ(resolve_error("${env}"),
              "malformed secret reference '${env}' (expected ${env:NAME}, ${file:/absolute/path} "
              "or ${credential:NAME})");
    EXPECT_EQ(resolve_error("${env:A"),
              "malformed secret reference (expected ${env:NAME}, ${file:/absolute/path} or "
              "${credential:NAME})");
    EXPECT_EQ(resolve_error("${env:}"), "malformed secret reference '${env:}' (bad variable name)");
}

TEST(secret, inline_literal_is_accepted) {
    std::string error;
    auto s = resolve_secret("literal-value", error);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->is_inline());
    EXPECT_EQ(s->reference(), "<inline>");
    EXPECT_EQ(s->reveal(), "literal-value");
}

TEST(secret, observer_learns_every_resolved_value) {
    std::vector<std::string> seen;
    set_secret_observer([&](const std::string& v) { seen.push_back(v); });
    const scoped_env env("BILLSYNC_TEST_OBSERVED", "observed-env");
    std::string error;
    (void)resolve_secret("observed-inline", error);
    (void)resolve_secret("${env:BILLSYNC_TEST_OBSERVED}", error);
    (void)resolve_secret("${env:BILLSYNC_TEST_DEFINITELY_UNSET}", error);
    set_secret_observer({});
    (void)resolve_secret("after-reset", error);
    EXPECT_EQ(seen, (std::vector<std::string>{"observed-inline", "observed-env"}));
}

TEST(secret, syntax_only_reads_nothing_and_still_refuses_malformed_references) {
    const scoped_env dir("CREDENTIALS_DIRECTORY", std::nullopt);
    const scoped_env unset("BILLSYNC_TEST_SYNTAX_ONLY_UNSET", std::nullopt);
    std::vector<std::string> seen;
    set_secret_observer([&](const std::string& v) { seen.push_back(v); });
    {
        const secret_syntax_only syntax_only;
        EXPECT_TRUE(secret_syntax_only::active());
        std::string error;
        for (const char* ref : {"${credential:qbo_secret}",
                                "${env:BILLSYNC_TEST_SYNTAX_ONLY_UNSET}",
                                "${file:/nonexistent/billsync/secret}"}) {
            auto s = resolve_secret(ref, error);
            ASSERT_TRUE(s) << ref << ": " << error;
            EXPECT_FALSE(s->resolved()) << ref;
            EXPECT_EQ(s->reference(), ref);
        }
        // The syntax is still checked.
        EXPECT_EQ(resolve_error("${credential:../etc/passwd}"),
                  "malformed secret reference '${credential:../etc/passwd}' (bad credential name)");
        EXPECT_EQ(resolve_error("${file:relative/path}"),
                  "secret file path must be absolute in '${file:relative/path}'");
        EXPECT_EQ(resolve_error("${env:}"),
                  "malformed secret reference '${env:}' (bad variable name)");
        EXPECT_EQ(resolve_error("${vault:x}").substr(0, 27), "unknown secret source 'vaul");
        // An inline literal is its own value.
        auto literal = resolve_secret("literal-value", error);
        ASSERT_TRUE(literal);
        EXPECT_TRUE(literal->resolved());
        EXPECT_EQ(literal->reveal(), "literal-value");
    }
    EXPECT_FALSE(secret_syntax_only::active());
    set_secret_observer({});
    // Placeholders are not secrets: only the literal reached the redactor.
    EXPECT_EQ(seen, (std::vector<std::string>{"literal-value"}));
    // Out of the scope, references are resolved again.
    EXPECT_EQ(resolve_error("${credential:qbo_secret}").substr(0, 40),
              "secret ${credential:qbo_secret} needs $C");
}

}  // namespace
}  // namespace billsync::config
