#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace billsync::daemon {

struct sandbox_options {
    std::string dir = "build/sandbox";  // holds the generated config and the sandbox's state
    bool fresh = false;                 // wipe the sandbox's state first
};

// The sandbox configuration bundled into the binary (packaging/sandbox.toml).
std::string_view sandbox_config_text();

// Writes the bundled sandbox configuration into `dir` and runs the daemon on it.
int run_sandbox(const sandbox_options& options, std::ostream& err);

}  // namespace billsync::daemon
