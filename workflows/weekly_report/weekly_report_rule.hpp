#pragma once

// weekly_report: keeps the weekly report's snapshots and emails the report to the partners.
//
// - Snapshot: the durable timer "weekly_report/snapshot" is due at the end of the firm's week
//   (local 00:00 after [report] week_end_day). It computes the week's report and stores it as
//   entity "weekly_report"/<YYYY-Www> (the report of that week from then on; never overwritten),
//   schedules "weekly_report/send/<YYYY-Www>" at the first [report] send_day/send_hour at or
//   after the week's end, and re-arms itself for the next week's end.
// - Send: one "email.send" action per partner in [report] to, on the configured email
//   connector, with a plain-text and an HTML part. Its id is
//   action_key("weekly_report", "<week>/<address>", 1): the timer's firing and the actions
//   commit in one batch, and the outbox refuses an id it knows, so each partner gets each week's
//   report once, across crashes and restarts.

#include <memory>
#include <string>

#include "workflows/rule.hpp"
#include "workflows/weekly_report/settings.hpp"

namespace billsync::workflows::weekly_report {

inline constexpr std::string_view snapshot_timer = "weekly_report/snapshot";
inline constexpr std::string_view send_timer_prefix = "weekly_report/send/";

class weekly_report_rule final : public rule {
public:
    explicit weekly_report_rule(settings s);

    std::string_view name() const noexcept override { return "weekly_report"; }
    state::status on_start(context& ctx) const override;
    state::status on_change(const mappings::change& /*c*/, context& /*ctx*/) const override {
        return state::status::success();
    }
    bool owns_timer(std::string_view timer_name) const noexcept override;
    state::status on_timer(const state::timer& t, context& ctx) const override;

    const settings& config() const noexcept { return s_; }

private:
    settings s_;
};

// nullptr with *error empty when [report] is off; with *error set when it cannot run (no email
// connector for its recipients, unknown time zone).
std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::weekly_report
