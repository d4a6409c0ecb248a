#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::config {

// A resolved secret. reference() is safe to print ("${env:QBO_SECRET}", "<inline>"); reveal()
// is the value itself and must only reach the code that uses it. There is deliberately no
// operator<< and no fmt formatter.
class secret {
public:
    secret(std::string reference, std::string value);

    const std::string& reference() const noexcept { return reference_; }
    const std::string& reveal() const noexcept { return value_; }
    bool is_inline() const noexcept;
    // False for a reference checked for its syntax only (see secret_syntax_only): its value is
    // a placeholder, and checks of a value's contents must skip it.
    bool resolved() const noexcept { return resolved_; }

    static secret unresolved(std::string reference);

private:
    std::string reference_;
    std::string value_;
    bool resolved_ = true;
};

// The shortest secret the configuration accepts. The log redactor masks every resolved secret
// wherever it appears; a value of a few bytes cannot be masked without hiding ordinary text (a
// secret "abc" would blank out every "abc" in the logs), so a shorter value is an error at the
// key (file:line:col) rather than a secret that leaks into logs. Every vendor-issued credential
// is far longer; values the firm chooses (webhook secrets, passwords) must be too.
inline constexpr std::size_t min_secret_bytes = 4;  // util/redact.cpp masks from 4 bytes

// The printable reference of a secret written literally in the configuration file.
inline constexpr std::string_view inline_secret_reference = "<inline>";

// True when text has the shape "${...}", i.e. it is meant as a reference, not a literal value.
bool is_secret_reference(std::string_view text);

// Resolves "${env:NAME}", "${file:/abs/path}" (one trailing newline, "\n" or "\r\n", is
// stripped), "${credential:NAME}" (the file $CREDENTIALS_DIRECTORY/NAME, as systemd's
// LoadCredential= provides) or an inline literal. On failure returns nullopt and sets error to a
// message that names the reference but never contains secret material. An empty value is an
// error. Every value resolved is passed to the secret observer (below).
std::optional<secret> resolve_secret(std::string_view text, std::string& error);

// While an instance lives, resolve_secret on this thread checks a reference's syntax only
// (scheme, variable or credential name, absolute file path) and returns secret::unresolved
// without reading the environment, a file or $CREDENTIALS_DIRECTORY; inline literals are
// resolved as usual. For `billsync validate --no-environment`: a configuration checked on a
// machine that does not hold the secrets. Nesting is allowed.
class secret_syntax_only {
public:
    secret_syntax_only();
    ~secret_syntax_only();
    secret_syntax_only(const secret_syntax_only&) = delete;
    secret_syntax_only& operator=(const secret_syntax_only&) = delete;

    static bool active() noexcept;
};

// Process-wide hook: called with every secret value resolved from now on, so the logger can learn
// what to redact (the daemon installs util::register_secret). Thread-safe; an empty function
// removes the observer.
void set_secret_observer(std::function<void(const std::string&)> observer);

}  // namespace billsync::config
