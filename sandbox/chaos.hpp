#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace billsync::sandbox {

struct chaos_options {
    std::string dir = "build/chaos";  // one sub-directory per run (config, data, daemon.log)
    std::uint64_t seed = 1;           // run k uses seed + k
    int runs = 1;
    int days = 10;      // simulated days per run (then two calm days to settle)
    bool keep = false;  // keep the run directories of passing runs too
    // A fault profile (TOML, docs/chaos.md "Your own fault profile"): the vendors it names get
    // its faults instead of the runner's own profile. Empty: the runner's profile.
    std::string faults_file;
};

// `billsync sandbox --chaos` (docs/chaos.md): runs the sandbox firm against faulty simulators on a
// simulated clock, flat out, SIGKILLs and restarts the daemon (a child process running
// `billsync run`) at seeded moments, and checks the invariants (sandbox/chaos_invariants.hpp) at
// the end of each run. Prints one line per run and, last, one JSON object. Returns 0 when every
// run passed, 1 when one violated an invariant, 70 when the runner itself could not work, 78 when
// the fault profile has a mistake (FILE:LINE:COL on `err`; nothing runs).
int run_chaos(const chaos_options& options, std::ostream& out, std::ostream& err);

}  // namespace billsync::sandbox
