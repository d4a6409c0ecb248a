#pragma once

#include <date/date.h>
#include <date/tz.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "util/clock.hpp"
#include "workflows/followup/planner.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::workflows::followup::fixtures {

inline constexpr const char* new_york = "America/New_York";

// An instant from a civil time in a zone ("9:00 in New York on 2026-06-02").
inline util::instant local(
    int y, unsigned m, unsigned d, int h, int min = 0, const char* zone = new_york) {
    const auto* tz = date::locate_zone(zone);
    const auto day = date::local_days(date::year(y) / date::month(m) / date::day(d));
    return tz->to_sys(
        date::local_time<util::duration>(day) + std::chrono::hours(h) + std::chrono::minutes(min),
        date::choose::earliest);
}

inline util::instant utc(int y, unsigned m, unsigned d, int h, int min = 0) {
    return util::instant(date::sys_days(date::year(y) / date::month(m) / date::day(d))) +
           std::chrono::hours(h) + std::chrono::minutes(min);
}

inline date::year_month_day ymd(int y, unsigned m, unsigned d) {
    return date::year(y) / date::month(m) / date::day(d);
}

inline settings test_settings() {
    auto s = default_settings();
    s.firm_name = "Smith & Lee CPA";
    s.firm_phone = "+1 212 555 0100";
    s.time_zone = new_york;
    return s;
}

inline planner make_planner(settings s = test_settings()) {
    return planner(std::move(s), *date::locate_zone(new_york));
}

inline followup_invoice test_invoice() {
    followup_invoice inv;
    inv.id = "inv-42";
    inv.number = "1042";
    inv.client_id = "client-7";
    inv.client_name = "Acme LLC";
    inv.currency = "USD";
    inv.total = 125000;
    inv.balance = 125000;
    inv.due_date = ymd(2026, 6, 1);
    inv.email = "ap@acme.example";
    inv.mobile_e164 = "+12125550123";
    inv.sms_consent = true;
    return inv;
}

struct sent_action {
    util::instant at;
    planned_action action;
};

// Plays the caller's part: keeps the state, the durable timers and the outbox (deduplicated on
// the idempotency key, as state::outbox does), and fires timers in order.
struct harness {
    planner p;
    followup_invoice inv;
    sequence_state st;
    std::map<std::string, util::instant> timers;
    std::vector<sent_action> sent;
    std::vector<decision> log;
    std::set<std::string> keys;
    util::instant now{};

    explicit harness(planner pl, followup_invoice i = test_invoice())
        : p(std::move(pl)), inv(std::move(i)) {}

    void apply(const plan_result& r) {
        st = r.state;
        for (const auto& t : r.timers) {
            if (t.cancel) {
                timers.erase(t.name);
            } else {
                timers[t.name] = t.due;
            }
        }
        for (const auto& a : r.actions) {
            if (keys.insert(a.key).second) {
                sent.push_back({now, a});
            }
        }
        log.insert(log.end(), r.decisions.begin(), r.decisions.end());
    }

    void observe(util::instant t) {
        now = t;
        apply(p.observe(st, inv, now));
    }

    // Fires every timer due up to `until`, in order (the invoice as currently set is the fresh
    // snapshot re-read before each touch).
    void run_until(util::instant until) {
        for (int guard = 0; guard < 1000; ++guard) {
            auto next = timers.end();
            for (auto it = timers.begin(); it != timers.end(); ++it) {
                if (it->second <= until && (next == timers.end() || it->second < next->second)) {
                    next = it;
                }
            }
            if (next == timers.end()) {
                break;
            }
            now = next->second;
            timers.erase(next);
            apply(p.on_timer(st, inv, now));
        }
        now = until;
    }

    // Day by day: the invoice is synced every morning at 08:00 local, timers fire in between.
    void run_days(util::instant from, util::instant until) {
        for (auto day = from; day <= until; day += std::chrono::hours(24)) {
            run_until(day);
            observe(day);
        }
        run_until(until);
    }

    std::vector<std::string> sent_summary() const {
        std::vector<std::string> out;
        for (const auto& s : sent) {
            out.push_back(util::format_rfc3339(s.at) + " " + std::string(to_string(s.action.kind)) +
                          " t" + std::to_string(s.action.touch));
        }
        return out;
    }

    bool logged(decision_kind k) const {
        for (const auto& d : log) {
            if (d.kind == k) {
                return true;
            }
        }
        return false;
    }
};

}  // namespace billsync::workflows::followup::fixtures
