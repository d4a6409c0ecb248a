#include "daemon/report.hpp"

#include <fmt/format.h>

#include <ostream>

#include "daemon/app_config.hpp"
#include "daemon/tools.hpp"
#include "state/sim_time.hpp"
#include "workflows/weekly_report/report.hpp"

namespace billsync::daemon {

namespace wr = workflows::weekly_report;

wr::settings report_settings_of(const app_config& cfg) {
    wr::settings s;
    if (const auto it = cfg.workflow_settings.find("weekly_report");
        it != cfg.workflow_settings.end()) {
        if (const auto* p = std::any_cast<wr::settings>(&it->second)) {
            s = *p;
        }
    }
    return wr::resolved(std::move(s), cfg.daemon().time_zone);
}

namespace {

std::string query_value(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto part = query.substr(0, amp);
        const auto eq = part.find('=');
        if (part.substr(0, eq) == key) {
            return eq == std::string_view::npos ? std::string() : std::string(part.substr(eq + 1));
        }
        if (amp == std::string_view::npos) {
            break;
        }
        query.remove_prefix(amp + 1);
    }
    return {};
}

}  // namespace

http::response report_response(const state::store& s,
                               const wr::settings& cfg,
                               std::string_view query,
                               util::instant now) {
    const auto format = query_value(query, "format");
    if (!format.empty() && format != "json" && format != "html") {
        return http::response::error(400, "bad_request", "format must be json or html");
    }
    auto r = wr::weekly_report(s, cfg, query_value(query, "week"), now);
    if (!r.ok()) {
        if (r.error.rfind("bad_week: ", 0) == 0) {
            return http::response::error(400, "bad_week", r.error.substr(10));
        }
        return http::response::error(503, "state_unavailable", r.error);
    }
    if (format == "html") {
        http::response out;
        out.status = 200;
        out.content_type = "text/html; charset=utf-8";
        out.body = wr::render_html(r.body);
        return out;
    }
    return http::response::json(200, r.body.dump());
}

int cmd_report(const std::string& config_file,
               const std::string& kind,
               const std::string& week,
               report_format format,
               std::ostream& out,
               std::ostream& err) {
    if (kind != "weekly") {
        err << fmt::format("unknown report '{}' (known: weekly)\n", kind);
        return exit_usage;
    }
    auto cfg = load_quietly(config_file, err);
    if (!cfg) {
        return exit_config;
    }
    auto store = open_state_read_only(*cfg, err);
    if (!store) {
        return exit_unavailable;
    }
    util::instant now = util::system_clock().now();
    if (cfg->daemon().clock == config::clock_mode::simulated) {
        auto stored = state::get_simulated_time(*store);
        now = stored.ok() && stored.value ? *stored.value : cfg->daemon().clock_start;
    }
    auto r = wr::weekly_report(*store, report_settings_of(*cfg), week, now);
    if (!r.ok()) {
        if (r.error.rfind("bad_week: ", 0) == 0) {
            err << "--week: " << r.error.substr(10) << "\n";
            return exit_usage;
        }
        err << r.error << "\n";
        return exit_unavailable;
    }
    switch (format) {
        case report_format::json:
            out << r.body.dump(2) << "\n";
            break;
        case report_format::html:
            out << wr::render_html(r.body);
            break;
        case report_format::text:
            out << wr::render_text(r.body);
            break;
    }
    return exit_ok;
}

}  // namespace billsync::daemon
