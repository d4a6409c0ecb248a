#include "workflows/followup/planner.hpp"

#include <algorithm>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "mappings/model.hpp"
#include "workflows/action_key.hpp"
#include "workflows/followup/keywords.hpp"
#include "workflows/followup/window.hpp"

namespace billsync::workflows::followup {

namespace {

// "a; b; c"
std::string join_items(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        out += out.empty() ? "" : "; ";
        out += item;
    }
    return out;
}

constexpr std::string_view rule_name = "followup";

std::string money_text(std::int64_t minor, const std::string& currency) {
    return format_money({minor, currency});
}

std::string date_text(date::year_month_day d) { return date::format("%F", date::sys_days(d)); }

std::string instant_text(util::instant t) { return util::format_rfc3339(t); }

std::string day_string(std::int64_t n) { return std::to_string(n) + (n == 1 ? " day" : " days"); }

bool on_payment_plan(const settings& s, const followup_invoice& inv) {
    return inv.payment_plan || s.payment_plan_clients.contains(inv.client_id);
}

}  // namespace

// One planning step: the result under construction plus the helpers every path shares.
struct planner::step {
    const planner& p;
    const followup_invoice& inv;
    util::instant now;
    plan_result r;

    sequence_state& s() { return r.state; }
    const settings& cfg() const { return p.settings_; }
    const date::time_zone& tz() const { return *p.tz_; }

    void decide(decision_kind k, std::string cause, std::uint32_t touch = 0) {
        r.decisions.push_back({k, touch, std::move(cause)});
    }

    void set_timer(const std::string& name, util::instant due) {
        if (s().timer == name && s().timer_due == due) {
            return;
        }
        if (!s().timer.empty() && s().timer != name) {
            r.timers.push_back({true, s().timer, {}});
        }
        r.timers.push_back({false, name, due});
        s().timer = name;
        s().timer_due = due;
    }

    void clear_timer() {
        if (!s().timer.empty()) {
            r.timers.push_back({true, s().timer, {}});
        }
        s().timer.clear();
        s().timer_due.reset();
        s().next_touch_at.reset();
        s().next_reminder = 0;
    }

    const std::vector<touch_spec>& cadence() const {
        static const std::vector<touch_spec> none;
        const auto it = p.settings_.cadences.find(r.state.client_class);
        return it == p.settings_.cadences.end() ? none : it->second;
    }

    date::sys_days today() const { return local_date(tz(), now); }

    std::int64_t days_overdue() const { return (today() - date::sys_days(inv.due_date)).count(); }

    // When touch n (1-based) becomes due: 00:00 local on anchor + day.
    util::instant touch_time(std::uint32_t n) const {
        const auto& c = cadence();
        const auto day = date::sys_days(r.state.anchor) + date::days(c[n - 1].day);
        return start_of_day(tz(), day);
    }

    std::string money(std::int64_t minor) const { return money_text(minor, inv.currency); }

    // Plans touch n as the next one: its time moved into the window, never before now.
    void plan_touch(std::uint32_t n) {
        const auto at = next_opening(cfg().window, tz(), std::max(touch_time(n), now));
        s().next_touch = n;
        s().next_touch_at = at;
        set_timer(touch_timer_name(inv.id, n), at);
    }

    void complete(std::string cause) {
        s().current = phase::completed;
        s().next_touch = 0;
        clear_timer();
        decide(decision_kind::complete, std::move(cause));
    }

    // Plans the first touch after `after` (exclusive of touches done), or completes.
    void plan_next_from(std::uint32_t first) {
        if (first == 0 || first > cadence().size()) {
            complete("no touches left in the " + std::string(to_string(s().client_class)) +
                     " cadence");
            return;
        }
        plan_touch(first);
    }

    template_values values() const {
        template_values v;
        v.client_name = inv.client_name;
        v.invoice_number = inv.number;
        v.amount = {inv.total, inv.currency};
        v.balance = {inv.balance, inv.currency};
        v.due_date = inv.due_date;
        v.days_overdue = std::max<std::int64_t>(0, days_overdue());
        v.payment_link = inv.payment_link;
        v.firm_name = cfg().firm_name;
        v.firm_phone = cfg().firm_phone;
        v.days_until_due = std::max<std::int64_t>(0, -days_overdue());
        v.autopay_link = cfg().autopay_link;
        return v;
    }

    // Renders a template part; on failure explains which placeholder had no value.
    std::optional<std::string> render(const message_template& t,
                                      std::string_view id,
                                      std::string_view part,
                                      std::string& problem) const {
        if (t.empty()) {
            problem = "template " + std::string(id) + " has no " + std::string(part);
            return std::nullopt;
        }
        std::optional<placeholder> missing;
        auto text = t.render(values(), &missing);
        if (!text) {
            problem = "template " + std::string(id) + " " + std::string(part) + " needs {" +
                      std::string(missing ? to_string(*missing) : "?") +
                      "}, which is empty for this invoice";
        }
        return text;
    }

    // The email and SMS of one message (a touch or a courtesy reminder), on the channels its
    // spec names: the actions go to r.actions; `sent` and `skipped` (with why) say which.
    void send_channels(bool email,
                       bool sms,
                       const std::string& email_label,
                       const touch_templates& t,
                       const std::string& id,
                       const std::function<std::string(std::string_view)>& key_for,
                       std::uint32_t touch,
                       std::uint32_t reminder,
                       std::vector<std::string>& sent,
                       std::vector<std::string>& skipped) {
        if (email) {
            std::string problem;
            if (inv.email.empty()) {
                skipped.emplace_back("email: no email address on file");
            } else {
                auto subject = render(t.email_subject, id, "email_subject", problem);
                // The default text has a variant that links to the invoice's online payment page.
                const auto& body_template =
                    !inv.payment_link.empty() && !t.email_body_with_link.empty()
                        ? t.email_body_with_link
                        : t.email_body;
                auto body = subject ? render(body_template, id, "email_body", problem)
                                    : std::optional<std::string>();
                if (subject && body) {
                    r.actions.push_back({action_kind::email,
                                         key_for("email"),
                                         id,
                                         touch,
                                         false,
                                         inv.email,
                                         std::move(*subject),
                                         std::move(*body),
                                         reminder});
                    sent.push_back(email_label);
                } else {
                    skipped.push_back("email: " + problem);
                }
            }
        }
        if (sms) {
            std::string problem;
            if (inv.mobile_e164.empty()) {
                skipped.emplace_back("sms: no mobile number on file");
            } else if (!inv.sms_consent) {
                skipped.emplace_back("sms: no SMS consent (or opted out)");
            } else if (auto body = render(t.sms_body, id, "sms_body", problem)) {
                r.actions.push_back({action_kind::sms,
                                     key_for("sms"),
                                     id,
                                     touch,
                                     false,
                                     inv.mobile_e164,
                                     {},
                                     std::move(*body),
                                     reminder});
                sent.emplace_back("sms");
            } else {
                skipped.push_back("sms: " + problem);
            }
        }
    }

    // Sends touch n: one action per usable channel. Returns the channels used.
    void send_touch(std::uint32_t n) {
        const auto& spec = cadence()[n - 1];
        const auto id = template_id(s().client_class, n);
        const auto found = cfg().touches.find(id);
        static const touch_templates no_templates;
        const auto& t = found == cfg().touches.end() ? no_templates : found->second;
        const auto key_for = [&](std::string_view channel) {
            return action_key(
                "followup.t" + std::to_string(n) + "." + std::string(channel), inv.id, s().cycle);
        };
        std::vector<std::string> sent;
        std::vector<std::string> skipped;
        send_channels(spec.email,
                      spec.sms,
                      spec.hold ? "email (account hold)" : "email",
                      t,
                      id,
                      key_for,
                      n,
                      0,
                      sent,
                      skipped);
        if (spec.task) {
            std::string problem;
            auto title = render(t.task_title, id, "task_title", problem);
            auto body = title ? render(t.task_body, id, "task_body", problem)
                              : std::optional<std::string>();
            if (title && body) {
                r.actions.push_back({action_kind::task,
                                     key_for("task"),
                                     id,
                                     n,
                                     false,
                                     {},
                                     std::move(*title),
                                     std::move(*body),
                                     0});
                sent.emplace_back("coordinator task");
            } else {
                skipped.push_back("task: " + problem);
            }
        }
        const auto head = "touch " + std::to_string(n) + " (" + id + ") for " + money(inv.balance) +
                          ", " + day_string(days_overdue()) + " overdue";
        if (sent.empty()) {
            decide(decision_kind::skip,
                   head + ": no channel could be used: " + join_items(skipped),
                   n);
        } else {
            std::string cause = head + " via " + join_items(sent);
            if (!skipped.empty()) {
                cause += "; not sent: " + join_items(skipped);
            }
            decide(decision_kind::touch, std::move(cause), n);
        }
        s().last_touch = n;
        s().last_touch_at = now;
    }

    // The touch step: the latest touch whose time has come goes out (earlier ones that were
    // missed are skipped, never sent in a burst), inside the sending window.
    void touch_if_due(bool allow_touch) {
        if (s().current != phase::active || s().next_touch == 0 || !s().next_touch_at ||
            *s().next_touch_at > now) {
            return;
        }
        auto n = s().next_touch;
        const auto count = static_cast<std::uint32_t>(cadence().size());
        while (n < count && touch_time(n + 1) <= now) {
            ++n;
        }
        if (!allow_touch) {
            // A touch is due but the balance just changed: re-plan it for the next opening, where
            // the fresh snapshot is checked again.
            s().next_touch = n;
            s().next_touch_at = next_opening(cfg().window, tz(), now);
            set_timer(touch_timer_name(inv.id, n), *s().next_touch_at);
            return;
        }
        if (!in_window(cfg().window, tz(), now)) {
            const auto at = next_opening(cfg().window, tz(), now);
            s().next_touch = n;
            s().next_touch_at = at;
            set_timer(touch_timer_name(inv.id, n), at);
            decide(decision_kind::defer,
                   "touch " + std::to_string(n) + " is due but outside the sending window; " +
                       "waits until " + instant_text(at),
                   n);
            return;
        }
        if (n > s().next_touch) {
            skip_before(n, s().next_touch);
        }
        send_touch(n);
        plan_next_from(n + 1);
    }

    // ---- courtesy reminders (before the sequence enters) ----

    const std::vector<reminder_spec>& reminder_list() const {
        static const std::vector<reminder_spec> none;
        const auto it = cfg().reminders.find(inv.client_class);
        return it == cfg().reminders.end() ? none : it->second;
    }

    // When reminder n (1-based) becomes due: 00:00 local on the due date minus its days.
    util::instant reminder_time(std::uint32_t n) const {
        const auto before = reminder_list()[n - 1].days_before;
        return start_of_day(tz(), date::sys_days(inv.due_date) - date::days(before));
    }

    // Reminder n's time moved into the sending window.
    util::instant reminder_opening(std::uint32_t n) const {
        return next_opening(cfg().window, tz(), reminder_time(n));
    }

    std::string reminder_label(std::uint32_t n) const {
        const auto before = reminder_list()[n - 1].days_before;
        return "courtesy reminder " + std::to_string(n) + " (" +
               (before == 0 ? std::string("on the due date")
                            : day_string(before) + " before the due date") +
               ")";
    }

    // Sends reminder n: an email and/or an SMS, as its spec says.
    void send_reminder(std::uint32_t n) {
        const auto& spec = reminder_list()[n - 1];
        const auto id = reminder_template_id(inv.client_class);
        const auto found = cfg().touches.find(id);
        static const touch_templates no_templates;
        const auto& t = found == cfg().touches.end() ? no_templates : found->second;
        const auto version = reminder_version(inv.due_date);
        const auto key_for = [&](std::string_view channel) {
            return action_key(
                "followup.r" + std::to_string(n) + "." + std::string(channel), inv.id, version);
        };
        std::vector<std::string> sent;
        std::vector<std::string> skipped;
        send_channels(spec.email, spec.sms, "email", t, id, key_for, 0, n, sent, skipped);
        const auto head = reminder_label(n) + " of invoice " + inv.number + " for " +
                          money(inv.balance) + ", due " + date_text(inv.due_date);
        if (sent.empty()) {
            decide(decision_kind::skip,
                   head + ": no channel could be used: " + join_items(skipped));
        } else {
            std::string cause = head + " via " + join_items(sent);
            if (!skipped.empty()) {
                cause += "; not sent: " + join_items(skipped);
            }
            decide(decision_kind::remind, std::move(cause));
        }
    }

    // Before the due date passes: the courtesy reminders still ahead, then the entry timer.
    void before_due() {
        const auto count = static_cast<std::uint32_t>(reminder_list().size());
        auto& st = s();
        const auto entry = start_of_day(tz(), date::sys_days(inv.due_date) + date::days(1));
        if (st.reminders_done < count && inv.autopay) {
            decide(decision_kind::skip,
                   "courtesy reminders not sent: client " + inv.client_name + " (" + inv.client_id +
                       ") is on auto-pay");
            st.reminders_done = count;
        }
        // Due now: the latest reminder whose opening has come goes out, on its day only; earlier
        // ones are skipped, never sent in a burst, and one whose day passed (the invoice was
        // first seen, or processed, late) is skipped rather than sent late.
        if (st.reminders_done < count && reminder_opening(st.reminders_done + 1) <= now) {
            auto n = st.reminders_done + 1;
            while (n < count && reminder_opening(n + 1) <= now) {
                ++n;
            }
            if (n > st.reminders_done + 1) {
                std::string list;
                for (auto k = st.reminders_done + 1; k < n; ++k) {
                    list += (list.empty() ? "" : ", ") + std::to_string(k);
                }
                decide(decision_kind::skip,
                       "courtesy reminder" + std::string(n - st.reminders_done > 2 ? "s " : " ") +
                           list + " not sent: a later reminder is due (no burst)");
            }
            const auto day = local_date(tz(), reminder_opening(n));
            if (today() == day && in_window(cfg().window, tz(), now)) {
                send_reminder(n);
            } else {
                decide(decision_kind::skip,
                       reminder_label(n) + " not sent: its day " + date::format("%F", day) +
                           " passed before it could go out (first seen or processed late)");
            }
            st.reminders_done = n;
        }
        // The next reminder still ahead, moved into the window (weekends, holidays, hours).
        while (st.reminders_done < count) {
            const auto n = st.reminders_done + 1;
            const auto at = reminder_opening(n);
            if (at < entry) {
                st.next_reminder = n;
                const auto name = reminder_timer_name(inv.id, n);
                if (st.timer != name || st.timer_due != at) {
                    set_timer(name, at);
                    decide(decision_kind::wait,
                           reminder_label(n) + " of invoice " + inv.number + " (due " +
                               date_text(inv.due_date) + ") planned for " + instant_text(at));
                }
                return;
            }
            decide(decision_kind::skip,
                   reminder_label(n) +
                       " not planned: the sending window does not open between its day and the "
                       "due date (weekend, holidays or hours)");
            st.reminders_done = n;
        }
        st.next_reminder = 0;
        wait_for_entry();
    }

    void enter() {
        s().entered = true;
        s().next_reminder = 0;
        s().current = phase::active;
        s().client_class = inv.client_class;
        s().cycle += 1;
        s().anchor = inv.due_date;
        s().due_date = inv.due_date;
        s().balance = inv.balance;
        s().last_touch = 0;
        s().last_touch_at.reset();
        const auto age = days_overdue();
        decide(decision_kind::enter,
               "invoice " + inv.number + " was due " + date_text(inv.due_date) + ", " +
                   money(inv.balance) + " outstanding, " + day_string(age) + " overdue; " +
                   std::string(to_string(s().client_class)) + " cadence");
        if (cadence().empty()) {
            complete("the " + std::string(to_string(s().client_class)) + " cadence has no touches");
            return;
        }
        // Entered late (first seen overdue, or processed late): start at the touch its age
        // implies; the earlier ones are skipped, never sent in a burst.
        std::uint32_t n = 1;
        const auto count = static_cast<std::uint32_t>(cadence().size());
        while (n < count && touch_time(n + 1) <= now) {
            ++n;
        }
        if (n > 1) {
            skip_before(n, 1);
        }
        plan_touch(n);
    }

    void skip_before(std::uint32_t n, std::uint32_t first) {
        std::string skipped;
        for (auto k = first; k < n; ++k) {
            skipped += (skipped.empty() ? "" : ", ") + std::to_string(k);
        }
        decide(decision_kind::skip,
               "touch" + std::string(n - first > 1 ? "es " : " ") + skipped +
                   " not sent: the invoice is " + day_string(days_overdue()) +
                   " overdue, so only touch " + std::to_string(n) + " goes out (no burst)",
               first);
    }

    void wait_for_entry() {
        const auto entry = start_of_day(tz(), date::sys_days(inv.due_date) + date::days(1));
        const auto name = enter_timer_name(inv.id);
        if (s().timer == name && s().timer_due == entry) {
            return;
        }
        set_timer(name, entry);
        decide(decision_kind::wait,
               "invoice " + inv.number + " is due " + date_text(inv.due_date) +
                   "; the follow-up starts " + instant_text(entry));
    }

    // Partial payment: acknowledge, and restart from touch 1 for the new balance.
    void restart_for_partial_payment(std::int64_t before) {
        s().cycle += 1;
        s().balance = inv.balance;
        s().anchor = date::year_month_day(today());
        s().last_touch = 0;
        s().last_touch_at.reset();
        std::string ack;
        std::string problem;
        const auto& t = cfg().partial_payment;
        if (!inv.email.empty()) {
            auto subject = render(t.email_subject, "partial_payment", "email_subject", problem);
            auto body = subject ? render(t.email_body, "partial_payment", "email_body", problem)
                                : std::optional<std::string>();
            if (subject && body) {
                r.actions.push_back({action_kind::ack,
                                     action_key("followup.ack.email", inv.id, s().cycle),
                                     "partial_payment",
                                     0,
                                     false,
                                     inv.email,
                                     std::move(*subject),
                                     std::move(*body),
                                     0});
                ack = "acknowledged by email";
            }
        } else if (!inv.mobile_e164.empty() && inv.sms_consent) {
            if (auto body = render(t.sms_body, "partial_payment", "sms_body", problem)) {
                r.actions.push_back({action_kind::ack,
                                     action_key("followup.ack.sms", inv.id, s().cycle),
                                     "partial_payment",
                                     0,
                                     true,
                                     inv.mobile_e164,
                                     {},
                                     std::move(*body),
                                     0});
                ack = "acknowledged by SMS";
            }
        } else {
            problem = "no email address or SMS-consented mobile on file";
        }
        if (ack.empty()) {
            ack = "not acknowledged (" + problem + ")";
        }
        const bool paused = s().current == phase::paused;
        decide(decision_kind::restart,
               "partial payment: balance " + money(before) + " -> " + money(inv.balance) + ", " +
                   ack + "; " +
                   (paused ? "the sequence stays paused and restarts from touch 1 on resume"
                           : "restarting from touch 1"));
        if (paused) {
            s().next_touch = 1;
            s().next_touch_at.reset();
            return;
        }
        s().current = phase::active;
        s().entered = true;
        plan_touch(1);
    }

    // The due date moved (later, usually): re-plan from the new date.
    void reschedule_for_due_date(date::year_month_day before) {
        const bool anchored_on_due = s().anchor == s().due_date;
        s().due_date = inv.due_date;
        const auto entry = start_of_day(tz(), date::sys_days(inv.due_date) + date::days(1));
        const auto head =
            "due date moved from " + date_text(before) + " to " + date_text(inv.due_date);
        if (now < entry) {
            // Not overdue any more: back to waiting; entry starts a new cycle from touch 1.
            s().entered = false;
            s().next_touch = 0;
            s().next_touch_at.reset();
            s().last_touch = 0;
            s().reminders_done = 0;
            s().next_reminder = 0;
            if (s().current == phase::paused) {
                decide(decision_kind::reschedule, head + "; not overdue any more (paused)");
                return;
            }
            s().current = phase::waiting;
            decide(decision_kind::reschedule, head + "; not overdue any more");
            before_due();
            return;
        }
        if (anchored_on_due) {
            s().anchor = inv.due_date;
        }
        if (s().current == phase::active && s().next_touch != 0) {
            plan_touch(s().next_touch);
            decide(decision_kind::reschedule,
                   head + "; touch " + std::to_string(s().next_touch) + " now at " +
                       instant_text(*s().next_touch_at),
                   s().next_touch);
        } else {
            decide(decision_kind::reschedule, head);
        }
    }

    // Terminal checks shared by every entry point. True when the step is over.
    bool ended_by_invoice() {
        auto& st = s();
        if (st.current == phase::cancelled || st.current == phase::stopped) {
            return true;
        }
        // A sequence that never entered does not end: it only loses its entry timer (and is
        // silent unless it had one), so a reopened invoice can still enter later. One paused by
        // a dispute before it entered does end: the payment settles what was disputed, and it
        // must not stay listed as a paused follow-up waiting for someone to resume it.
        const bool entered = st.entered && st.current != phase::excluded;
        const bool had_timer = !st.timer.empty();
        const auto end_with = [&](std::string cause) {
            if (entered || st.current == phase::paused) {
                clear_timer();
                st.current = phase::cancelled;
                st.next_touch = 0;
                decide(decision_kind::cancel, std::move(cause) + "; remaining touches cancelled");
            } else if (st.current != phase::excluded) {
                clear_timer();
                if (had_timer) {
                    decide(decision_kind::cancel, std::move(cause) + "; no follow-up needed");
                }
            }
        };
        if (inv.status == invoice_status::voided) {
            end_with("invoice " + inv.number + " was voided");
            st.balance = inv.balance;
            return true;
        }
        if (inv.status == invoice_status::paid || inv.balance <= 0) {
            end_with("invoice " + inv.number + " " +
                     (inv.status == invoice_status::paid
                          ? std::string("paid in full")
                          : "balance is " + money(inv.balance) + " (paid or credited)"));
            st.balance = inv.balance;
            return true;
        }
        if (on_payment_plan(cfg(), inv)) {
            if (st.current != phase::excluded) {
                clear_timer();
                st.current = phase::excluded;
                st.next_touch = 0;
                decide(decision_kind::exclude,
                       "client " + inv.client_name + " (" + inv.client_id +
                           ") is on a payment plan; no follow-up");
            }
            return true;
        }
        if (st.current == phase::excluded) {
            // The flag was removed: start over as a new sequence.
            st.current = phase::waiting;
            st.entered = false;
            st.next_touch = 0;
            st.last_touch = 0;
            st.due_date = inv.due_date;
            st.balance = inv.balance;
            decide(decision_kind::note,
                   "client " + inv.client_id + " is no longer on a payment plan");
        }
        return false;
    }
};

std::string_view to_string(phase p) noexcept {
    switch (p) {
        case phase::waiting:
            return "waiting";
        case phase::active:
            return "active";
        case phase::paused:
            return "paused";
        case phase::completed:
            return "completed";
        case phase::cancelled:
            return "cancelled";
        case phase::stopped:
            return "stopped";
        case phase::excluded:
            return "excluded";
    }
    return "?";
}

std::string_view to_string(decision_kind k) noexcept {
    switch (k) {
        case decision_kind::wait:
            return "wait";
        case decision_kind::enter:
            return "enter";
        case decision_kind::touch:
            return "touch";
        case decision_kind::skip:
            return "skip";
        case decision_kind::defer:
            return "defer";
        case decision_kind::cancel:
            return "cancel";
        case decision_kind::restart:
            return "restart";
        case decision_kind::reschedule:
            return "reschedule";
        case decision_kind::replan:
            return "replan";
        case decision_kind::pause:
            return "pause";
        case decision_kind::resume:
            return "resume";
        case decision_kind::stop:
            return "stop";
        case decision_kind::complete:
            return "complete";
        case decision_kind::exclude:
            return "exclude";
        case decision_kind::note:
            return "note";
        case decision_kind::remind:
            return "remind";
        case decision_kind::missed:
            return "missed";
    }
    return "?";
}

std::string_view to_string(action_kind k) noexcept {
    switch (k) {
        case action_kind::email:
            return "email";
        case action_kind::sms:
            return "sms";
        case action_kind::task:
            return "task";
        case action_kind::ack:
            return "ack";
    }
    return "?";
}

std::string touch_timer_name(std::string_view invoice_id, std::uint32_t touch) {
    return "followup/" + std::string(invoice_id) + "/touch" + std::to_string(touch);
}

std::string enter_timer_name(std::string_view invoice_id) {
    return "followup/" + std::string(invoice_id) + "/enter";
}

std::string forwarded_reply(const followup_invoice& inv,
                            std::string_view text,
                            std::string_view channel,
                            std::string_view from,
                            util::instant at) {
    std::string out = "---------- The client's reply, as received ----------\n";
    out += "From: " + (from.empty() ? std::string("(unknown sender)") : std::string(from)) + "\n";
    out += "Channel: " + std::string(channel) + "\n";
    out += "Received: " + util::format_rfc3339(at) + "\n";
    out += "Invoice: " + inv.number + " (" + inv.id + ")";
    if (!inv.client_name.empty()) {
        out += ", " + inv.client_name;
    }
    out += "\n\n";
    out += text;
    if (!text.empty() && text.back() != '\n') {
        out += "\n";
    }
    return out;
}

std::string reminder_timer_name(std::string_view invoice_id, std::uint32_t reminder) {
    return "followup/" + std::string(invoice_id) + "/remind" + std::to_string(reminder);
}

std::uint64_t reminder_version(date::year_month_day due_date) {
    const auto days = date::sys_days(due_date).time_since_epoch().count();
    return days < 0 ? 0 : static_cast<std::uint64_t>(days);
}

std::string audit_line(std::string_view invoice_id, const decision& d, util::instant at) {
    nlohmann::json j = {{"at", util::format_rfc3339(at)},
                        {"rule", rule_name},
                        {"invoice", invoice_id},
                        {"decision", to_string(d.kind)},
                        {"cause", d.cause}};
    if (d.touch != 0) {
        j["touch"] = d.touch;
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool balance_changed(const sequence_state& s, const followup_invoice& fresh) {
    return fresh.balance != s.balance || fresh.status != invoice_status::open;
}

namespace {

std::optional<std::string> opt_instant(const std::optional<util::instant>& t) {
    return t ? std::optional(util::format_rfc3339(*t)) : std::nullopt;
}

}  // namespace

std::string encode(const sequence_state& s) {
    nlohmann::json j = {
        {"format", 1},
        {"invoice", s.invoice_id},
        {"seen", s.seen},
        {"phase", to_string(s.current)},
        {"entered", s.entered},
        {"class", to_string(s.client_class)},
        {"cycle", s.cycle},
        {"next_touch", s.next_touch},
        {"last_touch", s.last_touch},
        {"due_date", date_text(s.due_date)},
        {"anchor", date_text(s.anchor)},
        {"balance", s.balance},
        {"disputes", s.disputes},
        {"reminders_done", s.reminders_done},
        {"next_reminder", s.next_reminder},
        {"timer", s.timer},
    };
    const auto put = [&j](const char* key, const std::optional<util::instant>& t) {
        if (auto text = opt_instant(t)) {
            j[key] = *text;
        }
    };
    put("next_touch_at", s.next_touch_at);
    put("last_touch_at", s.last_touch_at);
    put("paused_at", s.paused_at);
    put("timer_due", s.timer_due);
    return j.dump();
}

bool decode(std::string_view text, sequence_state& out) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || j.value("format", 0) != 1) {
        return false;
    }
    try {
        sequence_state s;
        s.invoice_id = j.at("invoice").get<std::string>();
        s.seen = j.at("seen").get<bool>();
        const auto ph = j.at("phase").get<std::string>();
        bool known = false;
        for (const auto p : {phase::waiting,
                             phase::active,
                             phase::paused,
                             phase::completed,
                             phase::cancelled,
                             phase::stopped,
                             phase::excluded}) {
            if (to_string(p) == ph) {
                s.current = p;
                known = true;
            }
        }
        if (!known) {
            return false;
        }
        s.entered = j.at("entered").get<bool>();
        s.client_class = j.at("class").get<std::string>() == "retainer" ? client_class::retainer
                                                                        : client_class::standard;
        s.cycle = j.at("cycle").get<std::uint32_t>();
        s.next_touch = j.at("next_touch").get<std::uint32_t>();
        s.last_touch = j.at("last_touch").get<std::uint32_t>();
        const auto parse_date = [](const std::string& t, date::year_month_day& d) {
            const auto c = mappings::parse_civil_date(t);
            if (!c) {
                return false;
            }
            d = date::year_month_day{date::year{static_cast<int>(c->year())},
                                     date::month{static_cast<unsigned>(c->month())},
                                     date::day{static_cast<unsigned>(c->day())}};
            return true;
        };
        if (!parse_date(j.at("due_date").get<std::string>(), s.due_date) ||
            !parse_date(j.at("anchor").get<std::string>(), s.anchor)) {
            return false;
        }
        s.balance = j.at("balance").get<std::int64_t>();
        s.disputes = j.at("disputes").get<std::uint32_t>();
        s.reminders_done = j.value("reminders_done", std::uint32_t{0});  // absent before reminders
        s.next_reminder = j.value("next_reminder", std::uint32_t{0});
        s.timer = j.at("timer").get<std::string>();
        const auto get = [&j](const char* key, std::optional<util::instant>& t) {
            if (!j.contains(key)) {
                return true;
            }
            util::instant v;
            if (!util::parse_rfc3339(j.at(key).get<std::string>(), v)) {
                return false;
            }
            t = v;
            return true;
        };
        if (!get("next_touch_at", s.next_touch_at) || !get("last_touch_at", s.last_touch_at) ||
            !get("paused_at", s.paused_at) || !get("timer_due", s.timer_due)) {
            return false;
        }
        out = std::move(s);
        return true;
    } catch (const nlohmann::json::exception&) {
        return false;
    }
}

planner::planner(settings s, const date::time_zone& tz) : settings_(std::move(s)), tz_(&tz) {}

std::optional<planner> planner::make(settings s,
                                     std::string_view fallback_time_zone,
                                     std::string* error) {
    const std::string name = s.time_zone.empty() ? std::string(fallback_time_zone) : s.time_zone;
    try {
        const auto* tz = date::locate_zone(name);
        return planner(std::move(s), *tz);
    } catch (const std::exception& e) {
        if (error != nullptr) {
            *error = "unknown time zone '" + name + "': " + e.what();
        }
        return std::nullopt;
    }
}

plan_result planner::run(const sequence_state& state,
                         const followup_invoice& inv,
                         util::instant now,
                         bool allow_touch) const {
    step st{*this, inv, now, {state, {}, {}, {}}};
    auto& s = st.s();
    if (!s.seen) {
        s.seen = true;
        s.invoice_id = inv.id;
        s.due_date = inv.due_date;
        s.anchor = inv.due_date;
        s.balance = inv.balance;
        s.client_class = inv.client_class;
    }
    if (st.ended_by_invoice()) {
        return std::move(st.r);
    }
    // Balance moves.
    if (inv.balance != s.balance) {
        const auto before = s.balance;
        if (!s.entered) {
            s.balance = inv.balance;  // no sequence yet: nothing to acknowledge
        } else if (inv.balance < before) {
            st.restart_for_partial_payment(before);
            return std::move(st.r);
        } else {
            s.balance = inv.balance;
            st.decide(decision_kind::replan,
                      "balance rose from " + st.money(before) + " to " + st.money(inv.balance));
        }
    }
    // Due date moves.
    if (inv.due_date != s.due_date) {
        if (!s.entered) {
            const auto before = s.due_date;
            s.due_date = inv.due_date;
            s.anchor = inv.due_date;
            s.reminders_done = 0;  // reminders are per due date
            s.next_reminder = 0;
            st.decide(
                decision_kind::reschedule,
                "due date moved from " + date_text(before) + " to " + date_text(inv.due_date));
        } else {
            st.reschedule_for_due_date(s.due_date);
        }
    }
    if (s.current == phase::paused) {
        return std::move(st.r);
    }
    if (s.current == phase::waiting) {
        const auto entry = start_of_day(*tz_, date::sys_days(inv.due_date) + date::days(1));
        if (now < entry) {
            st.before_due();
            return std::move(st.r);
        }
        st.enter();
        // An invoice first seen (or entered) late goes straight to the touch its age implies.
    }
    st.touch_if_due(allow_touch);
    return std::move(st.r);
}

plan_result planner::observe(const sequence_state& s,
                             const followup_invoice& inv,
                             util::instant now) const {
    return run(s, inv, now, true);
}

plan_result planner::on_timer(const sequence_state& state,
                              const followup_invoice& fresh,
                              util::instant now) const {
    // The caller fires the due timer in the same batch: it no longer exists.
    auto s = state;
    if (s.timer_due && *s.timer_due <= now) {
        s.timer.clear();
        s.timer_due.reset();
    }
    if (s.seen && s.current == phase::active && balance_changed(s, fresh)) {
        auto r = run(s, fresh, now, false);
        const auto n = s.next_touch;
        r.decisions.insert(
            r.decisions.begin(),
            {decision_kind::replan,
             n,
             "balance re-read before touch " + std::to_string(n) + ": " +
                 money_text(s.balance, fresh.currency) + " -> " +
                 money_text(fresh.balance, fresh.currency) +
                 (fresh.status == invoice_status::open
                      ? std::string()
                      : std::string(" (") +
                            (fresh.status == invoice_status::paid ? "paid" : "voided") + ")") +
                 "; touch not sent, sequence re-planned"});
        return r;
    }
    return run(s, fresh, now, true);
}

plan_result planner::on_reply(const sequence_state& state,
                              const followup_invoice& inv,
                              std::string_view text,
                              std::string_view channel,
                              util::instant now,
                              std::string_view from,
                              bool verified) const {
    step st{*this, inv, now, {state, {}, {}, {}}};
    auto& s = st.s();
    if (!s.seen) {
        s.seen = true;
        s.invoice_id = inv.id;
        s.due_date = inv.due_date;
        s.anchor = inv.due_date;
        s.balance = inv.balance;
        s.client_class = inv.client_class;
    }
    if (!contains_dispute_keyword(text, settings_.dispute_keywords)) {
        st.decide(decision_kind::note,
                  std::string(channel) + " reply without a dispute keyword; no change");
        return std::move(st.r);
    }
    if (s.current == phase::paused) {
        st.decide(decision_kind::note,
                  "another " + std::string(channel) +
                      " reply with a dispute keyword; already paused, no new task");
        return std::move(st.r);
    }
    const bool pausable =
        s.current == phase::waiting || s.current == phase::active || s.current == phase::completed;
    s.disputes += 1;
    std::string problem;
    const auto& t = settings_.dispute;
    auto title = st.render(t.task_title, "dispute", "task_title", problem);
    auto body = title ? st.render(t.task_body, "dispute", "task_body", problem)
                      : std::optional<std::string>();
    if (title && body) {
        // Appended after rendering: the client's words are never read as a template.
        *body += "\n\nResume the follow-up: billsync followup resume " + inv.number +
                 "\nStop it: billsync followup stop " + inv.number + "\n\n" +
                 forwarded_reply(inv, text, channel, from, now);
        st.r.actions.push_back({action_kind::task,
                                action_key("followup.dispute", inv.id, s.disputes),
                                "dispute",
                                0,
                                false,
                                {},
                                std::move(*title),
                                std::move(*body),
                                0});
    }
    const auto task = title && body ? std::string("dispute task opened")
                                    : "dispute task NOT opened (" + problem + ")";
    if (!verified) {
        st.decide(decision_kind::note,
                  "dispute keyword in " + std::string(channel) +
                      " reply from an unverified sender (SPF/DKIM did not pass, or an old reply "
                      "token); not paused, a person checks it; " +
                      task);
        return std::move(st.r);
    }
    if (!pausable) {
        st.decide(decision_kind::note,
                  "dispute keyword in " + std::string(channel) + " reply; sequence is " +
                      std::string(to_string(s.current)) + "; " + task);
        return std::move(st.r);
    }
    // Nothing is owed on a settled invoice, so there is nothing to pause: the task still goes to
    // a person (the client may want money back), but no paused follow-up is left waiting for a
    // resume that could never send anything.
    if (inv.status == invoice_status::paid || inv.status == invoice_status::voided ||
        inv.balance <= 0) {
        st.decide(decision_kind::note,
                  "dispute keyword in " + std::string(channel) + " reply; invoice " + inv.number +
                      " is settled (nothing owed), not paused; " + task);
        return std::move(st.r);
    }
    s.current = phase::paused;
    s.paused_at = now;
    st.clear_timer();
    st.decide(decision_kind::pause,
              "dispute keyword in " + std::string(channel) + " reply; follow-up paused; " + task);
    return std::move(st.r);
}

plan_result planner::resume(const sequence_state& state,
                            const followup_invoice& inv,
                            util::instant now,
                            std::string_view who) const {
    step st{*this, inv, now, {state, {}, {}, {}}};
    auto& s = st.s();
    if (s.current != phase::paused) {
        st.decide(decision_kind::note,
                  "resume by " + std::string(who) + " ignored: the sequence is " +
                      std::string(to_string(s.current)));
        return std::move(st.r);
    }
    s.paused_at.reset();
    if (!s.entered) {
        s.current = phase::waiting;
        st.decide(decision_kind::resume, "resumed by " + std::string(who) + " before entry");
        auto rest = run(s, inv, now, true);
        rest.decisions.insert(rest.decisions.begin(), st.r.decisions.begin(), st.r.decisions.end());
        rest.timers.insert(rest.timers.begin(), st.r.timers.begin(), st.r.timers.end());
        return rest;
    }
    s.current = phase::active;
    // Touches whose time came while paused are skipped; the next one is the first still ahead.
    const auto count = static_cast<std::uint32_t>(st.cadence().size());
    auto next = s.next_touch == 0 ? s.last_touch + 1 : s.next_touch;
    std::string skipped;
    while (next <= count && st.touch_time(next) <= now) {
        skipped += (skipped.empty() ? "" : ", ") + std::to_string(next);
        ++next;
    }
    std::string cause = "resumed by " + std::string(who);
    if (!skipped.empty()) {
        st.decide(decision_kind::skip,
                  "touch" + std::string(skipped.find(',') != std::string::npos ? "es " : " ") +
                      skipped + " fell due while paused; not sent");
    }
    if (next > count) {
        st.decide(decision_kind::resume, cause + "; no touches left");
        st.complete("every touch was done or skipped");
        return std::move(st.r);
    }
    st.plan_touch(next);
    st.decide(
        decision_kind::resume,
        cause + "; next touch " + std::to_string(next) + " at " + instant_text(*s.next_touch_at),
        next);
    // The invoice may have changed while paused (payment, due date, payment plan).
    auto rest = run(s, inv, now, true);
    rest.decisions.insert(rest.decisions.begin(), st.r.decisions.begin(), st.r.decisions.end());
    rest.timers.insert(rest.timers.begin(), st.r.timers.begin(), st.r.timers.end());
    rest.actions.insert(rest.actions.begin(), st.r.actions.begin(), st.r.actions.end());
    return rest;
}

plan_result planner::stop(const sequence_state& state,
                          const followup_invoice& inv,
                          util::instant now,
                          std::string_view who) const {
    step st{*this, inv, now, {state, {}, {}, {}}};
    auto& s = st.s();
    if (s.current == phase::stopped || s.current == phase::cancelled) {
        st.decide(decision_kind::note,
                  "stop by " + std::string(who) + " ignored: the sequence is " +
                      std::string(to_string(s.current)));
        return std::move(st.r);
    }
    if (!s.seen) {
        s.seen = true;
        s.invoice_id = inv.id;
        s.due_date = inv.due_date;
        s.anchor = inv.due_date;
        s.balance = inv.balance;
    }
    st.clear_timer();
    s.current = phase::stopped;
    s.next_touch = 0;
    st.decide(decision_kind::stop, "stopped by " + std::string(who));
    return std::move(st.r);
}

}  // namespace billsync::workflows::followup
