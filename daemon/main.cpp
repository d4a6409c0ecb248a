// The billsync binary: the daemon's command line plus `billsync sandbox` (sandbox/), the one
// module that runs every vendor's simulator.
#include <array>

#include "daemon/cli.hpp"
#include "sandbox/command.hpp"

int main(int argc, char** argv) {
    const std::array<billsync::daemon::command_definer, 1> extra{billsync::sandbox::define_command};
    return billsync::daemon::main(argc, argv, extra);
}
