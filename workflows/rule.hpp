#pragma once

// A workflow is a rule: it turns canonical changes and the timers it owns into side effects
// (outbox actions, queued through context::enqueue) and future work (timers), and plugs into the
// operator surface (GET /workflows/<rule>[/...], POST /workflows/<rule>/<verb>,
// `billsync workflow <rule> <verb>`). Rules see canonical entities only, never a vendor's JSON,
// and receive their settings already parsed. docs/adding-a-workflow.md shows how to add one.

#include <cstdint>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/change.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "state/timers.hpp"
#include "workflows/context.hpp"

namespace billsync::util {
class metrics_registry;
}

namespace billsync::workflows {

// What a rule is built with besides its own settings: lent by the daemon, owned by none.
struct rule_deps {
    struct connector {
        std::string name;
        std::string channel;               // the messages it carries ("email", "sms"); empty: none
        bool takes_actions = false;        // generic record sources with an action URL
        std::vector<std::string> actions;  // the outbox action kinds it performs ("task.create")
    };
    std::string time_zone;                      // [daemon] time_zone, the firm's default
    std::vector<connector> connectors;          // enabled connectors, in configuration order
    util::metrics_registry* metrics = nullptr;  // null in previews and tools
    // [sources]: the connector that is the source of truth per data type ("invoices",
    // "payments", "clients", "time_entries", "work_items"); a type not listed has none.
    std::map<std::string, std::string, std::less<>> sources;
    // The key of per-invoice reply tokens (HMAC), derived from the daemon's key; see
    // followup::reply_token.
    std::string reply_key;
    std::string source_of(std::string_view data_type) const {
        const auto it = sources.find(data_type);
        return it == sources.end() ? std::string() : it->second;
    }
};

// The canonical entity a timer's decision depends on, re-read from its source of truth before
// the timer fires.
struct refresh_target {
    std::string type;
    std::string id;
};

// How an action a rule queued ended (retries in between are not reported).
enum class action_result : std::uint8_t { done, failed };

// One operator verb of a rule: `billsync workflow <rule> <verb> [ARGS]`.
struct verb_spec {
    std::string name;
    std::string args;            // usage of its arguments, e.g. "INVOICE"; empty: none
    bool changes_state = false;  // true: POST /workflows/<rule>/<verb> to the running daemon
    std::string help;
};

// A rule's answer to an operator, shaped like an HTTP answer without depending on HTTP.
struct operator_answer {
    unsigned status = 200;  // 200, 400 (bad request), 404 (unknown item)
    std::string error;      // short code when status != 200 ("not_found")
    std::string message;    // when status != 200
    nlohmann::json body;    // when 200 (a view)
    // Commands: the view (GET /workflows/<rule>/<then_view>) answered once the batch committed.
    std::string then_view;

    static operator_answer ok(nlohmann::json body) { return {200, {}, {}, std::move(body), {}}; }
    static operator_answer fail(unsigned status, std::string error, std::string message) {
        return {status, std::move(error), std::move(message), nullptr, {}};
    }
};

// What a CLI view verb came to (the daemon maps it onto its exit codes).
enum class cli_result : std::uint8_t { ok, usage, not_found };

// How a CLI view verb prints: text for people (the default), or with --json the view's JSON, as
// GET /workflows/<rule>/<path> answers it, for machines.
enum class cli_output : std::uint8_t { text, json };

class rule {
public:
    virtual ~rule() = default;

    // Its name in routes, audit lines and the CLI ("followup").
    virtual std::string_view name() const noexcept = 0;

    // Every canonical change is offered to every rule; a rule ignores what is not its business.
    virtual state::status on_change(const mappings::change& c, context& ctx) const = 0;

    // Once when the daemon starts, in a batch of its own, before any change or timer: a rule whose
    // timers come from its settings (a monthly run) schedules the ones not scheduled yet.
    virtual state::status on_start(context& /*ctx*/) const { return state::status::success(); }

    // Timers: a rule fires only the timers it owns.
    virtual bool owns_timer(std::string_view /*timer_name*/) const noexcept { return false; }
    virtual state::status on_timer(const state::timer& /*t*/, context& /*ctx*/) const {
        return state::status::success();
    }
    // The entities the owned timer's decision depends on (a touch: its invoice; a payment plan's
    // installment: the client's open invoices), each re-read from its source of truth before the
    // timer fires; `s` is the committed state. Empty: none.
    virtual std::vector<refresh_target> before_timer(std::string_view /*timer_name*/,
                                                     const state::store& /*s*/) const {
        return {};
    }

    // Before an action is performed later than decided (it waited for its window, a retry or a
    // restart), the rule that queued it re-checks the decision against the current state: a
    // cause when it no longer holds (the invoice was paid meanwhile), and the action is dropped
    // with that cause in the audit log; nullopt: still wanted, or not this rule's action.
    virtual std::optional<std::string> recheck(const state::action& /*a*/, context& /*ctx*/) const {
        return std::nullopt;
    }

    // An action ended for good (offered to every rule; a rule counts the ones it queued).
    virtual void on_action_done(const state::action& /*a*/, action_result /*r*/) const {}

    // Operator surface. `path` is what follows /workflows/<rule>/ (empty for the rule's root).
    virtual std::vector<verb_spec> verbs() const { return {}; }
    virtual operator_answer view(std::string_view path, const state::store& s) const;
    // A state-changing verb, decided in ctx's batch like any other step. `args` is the request's
    // JSON body.
    virtual operator_answer command(std::string_view verb,
                                    const nlohmann::json& args,
                                    context& ctx) const;
    // CLI: the JSON body of a state-changing verb from its command-line arguments (nullopt: a
    // usage error, explained on err), and the text of a view verb read from a read-only store.
    virtual std::optional<nlohmann::json> cli_request(std::string_view verb,
                                                      const std::vector<std::string>& args,
                                                      std::ostream& err) const;
    virtual cli_result cli_view(std::string_view verb,
                                const std::vector<std::string>& args,
                                const state::store& s,
                                cli_output format,
                                std::ostream& out,
                                std::ostream& err) const;
};

}  // namespace billsync::workflows
