#pragma once

// When a client-facing action may be performed. A rule that decides to reach a client (an email,
// an SMS) attaches its sending window and a deadline to the outbox action; the pipeline consults
// gate() before every attempt, so a retry after a backoff, a wait for capacity or a recovery
// after a crash is deferred to the next opening of the window instead of reaching the client at
// 02:00, and is dropped once its deadline has passed. The window travels with the action as text
// (state::action::window), so the outbox and the pipeline stay ignorant of rules and channels.

#include <date/date.h>

#include <array>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "state/outbox.hpp"
#include "util/clock.hpp"

namespace billsync::workflows {

// A weekly window in a time zone, minus holidays.
struct send_window {
    std::string time_zone;               // IANA name
    std::chrono::minutes start{9 * 60};  // local time of day, inclusive
    std::chrono::minutes end{17 * 60};   // exclusive
    std::array<bool, 7> days{};          // by date::weekday::c_encoding(): 0 = Sunday
    std::set<date::sys_days> holidays;   // civil dates in that zone
};

// A stable JSON form for state::action::window; decode is nullopt for text it cannot read (or an
// unknown time zone).
std::string encode_window(const send_window& w);
std::optional<send_window> decode_window(std::string_view text);

struct send_gate {
    enum class kind : std::uint8_t {
        now,    // perform it
        later,  // outside the window: defer to `at`
        stale,  // past its deadline (or an unreadable window): drop it, never perform it
    };
    kind k = kind::now;
    util::instant at{};
    std::string cause;  // for the audit log, when not now
};

// The verdict for `a` at `now` from what it carries: no window and no deadline: now.
send_gate gate(const state::action& a, util::instant now);

}  // namespace billsync::workflows
