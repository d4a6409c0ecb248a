#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>

namespace billsync::daemon {

struct app_options {
    std::filesystem::path config_path;
    // Written once both listeners are bound: {"webhook_port":N,"status_port":N,"pid":N}.
    // Lets tests and the sandbox use port 0.
    std::filesystem::path ports_file;
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

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::daemon
