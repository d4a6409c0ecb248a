#include "workflows/followup/plans.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "mappings/model.hpp"
#include "workflows/action_key.hpp"
#include "workflows/followup/window.hpp"

namespace billsync::workflows::followup {

namespace {

using json = nlohmann::json;

std::string date_text(date::year_month_day d) { return date::format("%F", date::sys_days(d)); }

std::uint64_t day_version(date::year_month_day d) {
    const auto days = date::sys_days(d).time_since_epoch().count();
    return days < 0 ? 0 : static_cast<std::uint64_t>(days);
}

struct plan_step {
    const settings& cfg;
    const date::time_zone& tz;
    const payment_plan& plan;
    const plan_client& client;
    util::instant now;
    plan_outcome r;

    std::string money(std::int64_t minor) const { return format_money({minor, plan.currency}); }

    void decide(decision_kind k, std::uint32_t installment, std::string cause) {
        r.decisions.push_back({k, installment, std::move(cause)});
    }

    std::int64_t cumulative(std::uint32_t k) const {
        std::int64_t sum = 0;
        for (std::uint32_t i = 0; i < k && i < plan.installments.size(); ++i) {
            sum += plan.installments[i].amount;
        }
        return sum;
    }

    const installment& at(std::uint32_t k) const { return plan.installments[k - 1]; }

    std::string label(std::uint32_t k) const {
        return "installment " + std::to_string(k) + " (" + money(at(k).amount) + " due " +
               date_text(at(k).due) + ")";
    }

    util::instant day_after_due(std::uint32_t k) const {
        return start_of_day(tz, date::sys_days(at(k).due) + date::days(1));
    }

    util::instant reminder_opening(std::uint32_t k) const {
        const auto day = date::sys_days(at(k).due) - date::days(cfg.installment_reminder_days);
        return next_opening(cfg.window, tz, start_of_day(tz, day));
    }

    template_values values(std::uint32_t k) const {
        template_values v;
        v.client_name = client.name;
        v.amount = {at(k).amount, plan.currency};
        v.balance = {client.open_balance, plan.currency};
        v.due_date = at(k).due;
        v.firm_name = cfg.firm_name;
        v.firm_phone = cfg.firm_phone;
        v.autopay_link = cfg.autopay_link;
        return v;
    }

    // Renders a part; on failure says why.
    std::optional<std::string> render(const message_template& t,
                                      std::uint32_t k,
                                      std::string_view id,
                                      std::string_view part,
                                      std::string& problem) const {
        if (t.empty()) {
            problem = "template " + std::string(id) + " has no " + std::string(part);
            return std::nullopt;
        }
        std::optional<placeholder> missing;
        auto text = t.render(values(k), &missing);
        if (!text) {
            problem = "template " + std::string(id) + " " + std::string(part) + " needs {" +
                      std::string(missing ? to_string(*missing) : "?") + "}, which is empty";
        }
        return text;
    }

    // An email to the client; returns what happened, for the cause.
    std::string email(const touch_templates& t,
                      std::string_view id,
                      std::uint32_t k,
                      const std::string& key) {
        if (client.email.empty()) {
            return "no email address on file";
        }
        std::string problem;
        auto subject = render(t.email_subject, k, id, "email_subject", problem);
        auto body = subject ? render(t.email_body, k, id, "email_body", problem)
                            : std::optional<std::string>();
        if (!subject || !body) {
            return "email not sent: " + problem;
        }
        r.actions.push_back({action_kind::email,
                             key,
                             std::string(id),
                             0,
                             false,
                             client.email,
                             std::move(*subject),
                             std::move(*body),
                             k});
        return "email to " + client.email;
    }

    void set_timer(const std::string& name, util::instant due) {
        auto& st = r.state;
        if (st.timer == name && st.timer_due == due) {
            return;
        }
        if (!st.timer.empty() && st.timer != name) {
            r.timers.push_back({true, st.timer, {}});
        }
        r.timers.push_back({false, name, due});
        st.timer = name;
        st.timer_due = due;
    }

    void clear_timer() {
        auto& st = r.state;
        if (!st.timer.empty()) {
            r.timers.push_back({true, st.timer, {}});
        }
        st.timer.clear();
        st.timer_due.reset();
    }

    void run() {
        auto& st = r.state;
        const auto count = static_cast<std::uint32_t>(plan.installments.size());
        if (!st.started) {
            if (client.open_balance <= 0) {
                return;  // nothing open yet (the client synced before its invoices): not started
            }
            st.started = true;
            st.client_id = client.id;
            st.baseline = client.open_balance;
            decide(decision_kind::note,
                   0,
                   "payment plan of " + std::to_string(count) + " installment" +
                       (count == 1 ? "" : "s") + " (" + money(cumulative(count)) +
                       ") started for " + client.name + "; open balance " +
                       money(client.open_balance) + " is the baseline");
        }
        const auto paid = plan_paid(st, client);
        // Missed installments paid since.
        std::vector<std::uint32_t> still_missed;
        for (const auto k : st.missed) {
            if (k <= count && paid >= cumulative(k)) {
                decide(decision_kind::note,
                       k,
                       label(k) + " paid late: " + money(paid) + " of the plan paid so far");
            } else {
                still_missed.push_back(k);
            }
        }
        st.missed = std::move(still_missed);
        // Checks at 00:00 on the day after each due date.
        while (st.checked < count && day_after_due(st.checked + 1) <= now) {
            const auto k = ++st.checked;
            st.reminded = std::max(st.reminded, k);
            if (paid >= cumulative(k)) {
                decide(decision_kind::note,
                       k,
                       label(k) + " paid: " + money(paid) + " of the plan paid so far");
                continue;
            }
            st.missed.push_back(k);
            const auto version = day_version(at(k).due);
            const auto sent = email(
                cfg.plan_missed,
                "payment_plan.missed",
                k,
                action_key("followup.plan.m" + std::to_string(k) + ".email", client.id, version));
            std::string problem;
            auto title =
                render(cfg.plan_missed.task_title, k, "payment_plan.missed", "task_title", problem);
            auto body =
                title
                    ? render(
                          cfg.plan_missed.task_body, k, "payment_plan.missed", "task_body", problem)
                    : std::optional<std::string>();
            std::string task = "coordinator task NOT opened (" + problem + ")";
            if (title && body) {
                r.actions.push_back(
                    {action_kind::task,
                     action_key(
                         "followup.plan.m" + std::to_string(k) + ".task", client.id, version),
                     "payment_plan.missed",
                     0,
                     false,
                     {},
                     std::move(*title),
                     std::move(*body),
                     k});
                task = "coordinator task opened";
            }
            decide(decision_kind::missed,
                   k,
                   label(k) + " missed: " + money(paid) + " of the " + money(cumulative(k)) +
                       " due by then paid (open balance " + money(client.open_balance) +
                       ", baseline " + money(st.baseline) + "); notice: " + sent + "; " + task);
        }
        // Reminders before each due date.
        while (st.reminded < count) {
            const auto k = st.reminded + 1;
            if (paid >= cumulative(k)) {
                st.reminded = k;
                decide(decision_kind::skip, k, label(k) + ": no reminder, already paid");
                continue;
            }
            const auto opening = reminder_opening(k);
            const auto end = day_after_due(k);
            if (opening >= end) {
                st.reminded = k;
                decide(decision_kind::skip,
                       k,
                       label(k) +
                           ": no reminder, the sending window does not open before its due date "
                           "passes");
                continue;
            }
            if (opening > now) {
                break;
            }
            if (in_window(cfg.window, tz, now) && now < end) {
                st.reminded = k;
                const auto sent = email(cfg.plan_reminder,
                                        "payment_plan.reminder",
                                        k,
                                        action_key("followup.plan.r" + std::to_string(k) + ".email",
                                                   client.id,
                                                   day_version(at(k).due)));
                decide(sent.starts_with("email to") ? decision_kind::remind : decision_kind::skip,
                       k,
                       "reminder of " + label(k) + ": " + sent);
                continue;
            }
            if (next_opening(cfg.window, tz, now) < end) {
                break;  // waits for the window (the timer below)
            }
            st.reminded = k;
            decide(decision_kind::skip,
                   k,
                   label(k) + ": no reminder, its due date passed before the window opened");
        }
        // One timer: the earlier of the next reminder and the next check.
        std::optional<std::pair<std::string, util::instant>> next;
        if (st.reminded < count) {
            const auto k = st.reminded + 1;
            next = {plan_timer_name(client.id, k, false),
                    next_opening(cfg.window, tz, std::max(reminder_opening(k), now))};
        }
        if (st.checked < count) {
            const auto k = st.checked + 1;
            const auto check = day_after_due(k);
            if (!next || check < next->second) {
                next = {plan_timer_name(client.id, k, true), check};
            }
        }
        if (next) {
            set_timer(next->first, next->second);
        } else {
            clear_timer();
        }
    }
};

}  // namespace

std::string plan_timer_name(std::string_view client_id, std::uint32_t k, bool check) {
    return std::string(plan_timer_prefix) + std::string(client_id) + "/installment" +
           std::to_string(k) + (check ? "-check" : "-reminder");
}

std::optional<std::string> plan_timer_client(std::string_view timer_name) {
    if (!timer_name.starts_with(plan_timer_prefix)) {
        return std::nullopt;
    }
    const auto rest = timer_name.substr(plan_timer_prefix.size());
    const auto slash = rest.rfind('/');
    if (slash == std::string_view::npos || slash == 0) {
        return std::nullopt;
    }
    return std::string(rest.substr(0, slash));
}

std::int64_t plan_paid(const plan_state& s, const plan_client& c) {
    return std::max<std::int64_t>(0, s.baseline - c.open_balance);
}

std::string plan_audit_line(std::string_view client_id, const decision& d, util::instant at) {
    json j = {{"at", util::format_rfc3339(at)},
              {"rule", "followup"},
              {"client", client_id},
              {"payment_plan", true},
              {"decision", to_string(d.kind)},
              {"cause", d.cause}};
    if (d.touch != 0) {
        j["installment"] = d.touch;
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode(const plan_state& s) {
    json j = {{"format", 1},
              {"client", s.client_id},
              {"started", s.started},
              {"baseline", s.baseline},
              {"reminded", s.reminded},
              {"checked", s.checked},
              {"missed", s.missed},
              {"timer", s.timer}};
    if (s.timer_due) {
        j["timer_due"] = util::format_rfc3339(*s.timer_due);
    }
    return j.dump();
}

bool decode_plan(std::string_view text, plan_state& out) {
    const auto j = json::parse(text, nullptr, false);
    if (!j.is_object() || j.value("format", 0) != 1) {
        return false;
    }
    try {
        plan_state s;
        s.client_id = j.at("client").get<std::string>();
        s.started = j.at("started").get<bool>();
        s.baseline = j.at("baseline").get<std::int64_t>();
        s.reminded = j.at("reminded").get<std::uint32_t>();
        s.checked = j.at("checked").get<std::uint32_t>();
        s.missed = j.at("missed").get<std::vector<std::uint32_t>>();
        s.timer = j.at("timer").get<std::string>();
        if (j.contains("timer_due")) {
            util::instant t;
            if (!util::parse_rfc3339(j.at("timer_due").get<std::string>(), t)) {
                return false;
            }
            s.timer_due = t;
        }
        out = std::move(s);
        return true;
    } catch (const json::exception&) {
        return false;
    }
}

plan_outcome plan_installments(const settings& s,
                               const date::time_zone& tz,
                               const payment_plan& plan,
                               const plan_state& state,
                               const plan_client& client,
                               util::instant now) {
    plan_step st{s, tz, plan, client, now, {state, {}, {}, {}}};
    // A timer of this plan that is due by now was fired by the caller in the same batch.
    if (st.r.state.timer_due && *st.r.state.timer_due <= now) {
        st.r.state.timer.clear();
        st.r.state.timer_due.reset();
    }
    st.run();
    return std::move(st.r);
}

}  // namespace billsync::workflows::followup
