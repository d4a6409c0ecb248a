#pragma once

// Payment plans: a pure, deterministic planner for one client's installment schedule, alongside
// the overdue sequence (which excludes payment-plan clients). Per installment k: a reminder
// installment_reminder_days before its due date (moved into the sending window, skipped once
// the installment is already covered or its due date passed), and at 00:00 on the day after
// the due date a check: unpaid, it is missed (a notice to the client and a coordinator task);
// a missed installment that is paid later is recorded as paid late.
//
// Paid: the client's open balance (sum of the balances of its open invoices) has dropped, since
// the plan started, by at least the sum of installments 1..k. The plan starts when it is first
// seen with an open balance above zero (the client's invoices may sync after the client); that
// balance is the baseline. Invoices added later raise
// the open balance and so count against the plan, as they should.

#include <date/tz.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/clock.hpp"
#include "workflows/followup/planner.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::workflows::followup {

// Durable per-client state (entity "followup_plan"/<client id>).
struct plan_state {
    std::string client_id;
    bool started = false;
    std::int64_t baseline = 0;          // the open balance when the plan was first seen
    std::uint32_t reminded = 0;         // installments whose reminder is done (sent or skipped)
    std::uint32_t checked = 0;          // installments whose due date passed and were checked
    std::vector<std::uint32_t> missed;  // missed and not yet paid
    std::string timer;
    std::optional<util::instant> timer_due;

    bool operator==(const plan_state&) const = default;
};

std::string encode(const plan_state& s);
bool decode_plan(std::string_view text, plan_state& out);

// What the plan planner needs to know about the client now.
struct plan_client {
    std::string id;
    std::string name;
    std::string email;
    std::int64_t open_balance = 0;  // minor units of the plan's currency
};

struct plan_outcome {
    plan_state state;
    std::vector<decision> decisions;  // decision.touch is the installment number
    std::vector<planned_action> actions;
    std::vector<timer_change> timers;
};

inline constexpr std::string_view plan_timer_prefix = "followup/plan:";
std::string plan_timer_name(std::string_view client_id, std::uint32_t k, bool check);
// The client id of a plan timer; nullopt for other timers.
std::optional<std::string> plan_timer_client(std::string_view timer_name);
// How much of the plan the client has paid: baseline - open balance, never below zero.
std::int64_t plan_paid(const plan_state& s, const plan_client& c);
// One audit line: {"at","rule":"followup","client","decision","installment","cause"}.
std::string plan_audit_line(std::string_view client_id, const decision& d, util::instant at);

// One step: the client was observed (an invoice or the client changed) or a plan timer fired.
plan_outcome plan_installments(const settings& s,
                               const date::time_zone& tz,
                               const payment_plan& plan,
                               const plan_state& state,
                               const plan_client& client,
                               util::instant now);

}  // namespace billsync::workflows::followup
