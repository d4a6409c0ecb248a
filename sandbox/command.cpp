#include "sandbox/command.hpp"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "sandbox/chaos.hpp"
#include "sandbox/sandbox.hpp"

namespace billsync::sandbox {

daemon::command_runner define_command(CLI::App& cli) {
    struct parsed {
        sandbox_options sandbox;
        chaos_options chaos;
        bool chaos_mode = false;
    };
    auto opts = std::make_shared<parsed>();
    auto* cmd = cli.add_subcommand("sandbox", "Run the daemon on the bundled sandbox");
    cmd->add_option("--dir", opts->sandbox.dir, "Working directory for the sandbox's state");
    cmd->add_option("--days", opts->sandbox.days, "Simulated days to run (default 45)")
        ->check(CLI::Range(1, 366));
    cmd->add_option(
           "--seconds-per-day", opts->sandbox.seconds_per_day, "Real seconds per simulated day")
        ->check(CLI::Range(0.0, 60.0));
    cmd->add_flag("--exit", opts->sandbox.exit_after_run, "Stop when the run is over");
    cmd->add_flag("--chaos",
                  opts->chaos_mode,
                  "Seeded chaos runs: faults, kills, invariants (docs/chaos.md)");
    cmd->add_option("--seed", opts->chaos.seed, "--chaos: the first run's seed (default 1)");
    cmd->add_option("--runs", opts->chaos.runs, "--chaos: how many runs (seeds seed, seed+1, ...)")
        ->check(CLI::Range(1, 100000));
    cmd->add_flag("--keep", opts->chaos.keep, "--chaos: keep the directories of passing runs");
    cmd->add_option("--faults",
                    opts->chaos.faults_file,
                    "--chaos: a fault profile (TOML) for the vendors it names (docs/chaos.md)");

    return [cmd, opts]() -> std::optional<int> {
        if (!*cmd) {
            return std::nullopt;
        }
        if (opts->chaos_mode) {
            opts->chaos.dir = cmd->get_option("--dir")->count() > 0 ? opts->sandbox.dir
                                                                    : std::string("build/chaos");
            // A chaos run is 10 days unless --days says otherwise.
            opts->chaos.days = cmd->get_option("--days")->count() > 0 ? opts->sandbox.days : 10;
            return run_chaos(opts->chaos, std::cout, std::cerr);
        }
        return run_sandbox(opts->sandbox, std::cerr);
    };
}

}  // namespace billsync::sandbox
