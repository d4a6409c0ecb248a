#pragma once

// Record rules for generic signed-webhook sources (canonical "record" entities):
// - "notify": every created or updated record from a source that takes actions gets one notify
//   action, keyed by (rule, entity, version), back to that source.
// - "remind": a record with remind_after_s schedules the durable timer remind/<entity>; an
//   update reschedules it, a deletion cancels it; when it fires, a remind action is queued.

#include <memory>
#include <set>
#include <string>

#include "workflows/rule.hpp"

namespace billsync::workflows::records {

// No settings of its own: it acts for every source configured with an action URL.
struct settings {};

class records_rule final : public rule {
public:
    explicit records_rule(std::set<std::string, std::less<>> action_sources);

    std::string_view name() const noexcept override { return "records"; }
    state::status on_change(const mappings::change& c, context& ctx) const override;
    bool owns_timer(std::string_view timer_name) const noexcept override;
    state::status on_timer(const state::timer& t, context& ctx) const override;

private:
    std::set<std::string, std::less<>> action_sources_;
};

// The rule for the sources in deps that take actions.
std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::records
