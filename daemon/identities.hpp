#pragma once

// The identity map's operator surface:
//   GET  /identities                  exceptions waiting for a person, and every linked party
//   POST /identities/link   {"a","b"} put b's party into a's (each "<canonical id>" or
//   POST /identities/unlink {"client"}      "<connector>:<vendor id>"), audited
//   billsync identities list [--json] | link A B | unlink CLIENT

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/message.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "util/clock.hpp"

namespace billsync::daemon {

// The GET /identities body. Without parties: the exceptions only (the dashboard shows no
// parties, and a firm's every linked client is a read per member).
nlohmann::json identities_json(const state::store& s, bool with_parties = true);

// POST /identities/<verb>: decides in `b` and appends the audit line; commit(clients) writes b,
// with the canonical clients whose party changed (the daemon lets the workflows see them first:
// a draft waiting for the link goes on in the same step).
http::response identities_command(
    std::string_view verb,
    const std::string& body,
    const state::store& s,
    state::batch& b,
    state::audit_log& audit,
    util::instant now,
    const std::function<state::status(const std::vector<std::string>&)>& commit);

// The text `billsync identities list` prints for a GET /identities body: each exception with its
// candidates, each party with how every member joined ("(by client_code)").
void print_identities(const nlohmann::json& identities, std::ostream& out);

// billsync identities VERB [ARGS] --config FILE [--json]
int cmd_identities(const std::string& config_file,
                   const std::string& verb,
                   const std::vector<std::string>& args,
                   bool as_json,
                   std::ostream& out,
                   std::ostream& err);

}  // namespace billsync::daemon
