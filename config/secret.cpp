#include "config/secret.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>

namespace billsync::config {

namespace {

std::mutex observer_mutex;
std::function<void(const std::string&)>& observer_slot() {
    static std::function<void(const std::string&)> slot;
    return slot;
}

thread_local int syntax_only_depth = 0;

// Long enough for every length rule a connector puts on its secrets; never sent anywhere.
constexpr std::string_view unresolved_placeholder =
    "unresolved-secret-reference-checked-for-syntax-only-by-validate";

void notify(const std::string& value) {
    const std::lock_guard lock(observer_mutex);
    if (observer_slot()) {
        observer_slot()(value);
    }
}

// Reads a whole file; on failure sets error to "<what>: <strerror>" without contents.
std::optional<std::string> read_secret_file(const std::string& path, std::string& reason) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        reason = "is a directory";
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        reason = std::strerror(errno);
        return std::nullopt;
    }
    std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        reason = "read error";
        return std::nullopt;
    }
    if (!value.empty() && value.back() == '\n') {
        value.pop_back();
        if (!value.empty() && value.back() == '\r') {
            value.pop_back();
        }
    }
    return value;
}

bool valid_name(std::string_view name) {
    if (name.empty()) {
        return false;
    }
    for (const char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

constexpr std::string_view expected_forms =
    "expected ${env:NAME}, ${file:/absolute/path} or ${credential:NAME}";

}  // namespace

secret::secret(std::string reference, std::string value)
    : reference_(std::move(reference)), value_(std::move(value)) {}

bool secret::is_inline() const noexcept { return reference_ == inline_secret_reference; }

secret secret::unresolved(std::string reference) {
    secret s(std::move(reference), std::string(unresolved_placeholder));
    s.resolved_ = false;
    return s;
}

secret_syntax_only::secret_syntax_only() { ++syntax_only_depth; }
secret_syntax_only::~secret_syntax_only() { --syntax_only_depth; }
bool secret_syntax_only::active() noexcept { return syntax_only_depth > 0; }

bool is_secret_reference(std::string_view text) {
    return text.size() >= 3 && text.substr(0, 2) == "${" && text.back() == '}';
}

std::optional<secret> resolve_secret(std::string_view text, std::string& error) {
    if (!is_secret_reference(text)) {
        if (text.starts_with("${")) {
            error = "malformed secret reference (" + std::string(expected_forms) + ")";
            return std::nullopt;
        }
        if (text.empty()) {
            error = "secret is empty";
            return std::nullopt;
        }
        secret s{std::string(inline_secret_reference), std::string(text)};
        notify(s.reveal());
        return s;
    }

    const std::string reference(text);
    const std::string_view body = text.substr(2, text.size() - 3);
    const auto colon = body.find(':');
    if (colon == std::string_view::npos) {
        error =
            "malformed secret reference '" + reference + "' (" + std::string(expected_forms) + ")";
        return std::nullopt;
    }
    const std::string_view scheme = body.substr(0, colon);
    const std::string arg(body.substr(colon + 1));

    std::string value;
    if (scheme == "env") {
        if (!valid_name(arg)) {
            error = "malformed secret reference '" + reference + "' (bad variable name)";
            return std::nullopt;
        }
        if (secret_syntax_only::active()) {
            return secret::unresolved(reference);
        }
        const char* env = std::getenv(arg.c_str());
        if (env == nullptr) {
            error = "environment variable '" + arg + "' is not set";
            return std::nullopt;
        }
        value = env;
    } else if (scheme == "file") {
        if (arg.empty() || arg.front() != '/') {
            error = "secret file path must be absolute in '" + reference + "'";
            return std::nullopt;
        }
        if (secret_syntax_only::active()) {
            return secret::unresolved(reference);
        }
        std::string reason;
        auto content = read_secret_file(arg, reason);
        if (!content) {
            error = "cannot read secret file '" + arg + "': " + reason;
            return std::nullopt;
        }
        value = std::move(*content);
    } else if (scheme == "credential") {
        if (!valid_name(arg) || arg == "." || arg == "..") {
            error = "malformed secret reference '" + reference + "' (bad credential name)";
            return std::nullopt;
        }
        if (secret_syntax_only::active()) {
            return secret::unresolved(reference);
        }
        const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
        if (dir == nullptr || *dir == '\0') {
            error = "secret " + reference +
                    " needs $CREDENTIALS_DIRECTORY, which is not set (provide it with systemd "
                    "LoadCredential= or SetCredential=, or use ${env:...} or ${file:...})";
            return std::nullopt;
        }
        const std::string path = std::string(dir) + "/" + arg;
        std::string reason;
        auto content = read_secret_file(path, reason);
        if (!content) {
            error = "cannot read credential '" + arg + "' at '" + path + "': " + reason;
            return std::nullopt;
        }
        value = std::move(*content);
    } else {
        error = "unknown secret source '" + std::string(scheme) + "' in '" + reference + "' (" +
                std::string(expected_forms) + ")";
        return std::nullopt;
    }

    if (value.empty()) {
        error = "secret " + reference + " is empty";
        return std::nullopt;
    }
    secret s(reference, std::move(value));
    notify(s.reveal());
    return s;
}

void set_secret_observer(std::function<void(const std::string&)> observer) {
    const std::lock_guard lock(observer_mutex);
    observer_slot() = std::move(observer);
}

}  // namespace billsync::config
