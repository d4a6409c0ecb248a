#pragma once

// invoicing: when an engagement reaches a billing stage, a retainer period starts or approved
// time accumulates, draft the right invoice at the right rates, route it for approval, and only
// then create it in the ledger, exactly once.
//
// - Triggers. Milestone: a work item whose stage is one of its fixed-fee engagement's milestone
//   stages. Retainer: the durable timer "invoicing/retainer" on the period's first day (the
//   retainer and last period's overage). Time and materials: the timers "invoicing/tm/monthly"
//   and "invoicing/tm/weekly", or the completion of a work item of an engagement billed on
//   completion: approved (locked) billable time not yet billed, by billsync or at its vendor
//   (billed).
// - At most once: every draft has a bill key (milestone|<engagement>|<stage>,
//   retainer|<engagement>|<period>, tm|<engagement>|<period or work item>); a row per bill key
//   and a row per billed time entry make re-entered stages, duplicate changes, replays and
//   crashes find the earlier decision. The ledger action's id is derived from the bill key, so
//   the ledger (QBO requestid, Xero Idempotency-Key) recognises a repeat as well.
// - Each draft carries its why: trigger, terms, entries and rates, the arithmetic.
// - Approval: under [invoicing.approval] auto_approve_below with no review flag: approved at once.
//   Otherwise the engagement partner (or the policy's approvers) approve; at or above
//   second_approver_from two distinct people. Not decided within sla_business_days business
//   days of the firm calendar: a reminder, then an escalation. Approved: one `invoice.create`
//   action on the engagement's ledger connector. Rejections and write-downs need a reason.
// - Redraft (verb `redraft`): a rejected draft, once, drafted again from the current book as a
//   new draft (bill key <original bill key>|redraft:<round>) routed like any other: a milestone
//   priced again; a retainer period again, its overage from the time index as it is now; a T&M
//   draft from exactly its own entries still approved and unbilled (the others named on its why
//   as left out). The rejected one stays rejected and names it (redrafted_as), and the original
//   bill key row then names the new draft, so the milestone, period or run still has one live
//   draft, and each entry is billed at most once.
// - Exceptions (typed, with a cause, an owner role and an age) block a draft until resolved:
//   missing_po, po_limit, unmatched_client, no_engagement, no_rate, missing_approver,
//   missing_tax, missing_time, pricing_mismatch. With [invoicing] check_item_prices, a draft's
//   lines must be priced as the ledger item (entity "ledger_item", synced from the ledger) the
//   engagement names sells (time: the rate; overage: the overage rate; retainer: the retainer;
//   milestone: the fee it is a share of); an item never synced blocks too. `resolve` re-checks
//   against the items as stored now; `resolve --reason` bills at the terms (prices_waived); a
//   draft so blocked may also be rejected, then redrafted from a corrected book.

#include <memory>
#include <string>

#include "workflows/invoicing/settings.hpp"
#include "workflows/rule.hpp"

namespace billsync::workflows::invoicing {

class invoicing_rule final : public rule {
public:
    explicit invoicing_rule(settings s, util::metrics_registry* metrics = nullptr);

    std::string_view name() const noexcept override { return "invoicing"; }
    state::status on_start(context& ctx) const override;
    state::status on_change(const mappings::change& c, context& ctx) const override;
    bool owns_timer(std::string_view timer_name) const noexcept override;
    state::status on_timer(const state::timer& t, context& ctx) const override;
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

    const settings& config() const noexcept { return s_; }

    // billsync_invoicing_exceptions{type} and ..._oldest_timestamp_seconds{type} from the store.
    static void collect_into(util::metrics_registry& m, const state::store& store);

private:
    struct impl;
    settings s_;
    util::metrics_registry* metrics_ = nullptr;  // its collector is registered at the first start
};

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::invoicing
