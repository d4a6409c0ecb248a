#pragma once

// The daemon's lifecycle as the host's service manager sees it, behind one small interface:
// systemd on Linux (linux_systemd.cpp: sd_notify, the watchdog, journald), the Service Control
// Manager on Windows (windows_service.cpp: SetServiceStatus, the Event Log). Requests the other
// way (stop, reload) arrive on Linux as signals (SIGTERM, SIGHUP) and on Windows as SCM controls
// (stop, paramchange); both lead to the same drain and the same reload.
//
// No Boost, no spdlog, no OS header here: this layer is cross-compiled for Windows on its own.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::daemon::platform {

// syslog(3) priorities; the Event Log maps them onto error / warning / information.
enum class log_severity { critical = 2, error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

class lifecycle {
public:
    virtual ~lifecycle() = default;

    // Listeners bound, state open: systemd READY=1; SCM SERVICE_RUNNING.
    virtual void ready() = 0;
    // Re-reading the configuration (then ready() again): systemd RELOADING=1; SCM stays RUNNING.
    virtual void reloading() = 0;
    // Draining before exit: systemd STOPPING=1; SCM SERVICE_STOP_PENDING.
    virtual void stopping() = 0;
    // How often watchdog_tick must be called; nullopt when no watchdog watches this process.
    virtual std::optional<std::chrono::microseconds> watchdog_interval() const = 0;
    // One tick: `healthy` when the pipeline beats. systemd: WATCHDOG=1 only while healthy, so a
    // stalled daemon is killed and restarted after WatchdogSec. Windows: progress while a state
    // is pending; a daemon stalled past the limit gets give_up and must end with a failure, so
    // the SCM's recovery action restarts it.
    enum class watchdog_verdict { petted, withheld, give_up };
    virtual watchdog_verdict watchdog_tick(bool healthy) = 0;
    // The system log: journald (sd-daemon priority prefixes on stderr) or the Windows Event Log.
    // `line` is one already-redacted message.
    virtual void system_log(log_severity severity, std::string_view line) = 0;
};

// The lifecycle of this process under this platform's service manager.
std::unique_ptr<lifecycle> system_lifecycle();

// What a service host gives the daemon it runs: its lifecycle, and the place to hook the
// service manager's stop and reload requests (called on another thread; they must only post
// the work to the daemon's event loop).
class service_host {
public:
    virtual ~service_host() = default;
    virtual lifecycle& life() = 0;
    virtual void on_requests(std::function<void()> stop, std::function<void()> reload) = 0;
};

// The daemon's body under a service host: returns the process exit code.
using service_body = std::function<int(service_host& host)>;

// `billsync run --service`: runs body as the Windows service `name` (StartServiceCtrlDispatcher,
// ServiceMain, the control handler) and returns its exit code. Elsewhere returns 64 after
// writing why to `error` (under systemd, billsync runs as `billsync run`, Type=notify).
int run_as_service(const std::wstring& name, const service_body& body, std::string& error);

// `billsync service install|uninstall`: registers this executable with the Windows Service
// Control Manager as `<exe> run --service --config <config>` (automatic start, restart on
// failure, an Event Log source), or removes it. Empty on success, else the reason. Elsewhere
// always the reason (the .deb installs the systemd units).
std::string install_service(const std::wstring& name, const std::filesystem::path& config);
std::string uninstall_service(const std::wstring& name);

}  // namespace billsync::daemon::platform
