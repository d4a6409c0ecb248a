#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>

namespace billsync::daemon {

namespace platform {
class lifecycle;
}

struct app_options {
    std::filesystem::path config_path;
    // Written once both listeners are bound: {"webhook_port":N,"status_port":N,"pid":N}.
    // Lets tests and the sandbox use port 0.
    std::filesystem::path ports_file;
    // The service manager to report to; nullptr: this platform's (systemd on Linux). A Windows
    // service host passes the SCM's.
    platform::lifecycle* lifecycle = nullptr;
};

// The running daemon: loads the configuration, opens state, serves the webhook and status
// listeners, reloads on SIGHUP and drains on SIGTERM/SIGINT.
class app {
public:
    explicit app(app_options options);
    ~app();
    app(const app&) = delete;
    app& operator=(const app&) = delete;

    // Runs until a stop signal. Returns the process exit code (0 after a clean stop, 78 for a
    // configuration error, 73 when the data directory cannot be used).
    int run(std::ostream& err);

    // Thread-safe, for a service host whose stop and reload requests are not signals (the
    // Windows SCM's stop and paramchange): the same drain as SIGTERM, the same reload as SIGHUP.
    void request_stop();
    void request_reload();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::daemon
