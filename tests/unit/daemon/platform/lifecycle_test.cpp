// The Linux side of the platform layer: the lifecycle speaks systemd's notify protocol on
// $NOTIFY_SOCKET and writes the system log with sd-daemon priority prefixes; the Windows-only
// service commands say plainly that this is the Linux build.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "daemon/platform/platform.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync::daemon::platform {
namespace {

class notify_socket {
public:
    explicit notify_socket(const std::filesystem::path& path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const auto p = path.string();
        std::copy(p.begin(), p.end(), addr.sun_path);
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
        ::setenv("NOTIFY_SOCKET", p.c_str(), 1);
    }
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;
    ~notify_socket() {
        ::unsetenv("NOTIFY_SOCKET");
        ::close(fd_);
    }
    bool bound() const { return bound_; }
    std::string received() const {
        char buf[256];
        const auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }

private:
    int fd_ = -1;
    bool bound_ = false;
};

TEST(linux_lifecycle, tells_systemd_ready_reloading_stopping_and_pets_only_when_healthy) {
    const billsync::testing::temp_dir dir;
    const notify_socket socket(dir / "notify");
    ASSERT_TRUE(socket.bound());
    auto life = system_lifecycle();
    life->ready();
    EXPECT_EQ(socket.received(), "READY=1");
    life->reloading();
    EXPECT_TRUE(socket.received().starts_with("RELOADING=1\nMONOTONIC_USEC="));
    life->stopping();
    EXPECT_EQ(socket.received(), "STOPPING=1");
    using verdict = lifecycle::watchdog_verdict;
    EXPECT_EQ(life->watchdog_tick(true), verdict::petted);
    EXPECT_EQ(socket.received(), "WATCHDOG=1");
    EXPECT_EQ(life->watchdog_tick(false), verdict::withheld);  // systemd restarts us, not we
    EXPECT_EQ(life->watchdog_tick(false), verdict::withheld);
    EXPECT_EQ(socket.received(), "");
}

TEST(linux_lifecycle, the_watchdog_interval_is_half_of_what_systemd_gives) {
    auto life = system_lifecycle();
    ::unsetenv("WATCHDOG_PID");
    ::setenv("WATCHDOG_USEC", "30000000", 1);
    EXPECT_EQ(life->watchdog_interval(), std::chrono::microseconds(15'000'000));
    ::unsetenv("WATCHDOG_USEC");
    EXPECT_FALSE(life->watchdog_interval().has_value());
}

TEST(linux_lifecycle, the_system_log_is_journald_priority_prefixed_lines) {
    auto life = system_lifecycle();
    ::testing::internal::CaptureStderr();
    life->system_log(log_severity::error, "[app] Pipeline stalled");
    life->system_log(log_severity::info, "[app] Started");
    EXPECT_EQ(::testing::internal::GetCapturedStderr(),
              "<3>[app] Pipeline stalled\n<6>[app] Started\n");
}

TEST(linux_lifecycle, the_windows_service_commands_say_this_is_the_linux_build) {
    std::string error;
    bool ran = false;
    EXPECT_EQ(run_as_service(
                  L"billsync",
                  [&ran](service_host&) {
                      ran = true;
                      return 0;
                  },
                  error),
              64);
    EXPECT_FALSE(ran);
    EXPECT_NE(error.find("systemd runs billsync"), std::string::npos) << error;
    EXPECT_NE(install_service(L"billsync", "/etc/billsync/billsync.toml").find("Linux build"),
              std::string::npos);
    EXPECT_NE(uninstall_service(L"billsync").find("Linux build"), std::string::npos);
}

}  // namespace
}  // namespace billsync::daemon::platform
