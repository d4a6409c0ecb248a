#include "workflows/send_window.hpp"

#include <date/tz.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "workflows/followup/window.hpp"

namespace billsync::workflows {

namespace {

using json = nlohmann::json;

const date::time_zone* find_zone(const std::string& name) {
    try {
        return date::locate_zone(name);
    } catch (const std::exception&) {
        return nullptr;
    }
}

}  // namespace

std::string encode_window(const send_window& w) {
    json days = json::array();
    for (std::size_t i = 0; i < w.days.size(); ++i) {
        if (w.days[i]) {
            days.push_back(i);
        }
    }
    json holidays = json::array();
    for (const auto& d : w.holidays) {
        holidays.push_back(date::format("%F", d));
    }
    return json{{"tz", w.time_zone},
                {"start_min", w.start.count()},
                {"end_min", w.end.count()},
                {"days", days},
                {"holidays", holidays}}
        .dump();
}

std::optional<send_window> decode_window(std::string_view text) {
    const auto j = json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("tz") || !j["tz"].is_string() || !j.contains("days") ||
        !j["days"].is_array()) {
        return std::nullopt;
    }
    send_window w;
    w.time_zone = j["tz"].get<std::string>();
    if (find_zone(w.time_zone) == nullptr) {
        return std::nullopt;
    }
    w.start = std::chrono::minutes(j.value("start_min", 0));
    w.end = std::chrono::minutes(j.value("end_min", 24 * 60));
    for (const auto& d : j["days"]) {
        if (!d.is_number_unsigned() || d.get<std::size_t>() >= w.days.size()) {
            return std::nullopt;
        }
        w.days[d.get<std::size_t>()] = true;
    }
    if (j.contains("holidays") && j["holidays"].is_array()) {
        for (const auto& h : j["holidays"]) {
            if (!h.is_string()) {
                return std::nullopt;
            }
            int y = 0;
            unsigned m = 0;
            unsigned d = 0;
            char tail = 0;
            if (std::sscanf(h.get<std::string>().c_str(), "%d-%u-%u%c", &y, &m, &d, &tail) != 3) {
                return std::nullopt;
            }
            const date::year_month_day ymd{date::year{y}, date::month{m}, date::day{d}};
            if (!ymd.ok()) {
                return std::nullopt;
            }
            const date::sys_days day{ymd};
            w.holidays.insert(day);
        }
    }
    return w;
}

send_gate gate(const state::action& a, util::instant now) {
    send_gate g;
    const bool has_deadline = a.deadline != util::instant{};
    if (has_deadline && now >= a.deadline) {
        g.k = send_gate::kind::stale;
        g.cause = "past its deadline " + util::format_rfc3339(a.deadline) +
                  ": the decision behind it no longer holds";
        return g;
    }
    if (a.window.empty()) {
        return g;
    }
    const auto w = decode_window(a.window);
    const auto* tz = w ? find_zone(w->time_zone) : nullptr;
    if (!w || tz == nullptr) {
        // Never guess when a client may be reached.
        g.k = send_gate::kind::stale;
        g.cause = "its sending window is unreadable";
        return g;
    }
    followup::sending_window fw;
    fw.start = w->start;
    fw.end = w->end;
    fw.days = w->days;
    fw.holidays = w->holidays;
    if (followup::in_window(fw, *tz, now)) {
        return g;
    }
    const auto at = followup::next_opening(fw, *tz, now);
    if (at <= now) {
        g.k = send_gate::kind::stale;
        g.cause = "its sending window never opens";
        return g;
    }
    if (has_deadline && at >= a.deadline) {
        g.k = send_gate::kind::stale;
        g.cause = "its sending window next opens at " + util::format_rfc3339(at) +
                  ", past its deadline " + util::format_rfc3339(a.deadline);
        return g;
    }
    g.k = send_gate::kind::later;
    g.at = at;
    g.cause = "outside its sending window; deferred to " + util::format_rfc3339(at);
    return g;
}

}  // namespace billsync::workflows
