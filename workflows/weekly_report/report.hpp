#pragma once

// The weekly report: figures computed exactly from stored state (integer minor units, civil
// dates in the firm's time zone, rates in basis points and whole days, never a float), for the
// week that ends on the firm's configured day. docs/report.md defines every figure.
//
// Reproducible: the daemon stores each finished week's report as a snapshot row (entity
// "weekly_report"/<week>) at the week's end; a week with a snapshot is answered from it, always
// the same. A week without one (before the report ran) is computed from dated rows: aging
// reconstructed from the invoices' balances and the payments dated after the week, events
// (touches, payments, disputes, opt-outs, dead letters) from their dated rows; the figures that
// only exist as current state are named in "as_of_now".
//
// No Asio or Beast here: the status listener's dashboard calls weekly_report_json in-process.

#include <date/date.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "state/store.hpp"
#include "util/clock.hpp"
#include "workflows/weekly_report/settings.hpp"

namespace billsync::state {
class batch;
}

namespace date {
class time_zone;
}

namespace billsync::workflows::weekly_report {

// An ISO week label, "2026-W49".
struct week_id {
    int year = 0;
    unsigned number = 0;  // 1..53

    friend bool operator==(const week_id&, const week_id&) = default;
};
std::optional<week_id> parse_week(std::string_view text);  // nullopt: not a real ISO week
std::string format_week(week_id w);

// The firm's week W: the seven civil days ending on settings.week_end_day inside ISO week W,
// and the instants they span in the firm's time zone ([begins, ends)).
struct week_span {
    week_id id;
    date::local_days start, end;  // first and last civil day
    util::instant begins, ends;   // local 00:00 of start, local 00:00 after end
};
week_span span_of(const settings& cfg, const date::time_zone& tz, week_id w);
// The week whose end is the first week_end_day on or after the local date of `t`.
week_id week_of(const settings& cfg, const date::time_zone& tz, util::instant t);
// The latest week that has ended by `now`.
week_id last_completed_week(const settings& cfg, const date::time_zone& tz, util::instant now);

// The settings with the time zone filled in (fallback: [daemon] time_zone, then "UTC").
settings resolved(settings cfg, std::string_view fallback_time_zone);

// The entity type of the weekly snapshots.
inline constexpr std::string_view snapshot_type = "weekly_report";

struct report_answer {
    nlohmann::json body;  // the report (docs/report.md) when error is empty
    std::string error;    // "bad_week: …" or a storage error
    bool ok() const noexcept { return error.empty(); }
};

// The report of `week` ("YYYY-Www"; empty: the last completed week) as of `now`: the stored
// snapshot when there is one, else computed (a week not yet over is computed as of now and
// marked "final": false).
report_answer weekly_report(const state::store& s,
                            const settings& cfg,
                            std::string_view week,
                            util::instant now);

// For the dashboard: the last completed week's report (null on a storage error).
nlohmann::json weekly_report_json(const state::store& s, const settings& cfg, util::instant now);

// Computes the report of w from the store as of min(now, the week's end), ignoring snapshots.
report_answer compute_report(const state::store& s,
                             const settings& cfg,
                             week_id w,
                             util::instant now);

// Stores a snapshot (in b): the report of its week from then on.
void put_snapshot(state::batch& b, const nlohmann::json& report);

// Human forms: a terminal table, and a self-contained HTML page (inline CSS, no external
// assets), both from the JSON.
std::string render_text(const nlohmann::json& report);
std::string render_html(const nlohmann::json& report);

// "1234.56" for 123456 minor units of the currency.
std::string money_text(std::int64_t minor, std::string_view currency);

}  // namespace billsync::workflows::weekly_report
