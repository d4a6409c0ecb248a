#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace billsync::testing {

// The billsync binary under test: $BILLSYNC_BINARY, set by ctest.
std::string billsync_binary();

// A child process whose stderr is collected line by line, so a test can wait for what the daemon
// says instead of sleeping.
class daemon_process {
public:
    // With stdout_too, the child's stdout is collected as well (CLI commands print there).
    // A nonzero max_file_bytes caps every file the child writes (RLIMIT_FSIZE, with SIGXFSZ
    // ignored so writes fail with EFBIG): a full disk without needing one.
    daemon_process(std::vector<std::string> args,
                   std::vector<std::string> extra_env = {},
                   bool stdout_too = false,
                   std::uint64_t max_file_bytes = 0);
    ~daemon_process();
    daemon_process(const daemon_process&) = delete;
    daemon_process& operator=(const daemon_process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    // Changes the running child's file size cap (0: none): the full disk clears, or fills.
    bool set_max_file_bytes(std::uint64_t max_file_bytes);
    // Waits until a stderr line contains `needle` (counting from the start of output).
    bool wait_for_line(const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Number of stderr lines containing `needle` so far.
    std::size_t count_lines(const std::string& needle);
    void signal(int signo);
    // Exit status (as from WEXITSTATUS, or 128+signal), nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    std::string output();

private:
    void reader(int fd);
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    std::thread reader_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    bool eof_ = false;
};

}  // namespace billsync::testing
