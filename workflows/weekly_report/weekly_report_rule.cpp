#include "workflows/weekly_report/weekly_report_rule.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>

#include "workflows/action_key.hpp"
#include "workflows/weekly_report/report.hpp"

namespace billsync::workflows::weekly_report {

namespace {

using json = nlohmann::json;

constexpr std::string_view rule_name = "weekly_report";

void audit(context& ctx, std::string_view decision, json extra) {
    extra["rule"] = rule_name;
    extra["decision"] = decision;
    ctx.audit.append(ctx.b, ctx.now, extra.dump());
}

// The first send_day at send_hour (local) at or after `from`.
util::instant send_instant(const settings& s, const date::time_zone& tz, util::instant from) {
    auto day = date::floor<date::days>(tz.to_local(date::floor<std::chrono::seconds>(from)));
    for (int i = 0; i < 8; ++i, day += date::days(1)) {
        if (static_cast<int>(date::weekday(day).c_encoding()) != s.send_day) {
            continue;
        }
        const auto local =
            date::local_seconds(day.time_since_epoch()) + std::chrono::hours(s.send_hour);
        const auto t =
            std::chrono::time_point_cast<util::duration>(tz.to_sys(local, date::choose::earliest));
        if (t >= from) {
            return t;
        }
    }
    return from;
}

}  // namespace

weekly_report_rule::weekly_report_rule(settings s) : s_(std::move(s)) {}

bool weekly_report_rule::owns_timer(std::string_view name) const noexcept {
    return name == snapshot_timer || name.rfind(send_timer_prefix, 0) == 0;
}

state::status weekly_report_rule::on_start(context& ctx) const {
    auto cur = ctx.timers.get(snapshot_timer);
    if (!cur.ok()) {
        return cur.st;
    }
    if (cur.value) {
        return state::status::success();
    }
    const auto* tz = date::locate_zone(s_.time_zone);
    const auto span = span_of(s_, *tz, week_of(s_, *tz, ctx.now));
    return ctx.timers.schedule(ctx.b, snapshot_timer, span.ends, "{}");
}

state::status weekly_report_rule::on_timer(const state::timer& t, context& ctx) const {
    const auto* tz = date::locate_zone(s_.time_zone);
    if (t.name == snapshot_timer) {
        // The week that ended when the timer was due, however late it fires.
        const auto w = week_of(s_, *tz, t.due - std::chrono::seconds(1));
        const auto label = format_week(w);
        auto known = state::get_entity(*ctx.store, ctx.b, snapshot_type, label);
        if (!known.ok()) {
            return known.st;
        }
        if (!known.value && s_.compute_figures) {
            auto r = compute_report(*ctx.store, s_, w, ctx.now);
            if (!r.ok()) {
                return state::status::failure("weekly report " + label + ": " + r.error);
            }
            put_snapshot(ctx.b, r.body);
            audit(ctx, "snapshot", json{{"week", label}, {"as_of", r.body.value("as_of", "")}});
        }
        const auto span = span_of(s_, *tz, w);
        if (!s_.to.empty()) {
            if (auto st = ctx.timers.schedule(ctx.b,
                                              std::string(send_timer_prefix) + label,
                                              send_instant(s_, *tz, span.ends),
                                              "{}");
                !st.ok) {
                return st;
            }
        }
        const auto next = span_of(s_, *tz, week_of(s_, *tz, std::max(ctx.now, span.ends)));
        return ctx.timers.schedule(ctx.b, snapshot_timer, next.ends, "{}");
    }
    // A send timer: the stored week's report to every partner, once.
    const auto label = t.name.substr(send_timer_prefix.size());
    std::string text, html, subject;
    if (s_.compute_figures) {
        auto r = weekly_report(*ctx.store, s_, label, ctx.now);
        if (!r.ok()) {
            return state::status::failure("weekly report " + label + ": " + r.error);
        }
        text = render_text(r.body);
        html = render_html(r.body);
        subject = fmt::format("{} {} ({} to {})",
                              s_.subject,
                              label,
                              r.body.value("week_start", ""),
                              r.body.value("week_end", ""));
    } else if (const auto w = parse_week(label)) {
        // The preview: the same subject (the week's first and last day), no figures.
        const auto span = span_of(s_, *tz, *w);
        subject = fmt::format("{} {} ({} to {})",
                              s_.subject,
                              label,
                              date::format("%F", span.start),
                              date::format("%F", span.end));
    }
    json sent = json::array();
    for (const auto& to : s_.to) {
        state::action a;
        a.id = action_key(rule_name, label + "/" + to, 1);
        a.connector = s_.email_connector;
        a.kind = "email.send";
        a.payload = json{
            {"to", to},
            {"subject", subject},
            {"text", text},
            {"html", html},
            {"delivery_id",
             a.id}}.dump();
        auto added = ctx.enqueue(std::move(a));
        if (!added.ok()) {
            return added.st;
        }
        sent.push_back(to);
    }
    audit(ctx, "report_sent", json{{"week", label}, {"to", sent}});
    return state::status::success();
}

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error) {
    if (!s.enabled) {
        return nullptr;
    }
    auto copy = resolved(s, deps.time_zone);
    try {
        (void)date::locate_zone(copy.time_zone);
    } catch (const std::exception&) {
        if (error != nullptr) {
            *error = "[report] unknown time zone '" + copy.time_zone + "'";
        }
        return nullptr;
    }
    const auto known = [&](const std::string& name) {
        return std::any_of(deps.connectors.begin(), deps.connectors.end(), [&](const auto& c) {
            return c.name == name && c.channel == "email";
        });
    };
    if (copy.email_connector.empty()) {
        for (const auto& c : deps.connectors) {
            if (c.channel == "email") {
                copy.email_connector = c.name;
                break;
            }
        }
    }
    if (!copy.to.empty() && (copy.email_connector.empty() || !known(copy.email_connector))) {
        if (error != nullptr) {
            *error = copy.email_connector.empty()
                         ? "[report] has recipients in 'to' but no email connector is enabled"
                         : "[report] email_connector '" + copy.email_connector +
                               "' is not an enabled email connector";
        }
        return nullptr;
    }
    return std::make_unique<weekly_report_rule>(std::move(copy));
}

}  // namespace billsync::workflows::weekly_report
