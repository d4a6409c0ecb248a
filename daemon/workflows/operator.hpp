#pragma once

// The workflows' generic operator surface, which every rule plugs into:
//   GET  /workflows                      the rules that are on, with their verbs
//   GET  /workflows/<rule>[/<path>]      the rule's views (rule::view)
//   POST /workflows/<rule>/<verb>        the rule's commands (rule::command), decided in one batch
//   billsync workflow <rule> <verb> [ARGS] --config FILE
// The documented follow-up routes (GET /followups, GET /tasks, POST /followups/resume|stop,
// `billsync followup ...`, `billsync tasks`) are aliases served through the same path.

#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"
#include "state/store.hpp"
#include "workflows/engine.hpp"

namespace billsync::daemon {

// GET /workflows
nlohmann::json workflows_json(const workflows::engine& e);

// GET /workflows/<rule>[/<path>] given the part after "/workflows/" ("followup/show/1001").
http::response workflow_view(const workflows::engine& e,
                             std::string_view rule_and_path,
                             const state::store& s);

// GET /followups[?limit=N][&after=INVOICE]: one page of the open follow-up sequences in invoice id
// order (workflows::followup::followups_page), compact JSON. limit: 1..followups_max_limit,
// default followups_default_limit; after: the "next" of the previous page. A bad limit is a 400;
// the workflow off is a 409, as for GET /workflows/followup.
inline constexpr std::size_t followups_default_limit = 100;
inline constexpr std::size_t followups_max_limit = 1000;
http::response followups_response(const workflows::engine& e,
                                  std::string_view query,
                                  const state::store& s);

// POST /workflows/<rule>/<verb>: the rule decides in ctx's batch, the batch is committed
// (synced), then the rule's follow-up view is the answer. `commit` writes the batch.
struct command_deps {
    const state::store& store;
    std::function<state::status()> commit;
};
http::response workflow_command(const workflows::engine& e,
                                std::string_view rule,
                                std::string_view verb,
                                const std::string& body,
                                workflows::context& ctx,
                                const command_deps& deps);

// billsync workflow <rule> <verb> [ARGS] [--json] --config FILE. Views read the state read-only
// (also next to a running daemon) and print text for people unless `format` is json;
// state-changing verbs go through the running daemon.
int cmd_workflow(const std::string& config_file,
                 const std::string& rule,
                 const std::string& verb,
                 const std::vector<std::string>& args,
                 workflows::cli_output format,
                 std::ostream& out,
                 std::ostream& err);

}  // namespace billsync::daemon
