#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mappings/change.hpp"
#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/clock.hpp"
#include "workflows/context.hpp"

namespace billsync::workflows {

namespace followup {
class followup_rule;
}

// Turns canonical changes and fired timers into side effects (outbox actions) and future work
// (timers). Rules see canonical entities only.
//
// Record rules (generic signed-webhook sources):
// - "notify": every created or updated record from a source that takes actions gets one notify
//   action, keyed by (rule, entity, version), back to that source.
// - "remind": a record with remind_after_s schedules the durable timer remind/<entity>; an
//   update reschedules it, a deletion cancels it; when it fires, a remind action is queued.
class engine {
public:
    explicit engine(std::set<std::string, std::less<>> action_sources);
    ~engine();
    engine(engine&&) noexcept;

    // The overdue follow-up workflow; without one, invoices trigger nothing.
    void set_followup(std::unique_ptr<followup::followup_rule> rule);
    const followup::followup_rule* followup() const noexcept { return followup_.get(); }

    // The canonical entity a timer's decision depends on, to be re-read from its source of truth
    // before the timer fires (a follow-up touch re-reads its invoice); nullopt: none.
    struct refresh_target {
        std::string type;
        std::string id;
    };
    std::optional<refresh_target> before_timer(std::string_view timer_name) const;

    state::status on_change(const mappings::change& c, context& ctx) const;
    // Timers that belong to no rule are logged in the audit log and dropped.
    state::status on_timer(const state::timer& t, context& ctx) const;

private:
    state::status enqueue(context& ctx,
                          std::string_view rule,
                          const std::string& connector,
                          const std::string& entity,
                          std::uint64_t version,
                          std::string payload,
                          std::string_view cause) const;

    std::set<std::string, std::less<>> action_sources_;
    std::unique_ptr<followup::followup_rule> followup_;
};

}  // namespace billsync::workflows
