#include "config/environment.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/values.hpp"
#include "tests/unit/config/test_support.hpp"

namespace billsync::config {
namespace {

using testing::temp_dir;

daemon_settings settings_with(const std::filesystem::path& data_dir) {
    daemon_settings s;
    s.data_dir = data_dir;
    s.webhook.address = {"127.0.0.1", 0};
    s.status.address = {"127.0.0.1", 0};
    s.where.data_dir = {"billsync.toml", 2, 1};
    s.where.webhook_address = {"billsync.toml", 8, 1};
    s.where.status_address = {"billsync.toml", 12, 1};
    return s;
}

// A listening socket on 127.0.0.1 with a kernel-chosen port, closed at the end.
class busy_port {
public:
    busy_port() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        EXPECT_EQ(::listen(fd_, 1), 0);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    busy_port(const busy_port&) = delete;
    busy_port& operator=(const busy_port&) = delete;
    ~busy_port() { ::close(fd_); }
    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

TEST(environment, writable_data_dir_passes_and_is_left_clean) {
    const temp_dir dir;
    diagnostics diags;
    check_environment(settings_with(dir.path()), diags);
    EXPECT_TRUE(diags.empty()) << diags.render();
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(environment, data_dir_that_can_be_created_passes_without_creating_it) {
    const temp_dir dir;
    diagnostics diags;
    check_environment(settings_with(dir.path() / "a" / "b"), diags);
    EXPECT_TRUE(diags.empty()) << diags.render();
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "a"));
}

TEST(environment, data_dir_that_is_a_file_fails_at_the_key) {
    const temp_dir dir;
    const auto file = dir.write("f", "x");
    diagnostics diags;
    check_environment(settings_with(file), diags);
    EXPECT_EQ(diags.render(),
              "billsync.toml:2:1: error: [daemon] data_dir '" + file.string() +
                  "' exists but is not a directory\n");

    diagnostics below;
    check_environment(settings_with(file / "sub"), below);
    EXPECT_EQ(below.render(),
              "billsync.toml:2:1: error: [daemon] data_dir '" + (file / "sub").string() +
                  "' cannot be created\n");
}

TEST(environment, read_only_data_dir_fails) {
    if (::geteuid() == 0) {
        GTEST_SKIP() << "root can write anywhere";
    }
    const temp_dir dir;
    std::filesystem::permissions(
        dir.path(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    diagnostics diags;
    check_environment(settings_with(dir.path()), diags);
    std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all);
    EXPECT_EQ(diags.render(),
              "billsync.toml:2:1: error: [daemon] data_dir '" + dir.path().string() +
                  "' is not writable: Permission denied\n");
}

TEST(environment, busy_listener_address_fails_at_the_key) {
    const temp_dir dir;
    const busy_port busy;
    auto s = settings_with(dir.path());
    s.status.address.port = busy.port();
    diagnostics diags;
    check_environment(s, diags);
    EXPECT_EQ(
        diags.render(),
        "billsync.toml:12:1: error: [daemon.status_listener] cannot bind address '127.0.0.1:" +
            std::to_string(busy.port()) + "': Address already in use\n");
}

TEST(environment, free_addresses_pass_and_port_zero_is_skipped) {
    const temp_dir dir;
    auto s = settings_with(dir.path());
    std::uint16_t free_port = 0;
    {
        const busy_port probe;
        free_port = probe.port();
    }
    s.webhook.address = {"localhost", free_port};
    s.status.address = {"192.0.2.1", 0};  // not local, but port 0 is never checked
    diagnostics diags;
    check_environment(s, diags);
    EXPECT_TRUE(diags.empty()) << diags.render();
}

TEST(environment, address_not_on_this_host_fails) {
    const temp_dir dir;
    auto s = settings_with(dir.path());
    s.webhook.address = {"192.0.2.1", 8080};  // TEST-NET-1, never local
    diagnostics diags;
    check_environment(s, diags);
    EXPECT_EQ(diags.render(),
              "billsync.toml:8:1: error: [daemon.webhook_listener] cannot bind address "
              "'192.0.2.1:8080': Cannot assign requested address\n");
}

}  // namespace
}  // namespace billsync::config
