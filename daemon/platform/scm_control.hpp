#pragma once

// The Windows service control contract, written portably: what billsync reports to the Service
// Control Manager (SetServiceStatus) as it starts, runs, reloads and stops, and what each control
// the SCM sends (HandlerEx) asks the daemon to do. windows_service.cpp drives it with the real
// SCM; tests/unit/daemon/platform drives it with a fake one, on Linux and cross-compiled.
//
// Not thread-safe: the Windows side serializes the control handler and the daemon's calls.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace billsync::daemon::platform::scm {

// The Win32 values (winsvc.h, winerror.h), so this header needs no Windows header;
// windows_service.cpp checks them against the real ones.
enum class state : std::uint32_t { stopped = 1, start_pending = 2, stop_pending = 3, running = 4 };

namespace accept {
inline constexpr std::uint32_t stop = 0x1;
inline constexpr std::uint32_t shutdown = 0x4;
inline constexpr std::uint32_t paramchange = 0x8;
}  // namespace accept

namespace control {
inline constexpr std::uint32_t stop = 1;
inline constexpr std::uint32_t interrogate = 4;
inline constexpr std::uint32_t shutdown = 5;
inline constexpr std::uint32_t paramchange = 6;
inline constexpr std::uint32_t preshutdown = 0xF;
}  // namespace control

inline constexpr std::uint32_t no_error = 0;                         // NO_ERROR
inline constexpr std::uint32_t error_call_not_implemented = 120;     // ERROR_CALL_NOT_IMPLEMENTED
inline constexpr std::uint32_t error_service_specific_error = 1066;  // ERROR_SERVICE_SPECIFIC_ERROR

// SERVICE_STATUS without dwServiceType (always SERVICE_WIN32_OWN_PROCESS).
struct status {
    state current = state::stopped;
    std::uint32_t controls_accepted = 0;
    std::uint32_t win32_exit_code = no_error;
    std::uint32_t service_exit_code = 0;
    std::uint32_t checkpoint = 0;
    std::uint32_t wait_hint_ms = 0;

    bool operator==(const status&) const = default;
};

// Where status reports go: SetServiceStatus on Windows, a recorder in tests.
class port {
public:
    virtual ~port() = default;
    virtual void report(const status& s) = 0;
};

// What the daemon must do after a control: nothing, drain and stop (as on SIGTERM), or reload
// the configuration (as on SIGHUP).
enum class request { none, stop, reload };

struct control_result {
    std::uint32_t code = no_error;  // HandlerEx's return value
    request action = request::none;
};

struct timings {
    std::chrono::milliseconds start_hint{30'000};  // wait hint while starting
    std::chrono::milliseconds stop_hint{30'000};   // while draining: above [daemon] shutdown_grace
    std::chrono::milliseconds watchdog_interval{15'000};
    // Consecutive unhealthy ticks while running before the daemon gives up, so that the SCM's
    // recovery action (restart, set at install) restarts it: 2 x 15 s, as WatchdogSec=30.
    int stalled_ticks_limit = 2;
};

class control_machine {
public:
    control_machine(port& p, timings t);

    void starting();   // SERVICE_START_PENDING, checkpoint 1, accepting no control yet
    void ready();      // SERVICE_RUNNING, accepting stop, shutdown, paramchange
    void reloading();  // no SCM state of its own: the service stays RUNNING
    void stopping();   // SERVICE_STOP_PENDING (once), accepting nothing more
    control_result control(std::uint32_t code);
    // A watchdog tick. While a state is pending, reports progress (the checkpoint grows). While
    // running, false once the pipeline has been unhealthy for stalled_ticks_limit ticks: the
    // daemon must then end with a failure so the SCM restarts it.
    bool tick(bool healthy);
    // SERVICE_STOPPED with the daemon's exit code (0: NO_ERROR; else a service-specific error).
    void stopped(int exit_code);

    const status& current() const noexcept { return status_; }
    std::uint32_t reloads() const noexcept { return reloads_; }
    const timings& times() const noexcept { return timings_; }

private:
    void report();

    port& port_;
    timings timings_;
    status status_;
    int unhealthy_ticks_ = 0;
    std::uint32_t reloads_ = 0;
};

// The service's command line as the SCM stores it (lpBinaryPathName): each path quoted, so
// paths with spaces (C:\Program Files\...) work; a path that contains a double quote cannot be
// quoted and is refused (empty result).
std::wstring service_command_line(const std::filesystem::path& binary,
                                  const std::filesystem::path& config);

}  // namespace billsync::daemon::platform::scm
