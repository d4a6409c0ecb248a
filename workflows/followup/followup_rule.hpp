#pragma once

// The follow-up workflow inside the pipeline: canonical changes (invoices, clients, replies,
// suppressions) and its own timers go to the planner; the planner's decisions are committed in
// the caller's batch, together with the change or timer that caused them: the sequence state
// (entity "followup"/<invoice>), outbox actions (email.send / sms.send, keyed by the planner),
// internal tasks (entity "task"/<key>), timers and audit lines.
//
// Entities read (canonical, from the ledger connector): "invoice"/<id>, "client"/<id>; the
// suppression list "suppression"/"sms:<E.164>" and "suppression"/"email:<address>" (written by
// the channel connectors).

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mappings/change.hpp"
#include "mappings/model.hpp"
#include "workflows/context.hpp"
#include "workflows/followup/planner.hpp"
#include "workflows/followup/plans.hpp"
#include "workflows/rule.hpp"

namespace billsync::workflows::followup {

struct channel_routes {
    std::string email;  // connector taking "email.send" (sendgrid or smtp); empty: none
    std::string sms;    // connector taking "sms.send" (twilio); empty: none
    // Replies: client email replies go to reply_to with "+<token>" added to the local part, so an
    // inbound reply names its invoice. Empty: no per-invoice reply address.
    std::string reply_to;
    std::string reply_key;          // HMAC key of the reply tokens (rule_deps::reply_key)
    std::string coordinator_email;  // tasks are also emailed here when set
    std::string tasks;              // connector taking "task.create"; empty: tasks stay internal
    // [sources]: only invoices from `invoices_from` are followed up (empty: from any ledger);
    // a client's contact fields come from its linked client in `clients_from` when it has one.
    std::string invoices_from;
    std::string clients_from;
};

// The reply token of an invoice, "r-" + 24 hex of HMAC-SHA256(key, invoice id), and the address
// built from it. Keyed, so nobody without the daemon's key can name an invoice in a reply.
// Tokens of the older unkeyed form ("inv-" + 12 hex of the id's SHA-256), already sent in
// emails, are still recognised, but as an unverified sender: a dispute becomes a task, not a
// pause.
std::string reply_token(std::string_view key, std::string_view invoice_id);
std::string reply_address(std::string_view reply_to,
                          std::string_view key,
                          std::string_view invoice_id);
// Whether `number` appears in `text` as a whole word ("10" is not in "1005" nor in "A-10x").
bool mentions_number(std::string_view text, std::string_view number);

// The planner's view of a canonical invoice and its client (nullptr: unknown client).
followup_invoice adapt(const mappings::invoice& inv,
                       const mappings::client* client,
                       const settings& s,
                       bool sms_suppressed);

class followup_rule final : public rule {
public:
    // metrics (may be null): billsync_followup_decisions_total{decision} for every decision the
    // planner makes (touch, cancel, pause, restart, skip, ...) as it is committed, and
    // billsync_followup_deliveries_total{channel,touch,outcome} for every message it sent.
    followup_rule(planner p, channel_routes routes, util::metrics_registry* metrics = nullptr);

    std::string_view name() const noexcept override { return "followup"; }

    // "invoice" and "client" changes re-plan the invoices concerned; "sms_inbound" and
    // "email_inbound" replies are matched to invoices (dispute keywords pause); a "suppression"
    // change re-plans the client's sequences. Other changes are ignored.
    state::status on_change(const mappings::change& c, context& ctx) const override;

    bool owns_timer(std::string_view name) const noexcept override;
    // The invoice a touch timer will act on, so the caller can re-read it from its source of
    // truth first; nullopt for timers that send nothing.
    static std::optional<std::string> touch_invoice(std::string_view timer_name);
    // A touch or reminder: its invoice. A payment plan's installment: the client's open invoices
    // (at most max_plan_refresh of them), so a payment made meanwhile is seen before a reminder
    // or a missed-installment notice goes out.
    std::vector<refresh_target> before_timer(std::string_view timer_name,
                                             const state::store& s) const override;
    static constexpr std::size_t max_plan_refresh = 50;
    state::status on_timer(const state::timer& t, context& ctx) const override;
    // A touch performed later than decided (window, retry, restart) is dropped when the invoice
    // was paid or voided meanwhile, the sequence left the active phase (paused, stopped,
    // cancelled, excluded) or restarted (a partial payment: a new cycle). A courtesy reminder is
    // dropped when the invoice was paid or voided, its client went on auto-pay, the sequence left
    // the waiting phase or the due date moved.
    std::optional<std::string> recheck(const state::action& a, context& ctx) const override;
    // Follow-up messages by channel, touch and outcome (acknowledgements count as touch 0).
    void on_action_done(const state::action& a, action_result r) const override;

    // Operator surface: views "" (open sequences), "tasks", "show/<invoice>"; commands
    // "resume" and "stop" ({"invoice": "<id or number>", "who": "..."}).
    std::vector<verb_spec> verbs() const override;
    operator_answer view(std::string_view path, const state::store& s) const override;
    operator_answer command(std::string_view verb,
                            const nlohmann::json& args,
                            context& ctx) const override;
    std::optional<nlohmann::json> cli_request(std::string_view verb,
                                              const std::vector<std::string>& args,
                                              std::ostream& err) const override;
    cli_result cli_view(std::string_view verb,
                        const std::vector<std::string>& args,
                        const state::store& s,
                        cli_output format,
                        std::ostream& out,
                        std::ostream& err) const override;

    // Operator commands (`billsync followup resume|stop`). Fails with a message when the
    // invoice has no sequence.
    state::status resume(std::string_view invoice_id, std::string_view who, context& ctx) const;
    state::status stop(std::string_view invoice_id, std::string_view who, context& ctx) const;

    const planner& plan() const noexcept { return planner_; }
    const channel_routes& routes() const noexcept { return routes_; }

    // How long after its decision a touch may still go out (after retries, waits for the
    // window or a restart); later, the sequence's next step speaks instead.
    static constexpr std::chrono::hours touch_deadline{72};

private:
    struct loaded;
    std::string touch_window() const;
    state::result<std::optional<loaded>> load(std::string_view invoice_id, context& ctx) const;
    std::optional<std::string> recheck_reminder(const state::action& a,
                                                const std::string& invoice_id,
                                                std::uint32_t reminder,
                                                context& ctx) const;
    state::status observe(std::string_view invoice_id, context& ctx) const;
    // A payment-plan client: its installment schedule against its open balance now.
    // The client's name, email and open balance in the plan's currency, now.
    state::result<plan_client> plan_snapshot(std::string_view client_id,
                                             const payment_plan& plan,
                                             context& ctx,
                                             std::string_view changed_invoice) const;
    // A late installment reminder or missed notice is dropped once the installment is paid.
    std::optional<std::string> recheck_plan(const nlohmann::json& payload, context& ctx) const;
    // changed_invoice: the invoice of this step's change, read through the batch.
    state::status observe_plan(std::string_view client_id,
                               context& ctx,
                               std::string_view changed_invoice = {}) const;
    // reply: the client's reply that caused the step, recorded on the dispute task it opens.
    state::status apply(const plan_result& r,
                        const loaded& l,
                        context& ctx,
                        const nlohmann::json* reply = nullptr) const;
    // With a task connector: the task also goes there, as "task.create" for the client's
    // counterpart in that system; a client not linked there yet waits (an identity exception)
    // and its task goes when the link arrives. Records the outcome in task["external"].
    state::status external_task(nlohmann::json& task,
                                const std::string& client_id,
                                context& ctx) const;
    // A client changed (or was linked): its tasks waiting for a counterpart go now if they can.
    state::status retry_external_tasks(std::string_view client_id, context& ctx) const;
    state::status operator_command(std::string_view invoice_id,
                                   std::string_view who,
                                   bool resume,
                                   context& ctx) const;
    state::status on_reply(const std::vector<std::string>& invoice_ids,
                           bool verified,
                           std::string_view text,
                           std::string_view channel,
                           std::string_view from,
                           context& ctx) const;

    planner planner_;
    channel_routes routes_;
    util::metrics_registry* metrics_ = nullptr;
};

// The rule as configured: the planner (firm time zone from s.time_zone, else deps.time_zone) and
// the channel routes (the configured email/sms connector, else the first one carrying that
// channel). nullptr when s.enabled is false (*error stays empty) or the rule cannot be built
// (*error says why).
std::unique_ptr<followup_rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::followup
