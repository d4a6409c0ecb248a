#include "workflows/followup/views.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "state/keys.hpp"
#include "state/tables.hpp"
#include "util/json_scan.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::workflows::followup {

namespace {

using json = nlohmann::json;
namespace fu = workflows::followup;

std::string channels_of(const fu::settings& s, fu::client_class c, std::uint32_t touch) {
    auto it = s.cadences.find(c);
    if (touch == 0 || it == s.cadences.end() || touch > it->second.size()) {
        return {};
    }
    const auto& t = it->second[touch - 1];
    std::string out;
    for (const auto& [on, name] :
         {std::pair{t.email, "email"}, std::pair{t.sms, "sms"}, std::pair{t.task, "task"}}) {
        if (on) {
            out += out.empty() ? "" : "+";
            out += name;
        }
    }
    return out;
}

std::string reminder_channels_of(const fu::settings& s, fu::client_class c, std::uint32_t n) {
    auto it = s.reminders.find(c);
    if (n == 0 || it == s.reminders.end() || n > it->second.size()) {
        return {};
    }
    const auto& r = it->second[n - 1];
    return r.email && r.sms ? "email+sms" : (r.sms ? "sms" : "email");
}

json when(const std::optional<util::instant>& t) {
    return t ? json(util::format_rfc3339(*t)) : json(nullptr);
}

bool finished(fu::phase p) {
    return p == fu::phase::completed || p == fu::phase::cancelled || p == fu::phase::stopped;
}

bool finished_phase(std::string_view name) {
    return name == fu::to_string(fu::phase::completed) ||
           name == fu::to_string(fu::phase::cancelled) || name == fu::to_string(fu::phase::stopped);
}

// A stored sequence's phase and last touch, read without decoding the row: the counts and the
// pages skip finished sequences (most of a firm's history) by these two members alone. A row
// the scan cannot read, or with a phase decode() does not know, comes back with an empty phase;
// decode() has the last word on it.
struct stage_key {
    std::string_view phase;
    std::uint32_t last_touch = 0;
};

stage_key stage_of(std::string_view row) {
    stage_key k;
    util::json_scan::members(row, [&k](std::string_view key, std::string_view v) {
        if (key == "phase" && v.size() >= 2 && v.front() == '"' && v.back() == '"' &&
            v.find('\\') == std::string_view::npos) {
            const auto name = v.substr(1, v.size() - 2);
            for (const auto p : {fu::phase::waiting,
                                 fu::phase::active,
                                 fu::phase::paused,
                                 fu::phase::completed,
                                 fu::phase::cancelled,
                                 fu::phase::stopped,
                                 fu::phase::excluded}) {
                if (fu::to_string(p) == name) {
                    k.phase = name;  // a phase decode() knows
                }
            }
        } else if (key == "last_touch") {
            std::uint32_t n = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec == std::errc() && end == v.data() + v.size()) {
                k.last_touch = n;
            }
        }
    });
    return k;
}

json sequence_json(const state::store& s,
                   const fu::settings& settings,
                   const fu::sequence_state& st) {
    json j{{"invoice", st.invoice_id},
           {"phase", std::string(fu::to_string(st.current))},
           {"paused", st.current == fu::phase::paused},
           {"class", std::string(fu::to_string(st.client_class))},
           {"cycle", st.cycle},
           {"last_touch", st.last_touch},
           {"last_touch_at", when(st.last_touch_at)},
           {"next_touch", st.next_touch},
           {"next_touch_at", when(st.next_touch_at)},
           {"next_channels", channels_of(settings, st.client_class, st.next_touch)},
           {"paused_at", when(st.paused_at)},
           {"disputes", st.disputes},
           {"reminders_done", st.reminders_done},
           {"next_reminder", st.next_reminder},
           {"next_reminder_at", st.next_reminder != 0 ? when(st.timer_due) : json(nullptr)},
           {"next_reminder_channels",
            reminder_channels_of(settings, st.client_class, st.next_reminder)}};
    auto inv = state::get_entity(s, "invoice", st.invoice_id);
    if (inv.ok() && inv.value) {
        const auto i = json::parse(*inv.value, nullptr, false);
        if (i.is_object()) {
            j["number"] = i.value("number", "");
            // Which ledger connector (and account) the invoice lives in: numbers repeat across
            // ledgers, the canonical id does not.
            if (const auto src = i.find("source"); src != i.end() && src->is_object()) {
                j["ledger"] = src->value("system", "");
                j["ledger_account"] = src->value("account", "");
            }
            j["balance"] = i.value("balance", json());
            j["due_date"] = i.value("due_date", json());
            const auto client = i.value("client_id", "");
            j["client"] = client;
            auto c = state::get_entity(s, "client", client);
            if (c.ok() && c.value) {
                const auto cj = json::parse(*c.value, nullptr, false);
                if (cj.is_object()) {
                    j["client_name"] = cj.value("display_name", "");
                }
            }
        }
    }
    return j;
}

}  // namespace

std::string money_text(const json& m) {
    if (!m.is_object()) {
        return "-";
    }
    const auto minor = m.value("minor", std::int64_t{0});
    const auto sign = minor < 0 ? "-" : "";
    const auto v = minor < 0 ? -minor : minor;
    return fmt::format("{}{}.{:02} {}", sign, v / 100, v % 100, m.value("currency", ""));
}

std::optional<std::string> find_invoice(const state::store& s, std::string_view invoice) {
    auto direct = state::get_entity(s, "invoice", invoice);
    if (direct.ok() && direct.value) {
        return std::string(invoice);
    }
    std::optional<std::string> found;
    state::for_each_entity(s, "invoice", [&](std::string_view id, std::string_view v) {
        const auto j = json::parse(v, nullptr, false);
        if (j.is_object() && j.value("number", "") == invoice) {
            found = std::string(id);
            return false;
        }
        return true;
    });
    return found;
}

json followups_json(const state::store& s, const fu::settings& settings, bool include_finished) {
    json list = json::array();
    state::for_each_entity(s, "followup", [&](std::string_view, std::string_view v) {
        fu::sequence_state st;
        if (fu::decode(v, st) && (include_finished || !finished(st.current))) {
            list.push_back(sequence_json(s, settings, st));
        }
        return true;
    });
    return list;
}

json followups_page(const state::store& s,
                    const fu::settings& settings,
                    std::size_t limit,
                    std::string_view after) {
    json list = json::array();
    json next = nullptr;
    const auto prefix = state::keys::join("followup", "");
    // The first key after every key of `after`: its id followed by the smallest byte.
    std::string from = prefix;
    if (!after.empty()) {
        from.append(after);
        from.push_back('\0');
    }
    std::string last;
    s.for_each_range(state::cf::entities,
                     from,
                     state::keys::prefix_end(prefix),
                     [&](std::string_view key, std::string_view v) {
                         if (finished_phase(stage_of(v).phase)) {
                             return true;
                         }
                         fu::sequence_state st;
                         if (!fu::decode(v, st) || finished(st.current)) {
                             return true;
                         }
                         if (list.size() >= limit) {
                             next = last;  // one more follows the full page
                             return false;
                         }
                         last.assign(key.substr(prefix.size()));
                         list.push_back(sequence_json(s, settings, st));
                         return true;
                     });
    return {{"followups", std::move(list)}, {"limit", limit}, {"next", std::move(next)}};
}

json followup_stages(const state::store& s) {
    std::map<std::pair<std::string, std::uint32_t>, std::int64_t> counts;
    std::int64_t open = 0;
    state::for_each_entity(s, "followup", [&](std::string_view, std::string_view v) {
        const auto k = stage_of(v);
        if (!k.phase.empty()) {
            if (!finished_phase(k.phase)) {
                ++open;
                ++counts[{std::string(k.phase), k.last_touch}];
            }
            return true;
        }
        fu::sequence_state st;  // not scannable: the full decode decides
        if (fu::decode(v, st) && !finished(st.current)) {
            ++open;
            ++counts[{std::string(fu::to_string(st.current)), st.last_touch}];
        }
        return true;
    });
    json stages = json::array();
    for (const auto& [key, n] : counts) {
        stages.push_back({{"phase", key.first}, {"last_touch", key.second}, {"count", n}});
    }
    return {{"open", open}, {"stages", std::move(stages)}};
}

std::optional<json> followup_json(const state::store& s,
                                  const fu::settings& settings,
                                  std::string_view invoice) {
    const auto id = find_invoice(s, invoice);
    if (!id) {
        return std::nullopt;
    }
    auto row = state::get_entity(s, "followup", *id);
    fu::sequence_state st;
    if (!row.ok() || !row.value || !fu::decode(*row.value, st)) {
        return std::nullopt;
    }
    auto j = sequence_json(s, settings, st);
    json trail = json::array();
    s.for_each(state::cf::audit, "", [&](std::string_view key, std::string_view v) {
        auto line = json::parse(v, nullptr, false);
        if (line.is_object() && (line.value("invoice", "") == *id)) {
            // Audit keys start with the entry's time: lines that do not carry it get it.
            if (!line.contains("at") && key.size() >= 8) {
                line["at"] =
                    util::format_rfc3339(state::keys::to_instant(state::keys::read_be64(key)));
            }
            trail.push_back(std::move(line));
        }
        return true;
    });
    j["audit"] = std::move(trail);
    return j;
}

json tasks_json(const state::store& s) {
    json list = json::array();
    state::for_each_entity(s, "task", [&](std::string_view, std::string_view v) {
        auto j = json::parse(v, nullptr, false);
        if (j.is_object()) {
            list.push_back(std::move(j));
        }
        return true;
    });
    std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
        const auto ka = std::make_pair(a.value("created_at", ""), a.value("key", ""));
        const auto kb = std::make_pair(b.value("created_at", ""), b.value("key", ""));
        return ka > kb;
    });
    return list;
}

}  // namespace billsync::workflows::followup
