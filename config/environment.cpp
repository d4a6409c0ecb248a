#include "config/environment.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

namespace billsync::config {

namespace {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::strerror(err); }

void check_data_dir(const daemon_settings& settings, diagnostics& diags) {
    if (settings.data_dir.empty()) {
        return;  // already reported by the loader
    }
    const auto& where = settings.where.data_dir;
    const std::string shown = settings.data_dir.string();
    std::error_code ec;
    const auto status = fs::status(settings.data_dir, ec);
    if (fs::exists(status)) {
        if (!fs::is_directory(status)) {
            diags.error(where, "[daemon] data_dir '" + shown + "' exists but is not a directory");
            return;
        }
        std::string pattern = (settings.data_dir / ".billsync-write-test-XXXXXX").string();
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) {
            diags.error(where,
                        "[daemon] data_dir '" + shown + "' is not writable: " + errno_text(errno));
            return;
        }
        ::close(fd);
        ::unlink(pattern.c_str());
        return;
    }
    // Does not exist yet: the daemon will create it, so the nearest existing parent must allow
    // that.
    fs::path parent = fs::absolute(settings.data_dir, ec).parent_path();
    while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.root_path()) {
        parent = parent.parent_path();
    }
    if (parent.empty() || !fs::is_directory(parent, ec)) {
        diags.error(where, "[daemon] data_dir '" + shown + "' cannot be created");
        return;
    }
    if (::access(parent.c_str(), W_OK | X_OK) != 0) {
        diags.error(where,
                    "[daemon] data_dir '" + shown + "' does not exist and cannot be created in '" +
                        parent.string() + "': " + errno_text(errno));
    }
}

// 0 on success, else an errno value.
int try_bind(const endpoint& ep) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_INET;
    const std::string host = ep.host == "localhost" ? "127.0.0.1" : ep.host;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(ep.port);
        length = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        family = AF_INET6;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(ep.port);
        length = sizeof(sockaddr_in6);
    } else {
        return EINVAL;
    }
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errno;
    }
    // As the daemon's acceptor does, so sockets in TIME_WAIT do not count as "in use".
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int result = 0;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
        result = errno;
    }
    ::close(fd);
    return result;
}

void check_listener(std::string_view table,
                    const endpoint& ep,
                    const source_pos& where,
                    diagnostics& diags) {
    if (ep.port == 0 || ep.host.empty()) {
        return;
    }
    if (const int err = try_bind(ep); err != 0) {
        std::string message = "[" + std::string(table) + "] cannot bind address '" + ep.text() +
                              "': " + errno_text(err);
        if (err == EACCES && ep.port < 1024) {
            message += " (ports below 1024 need CAP_NET_BIND_SERVICE)";
        }
        diags.error(where, message);
    }
}

}  // namespace

void check_environment(const daemon_settings& settings, diagnostics& diags) {
    check_data_dir(settings, diags);
    check_listener(
        "daemon.webhook_listener", settings.webhook.address, settings.where.webhook_address, diags);
    check_listener(
        "daemon.status_listener", settings.status.address, settings.where.status_address, diags);
}

}  // namespace billsync::config
