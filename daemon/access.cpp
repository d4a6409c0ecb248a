#include "daemon/access.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "config/config.hpp"
#include "util/crypto.hpp"
#include "util/redact.hpp"

namespace billsync::daemon {

namespace {

constexpr std::size_t token_hex_digits = 64;  // 32 random bytes

bool same_secret(std::string_view given, std::string_view token) {
    return !token.empty() && given.size() == token.size() &&
           CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// The host part of a Host header value, without port, brackets and trailing dot, lowercased.
std::string host_name(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
    }
    std::string_view host = value;
    if (value.starts_with('[')) {
        const auto close = value.find(']');
        if (close == std::string_view::npos) {
            return {};
        }
        host = value.substr(1, close - 1);
        const auto rest = value.substr(close + 1);
        if (!rest.empty() && !rest.starts_with(':')) {
            return {};
        }
    } else if (const auto colon = value.find(':'); colon != std::string_view::npos) {
        host = value.substr(0, colon);
        if (value.find(':', colon + 1) != std::string_view::npos) {
            return {};  // an IPv6 literal must be bracketed
        }
    }
    if (host.ends_with('.')) {
        host.remove_suffix(1);
    }
    return lower(host);
}

// localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z).
bool is_loopback_name(const std::string& host) {
    config::endpoint e;
    e.host = host;
    return e.is_loopback();
}

bool is_hex_token(std::string_view s) {
    if (s.size() != token_hex_digits) {
        return false;
    }
    for (const char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

net::awaitable<http::response> refuse(unsigned status,
                                      std::string_view code,
                                      std::string_view message,
                                      std::string challenge = {}) {
    auto r = http::response::error(status, code, message);
    if (!challenge.empty()) {
        r.headers.push_back({"WWW-Authenticate", std::move(challenge)});
    }
    co_return r;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

bool credentials_match(std::string_view authorization, std::string_view token, bool basic_too) {
    constexpr std::string_view bearer = "Bearer ";
    constexpr std::string_view basic = "Basic ";
    if (authorization.starts_with(bearer)) {
        return same_secret(authorization.substr(bearer.size()), token);
    }
    if (basic_too && authorization.starts_with(basic)) {
        const auto decoded = util::base64_decode(authorization.substr(basic.size()));
        if (!decoded) {
            return false;
        }
        const auto colon = decoded->find(':');
        if (colon == std::string::npos) {
            return false;
        }
        return same_secret(std::string_view(*decoded).substr(colon + 1), token);
    }
    return false;
}

bool host_allowed(std::string_view host_header, const access_policy& policy) {
    const auto host = host_name(host_header);
    if (host.empty()) {
        return false;
    }
    if (is_loopback_name(host)) {
        return true;
    }
    const auto own = host_name(policy.listener_host);
    if (!own.empty() && own != "0.0.0.0" && own != "::" && host == own) {
        return true;
    }
    for (const auto& allowed : policy.allowed_hosts) {
        if (host == host_name(allowed)) {
            return true;
        }
    }
    return false;
}

bool is_json_content_type(std::string_view content_type) {
    auto media = content_type.substr(0, content_type.find(';'));
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) {
        media.remove_suffix(1);
    }
    while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) {
        media.remove_prefix(1);
    }
    return lower(media) == "application/json";
}

http::handler guard_read(std::shared_ptr<const access_policy> policy,
                         http::handler inner,
                         bool browser) {
    // The policy is read on every request: a reload may set, change or remove the token.
    return [policy = std::move(policy), inner = std::move(inner), browser](http::request req) {
        if (policy->read_token &&
            !credentials_match(req.header_value("Authorization"), *policy->read_token, true)) {
            return refuse(401,
                          "unauthorized",
                          "the status token is required (Authorization: Bearer <token>, or HTTP "
                          "Basic with the token as the password)",
                          browser ? R"(Basic realm="billsync status", charset="UTF-8")"
                                  : R"(Bearer realm="billsync status")");
        }
        return inner(std::move(req));
    };
}

http::handler guard_write(std::shared_ptr<const access_policy> policy, http::handler inner) {
    return [policy = std::move(policy), inner = std::move(inner)](http::request req) {
        if (!host_allowed(req.header_value("Host"), *policy)) {
            return refuse(403,
                          "forbidden_host",
                          "the Host header does not name this status listener (a loopback name, "
                          "its address or one of [daemon.status_listener] allowed_hosts)");
        }
        if (!credentials_match(req.header_value("Authorization"), policy->write_token, false)) {
            return refuse(401,
                          "unauthorized",
                          "changes need the status token as Authorization: Bearer <token> (the "
                          "configured bearer_token, or the one in <data_dir>/status_token)",
                          R"(Bearer realm="billsync status")");
        }
        if (!is_json_content_type(req.header_value("Content-Type"))) {
            return refuse(
                415, "unsupported_media_type", "changes need Content-Type: application/json");
        }
        return inner(std::move(req));
    };
}

std::string read_status_token(const std::filesystem::path& data_dir, std::string& error) {
    const auto path = data_dir / status_token_file_name;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read the status token " + path.string() + ": " + errno_text() +
                " (it is written by the running daemon; read it as the daemon's user)";
        return {};
    }
    std::string text;
    std::getline(in, text);
    if (!is_hex_token(text)) {
        error = "the status token " + path.string() + " is malformed (expected " +
                std::to_string(token_hex_digits) + " hex digits)";
        return {};
    }
    util::register_secret(text);
    return text;
}

std::string ensure_status_token(const std::filesystem::path& data_dir, std::string& error) {
    const auto path = data_dir / status_token_file_name;
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
        std::string ignored;
        if (S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
            (st.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
            if (auto token = read_status_token(data_dir, ignored); !token.empty()) {
                return token;
            }
        }
        // Malformed, not ours or readable by others: replaced by a new one.
    }
    std::array<unsigned char, token_hex_digits / 2> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        error = "cannot draw random bytes for the status token";
        return {};
    }
    const auto token = util::hex_encode(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    util::register_secret(token);
    const auto tmp = path.string() + ".tmp";
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        error = "cannot write " + tmp + ": " + errno_text();
        return {};
    }
    const auto line = token + "\n";
    const bool written =
        ::fchmod(fd, 0600) == 0 &&
        ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
        ::fsync(fd) == 0;
    const auto write_error = errno_text();
    ::close(fd);
    if (!written) {
        ::unlink(tmp.c_str());
        error = "cannot write " + tmp + ": " + write_error;
        return {};
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        error = "cannot move " + tmp + " to " + path.string() + ": " + errno_text();
        ::unlink(tmp.c_str());
        return {};
    }
    return token;
}

}  // namespace billsync::daemon
