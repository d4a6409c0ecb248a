#pragma once

#include "daemon/cli.hpp"

namespace billsync::sandbox {

// Declares `billsync sandbox [--chaos]` on the daemon's command line (daemon/main.cpp).
daemon::command_runner define_command(CLI::App& cli);

}  // namespace billsync::sandbox
