// The Windows side of the platform layer: the Service Control Manager contract (ServiceMain,
// the control handler, SetServiceStatus through scm::control_machine), the Event Log as the
// system log, and `billsync service install|uninstall`. Compiled by Debian's mingw-w64 cross
// compiler in CI (scripts/ci-windows.sh); see the README for what of a Windows build is verified.
#ifndef _WIN32
#error "windows_service.cpp is the Windows side of the platform layer"
#endif

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// windows.h first
#include <winsvc.h>

#include <mutex>
#include <string>
#include <vector>

#include "daemon/platform/platform.hpp"
#include "daemon/platform/scm_control.hpp"

namespace billsync::daemon::platform {

static_assert(static_cast<DWORD>(scm::state::stopped) == SERVICE_STOPPED);
static_assert(static_cast<DWORD>(scm::state::start_pending) == SERVICE_START_PENDING);
static_assert(static_cast<DWORD>(scm::state::stop_pending) == SERVICE_STOP_PENDING);
static_assert(static_cast<DWORD>(scm::state::running) == SERVICE_RUNNING);
static_assert(scm::accept::stop == SERVICE_ACCEPT_STOP);
static_assert(scm::accept::shutdown == SERVICE_ACCEPT_SHUTDOWN);
static_assert(scm::accept::paramchange == SERVICE_ACCEPT_PARAMCHANGE);
static_assert(scm::control::stop == SERVICE_CONTROL_STOP);
static_assert(scm::control::interrogate == SERVICE_CONTROL_INTERROGATE);
static_assert(scm::control::shutdown == SERVICE_CONTROL_SHUTDOWN);
static_assert(scm::control::paramchange == SERVICE_CONTROL_PARAMCHANGE);
static_assert(scm::control::preshutdown == SERVICE_CONTROL_PRESHUTDOWN);
static_assert(scm::no_error == NO_ERROR);
static_assert(scm::error_call_not_implemented == ERROR_CALL_NOT_IMPLEMENTED);
static_assert(scm::error_service_specific_error == ERROR_SERVICE_SPECIFIC_ERROR);

namespace {

std::wstring widen(std::string_view text) {
    if (text.empty()) {
        return {};
    }
    const int n =
        ::MultiByteToWideChar(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), nullptr, 0);
    std::wstring out(static_cast<std::size_t>(n), L'\0');
    ::MultiByteToWideChar(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), out.data(), n);
    return out;
}

std::string last_error(const char* what) {
    return std::string(what) + " failed (Windows error " + std::to_string(::GetLastError()) + ")";
}

// The Event Log source; messages use EventCreate.exe's message table (ids 1-1000 print their
// one insertion string), so billsync needs no message resource of its own.
constexpr const wchar_t* event_log_key =
    L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\";
constexpr const wchar_t* event_message_file = L"%SystemRoot%\\System32\\EventCreate.exe";
constexpr WORD event_id = 1;

// SetServiceStatus as the control machine's port.
class scm_port final : public scm::port {
public:
    void attach(SERVICE_STATUS_HANDLE handle) { handle_ = handle; }
    void report(const scm::status& s) override {
        if (handle_ == nullptr) {
            return;
        }
        SERVICE_STATUS st{};
        st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
        st.dwCurrentState = static_cast<DWORD>(s.current);
        st.dwControlsAccepted = s.controls_accepted;
        st.dwWin32ExitCode = s.win32_exit_code;
        st.dwServiceSpecificExitCode = s.service_exit_code;
        st.dwCheckPoint = s.checkpoint;
        st.dwWaitHint = s.wait_hint_ms;
        ::SetServiceStatus(handle_, &st);
    }

private:
    SERVICE_STATUS_HANDLE handle_ = nullptr;
};

// The lifecycle under the SCM. Every call and every control goes through one mutex: the
// control handler runs on the dispatcher's thread, the daemon on its own.
class scm_lifecycle final : public lifecycle, public service_host {
public:
    explicit scm_lifecycle(const std::wstring& name) : machine_(port_, scm::timings{}) {
        event_source_ = ::RegisterEventSourceW(nullptr, name.c_str());
    }
    ~scm_lifecycle() override {
        if (event_source_ != nullptr) {
            ::DeregisterEventSource(event_source_);
        }
    }
    scm_lifecycle(const scm_lifecycle&) = delete;
    scm_lifecycle& operator=(const scm_lifecycle&) = delete;

    void starting(SERVICE_STATUS_HANDLE handle) {
        const std::lock_guard lock(mutex_);
        port_.attach(handle);
        machine_.starting();
    }
    void stopped(int exit_code) {
        const std::lock_guard lock(mutex_);
        machine_.stopped(exit_code);
    }

    // HandlerEx: the machine decides, the daemon's hooks act (outside the lock).
    DWORD handle(DWORD code) {
        scm::control_result r;
        std::function<void()> act;
        {
            const std::lock_guard lock(mutex_);
            r = machine_.control(code);
            if (r.action == scm::request::stop) {
                act = stop_;
            } else if (r.action == scm::request::reload) {
                act = reload_;
            }
        }
        if (act) {
            act();
        }
        return r.code;
    }

    // lifecycle
    void ready() override {
        const std::lock_guard lock(mutex_);
        machine_.ready();
    }
    void reloading() override {
        const std::lock_guard lock(mutex_);
        machine_.reloading();
    }
    void stopping() override {
        const std::lock_guard lock(mutex_);
        machine_.stopping();
    }
    std::optional<std::chrono::microseconds> watchdog_interval() const override {
        return std::chrono::duration_cast<std::chrono::microseconds>(
            machine_.times().watchdog_interval);
    }
    watchdog_verdict watchdog_tick(bool healthy) override {
        const std::lock_guard lock(mutex_);
        if (!machine_.tick(healthy)) {
            return watchdog_verdict::give_up;
        }
        return healthy ? watchdog_verdict::petted : watchdog_verdict::withheld;
    }
    void system_log(log_severity severity, std::string_view line) override {
        if (event_source_ == nullptr) {
            return;
        }
        WORD type = EVENTLOG_INFORMATION_TYPE;
        if (severity <= log_severity::error) {
            type = EVENTLOG_ERROR_TYPE;
        } else if (severity == log_severity::warning) {
            type = EVENTLOG_WARNING_TYPE;
        }
        const std::wstring text = widen(line);
        const wchar_t* strings[] = {text.c_str()};
        ::ReportEventW(event_source_, type, 0, event_id, nullptr, 1, 0, strings, nullptr);
    }

    // service_host
    lifecycle& life() override { return *this; }
    void on_requests(std::function<void()> stop, std::function<void()> reload) override {
        const std::lock_guard lock(mutex_);
        stop_ = std::move(stop);
        reload_ = std::move(reload);
    }

private:
    std::mutex mutex_;
    scm_port port_;
    scm::control_machine machine_;
    HANDLE event_source_ = nullptr;
    std::function<void()> stop_;
    std::function<void()> reload_;
};

// A lifecycle for a console run (not under the SCM): nothing to report; logs to stderr.
class console_lifecycle final : public lifecycle {
public:
    void ready() override {}
    void reloading() override {}
    void stopping() override {}
    std::optional<std::chrono::microseconds> watchdog_interval() const override {
        return std::nullopt;
    }
    watchdog_verdict watchdog_tick(bool /*healthy*/) override {
        return watchdog_verdict::withheld;  // nobody watches a console run
    }
    void system_log(log_severity /*severity*/, std::string_view line) override {
        const std::string out = std::string(line) + "\n";
        ::WriteFile(::GetStdHandle(STD_ERROR_HANDLE),
                    out.data(),
                    static_cast<DWORD>(out.size()),
                    nullptr,
                    nullptr);
    }
};

// ServiceMain has no user pointer: the one service this process runs is kept here.
struct dispatch {
    std::wstring name;
    const service_body* body = nullptr;
    int exit_code = 0;
};
dispatch* current = nullptr;

DWORD WINAPI control_handler(DWORD code, DWORD /*event*/, LPVOID /*data*/, LPVOID context) {
    return static_cast<scm_lifecycle*>(context)->handle(code);
}

void WINAPI service_main(DWORD /*argc*/, LPWSTR* /*argv*/) {
    auto* d = current;
    // The handler's context lives until ServiceMain returns, after SERVICE_STOPPED, when the
    // SCM sends no more controls.
    scm_lifecycle lc(d->name);
    const SERVICE_STATUS_HANDLE handle =
        ::RegisterServiceCtrlHandlerExW(d->name.c_str(), control_handler, &lc);
    if (handle == nullptr) {
        d->exit_code = 70;
        return;
    }
    lc.starting(handle);
    int rc = 70;
    try {
        rc = (*d->body)(lc);
    } catch (...) {
        lc.system_log(log_severity::critical, "billsync: the service ended on an exception");
    }
    d->exit_code = rc;
    lc.stopped(rc);
}

}  // namespace

std::unique_ptr<lifecycle> system_lifecycle() { return std::make_unique<console_lifecycle>(); }

int run_as_service(const std::wstring& name, const service_body& body, std::string& error) {
    dispatch d{name, &body, 0};
    current = &d;
    SERVICE_TABLE_ENTRYW table[] = {{d.name.data(), service_main}, {nullptr, nullptr}};
    if (!::StartServiceCtrlDispatcherW(table)) {
        current = nullptr;
        if (::GetLastError() == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            error =
                "--service: not started by the Service Control Manager (use `billsync service "
                "install`, then `sc start billsync`; or run without --service)";
        } else {
            error = last_error("StartServiceCtrlDispatcher");
        }
        return 64;
    }
    current = nullptr;
    return d.exit_code;
}

std::string install_service(const std::wstring& name, const std::filesystem::path& config) {
    std::wstring binary(MAX_PATH, L'\0');
    for (;;) {
        const DWORD n =
            ::GetModuleFileNameW(nullptr, binary.data(), static_cast<DWORD>(binary.size()));
        if (n == 0) {
            return last_error("GetModuleFileName");
        }
        if (n < binary.size()) {
            binary.resize(n);
            break;
        }
        binary.resize(binary.size() * 2);
    }
    const std::wstring command =
        scm::service_command_line(binary, std::filesystem::absolute(config));
    if (command.empty()) {
        return "service install: the binary and configuration paths must be non-empty and "
               "contain no double quote";
    }
    SC_HANDLE manager = ::OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CREATE_SERVICE);
    if (manager == nullptr) {
        return last_error("OpenSCManager (run as Administrator)");
    }
    SC_HANDLE service = ::CreateServiceW(manager,
                                         name.c_str(),
                                         L"billsync",
                                         SERVICE_ALL_ACCESS,
                                         SERVICE_WIN32_OWN_PROCESS,
                                         SERVICE_AUTO_START,
                                         SERVICE_ERROR_NORMAL,
                                         command.c_str(),
                                         nullptr,
                                         nullptr,
                                         nullptr,
                                         L"NT AUTHORITY\\LocalService",
                                         nullptr);
    if (service == nullptr) {
        const auto e = last_error("CreateService");
        ::CloseServiceHandle(manager);
        return e;
    }
    std::wstring description = L"billsync: billing sync and overdue follow-up for accounting firms";
    SERVICE_DESCRIPTIONW desc{description.data()};
    ::ChangeServiceConfig2W(service, SERVICE_CONFIG_DESCRIPTION, &desc);
    // Restart after a failure (a stalled pipeline ends the process with an error), as
    // Restart=on-failure does under systemd.
    SC_ACTION actions[3] = {
        {SC_ACTION_RESTART, 2000}, {SC_ACTION_RESTART, 2000}, {SC_ACTION_RESTART, 30000}};
    SERVICE_FAILURE_ACTIONSW failure{};
    failure.dwResetPeriod = 86400;
    failure.cActions = 3;
    failure.lpsaActions = actions;
    ::ChangeServiceConfig2W(service, SERVICE_CONFIG_FAILURE_ACTIONS, &failure);
    SERVICE_FAILURE_ACTIONS_FLAG flag{TRUE};  // also when it stops with an error exit code
    ::ChangeServiceConfig2W(service, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &flag);
    ::CloseServiceHandle(service);
    ::CloseServiceHandle(manager);

    HKEY key = nullptr;
    const std::wstring path = std::wstring(event_log_key) + name;
    if (::RegCreateKeyExW(HKEY_LOCAL_MACHINE,
                          path.c_str(),
                          0,
                          nullptr,
                          0,
                          KEY_SET_VALUE,
                          nullptr,
                          &key,
                          nullptr) != ERROR_SUCCESS) {
        return "service installed, but the Event Log source could not be registered";
    }
    const std::wstring file = event_message_file;
    ::RegSetValueExW(key,
                     L"EventMessageFile",
                     0,
                     REG_EXPAND_SZ,
                     reinterpret_cast<const BYTE*>(file.c_str()),
                     static_cast<DWORD>((file.size() + 1) * sizeof(wchar_t)));
    const DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    ::RegSetValueExW(
        key, L"TypesSupported", 0, REG_DWORD, reinterpret_cast<const BYTE*>(&types), sizeof types);
    ::RegCloseKey(key);
    return {};
}

std::string uninstall_service(const std::wstring& name) {
    SC_HANDLE manager = ::OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT);
    if (manager == nullptr) {
        return last_error("OpenSCManager (run as Administrator)");
    }
    SC_HANDLE service =
        ::OpenServiceW(manager, name.c_str(), SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    if (service == nullptr) {
        const auto e = last_error("OpenService");
        ::CloseServiceHandle(manager);
        return e;
    }
    // A running service is stopped first (the same drain as SIGTERM).
    SERVICE_STATUS st{};
    ::ControlService(service, SERVICE_CONTROL_STOP, &st);
    std::string result;
    if (!::DeleteService(service)) {
        result = last_error("DeleteService");
    }
    ::CloseServiceHandle(service);
    ::CloseServiceHandle(manager);
    const std::wstring path = std::wstring(event_log_key) + name;
    ::RegDeleteKeyW(HKEY_LOCAL_MACHINE, path.c_str());
    return result;
}

}  // namespace billsync::daemon::platform
