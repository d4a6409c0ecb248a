#pragma once

// The follow-up workflow's operator surface: GET /followups and GET /tasks on the status
// listener, `billsync followup list|show|resume|stop` and `billsync tasks`.

#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "state/store.hpp"
#include "util/clock.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::daemon {

// Every sequence that is not finished (waiting, active, paused, excluded), with its invoice's
// number, client and balance, the next touch, when and by which channels.
nlohmann::json followups_json(const state::store& s,
                              const workflows::followup::settings& settings,
                              bool include_finished = false);
// One invoice's sequence (by canonical id or invoice number), with its audit trail.
std::optional<nlohmann::json> followup_json(const state::store& s,
                                            const workflows::followup::settings& settings,
                                            std::string_view invoice);
// Internal tasks, newest first.
nlohmann::json tasks_json(const state::store& s);
// The canonical id of an invoice given by id or by number; nullopt when unknown.
std::optional<std::string> find_invoice(const state::store& s, std::string_view invoice);

// billsync followup list|show|resume|stop [INVOICE] --config FILE. resume and stop go through
// the running daemon (POST /followups/resume|stop), which owns the sequence state.
int cmd_followup(const std::string& config_file,
                 const std::string& verb,
                 const std::string& invoice,
                 std::ostream& out,
                 std::ostream& err);

// billsync tasks --config FILE
int cmd_tasks(const std::string& config_file, std::ostream& out, std::ostream& err);

}  // namespace billsync::daemon
