#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace billsync::sandbox {

struct sandbox_options {
    std::string dir = "build/sandbox";  // holds the generated config and the sandbox's state
    int days = 45;                      // simulated days to run
    double seconds_per_day = 1.0;       // real seconds per simulated day
    bool exit_after_run = false;        // stop at the end instead of serving until Ctrl-C
};

// The sandbox configuration bundled into the binary (packaging/sandbox.toml).
std::string_view sandbox_config_text();

// Starts the QBO, Twilio, SendGrid and SMTP simulators on loopback with a generated firm, writes
// the bundled configuration plus connector sections for them into `dir`, runs the daemon on a
// simulated clock that moves a day every `seconds_per_day`, and prints a timeline of what the
// firm's clients received. The state always starts empty (the simulators live in memory).
int run_sandbox(const sandbox_options& options, std::ostream& err);

}  // namespace billsync::sandbox
