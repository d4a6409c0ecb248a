// The Linux side of the platform layer: systemd's notify protocol and journald, as sd_notify.hpp
// implements them.
#include <cstdio>
#include <mutex>
#include <string>

#include "daemon/platform/platform.hpp"
#include "daemon/sd_notify.hpp"

namespace billsync::daemon::platform {

namespace {

class systemd_lifecycle final : public lifecycle {
public:
    void ready() override { sd_notify("READY=1"); }
    void reloading() override { sd_notify_reloading(); }
    void stopping() override { sd_notify("STOPPING=1"); }
    std::optional<std::chrono::microseconds> watchdog_interval() const override {
        return sd_watchdog_interval();
    }
    watchdog_verdict watchdog_tick(bool healthy) override {
        return sd_watchdog_tick(healthy) ? watchdog_verdict::petted : watchdog_verdict::withheld;
    }

    // sd-daemon(3): "<priority>message" per line on the stream systemd connected to the
    // journal; journald adds the timestamp.
    void system_log(log_severity severity, std::string_view line) override {
        std::string out;
        out.reserve(line.size() + 4);
        out += '<';
        out += static_cast<char>('0' + static_cast<int>(severity));
        out += '>';
        out += line;
        out += '\n';
        const std::lock_guard lock(mutex_);
        std::fwrite(out.data(), 1, out.size(), stderr);
        std::fflush(stderr);
    }

private:
    std::mutex mutex_;
};

}  // namespace

std::unique_ptr<lifecycle> system_lifecycle() { return std::make_unique<systemd_lifecycle>(); }

namespace {

constexpr std::string_view not_windows =
    "this is the Linux build: systemd runs billsync (`billsync run`, Type=notify; the .deb "
    "installs "
    "billsync.service and billsync@.service, see man billsync); the Windows service commands exist "
    "in the Windows build only";

}  // namespace

int run_as_service(const std::wstring& /*name*/, const service_body& /*body*/, std::string& error) {
    error = "--service: " + std::string(not_windows);
    return 64;
}

std::string install_service(const std::wstring& /*name*/, const std::filesystem::path& /*config*/) {
    return "service install: " + std::string(not_windows);
}

std::string uninstall_service(const std::wstring& /*name*/) {
    return "service uninstall: " + std::string(not_windows);
}

}  // namespace billsync::daemon::platform
