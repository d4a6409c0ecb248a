#include "tests/fakes/daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace billsync::testing {

std::string billsync_binary() {
    const char* b = std::getenv("BILLSYNC_BINARY");
    if (b == nullptr) {
        throw std::runtime_error("BILLSYNC_BINARY is not set (run the tests through ctest)");
    }
    return b;
}

daemon_process::daemon_process(std::vector<std::string> args,
                               std::vector<std::string> extra_env,
                               bool stdout_too,
                               std::uint64_t max_file_bytes) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    for (auto& e : extra_env) {
        env.push_back(std::move(e));
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        ::dup2(fds[1], STDERR_FILENO);
        if (stdout_too) {
            ::dup2(fds[1], STDOUT_FILENO);
        }
        if (max_file_bytes != 0) {
            ::signal(SIGXFSZ, SIG_IGN);
            // The soft limit only: set_max_file_bytes can raise it again without privileges.
            rlimit lim{};
            ::getrlimit(RLIMIT_FSIZE, &lim);
            lim.rlim_cur = std::min<rlim_t>(max_file_bytes, lim.rlim_max);
            ::setrlimit(RLIMIT_FSIZE, &lim);
        }
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { reader(fd); });
}

bool daemon_process::set_max_file_bytes(std::uint64_t max_file_bytes) {
    rlimit lim{};
    if (::prlimit(pid_, RLIMIT_FSIZE, nullptr, &lim) != 0) {
        return false;
    }
    lim.rlim_cur =
        max_file_bytes == 0 ? lim.rlim_max : std::min<rlim_t>(max_file_bytes, lim.rlim_max);
    return ::prlimit(pid_, RLIMIT_FSIZE, &lim, nullptr) == 0;
}

daemon_process::~daemon_process() {
    if (!exit_code_) {
        ::kill(pid_, SIGKILL);
        wait_exit(std::chrono::seconds(10));
    }
    if (reader_.joinable()) {
        reader_.join();
    }
}

void daemon_process::reader(int fd) {
    std::string partial;
    char buf[4096];
    for (;;) {
        const auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t pos;
        std::lock_guard lock(mutex_);
        while ((pos = partial.find('\n')) != std::string::npos) {
            lines_.push_back(partial.substr(0, pos));
            partial.erase(0, pos + 1);
        }
        cv_.notify_all();
    }
    ::close(fd);
    std::lock_guard lock(mutex_);
    if (!partial.empty()) {
        lines_.push_back(partial);
    }
    eof_ = true;
    cv_.notify_all();
}

bool daemon_process::wait_for_line(const std::string& needle, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::size_t checked = 0;
    return cv_.wait_for(lock, timeout, [&] {
        for (; checked < lines_.size(); ++checked) {
            if (lines_[checked].find(needle) != std::string::npos) {
                return true;
            }
        }
        return eof_;
    }) && checked < lines_.size();
}

std::size_t daemon_process::count_lines(const std::string& needle) {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& l : lines_) {
        n += l.find(needle) != std::string::npos ? 1 : 0;
    }
    return n;
}

void daemon_process::signal(int signo) { ::kill(pid_, signo); }

std::optional<int> daemon_process::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_code_) {
        return exit_code_;
    }
    // The reader sees EOF when the child exits (it holds the only write end).
    {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, timeout, [&] { return eof_; })) {
            return std::nullopt;
        }
    }
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) {
        return std::nullopt;
    }
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
}

std::string daemon_process::output() {
    std::lock_guard lock(mutex_);
    std::string all;
    for (const auto& l : lines_) {
        all += l;
        all += '\n';
    }
    return all;
}

}  // namespace billsync::testing
