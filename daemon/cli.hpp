#pragma once

#include <functional>
#include <optional>
#include <span>

namespace CLI {
class App;
}

namespace billsync::daemon {

// A subcommand that lives outside the daemon module (`billsync sandbox`, which runs every vendor's
// simulator): its definer declares it on the parser before parsing and returns its runner, which
// is called after parsing and returns the exit code, or nullopt when the command line did not
// name the subcommand.
using command_runner = std::function<std::optional<int>()>;
using command_definer = std::function<command_runner(CLI::App& cli)>;

// The billsync command line: run, validate, status, version, ... plus the `extra` subcommands.
int main(int argc, char** argv, std::span<const command_definer> extra = {});

}  // namespace billsync::daemon
