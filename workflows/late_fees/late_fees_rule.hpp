#pragma once

// Late fees on overdue invoices ([late_fees], docs/late-fees.md). Per open invoice past its due
// date plus the grace days, one fee per monthly period: timer late_fees/<invoice> at run_hour on
// the day period k begins. When it fires the invoice has been re-read from its ledger; an
// invoice paid, voided or credited gets no fee and no further period; a disputed invoice (its
// follow-up is paused), a client on a payment plan or one who opted out gets the period skipped,
// with the cause in the audit. Otherwise the fee is assessed (fee.hpp) and, once approved by a
// coordinator (or at once with auto_approve), created in the invoice's own ledger as a separate
// invoice: action invoice.create keyed action_key("late_fees", <invoice>, <period>), so each
// period is charged at most once, crashes and replays included.
//
// Rows: entity "late_fee"/<invoice> (its periods and their state), "late_fee_id"/<fee id> and
// "late_fee_action"/<action id> (both -> invoice), "late_fee_meta"/"policy" (the start date).
// Operator surface: GET /workflows/late_fees[/show/<fee|invoice>], POST
// /workflows/late_fees/approve|reject, `billsync workflow late_fees list|show|approve|reject`.

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "workflows/late_fees/settings.hpp"
#include "workflows/rule.hpp"

namespace billsync::workflows::late_fees {

class late_fees_rule final : public rule {
public:
    // invoices_from: [sources] invoices (empty: invoices from any ledger). read_only: connectors
    // whose invoices are facts billsync never writes (they perform no invoice.create): a fee is
    // never charged on one of theirs.
    late_fees_rule(settings s,
                   std::string invoices_from,
                   std::set<std::string, std::less<>> read_only = {});

    std::string_view name() const noexcept override { return "late_fees"; }
    state::status on_start(context& ctx) const override;
    state::status on_change(const mappings::change& c, context& ctx) const override;
    bool owns_timer(std::string_view timer_name) const noexcept override;
    std::vector<refresh_target> before_timer(std::string_view timer_name,
                                             const state::store& s) const override;
    state::status on_timer(const state::timer& t, context& ctx) const override;
    std::optional<std::string> recheck(const state::action& a, context& ctx) const override;
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

private:
    struct impl;
    settings s_;
    std::string invoices_from_;
    std::set<std::string, std::less<>> read_only_;
};

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::late_fees
