#include "config/values.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace billsync::config {
namespace {

using std::chrono::milliseconds;

TEST(parse_duration, accepts_units_and_combinations) {
    EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
    EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
    EXPECT_EQ(parse_duration("5m"), milliseconds(300'000));
    EXPECT_EQ(parse_duration("1h30m"), milliseconds(5'400'000));
    EXPECT_EQ(parse_duration("2d"), milliseconds(172'800'000));
    EXPECT_EQ(parse_duration("1d2h3m4s5ms"), milliseconds(93'784'005));
    EXPECT_EQ(parse_duration("0s"), milliseconds(0));
    EXPECT_EQ(parse_duration("90s"), milliseconds(90'000));
    EXPECT_EQ(parse_duration("1500ms"), milliseconds(1'500));
}

TEST(parse_duration, rejects_malformed_text) {
    for (const char* bad : {"",
                            "30",
                            "s",
                            "1.5h",
                            "30 s",
                            " 30s",
                            "30s ",
                            "-1s",
                            "+1s",
                            "1m1h",
                            "1s1s",
                            "5M",
                            "1h 30m",
                            "1x",
                            "1sec",
                            "1mss",
                            "99999999999999999999s",
                            "9223372036854775807d"}) {
        EXPECT_FALSE(parse_duration(bad)) << bad;
    }
}

TEST(parse_size, accepts_units) {
    EXPECT_EQ(parse_size("1MiB"), 1024U * 1024U);
    EXPECT_EQ(parse_size("512KiB"), 512U * 1024U);
    EXPECT_EQ(parse_size("64KB"), 64'000U);
    EXPECT_EQ(parse_size("64kB"), 64'000U);
    EXPECT_EQ(parse_size("2MB"), 2'000'000U);
    EXPECT_EQ(parse_size("1GB"), 1'000'000'000U);
    EXPECT_EQ(parse_size("2GiB"), 2ULL * 1024 * 1024 * 1024);
    EXPECT_EQ(parse_size("1024"), 1024U);
    EXPECT_EQ(parse_size("10B"), 10U);
    EXPECT_EQ(parse_size("0"), 0U);
    EXPECT_EQ(parse_size("1 MiB"), 1024U * 1024U);
}

TEST(parse_size, rejects_malformed_text) {
    for (const char* bad : {"",
                            "MiB",
                            "1.5MiB",
                            "1mib",
                            "1Mib",
                            "-1",
                            "1MiBs",
                            "1  MiB",
                            "1 ",
                            " 1",
                            "1TiB",
                            "18446744073709551616",
                            "17179869184GiB"}) {
        EXPECT_FALSE(parse_size(bad)) << bad;
    }
}

TEST(parse_endpoint, accepts_ipv4_ipv6_and_localhost) {
    auto e = parse_endpoint("127.0.0.1:8080");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->host, "127.0.0.1");
    EXPECT_EQ(e->port, 8080);
    EXPECT_EQ(e->text(), "127.0.0.1:8080");

    e = parse_endpoint("[::1]:8081");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->host, "::1");
    EXPECT_EQ(e->port, 8081);
    EXPECT_EQ(e->text(), "[::1]:8081");

    e = parse_endpoint("localhost:0");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->port, 0);
    EXPECT_TRUE(parse_endpoint("0.0.0.0:65535"));
    EXPECT_TRUE(parse_endpoint("[::]:80"));
}

TEST(parse_endpoint, rejects_bad_text) {
    for (const char* bad : {"",
                            "127.0.0.1",
                            "127.0.0.1:",
                            "127.0.0.1:65536",
                            "127.0.0.1:+80",
                            "127.0.0.1:80a",
                            "127.0.0.1:000080",
                            "host.example:80",
                            ":80",
                            "::1:80",
                            "[::1]8080",
                            "[::1]",
                            "[zz]:80",
                            "[127.0.0.1]:80",
                            "300.1.1.1:80"}) {
        EXPECT_FALSE(parse_endpoint(bad)) << bad;
    }
}

TEST(endpoint, knows_loopback) {
    EXPECT_TRUE((endpoint{"127.0.0.1", 1}.is_loopback()));
    EXPECT_TRUE((endpoint{"127.10.0.3", 1}.is_loopback()));
    EXPECT_TRUE((endpoint{"::1", 1}.is_loopback()));
    EXPECT_TRUE((endpoint{"::ffff:127.0.0.1", 1}.is_loopback()));
    EXPECT_TRUE((endpoint{"localhost", 1}.is_loopback()));
    EXPECT_FALSE((endpoint{"0.0.0.0", 1}.is_loopback()));
    EXPECT_FALSE((endpoint{"::", 1}.is_loopback()));
    EXPECT_FALSE((endpoint{"10.0.0.1", 1}.is_loopback()));
    EXPECT_FALSE((endpoint{"128.0.0.1", 1}.is_loopback()));
}

TEST(is_http_url, accepts_absolute_http_urls_only) {
    EXPECT_TRUE(is_http_url("https://api.xero.com"));
    EXPECT_TRUE(is_http_url("http://127.0.0.1:9000/v2"));
    EXPECT_TRUE(is_http_url("https://[::1]:8443/x?y=1"));
    EXPECT_FALSE(is_http_url("ftp://example.com"));
    EXPECT_FALSE(is_http_url("api.xero.com"));
    EXPECT_FALSE(is_http_url("https://"));
    EXPECT_FALSE(is_http_url("https:///path"));
    EXPECT_FALSE(is_http_url("/v2/clients"));
    EXPECT_FALSE(is_http_url("https://exa mple.com"));
    EXPECT_FALSE(is_http_url(""));
}

TEST(closest_match, suggests_plausible_typos_only) {
    const std::vector<std::string_view> keys = {"client_id", "client_secret", "realm_id", "url"};
    EXPECT_EQ(closest_match("clinet_id", keys), "client_id");  // transposition
    EXPECT_EQ(closest_match("client_secert", keys), "client_secret");
    EXPECT_EQ(closest_match("realmid", keys), "realm_id");
    EXPECT_EQ(closest_match("Realm_ID", keys), "realm_id");
    EXPECT_EQ(closest_match("tls", keys), std::nullopt);
    EXPECT_EQ(closest_match("something_else", keys), std::nullopt);
    EXPECT_EQ(closest_match("x", keys), std::nullopt);
    EXPECT_EQ(edit_distance("abc", "acb"), 1U);
    EXPECT_EQ(edit_distance("", "abc"), 3U);
}

}  // namespace
}  // namespace billsync::config
