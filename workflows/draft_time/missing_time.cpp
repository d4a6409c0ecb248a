#include "workflows/draft_time/missing_time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "mappings/model.hpp"
#include "state/tables.hpp"
#include "workflows/rows.hpp"

namespace billsync::workflows::draft_time {

namespace {

using json = nlohmann::json;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return s;
}

std::string civil(date::local_days day) {
    return date::format("%F", date::sys_days(day.time_since_epoch()));
}

}  // namespace

bool working_day(const missing_time_settings& m, date::local_days day) {
    const date::weekday wd{day};
    return m.days.at(wd.c_encoding()) &&
           !m.holidays.contains(date::sys_days(day.time_since_epoch()));
}

date::local_days previous_working_day(const missing_time_settings& m, date::local_days day) {
    for (int back = 1; back <= 366; ++back) {
        const auto d = day - date::days(back);
        if (working_day(m, d)) {
            return d;
        }
    }
    return day - date::days(1);
}

util::instant next_at(const std::array<bool, 7>& days,
                      const std::set<date::sys_days>& holidays,
                      int hour,
                      const date::time_zone* tz,
                      util::instant now) {
    const auto today = local_day(tz, now);
    for (int ahead = 0; ahead <= 366; ++ahead) {
        const auto d = today + date::days(ahead);
        if (!days.at(date::weekday{d}.c_encoding()) ||
            holidays.contains(date::sys_days(d.time_since_epoch()))) {
            continue;
        }
        const auto at = at_local(tz, d, hour);
        if (at > now) {
            return at;
        }
    }
    // No such day in a year (every day a holiday): once a day, so the timer stays alive.
    return at_local(tz, today + date::days(1), hour);
}

util::instant next_check(const missing_time_settings& m,
                         const date::time_zone* tz,
                         util::instant now) {
    return next_at(m.days, m.holidays, m.check_hour, tz, now);
}

state::result<json> check_day(const state::store& s,
                              const std::string& connector,
                              const missing_time_settings& m,
                              date::local_days day) {
    using result_t = state::result<json>;
    const auto wanted = civil(day);
    std::map<std::string, std::int64_t, std::less<>> minutes;  // staff id -> minutes that day
    auto st = state::for_each_entity(s, "time_entry", [&](std::string_view, std::string_view v) {
        const auto j = json::parse(v, nullptr, false);
        if (!j.is_object() || text_of(j, "date") != wanted || j.value("deleted", false)) {
            return true;
        }
        const auto src = j.find("source");
        if (src == j.end() || !src->is_object() || text_of(*src, "system") != connector) {
            return true;
        }
        minutes[text_of(j, "staff_id")] += int_of(j, "minutes");
        return true;
    });
    if (!st.ok) {
        return result_t::failure(st);
    }
    json shorts = json::array();
    std::int64_t checked = 0;
    st = state::for_each_entity(s, "staff", [&](std::string_view id, std::string_view v) {
        std::string error;
        auto person = mappings::staff_from_json(json::parse(v, nullptr, false), error);
        if (!person || !person->active || person->source.system != connector) {
            return true;
        }
        const auto email = lower(person->email);
        if (!m.staff.empty() && std::find(m.staff.begin(), m.staff.end(), email) == m.staff.end()) {
            return true;
        }
        ++checked;
        const auto it = minutes.find(id);
        const auto recorded = it == minutes.end() ? 0 : it->second;
        if (recorded < m.expected_minutes) {
            shorts.push_back({{"staff", std::string(id)},
                              {"name", person->name},
                              {"email", email},
                              {"minutes", recorded},
                              {"missing_minutes", m.expected_minutes - recorded}});
        }
        return true;
    });
    if (!st.ok) {
        return result_t::failure(st);
    }
    return {state::status::success(),
            json{{"date", wanted},
                 {"expected_minutes", m.expected_minutes},
                 {"staff_checked", checked},
                 {"short", std::move(shorts)}}};
}

std::string hours_text(std::int64_t minutes) {
    if (minutes < 60) {
        return fmt::format("{}m", minutes);
    }
    return minutes % 60 == 0 ? fmt::format("{}h", minutes / 60)
                             : fmt::format("{}h {}m", minutes / 60, minutes % 60);
}

}  // namespace billsync::workflows::draft_time
