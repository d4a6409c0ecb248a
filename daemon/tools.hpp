#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "http/client.hpp"
#include "state/store.hpp"

namespace billsync::daemon {

struct app_config;

// Exit codes of the operator commands (sysexits.h).
inline constexpr int exit_ok = 0;
inline constexpr int exit_usage = 64;
inline constexpr int exit_data = 65;  // EX_DATAERR: no such item
inline constexpr int exit_unavailable = 69;
inline constexpr int exit_config = 78;

// The configuration, or nullopt with its diagnostics written to err.
std::optional<app_config> load_quietly(const std::string& file, std::ostream& err);
std::filesystem::path state_dir(const app_config& cfg);
// The data dir's state, opened read-only (a consistent view, also next to a running daemon);
// nullptr with the reason written to err.
std::unique_ptr<state::store> open_state_read_only(const app_config& cfg, std::ostream& err);
// POSTs a JSON body to the running daemon's status listener (with its bearer token).
http::simple_response post_to_daemon(const app_config& cfg,
                                     const std::string& target,
                                     const std::string& body);

// Written to the data dir by a running daemon: {"pid", "webhook_port", "status_port"}.
inline constexpr const char* runtime_file_name = "daemon.json";

// Where a running daemon's status listener answers: the configured address, with the port the
// daemon actually bound when its runtime file says so.
std::pair<std::string, std::uint16_t> status_endpoint(const app_config& cfg);

// billsync deadletters list|show|retry|drop [ID] --config FILE
// Works on a stopped daemon's data dir directly; while the daemon runs, list and show read a
// consistent read-only view and retry and drop go through the daemon's status listener.
int cmd_deadletters(const std::string& config_file,
                    const std::string& verb,
                    const std::string& id,
                    std::ostream& out,
                    std::ostream& err);

// billsync inspect KEY --config FILE, read-only. KEY is one of:
//   counts                       rows per table (exact)
//   inbox/<connector>            pending events, oldest first
//   outbox/<action id>           one action and its state
//   entity/<type>/<id>           a canonical entity
//   timer/<name>                 one durable timer
//   deadletter/<id>              one dead letter
//   cursor/<key>                 a polling cursor
//   audit[/<n>]                  the last n audit lines (default 20); with --since, every line
//                                from then on (at most n when n is given)
//   changes[/<n>]                the last n change records (default 20)
struct inspect_options {
    std::optional<util::instant> since;  // audit: from this time on
    bool json = false;                   // audit: JSON lines with their "at"
};
int cmd_inspect(const std::string& config_file,
                const std::string& key,
                std::ostream& out,
                std::ostream& err,
                const inspect_options& options = {});

// Writes audit lines in time order as it reads them (memory bounded by `last`, never by the
// column family): every line from `since` on (at most `limit`, 0: no limit), or without `since`
// the last `limit` lines. Human form "<time>  <line>"; json: one object per line with "at".
// Returns how many lines were written.
std::uint64_t stream_audit(const state::store& s,
                           std::optional<util::instant> since,
                           std::size_t limit,
                           bool json,
                           std::ostream& out);

}  // namespace billsync::daemon
