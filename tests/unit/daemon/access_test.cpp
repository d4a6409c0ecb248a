// Who may use the status listener: reads behind the configured token (Bearer or, for a browser,
// Basic), changes behind the operator token even on loopback, an allowed Host and a JSON body.

#include "daemon/access.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>

#include "tests/fakes/temp_dir.hpp"
#include "util/crypto.hpp"

namespace billsync::daemon {
namespace {

const std::string token(64, 'a');

std::shared_ptr<access_policy> policy(std::optional<std::string> read = std::nullopt) {
    auto p = std::make_shared<access_policy>();
    p->read_token = std::move(read);
    p->write_token = p->read_token.value_or(token);
    p->listener_host = "10.1.2.3";
    p->allowed_hosts = {"billsync.firm.example"};
    return p;
}

struct call {
    int* calls;
    http::response operator()(const http::handler& h,
                              std::string method,
                              std::vector<http::header> headers) const {
        net::io_context ioc;
        http::request req;
        req.method = std::move(method);
        req.target = req.path = "/followups/stop";
        req.headers = std::move(headers);
        req.body = R"({"invoice":"1001"})";
        auto f = net::co_spawn(ioc, h(req), net::use_future);
        ioc.run();
        return f.get();
    }
};

http::handler counting(int& calls) {
    return [&calls](http::request) -> net::awaitable<http::response> {
        ++calls;
        co_return http::response::json(200, "{}");
    };
}

std::string basic(std::string_view user_and_password) {
    return "Basic " + util::base64_encode(user_and_password);
}

TEST(access, credentials_are_a_bearer_token_or_basic_with_the_token_as_password) {
    EXPECT_TRUE(credentials_match("Bearer " + token, token, false));
    EXPECT_FALSE(credentials_match("Bearer " + token + "x", token, false));
    EXPECT_FALSE(credentials_match("Bearer ", "", false));  // no token never matches
    EXPECT_FALSE(credentials_match(basic("admin:" + token), token, false));
    EXPECT_TRUE(credentials_match(basic("admin:" + token), token, true));
    EXPECT_TRUE(credentials_match(basic(":" + token), token, true));
    EXPECT_FALSE(credentials_match(basic("admin:wrong"), token, true));
    EXPECT_FALSE(credentials_match(basic(token), token, true));  // no colon
    EXPECT_FALSE(credentials_match("Basic !!!", token, true));
    EXPECT_FALSE(credentials_match(token, token, true));
}

TEST(access, the_host_must_name_loopback_the_listener_or_an_allowed_name) {
    const auto p = policy();
    for (const auto* ok : {"127.0.0.1",
                           "127.0.0.1:8081",
                           "127.5.6.7:1",
                           "localhost",
                           "LOCALHOST:8081",
                           "localhost.",
                           "[::1]:8081",
                           "[::1]",
                           "10.1.2.3:8081",
                           "billsync.firm.example",
                           "Billsync.Firm.Example:443"}) {
        EXPECT_TRUE(host_allowed(ok, *p)) << ok;
    }
    for (const auto* bad : {"",
                            "evil.example",
                            "evil.example:8081",
                            "127.0.0.1.evil.example",
                            "localhost.evil.example",
                            "10.1.2.4",
                            "::1",  // unbracketed IPv6 with a port is ambiguous
                            "[::1",
                            "[::1]x",
                            "billsync.firm.example.evil"}) {
        EXPECT_FALSE(host_allowed(bad, *p)) << bad;
    }
    auto wildcard = policy();
    wildcard->listener_host = "0.0.0.0";
    EXPECT_FALSE(host_allowed("0.0.0.0", *wildcard));
}

TEST(access, json_content_type_only) {
    EXPECT_TRUE(is_json_content_type("application/json"));
    EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
    EXPECT_FALSE(is_json_content_type("application/x-www-form-urlencoded"));
    EXPECT_FALSE(is_json_content_type("text/plain"));
    EXPECT_FALSE(is_json_content_type("multipart/form-data; boundary=x"));
    EXPECT_FALSE(is_json_content_type(""));
    EXPECT_FALSE(is_json_content_type("application/jsonx"));
}

TEST(access, a_change_needs_the_token_even_without_a_configured_one) {
    int calls = 0;
    const auto h = guard_write(policy(), counting(calls));
    const call post{&calls};
    const http::header host{"Host", "127.0.0.1:8081"};
    const http::header json_type{"Content-Type", "application/json"};
    const http::header bearer{"Authorization", "Bearer " + token};

    auto r = post(h, "POST", {host, json_type});
    EXPECT_EQ(r.status, 401u);
    EXPECT_NE(r.body.find("\"error\":\"unauthorized\""), std::string::npos) << r.body;
    r = post(h, "POST", {host, json_type, {"Authorization", "Bearer wrong"}});
    EXPECT_EQ(r.status, 401u);
    // A browser's cached Basic credentials are not enough for a change.
    r = post(h, "POST", {host, json_type, {"Authorization", basic("u:" + token)}});
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(calls, 0);
    r = post(h, "POST", {host, json_type, bearer});
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(calls, 1);
}

TEST(access, a_change_is_refused_for_a_foreign_host_or_a_body_that_is_not_json) {
    int calls = 0;
    const auto h = guard_write(policy(), counting(calls));
    const call post{&calls};
    const http::header json_type{"Content-Type", "application/json"};
    const http::header bearer{"Authorization", "Bearer " + token};

    // DNS rebinding: the browser sends the attacker's name as Host.
    auto r = post(h, "POST", {{"Host", "attacker.example:8081"}, json_type, bearer});
    EXPECT_EQ(r.status, 403u);
    EXPECT_NE(r.body.find("forbidden_host"), std::string::npos) << r.body;
    r = post(h, "POST", {json_type, bearer});  // no Host at all
    EXPECT_EQ(r.status, 403u);
    // A cross-site form post cannot set Content-Type: application/json.
    for (const auto* type : {"application/x-www-form-urlencoded", "text/plain", ""}) {
        r = post(h, "POST", {{"Host", "localhost:8081"}, {"Content-Type", type}, bearer});
        EXPECT_EQ(r.status, 415u) << type;
        EXPECT_NE(r.body.find("unsupported_media_type"), std::string::npos) << r.body;
    }
    EXPECT_EQ(calls, 0);
    r = post(h, "POST", {{"Host", "billsync.firm.example"}, json_type, bearer});
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(calls, 1);
}

TEST(access, reads_are_open_without_a_configured_token_and_take_basic_with_one) {
    int calls = 0;
    const call get{&calls};
    EXPECT_EQ(get(guard_read(policy(), counting(calls), true), "GET", {}).status, 200u);
    EXPECT_EQ(calls, 1);

    const std::string configured = "configured-status-token-0123456789";
    const auto page = guard_read(policy(configured), counting(calls), /*browser=*/true);
    auto r = get(page, "GET", {});
    EXPECT_EQ(r.status, 401u);
    bool basic_challenge = false;
    for (const auto& h : r.headers) {
        basic_challenge |= h.name == "WWW-Authenticate" && h.value.starts_with("Basic realm=");
    }
    EXPECT_TRUE(basic_challenge) << "a browser must be asked for the token";
    EXPECT_EQ(get(page, "GET", {{"Authorization", basic("admin:nope")}}).status, 401u);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(get(page, "GET", {{"Authorization", basic("admin:" + configured)}}).status, 200u);
    EXPECT_EQ(get(page, "GET", {{"Authorization", "Bearer " + configured}}).status, 200u);
    EXPECT_EQ(calls, 3);

    const auto api = guard_read(policy(configured), counting(calls));
    r = get(api, "GET", {});
    EXPECT_EQ(r.status, 401u);
    ASSERT_FALSE(r.headers.empty());
    EXPECT_TRUE(r.headers.front().value.starts_with("Bearer"));
}

TEST(access, the_generated_token_is_private_stable_and_readable_by_the_cli) {
    testing::temp_dir dir;
    std::string error;
    EXPECT_EQ(read_status_token(dir.path(), error), "");
    EXPECT_NE(error.find("status_token"), std::string::npos) << error;

    error.clear();
    const auto first = ensure_status_token(dir.path(), error);
    ASSERT_EQ(first.size(), 64u) << error;
    struct stat st{};
    ASSERT_EQ(::stat((dir.path() / "status_token").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(ensure_status_token(dir.path(), error), first);
    EXPECT_EQ(read_status_token(dir.path(), error), first);
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "status_token.tmp"));

    // Readable by others: not trusted, replaced by a new private one.
    ::chmod((dir.path() / "status_token").c_str(), 0644);
    const auto second = ensure_status_token(dir.path(), error);
    ASSERT_EQ(second.size(), 64u) << error;
    EXPECT_NE(second, first);
    ASSERT_EQ(::stat((dir.path() / "status_token").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    // Malformed: the CLI says so.
    std::ofstream(dir.path() / "status_token", std::ios::trunc) << "short\n";
    error.clear();
    EXPECT_EQ(read_status_token(dir.path(), error), "");
    EXPECT_NE(error.find("malformed"), std::string::npos) << error;
}

}  // namespace
}  // namespace billsync::daemon
