#pragma once

// `billsync report weekly` and GET /reports/weekly: the weekly report (workflows/weekly_report)
// from the state store, as a terminal table, JSON or self-contained HTML.

#include <iosfwd>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"
#include "workflows/weekly_report/settings.hpp"

namespace billsync::daemon {

struct app_config;

// [report] as configured (defaults when the table is absent), with its time zone resolved.
workflows::weekly_report::settings report_settings_of(const app_config& cfg);

enum class report_format : std::uint8_t { text, json, html };

// billsync report weekly [--week YYYY-Www] [--json | --html] --config FILE. Reads the state
// read-only (also next to a running daemon). "Now" is the stored simulated time when the daemon
// runs on a simulated clock, else the system clock.
int cmd_report(const std::string& config_file,
               const std::string& kind,
               const std::string& week,
               report_format format,
               std::ostream& out,
               std::ostream& err);

// GET /reports/weekly[?week=YYYY-Www][&format=html]: 200 with the JSON (or the HTML page),
// 400 for a malformed or future week.
http::response report_response(const state::store& s,
                               const workflows::weekly_report::settings& cfg,
                               std::string_view query,
                               util::instant now);

}  // namespace billsync::daemon
