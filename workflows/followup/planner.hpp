#pragma once

// The overdue follow-up sequence: a pure, deterministic planner. Given a sequence's state, an
// invoice snapshot, the settings and the current instant, it returns the new state, the decisions
// (each with a human-readable cause for the audit log) and the side effects as data: outbox
// actions with idempotency keys and timer changes. It does no I/O and reads no clock, so the
// caller commits state, actions, timers and audit lines in one batch, and a replay of the same
// step plans exactly the same keys.
//
// Lifecycle of one invoice's sequence (phase):
//   waiting   open and not yet overdue: courtesy reminders, when the class has any, each at
//             timer followup/<id>/remind<N> (00:00 local on the due date minus its days, moved into
//             the sending window; one that cannot go out before the due date passes is skipped);
//             then timer followup/<id>/enter at 00:00 local on the day after the due date (firm
//             time zone). Clients on auto-pay get no reminders.
//   active    entered: timer followup/<id>/touch<N> at the next touch, moved into the sending
//             window; an invoice first seen (or processed) late enters at the touch its age implies
//             and sends only that one, never the earlier ones
//   paused    a dispute reply; no timer until resume(); a partial payment is still acknowledged
//   completed every touch done; a partial payment restarts it
//   cancelled paid in full, credited to zero or voided (terminal)
//   stopped   by an operator (terminal)
//   excluded  the client is on a payment plan; leaves when the flag is removed
//
// Before each touch the caller re-reads the balance from the source of truth and passes that
// snapshot to on_timer(); if it differs from the one the schedule was planned for, no touch is
// sent and the sequence is re-planned (balance_changed() exposes the check).

#include <date/date.h>
#include <date/tz.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/clock.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::workflows::followup {

enum class invoice_status : std::uint8_t { open, paid, voided };

// What the planner needs to know about an invoice (adapted from the canonical model by the
// caller). Money is in minor units of `currency`.
struct followup_invoice {
    std::string id;
    std::string number;
    std::string client_id;
    std::string client_name;
    std::string currency;
    std::int64_t total = 0;
    std::int64_t balance = 0;
    date::year_month_day due_date{};  // civil date in the firm's time zone
    invoice_status status = invoice_status::open;
    followup::client_class client_class = followup::client_class::standard;
    bool payment_plan = false;  // flagged by a customer field or tag
    bool autopay = false;       // tagged [followup] autopay_tag, or in autopay_clients
    std::string email;
    std::string mobile_e164;
    bool sms_consent = false;  // false also when the number is on the SMS suppression list
    std::string payment_link;
};

enum class phase : std::uint8_t {
    waiting,
    active,
    paused,
    completed,
    cancelled,
    stopped,
    excluded
};
std::string_view to_string(phase p) noexcept;

// Durable per-invoice state; encode()/decode() give a stable JSON form.
struct sequence_state {
    std::string invoice_id;
    bool seen = false;  // false until the first observation
    phase current = phase::waiting;
    bool entered = false;  // entered in the current cycle (a paused sequence may be either)
    followup::client_class client_class = followup::client_class::standard;
    std::uint32_t cycle = 0;       // +1 on every entry and restart; part of idempotency keys
    std::uint32_t next_touch = 0;  // 1-based index of the next touch; 0 when none is planned
    std::uint32_t last_touch = 0;  // last touch done in this cycle; 0 when none
    std::optional<util::instant> next_touch_at;
    std::optional<util::instant> last_touch_at;
    std::optional<util::instant> paused_at;
    date::year_month_day due_date{};  // the due date the schedule was planned for
    date::year_month_day anchor{};    // touch days count from here (due date or restart day)
    std::int64_t balance = 0;         // the balance the schedule was planned for
    std::uint32_t disputes = 0;       // dispute tasks opened
    // Courtesy reminders of the current due date done (sent or skipped), and the one planned
    // (1-based; 0 when none). Reset when the due date moves before entry.
    std::uint32_t reminders_done = 0;
    std::uint32_t next_reminder = 0;
    std::string timer;  // the one scheduled timer of this sequence; empty if none
    std::optional<util::instant> timer_due;

    bool operator==(const sequence_state&) const = default;
};

std::string encode(const sequence_state& s);
bool decode(std::string_view text, sequence_state& out);

enum class decision_kind : std::uint8_t {
    wait,        // not overdue yet; entry timer set
    enter,       // entered the sequence
    touch,       // a touch went out (channels in the cause)
    skip,        // a touch, or a channel of one, was not sent, and why
    defer,       // a due touch waits for the sending window
    cancel,      // paid in full, credited or voided
    restart,     // partial payment: acknowledged, back to touch 1 for the new balance
    reschedule,  // the due date moved
    replan,      // the balance changed before a touch
    pause,       // dispute reply
    resume,      // operator resumed
    stop,        // operator stopped
    complete,    // no touches left
    exclude,     // payment-plan client
    note,        // nothing changed, recorded for the audit trail
    remind,      // a courtesy reminder (or an installment reminder) went out
    missed,      // a payment-plan installment passed unpaid
};
std::string_view to_string(decision_kind k) noexcept;

struct decision {
    decision_kind kind = decision_kind::note;
    std::uint32_t touch = 0;  // the touch concerned, if any
    std::string cause;

    bool operator==(const decision&) const = default;
};

enum class action_kind : std::uint8_t { email, sms, task, ack };
std::string_view to_string(action_kind k) noexcept;

// An outbox action to enqueue. The key is workflows::action_key(rule, invoice id, version) with
// rule "followup.t<N>.<email|sms|task>" and version = cycle for touches, "followup.ack.<email|sms>"
// and the new cycle for acknowledgements, "followup.dispute" and the dispute count for tasks,
// "followup.r<N>.<email|sms>" and the due date (days since 1970-01-01) for courtesy reminders.
struct planned_action {
    action_kind kind = action_kind::email;
    std::string key;
    std::string template_id;  // "standard.touch2", "partial_payment", "dispute"
    std::uint32_t touch = 0;  // 0 for acknowledgements and dispute tasks
    bool sms = false;         // an ack sent by SMS (kind ack)
    std::string to;           // email address or E.164 number; empty for tasks
    std::string subject;      // email subject or task title; empty for SMS
    std::string body;
    // The courtesy reminder (1-based) this message is, or for payment-plan messages the
    // installment; 0 otherwise.
    std::uint32_t reminder = 0;

    bool operator==(const planned_action&) const = default;
};

struct timer_change {
    bool cancel = false;
    std::string name;     // "followup/<invoice>/touch<N>" or "followup/<invoice>/enter"
    util::instant due{};  // for schedule

    bool operator==(const timer_change&) const = default;
};

struct plan_result {
    sequence_state state;
    std::vector<decision> decisions;
    std::vector<planned_action> actions;
    std::vector<timer_change> timers;  // apply in order
};

std::string touch_timer_name(std::string_view invoice_id, std::uint32_t touch);
std::string enter_timer_name(std::string_view invoice_id);
std::string reminder_timer_name(std::string_view invoice_id, std::uint32_t reminder);
// The version of a courtesy reminder's idempotency key: the due date as days since 1970-01-01.
std::uint64_t reminder_version(date::year_month_day due_date);
// One JSON audit line: {"at","rule":"followup","invoice","decision","touch","cause"}.
std::string audit_line(std::string_view invoice_id, const decision& d, util::instant at);
// The client's reply as forwarded on a dispute task and to the coordinator: a header (sender,
// channel, time received, invoice) and the text exactly as received.
std::string forwarded_reply(const followup_invoice& inv,
                            std::string_view text,
                            std::string_view channel,
                            std::string_view from,
                            util::instant at);

// True when the fresh snapshot's balance or status differs from what the schedule was planned
// for: the touch must not go out, and the sequence is re-planned.
bool balance_changed(const sequence_state& s, const followup_invoice& fresh);

class planner {
public:
    // tz: the firm's time zone; s.time_zone when set, otherwise the caller passes the daemon's.
    planner(settings s, const date::time_zone& tz);
    // Looks up the zone (s.time_zone, else fallback_time_zone); nullopt with a message if unknown.
    static std::optional<planner> make(settings s,
                                       std::string_view fallback_time_zone,
                                       std::string* error = nullptr);

    // An invoice snapshot: first seen, changed, or a periodic re-evaluation. Sends a touch only
    // if one is due now and inside the sending window.
    plan_result observe(const sequence_state& s,
                        const followup_invoice& inv,
                        util::instant now) const;
    // A timer of this sequence fired (the caller fires it in the same batch, so a timer of the
    // state that is due by now counts as gone); `fresh` was just re-read from the source of
    // truth. If its balance changed, no touch goes out in this step and the sequence is
    // re-planned.
    plan_result on_timer(const sequence_state& s,
                         const followup_invoice& fresh,
                         util::instant now) const;
    // A reply matched to this invoice (email) or its client's number (SMS). A dispute keyword
    // pauses the sequence and opens a dispute task whose body is the dispute template followed by
    // the client's reply in full (sender, channel, time, invoice, text): the reply is data,
    // appended as received and never template-expanded. From a sender that is not verified (an
    // email whose SPF/DKIM did not pass, or that carries an old unkeyed reply token) it opens the
    // task for a person to check and says so in the audit, but never pauses.
    plan_result on_reply(const sequence_state& s,
                         const followup_invoice& inv,
                         std::string_view text,
                         std::string_view channel,  // "email" or "sms"
                         util::instant now,
                         std::string_view from = {},
                         bool verified = true) const;
    // Operator commands. resume() recomputes the schedule from now: touches whose time passed
    // while paused are skipped, not sent.
    plan_result resume(const sequence_state& s,
                       const followup_invoice& inv,
                       util::instant now,
                       std::string_view who) const;
    plan_result stop(const sequence_state& s,
                     const followup_invoice& inv,
                     util::instant now,
                     std::string_view who) const;

    const settings& config() const noexcept { return settings_; }
    const date::time_zone& zone() const noexcept { return *tz_; }

private:
    struct step;
    plan_result run(const sequence_state& s,
                    const followup_invoice& inv,
                    util::instant now,
                    bool allow_touch) const;

    settings settings_;
    const date::time_zone* tz_;
};

}  // namespace billsync::workflows::followup
