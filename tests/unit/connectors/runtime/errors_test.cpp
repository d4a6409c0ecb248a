#include "connectors/runtime/errors.hpp"

#include <gtest/gtest.h>

#include "connectors/runtime/proxy.hpp"

namespace billsync::connectors {
namespace {

using namespace std::chrono_literals;

TEST(errors, status_mapping) {
    EXPECT_EQ(condition_for_status(200), std::nullopt);
    EXPECT_EQ(condition_for_status(304), std::nullopt);
    EXPECT_EQ(condition_for_status(429), condition::rate_limited);
    EXPECT_EQ(condition_for_status(401), condition::auth_expired);
    EXPECT_EQ(condition_for_status(403), condition::permanent);
    EXPECT_EQ(condition_for_status(404), condition::not_found);
    EXPECT_EQ(condition_for_status(409), condition::conflict);
    EXPECT_EQ(condition_for_status(412), condition::conflict);
    EXPECT_EQ(condition_for_status(400), condition::invalid_request);
    EXPECT_EQ(condition_for_status(422), condition::invalid_request);
    EXPECT_EQ(condition_for_status(500), condition::retryable);
    EXPECT_EQ(condition_for_status(503), condition::retryable);
    EXPECT_EQ(condition_for_status(410), condition::permanent);
}

TEST(errors, client_errors_map_onto_conditions) {
    const boost::system::error_code timeout = client_error::timeout;
    EXPECT_EQ(timeout, condition::retryable);
    EXPECT_NE(timeout, condition::permanent);
    const boost::system::error_code tls = client_error::certificate_verify_failed;
    EXPECT_EQ(tls, condition::permanent);
    EXPECT_EQ(tls.message(), "certificate verify failed");
    EXPECT_EQ(make_error_condition(condition::auth_revoked).message(), "auth_revoked");
}

TEST(errors, retry_after_seconds_and_http_date) {
    const auto now = std::chrono::sys_days{std::chrono::year{2015} / 10 / 21} + 7h + 28min;
    EXPECT_EQ(parse_retry_after("120", now), std::chrono::milliseconds(120'000));
    EXPECT_EQ(parse_retry_after(" 0 ", now), std::chrono::milliseconds(0));
    EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
              std::chrono::milliseconds(30'000));
    EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
              std::chrono::milliseconds(0));
    EXPECT_EQ(parse_retry_after("", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("Wed, 32 Oct 2015 07:28:30 GMT", now), std::nullopt);
}

TEST(proxy, no_proxy_rules) {
    EXPECT_TRUE(bypasses_proxy("anything.example", 443, "*"));
    EXPECT_TRUE(bypasses_proxy("example.com", 443, "example.com"));
    EXPECT_TRUE(bypasses_proxy("api.example.com", 443, "example.com"));
    EXPECT_TRUE(bypasses_proxy("api.example.com", 443, ".example.com"));
    EXPECT_TRUE(bypasses_proxy("API.Example.com", 443, "*.example.com"));
    EXPECT_FALSE(bypasses_proxy("badexample.com", 443, "example.com"));
    EXPECT_TRUE(bypasses_proxy("10.0.0.1", 80, "localhost, 10.0.0.1"));
    EXPECT_FALSE(bypasses_proxy("10.0.0.2", 80, "localhost,10.0.0.1"));
    EXPECT_TRUE(bypasses_proxy("example.com", 8443, "example.com:8443"));
    EXPECT_FALSE(bypasses_proxy("example.com", 443, "example.com:8443"));
    EXPECT_TRUE(bypasses_proxy("[::1]", 443, "::1"));
    EXPECT_FALSE(bypasses_proxy("example.com", 443, ""));
}

TEST(proxy, proxy_for_target) {
    proxy_settings s{"http://proxy.firm.local:3128", "proxy.firm.local:8080", "internal"};
    auto p = proxy_for(s, "https", "quickbooks.api.intuit.com", 443);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->host, "proxy.firm.local");
    EXPECT_EQ(p->port, 3128);
    EXPECT_TRUE(p->authorization.empty());
    p = proxy_for(s, "http", "vendor.example", 80);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->port, 8080);
    EXPECT_FALSE(proxy_for(s, "https", "git.internal", 443));
    s.https_proxy = "http://ann:s3cret@proxy:3128";
    p = proxy_for(s, "https", "api.xero.com", 443);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->authorization, "Basic YW5uOnMzY3JldA==");
    std::string error;
    s.https_proxy = "socks5://proxy:1080";
    EXPECT_FALSE(proxy_for(s, "https", "api.xero.com", 443, &error));
    EXPECT_NE(error.find("unsupported proxy"), std::string::npos);
}

}  // namespace
}  // namespace billsync::connectors
