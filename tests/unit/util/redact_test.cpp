#include "util/redact.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include "tests/fakes/log_capture.hpp"
#include "util/log.hpp"

namespace billsync::util {
namespace {

TEST(redact, masks_authorization_headers_keeping_the_scheme) {
    EXPECT_EQ(redact("Authorization: Bearer abc.def.ghi"), "Authorization: Bearer ***");
    EXPECT_EQ(redact("authorization=Basic dXNlcjpwYXNz"), "authorization=Basic ***");
}

TEST(redact, masks_json_and_form_credentials) {
    EXPECT_EQ(redact(R"({"access_token":"eyJ0","expires_in":3600})"),
              R"({"access_token":"***","expires_in":3600})");
    EXPECT_EQ(redact(R"({"refresh_token": "AB11", "x": 1})"),
              R"({"refresh_token": "***", "x": 1})");
    EXPECT_EQ(redact("grant_type=refresh_token&refresh_token=RT-1&client_secret=s3"),
              "grant_type=refresh_token&refresh_token=***&client_secret=***");
    EXPECT_EQ(redact("password: hunter22"), "password: ***");
}

TEST(redact, leaves_similar_names_alone) {
    EXPECT_EQ(redact("token_url=https://x/token"), "token_url=https://x/token");
    EXPECT_EQ(redact("secrets_key_ref=${env:K}"), "secrets_key_ref=${env:K}");
    EXPECT_EQ(redact("plain text"), "plain text");
}

TEST(redact, masks_registered_secret_values_anywhere) {
    register_secret("s3cr3t-value-123");
    EXPECT_EQ(redact("sent header X-Key s3cr3t-value-123 to host"),
              "sent header X-Key *** to host");
    register_secret("abc");  // too short to mask safely: ignored
    EXPECT_EQ(redact("abc"), "abc");
}

TEST(redact, a_rotating_secret_replaces_its_previous_value) {
    register_secret("oauth2/test/access", "first-token-1111");
    EXPECT_EQ(redact("a first-token-1111 b"), "a *** b");
    register_secret("oauth2/test/access", "second-token-2222");
    EXPECT_EQ(redact("a second-token-2222 b"), "a *** b");
    EXPECT_EQ(redact("a first-token-1111 b"), "a first-token-1111 b");  // bounded: replaced
}

TEST(log_hub, never_writes_a_registered_secret) {
    register_secret("tok-9f8e7d6c5b4a");
    testing::log_capture capture;
    log_hub hub(log_output::text, spdlog::level::debug, {capture.sink()});
    auto log = hub.get("connector.test");
    log->info("Refreshed token={} for realm=42", "tok-9f8e7d6c5b4a");
    log->debug("Request Authorization: Bearer tok-9f8e7d6c5b4a");
    const auto text = capture.joined();
    EXPECT_EQ(text.find("tok-9f8e7d6c5b4a"), std::string::npos) << text;
    EXPECT_NE(text.find("realm=42"), std::string::npos);
    EXPECT_NE(text.find("[connector.test]"), std::string::npos);
}

TEST(log_hub, set_level_applies_to_existing_loggers) {
    testing::log_capture capture;
    log_hub hub(log_output::json, spdlog::level::info, {capture.sink()});
    auto log = hub.get("daemon");
    log->debug("hidden");
    hub.set_level(spdlog::level::debug);
    log->debug("shown");
    const auto text = capture.joined();
    EXPECT_EQ(text.find("hidden"), std::string::npos);
    EXPECT_NE(text.find("shown"), std::string::npos);
}

TEST(log_level, parses_known_names_only) {
    spdlog::level::level_enum l{};
    EXPECT_TRUE(parse_log_level("warn", l));
    EXPECT_EQ(l, spdlog::level::warn);
    EXPECT_TRUE(parse_log_level("error", l));
    EXPECT_EQ(l, spdlog::level::err);
    EXPECT_FALSE(parse_log_level("loud", l));
}

}  // namespace
}  // namespace billsync::util
