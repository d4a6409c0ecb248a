#pragma once

// `billsync preview --days N --config FILE`: what the overdue follow-up workflow would do over
// the next N days, without sending anything. It takes a RocksDB checkpoint of the state (safe
// next to a running daemon; the real data dir is only read), runs the daemon's own engine and
// follow-up rule on that copy with a simulated clock, and prints, day by day in the firm's time
// zone, who would be contacted, how and why. The copy is removed afterwards.
//
// The simulation: every known invoice is re-observed at the start instant (so invoices the
// workflow never saw are planned), then due timers fire in order up to the end, each in its own
// committed step, as in the daemon's pipeline. Before a touch the daemon re-reads the invoice from
// its ledger; the preview uses the stored invoice instead and says so. No connector is called.

#include <iosfwd>
#include <string>

namespace billsync::daemon {

struct preview_options {
    int days = 7;       // 1..366 civil days, starting with the start instant's day
    bool json = false;  // machine-readable output
    // RFC 3339 start instant; empty: now by the configured clock (with [daemon.clock] mode =
    // "simulated" the state's stored simulated time, or `start` for a state without one; else
    // the system clock).
    std::string from;
};

// Exit codes: 0 ok, 64 bad --days or --from, 69 the data dir cannot be read or copied,
// 78 configuration error or the follow-up workflow is off.
int cmd_preview(const std::string& config_file,
                const preview_options& options,
                std::ostream& out,
                std::ostream& err);
int cmd_preview(const std::string& config_file, int days, std::ostream& out, std::ostream& err);

}  // namespace billsync::daemon
