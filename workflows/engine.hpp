#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/change.hpp"
#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "workflows/context.hpp"
#include "workflows/rule.hpp"

namespace billsync::workflows {

// Turns canonical changes and fired timers into side effects (outbox actions) and future work
// (timers) by asking its rules, in order. The engine knows no rule by name: every change is
// offered to every rule, a timer goes to the rule that owns it, and a finished action is reported
// to every rule. A rule that throws fails the step (the caller retries it, then dead-letters it);
// it never ends the caller.
class engine {
public:
    engine() = default;
    explicit engine(std::vector<std::unique_ptr<rule>> rules);
    ~engine();
    engine(engine&&) noexcept;
    engine& operator=(engine&&) noexcept;

    void add(std::unique_ptr<rule> r);
    const std::vector<std::unique_ptr<rule>>& rules() const noexcept { return rules_; }
    // The rule of that name; nullptr when it is not on.
    const rule* find(std::string_view name) const noexcept;

    // The rule that owns a timer; empty when none does.
    std::string_view timer_owner(std::string_view timer_name) const noexcept;
    // The canonical entities a timer's decision depends on, to be re-read from their source of
    // truth before the timer fires (a follow-up touch re-reads its invoice); empty: none.
    std::vector<refresh_target> before_timer(std::string_view timer_name,
                                             const state::store& s) const;

    // Once at start: every rule schedules what its settings call for (rule::on_start).
    state::status on_start(context& ctx) const;
    state::status on_change(const mappings::change& c, context& ctx) const;
    // Timers that belong to no rule are logged in the audit log and dropped.
    state::status on_timer(const state::timer& t, context& ctx) const;
    // Asks every rule whether a queued action's decision still holds (rule::recheck): the first
    // cause found, or nullopt. A rule that throws counts as "still wanted".
    std::optional<std::string> recheck(const state::action& a, context& ctx) const;
    // An outbox action ended for good; rules update what they count.
    void on_action_done(const state::action& a, action_result r) const;

private:
    std::vector<std::unique_ptr<rule>> rules_;
};

}  // namespace billsync::workflows
