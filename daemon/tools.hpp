#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>

namespace billsync::daemon {

struct app_config;

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
//   audit[/<n>]                  the last n audit lines (default 20)
//   changes[/<n>]                the last n change records (default 20)
int cmd_inspect(const std::string& config_file,
                const std::string& key,
                std::ostream& out,
                std::ostream& err);

}  // namespace billsync::daemon
