#include "workflows/followup/followup_rule.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "state/entity_index.hpp"
#include "state/identity.hpp"
#include "state/keys.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"
#include "workflows/action_key.hpp"
#include "workflows/followup/plans.hpp"
#include "workflows/followup/views.hpp"
#include "workflows/rows.hpp"
#include "workflows/send_window.hpp"

namespace billsync::workflows::followup {

namespace {

using json = nlohmann::json;

constexpr std::string_view timer_prefix = "followup/";

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string text_of(const json& j, std::string_view key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The bare address of "Name <a@b.com>" or "a@b.com", lower-cased.
std::string bare_address(std::string_view text) {
    const auto open = text.find('<');
    const auto close = text.find('>', open == std::string_view::npos ? 0 : open);
    if (open != std::string_view::npos && close != std::string_view::npos) {
        text = text.substr(open + 1, close - open - 1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) {
        text.remove_prefix(1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
        text.remove_suffix(1);
    }
    return lower(text);
}

bool suppressed(const state::store& s, state::batch& b, const std::string& key) {
    auto row = state::get_entity(s, b, "suppression", key);
    if (!row.ok() || !row.value) {
        return false;
    }
    const auto j = json::parse(*row.value, nullptr, false);
    return j.is_object() && j.value("opted_out", false);
}

// `billsync followup show`: one sequence as operators read it, its state then its timeline
// (the audit trail in time order), from followup_json().
void print_sequence(std::ostream& out, const json& j) {
    const auto or_dash = [](const json& v) {
        return v.is_string() ? v.get<std::string>() : (v.is_null() ? "-" : v.dump());
    };
    out << fmt::format("Invoice {} ({})", j.value("number", "?"), j.value("invoice", "?"));
    if (j.contains("client_name") || j.contains("client")) {
        out << fmt::format(", {} ({})", j.value("client_name", "?"), j.value("client", "?"));
    }
    out << "\n";
    out << fmt::format("  balance {}, due {}\n",
                       money_text(j.value("balance", json())),
                       or_dash(j.value("due_date", json())));
    out << fmt::format("  sequence {} ({} cadence), cycle {}, disputes {}\n",
                       j.value("phase", "?"),
                       j.value("class", "?"),
                       j.value("cycle", 0u),
                       j.value("disputes", 0u));
    if (j.value("paused", false)) {
        out << fmt::format("  paused since {}\n", or_dash(j.value("paused_at", json())));
    }
    if (j.value("last_touch", 0u) != 0) {
        out << fmt::format("  last touch {} at {}\n",
                           j.value("last_touch", 0u),
                           or_dash(j.value("last_touch_at", json())));
    }
    if (j.value("next_reminder", 0u) != 0 && j.value("next_reminder_at", json()).is_string()) {
        out << fmt::format("  next courtesy reminder {} by {} at {}\n",
                           j.value("next_reminder", 0u),
                           j.value("next_reminder_channels", ""),
                           or_dash(j.value("next_reminder_at", json())));
    }
    if (j.value("next_touch", 0u) != 0 && j.value("next_touch_at", json()).is_string()) {
        const auto channels = j.value("next_channels", "");
        out << fmt::format("  next touch {}{} at {}\n",
                           j.value("next_touch", 0u),
                           channels.empty() ? "" : " by " + channels,
                           or_dash(j.value("next_touch_at", json())));
    } else {
        out << "  no touch scheduled\n";
    }
    const auto trail = j.value("audit", json::array());
    out << "Timeline:\n";
    for (const auto& line : trail) {
        // Other rules' lines about the invoice (a late fee) say what they did in their own words.
        std::string what;
        for (const auto* key : {"cause", "title", "why", "arithmetic"}) {
            if (what.empty()) {
                what = line.value(key, "");
            }
        }
        if (line.contains("period")) {
            what = fmt::format("period {}: {}", line["period"].dump(), what);
        }
        const auto rule = line.value("rule", "followup");
        const auto decision = line.value("decision", "?");
        out << fmt::format(
            "  {:<20}  {:<16} {:<8} {}\n",
            line.value("at", "-"),
            rule == "followup" ? decision : rule + " " + decision,
            line.contains("touch") ? fmt::format("touch {}", line["touch"].dump()) : std::string(),
            what);
    }
    out << fmt::format("{} event{}\n", trail.size(), trail.size() == 1 ? "" : "s");
}

// Every configured payment plan with its installments and where it stands.
json plans_json(const state::store& store, const settings& cfg) {
    json list = json::array();
    for (const auto& [client, plan] : cfg.payment_plans) {
        plan_state st;
        auto row = state::get_entity(store, "followup_plan", client);
        const bool known = row.ok() && row.value && decode_plan(*row.value, st);
        json installments = json::array();
        for (std::size_t i = 0; i < plan.installments.size(); ++i) {
            const auto k = static_cast<std::uint32_t>(i + 1);
            const auto& inst = plan.installments[i];
            const bool missed = std::find(st.missed.begin(), st.missed.end(), k) != st.missed.end();
            installments.push_back(
                {{"installment", k},
                 {"due", date::format("%F", date::sys_days(inst.due))},
                 {"amount", {{"minor", inst.amount}, {"currency", plan.currency}}},
                 {"status", missed ? "missed" : (k <= st.checked ? "checked" : "upcoming")}});
        }
        json j{
            {"client", client},
            {"started", known && st.started},
            {"baseline", {{"minor", st.baseline}, {"currency", plan.currency}}},
            {"installments", std::move(installments)},
            {"missed", st.missed},
            {"next", st.timer.empty() ? json(nullptr) : json(st.timer)},
            {"next_at", st.timer_due ? json(util::format_rfc3339(*st.timer_due)) : json(nullptr)}};
        if (auto c = state::get_entity(store, "client", client); c.ok() && c.value) {
            const auto cj = json::parse(*c.value, nullptr, false);
            if (cj.is_object()) {
                j["client_name"] = cj.value("display_name", "");
            }
        }
        list.push_back(std::move(j));
    }
    return list;
}

}  // namespace

std::string reply_token(std::string_view key, std::string_view invoice_id) {
    return "r-" + util::hex_encode(util::hmac_sha256(key, invoice_id)).substr(0, 24);
}

std::string reply_address(std::string_view reply_to,
                          std::string_view key,
                          std::string_view invoice_id) {
    const auto at = reply_to.find('@');
    if (reply_to.empty() || at == std::string_view::npos) {
        return std::string(reply_to);
    }
    return std::string(reply_to.substr(0, at)) + "+" + reply_token(key, invoice_id) +
           std::string(reply_to.substr(at));
}

bool mentions_number(std::string_view text, std::string_view number) {
    if (number.empty()) {
        return false;
    }
    const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    for (auto pos = text.find(number); pos != std::string_view::npos;
         pos = text.find(number, pos + 1)) {
        const bool starts = pos == 0 || !word(text[pos - 1]);
        const auto end = pos + number.size();
        const bool ends = end == text.size() || !word(text[end]);
        if (starts && ends) {
            return true;
        }
    }
    return false;
}

followup_invoice adapt(const mappings::invoice& inv,
                       const mappings::client* client,
                       const settings& s,
                       bool sms_suppressed) {
    followup_invoice f;
    f.id = inv.id;
    f.number = inv.number;
    f.client_id = inv.client_id;
    f.currency = inv.currency;
    f.total = inv.total.minor;
    f.balance = inv.balance.minor;
    if (inv.due_date) {
        f.due_date = date::year_month_day{date::year{static_cast<int>(inv.due_date->year())},
                                          date::month{static_cast<unsigned>(inv.due_date->month())},
                                          date::day{static_cast<unsigned>(inv.due_date->day())}};
    }
    switch (inv.status) {
        case mappings::invoice_status::paid:
            f.status = invoice_status::paid;
            break;
        case mappings::invoice_status::voided:
            f.status = invoice_status::voided;
            break;
        default:
            f.status = invoice_status::open;
    }
    if (inv.deleted) {
        f.status = invoice_status::voided;
    }
    f.email = inv.billing_email;
    f.payment_link = inv.payment_link;
    if (client != nullptr) {
        f.client_name = client->display_name;
        f.client_class = client->retainer ? client_class::retainer : client_class::standard;
        f.payment_plan = client->payment_plan;
        if (f.email.empty()) {
            f.email = client->contact.billing_email;
        }
        f.mobile_e164 = client->contact.mobile;
        f.sms_consent = client->contact.sms_consent && !sms_suppressed;
    }
    f.payment_plan = f.payment_plan || s.payment_plan_clients.contains(inv.client_id) ||
                     s.payment_plans.contains(inv.client_id);
    f.autopay = s.autopay_clients.contains(inv.client_id);
    if (client != nullptr && !s.autopay_tag.empty()) {
        f.autopay =
            f.autopay ||
            std::any_of(client->tags.begin(), client->tags.end(), [&](const std::string& tag) {
                return same_tag(tag, s.autopay_tag);
            });
    }
    return f;
}

struct followup_rule::loaded {
    mappings::invoice invoice;
    std::optional<mappings::client> client;
    followup_invoice view;
    sequence_state state;
    std::optional<std::string> stored;  // the follow-up row as read (nullopt: none yet)
};

followup_rule::followup_rule(planner p, channel_routes routes, util::metrics_registry* metrics)
    : planner_(std::move(p)), routes_(std::move(routes)), metrics_(metrics) {}

bool followup_rule::owns_timer(std::string_view name) const noexcept {
    return name.starts_with(timer_prefix);
}

std::optional<std::string> followup_rule::touch_invoice(std::string_view timer_name) {
    if (!timer_name.starts_with(timer_prefix)) {
        return std::nullopt;
    }
    const auto slash = timer_name.rfind('/');
    if (slash == std::string_view::npos || slash < timer_prefix.size()) {
        return std::nullopt;
    }
    const auto what = timer_name.substr(slash + 1);
    if (!what.starts_with("touch") && !what.starts_with("remind") && what != "enter") {
        return std::nullopt;
    }
    return std::string(timer_name.substr(timer_prefix.size(), slash - timer_prefix.size()));
}

std::vector<refresh_target> followup_rule::before_timer(std::string_view timer_name,
                                                        const state::store& s) const {
    if (auto invoice = touch_invoice(timer_name)) {
        return {refresh_target{"invoice", std::move(*invoice)}};
    }
    std::vector<refresh_target> out;
    const auto client = plan_timer_client(timer_name);
    if (!client) {
        return out;
    }
    // The invoices plan_snapshot counts: the client's open ones (the currency is checked there,
    // on the fresh copy), found through the index of invoices with a balance, whose rows carry
    // the invoice's status and client (state/entity_index.hpp), not by reading every invoice.
    state::for_each_entity(
        s, state::entity_index::invoice_open, [&](std::string_view id, std::string_view v) {
            const auto j = json::parse(v, nullptr, false);
            if (j.is_object() && text_of(j, "client_id") == *client &&
                text_of(j, "status") == "open" && !j.value("deleted", false)) {
                out.push_back({"invoice", std::string(id)});
            }
            return out.size() < max_plan_refresh;
        });
    return out;
}

void followup_rule::on_action_done(const state::action& a, action_result r) const {
    if (metrics_ == nullptr || (a.kind != "email.send" && a.kind != "sms.send")) {
        return;
    }
    const auto p = json::parse(a.payload, nullptr, false);
    if (!p.is_object() || !p.contains("invoice")) {
        return;
    }
    metrics_
        ->get_counter(
            "billsync_followup_deliveries_total",
            "Follow-up messages by channel, touch and outcome.",
            {{"channel", a.kind == "sms.send" ? "sms" : "email"},
             {"touch",
              p.value("reminder", 0) > 0 ? "reminder" : std::to_string(p.value("touch", 0))},
             {"outcome", r == action_result::done ? "sent" : "failed"}})
        .inc();
}

std::string followup_rule::touch_window() const {
    const auto& w = planner_.config().window;
    send_window out;
    out.time_zone = std::string(planner_.zone().name());
    out.start = w.start;
    out.end = w.end;
    out.days = w.days;
    out.holidays = w.holidays;
    return encode_window(out);
}

std::optional<std::string> followup_rule::recheck(const state::action& a, context& ctx) const {
    if (a.kind != "email.send" && a.kind != "sms.send") {
        return std::nullopt;
    }
    const auto p = json::parse(a.payload, nullptr, false);
    if (p.is_object() && p.contains("plan_message")) {
        return recheck_plan(p, ctx);
    }
    if (!p.is_object() || !p.contains("invoice") || !p["invoice"].is_string()) {
        return std::nullopt;
    }
    const auto touch = p.value("touch", 0);
    const auto reminder = p.value("reminder", 0);
    const auto invoice_id = p["invoice"].get<std::string>();
    if (reminder > 0) {
        return recheck_reminder(a, invoice_id, static_cast<std::uint32_t>(reminder), ctx);
    }
    if (touch <= 0) {
        return std::nullopt;  // acknowledgements and tasks are not touches
    }
    auto l = load(invoice_id, ctx);
    if (!l.ok()) {
        return std::nullopt;  // cannot tell: the send goes ahead as decided
    }
    if (!l.value) {
        return "invoice " + invoice_id + " is no longer known";
    }
    const auto& inv = l.value->invoice;
    const auto number = inv.number.empty() ? invoice_id : inv.number;
    if (inv.status == mappings::invoice_status::paid || inv.balance.minor <= 0) {
        return "invoice " + number + " was paid meanwhile";
    }
    if (inv.status == mappings::invoice_status::voided) {
        return "invoice " + number + " was voided meanwhile";
    }
    const auto& st = l.value->state;
    if (st.current != phase::active && st.current != phase::completed) {
        return "the follow-up of invoice " + number + " is " + std::string(to_string(st.current));
    }
    const std::string channel = a.kind == "sms.send" ? "sms" : "email";
    if (action_key("followup.t" + std::to_string(touch) + "." + channel, invoice_id, st.cycle) !=
        a.id) {
        return "the follow-up of invoice " + number + " restarted since touch " +
               std::to_string(touch) + " was decided";
    }
    return std::nullopt;
}

std::optional<std::string> followup_rule::recheck_reminder(const state::action& a,
                                                           const std::string& invoice_id,
                                                           std::uint32_t reminder,
                                                           context& ctx) const {
    auto l = load(invoice_id, ctx);
    if (!l.ok()) {
        return std::nullopt;  // cannot tell: the send goes ahead as decided
    }
    if (!l.value) {
        return "invoice " + invoice_id + " is no longer known";
    }
    const auto& inv = l.value->invoice;
    const auto number = inv.number.empty() ? invoice_id : inv.number;
    if (inv.status == mappings::invoice_status::paid || inv.balance.minor <= 0) {
        return "invoice " + number + " was paid meanwhile";
    }
    if (inv.status == mappings::invoice_status::voided) {
        return "invoice " + number + " was voided meanwhile";
    }
    if (l.value->view.autopay) {
        return "the client of invoice " + number + " is on auto-pay";
    }
    const auto& st = l.value->state;
    if (st.current != phase::waiting) {
        return "the follow-up of invoice " + number + " is " + std::string(to_string(st.current)) +
               ": courtesy reminder " + std::to_string(reminder) + " is stale";
    }
    const std::string channel = a.kind == "sms.send" ? "sms" : "email";
    if (action_key("followup.r" + std::to_string(reminder) + "." + channel,
                   invoice_id,
                   reminder_version(l.value->view.due_date)) != a.id) {
        return "the due date of invoice " + number + " moved since courtesy reminder " +
               std::to_string(reminder) + " was decided";
    }
    return std::nullopt;
}

state::result<std::optional<followup_rule::loaded>> followup_rule::load(std::string_view invoice_id,
                                                                        context& ctx) const {
    using result_t = state::result<std::optional<loaded>>;
    const auto& s = *ctx.store;
    auto row = state::get_entity(s, ctx.b, "invoice", invoice_id);
    if (!row.ok()) {
        return result_t::failure(row.st);
    }
    if (!row.value) {
        return {state::status::success(), std::nullopt};
    }
    std::string error;
    auto inv = mappings::invoice_from_json(json::parse(*row.value, nullptr, false), error);
    if (!inv) {
        return result_t::failure(
            state::status::failure("stored invoice " + std::string(invoice_id) + ": " + error));
    }
    if (!routes_.invoices_from.empty() && !inv->source.system.empty() &&
        inv->source.system != routes_.invoices_from) {
        return {state::status::success(), std::nullopt};  // [sources]: another ledger's copy
    }
    loaded l;
    l.invoice = std::move(*inv);
    if (!l.invoice.client_id.empty()) {
        // [sources] clients: the contact fields of the linked client in that system count.
        auto who =
            state::identity::authoritative(s, &ctx.b, l.invoice.client_id, routes_.clients_from);
        if (!who.ok()) {
            return result_t::failure(who.st);
        }
        auto c = state::get_entity(s, ctx.b, "client", who.value);
        if (!c.ok()) {
            return result_t::failure(c.st);
        }
        if (c.value) {
            l.client = mappings::client_from_json(json::parse(*c.value, nullptr, false), error);
        }
    }
    bool sms_off = false;
    if (l.client && !l.client->contact.mobile.empty()) {
        sms_off = suppressed(s, ctx.b, "sms:" + l.client->contact.mobile);
    }
    l.view = adapt(l.invoice, l.client ? &*l.client : nullptr, planner_.config(), sms_off);
    auto st = state::get_entity(s, ctx.b, "followup", invoice_id);
    if (!st.ok()) {
        return result_t::failure(st.st);
    }
    l.state.invoice_id = std::string(invoice_id);
    if (st.value && !decode(*st.value, l.state)) {
        return result_t::failure(state::status::failure(
            "stored follow-up state of " + std::string(invoice_id) + " is unreadable"));
    }
    l.stored = std::move(st.value);
    return {state::status::success(), std::move(l)};
}

state::status followup_rule::apply(const plan_result& r,
                                   const loaded& l,
                                   context& ctx,
                                   const json* reply) const {
    const auto& id = l.invoice.id;
    // A sequence the step left as it was (most re-observations of an invoice) is not rewritten.
    if (auto row = encode(r.state); !l.stored || *l.stored != row) {
        state::put_entity(ctx.b, "followup", id, row);
    }
    for (const auto& d : r.decisions) {
        ctx.audit.append(ctx.b, ctx.now, audit_line(id, d, ctx.now));
        if (metrics_ != nullptr) {
            metrics_
                ->get_counter("billsync_followup_decisions_total",
                              "Follow-up decisions by kind (touch, cancel, pause, restart, ...).",
                              {{"decision", std::string(to_string(d.kind))}})
                .inc();
        }
    }
    auto skip = [&](const planned_action& a, std::string why) {
        decision d{decision_kind::skip, a.touch, std::move(why)};
        ctx.audit.append(ctx.b, ctx.now, audit_line(id, d, ctx.now));
    };
    // A touch carries the sending window and a deadline, so a retry, a wait for capacity or a
    // recovery after a crash never reaches the client outside the window, nor days late.
    const auto window = touch_window();
    auto enqueue = [&](const std::string& key,
                       const std::string& connector,
                       std::string kind,
                       const json& payload) -> state::status {
        state::action act;
        act.id = key;
        act.connector = connector;
        act.kind = std::move(kind);
        act.payload = payload.dump();
        if (payload.value("touch", 0) > 0 || payload.value("reminder", 0) > 0) {
            act.window = window;
            act.deadline = ctx.now + touch_deadline;
        }
        return ctx.enqueue(std::move(act)).st;
    };
    for (const auto& a : r.actions) {
        const bool sms = a.kind == action_kind::sms || (a.kind == action_kind::ack && a.sms);
        if (a.kind == action_kind::task) {
            json task{{"key", a.key},
                      {"title", a.subject},
                      {"body", a.body},
                      {"invoice", id},
                      {"invoice_number", l.invoice.number},
                      {"client", l.invoice.client_id},
                      {"touch", a.touch},
                      {"status", "open"},
                      {"created_at", util::format_rfc3339(ctx.now)}};
            if (reply != nullptr && a.template_id == "dispute") {
                task["reply"] = *reply;  // the client's words, as received
            }
            if (auto st = external_task(task, l.invoice.client_id, ctx); !st.ok) {
                return st;
            }
            state::put_entity(ctx.b, "task", a.key, task.dump());
            ctx.audit.append(ctx.b,
                             ctx.now,
                             json{{"rule", "followup"},
                                  {"invoice", id},
                                  {"decision", "task_created"},
                                  {"task", a.key},
                                  {"title", a.subject}}
                                 .dump());
            if (!routes_.coordinator_email.empty() && !routes_.email.empty()) {
                if (auto st = enqueue(a.key + "/coordinator",
                                      routes_.email,
                                      "email.send",
                                      json{{"to", routes_.coordinator_email},
                                           {"subject", a.subject},
                                           {"text", a.body},
                                           {"delivery_id", a.key + "/coordinator"},
                                           {"invoice", id}});
                    !st.ok) {
                    return st;
                }
            }
            continue;
        }
        if (sms) {
            if (routes_.sms.empty()) {
                skip(a, "sms: no SMS connector is configured");
                continue;
            }
            if (suppressed(*ctx.store, ctx.b, "sms:" + a.to)) {
                skip(a, "sms: " + a.to + " opted out");
                continue;
            }
            json payload{{"to", a.to},
                         {"body", a.body},
                         {"delivery_id", a.key},
                         {"invoice", id},
                         {"touch", a.touch}};
            if (a.reminder > 0) {
                payload["reminder"] = a.reminder;
            }
            if (auto st = enqueue(a.key, routes_.sms, "sms.send", payload); !st.ok) {
                return st;
            }
            continue;
        }
        if (routes_.email.empty()) {
            skip(a, "email: no email connector is configured");
            continue;
        }
        if (suppressed(*ctx.store, ctx.b, "email:" + lower(a.to))) {
            skip(a, "email: " + a.to + " is on the suppression list");
            continue;
        }
        json payload{{"to", a.to},
                     {"to_name", l.view.client_name},
                     {"subject", a.subject},
                     {"text", a.body},
                     {"delivery_id", a.key},
                     {"invoice", id},
                     {"touch", a.touch}};
        if (a.reminder > 0) {
            payload["reminder"] = a.reminder;
        }
        if (!routes_.reply_to.empty()) {
            payload["reply_to"] = reply_address(routes_.reply_to, routes_.reply_key, id);
            state::put_entity(ctx.b, "followup_reply", reply_token(routes_.reply_key, id), id);
        }
        if (auto st = enqueue(a.key, routes_.email, "email.send", std::move(payload)); !st.ok) {
            return st;
        }
    }
    for (const auto& t : r.timers) {
        auto st = t.cancel
                      ? ctx.timers.cancel(ctx.b, t.name)
                      : ctx.timers.schedule(ctx.b, t.name, t.due, json{{"invoice", id}}.dump());
        if (!st.ok) {
            return st;
        }
    }
    return state::status::success();
}

state::status followup_rule::external_task(json& task,
                                           const std::string& client_id,
                                           context& ctx) const {
    if (routes_.tasks.empty()) {
        return state::status::success();
    }
    const auto key = text_of(task, "key");
    // The client as the task system knows it: the linked client of the same party, or the client
    // itself when that system wrote it.
    auto peer = state::identity::counterpart(*ctx.store, &ctx.b, client_id, routes_.tasks);
    if (!peer.ok()) {
        return peer.st;
    }
    auto remote =
        state::remote_id(*ctx.store, ctx.b, peer.value ? *peer.value : client_id, routes_.tasks);
    if (!remote.ok()) {
        return remote.st;
    }
    if (!remote.value) {
        const auto cause = "client " + client_id + " is not linked to a client in " + routes_.tasks;
        const bool again =
            task.contains("external") && text_of(task["external"], "state") == "waiting";
        task["external"] = {{"connector", routes_.tasks}, {"state", "waiting"}, {"cause", cause}};
        if (again) {
            return state::status::success();
        }
        ctx.audit.append(ctx.b,
                         ctx.now,
                         json{{"rule", "followup"},
                              {"decision", "task_waiting"},
                              {"task", key},
                              {"connector", routes_.tasks},
                              {"cause", cause}}
                             .dump());
        // Listed with the identity exceptions (billsync identities list) until someone links it.
        return state::identity::need_counterpart(
            *ctx.store, ctx.b, client_id, routes_.tasks, "followup task " + key, ctx.now);
    }
    // The cross-reference is "<type>/<vendor key>"; the task system wants its own key.
    const auto& ref = *remote.value;
    const auto client_key =
        ref.substr(ref.rfind('/') == std::string::npos ? 0 : ref.rfind('/') + 1);
    state::action act;
    act.id = key + "/task";
    act.connector = routes_.tasks;
    act.kind = "task.create";
    act.payload = json{
        {"title", text_of(task, "title")},
        {"client_key", client_key},
        {"description", text_of(task, "body")},
        {"task", key}}.dump();
    if (auto added = ctx.enqueue(std::move(act)); !added.ok()) {
        return added.st;
    }
    task["external"] = {
        {"connector", routes_.tasks}, {"state", "queued"}, {"action", key + "/task"}};
    ctx.audit.append(ctx.b,
                     ctx.now,
                     json{{"rule", "followup"},
                          {"decision", "task_queued"},
                          {"task", key},
                          {"connector", routes_.tasks},
                          {"client_key", client_key}}
                         .dump());
    return state::status::success();
}

state::status followup_rule::retry_external_tasks(std::string_view client_id, context& ctx) const {
    if (routes_.tasks.empty()) {
        return state::status::success();
    }
    // The tasks of the client's party that wait for a counterpart (few: tasks are rare).
    std::set<std::string, std::less<>> party{std::string(client_id)};
    if (auto m = state::identity::members_of(*ctx.store, &ctx.b, client_id); m.ok()) {
        for (const auto& x : m.value) {
            party.insert(x.client);
        }
    }
    std::vector<json> waiting;
    auto st = state::for_each_entity(*ctx.store, "task", [&](std::string_view, std::string_view v) {
        auto j = json::parse(v, nullptr, false);
        if (j.is_object() && j.contains("external") && j["external"].is_object() &&
            text_of(j["external"], "state") == "waiting" && party.contains(text_of(j, "client"))) {
            waiting.push_back(std::move(j));
        }
        return true;
    });
    if (!st.ok) {
        return st;
    }
    for (auto& task : waiting) {
        // Read through the batch: this step may have changed the task already.
        auto row = state::get_entity(*ctx.store, ctx.b, "task", text_of(task, "key"));
        if (!row.ok()) {
            return row.st;
        }
        if (row.value) {
            task = json::parse(*row.value, nullptr, false);
        }
        if (!task.is_object() ||
            text_of(task.value("external", json::object()), "state") != "waiting") {
            continue;
        }
        if (auto s2 = external_task(task, text_of(task, "client"), ctx); !s2.ok) {
            return s2;
        }
        if (text_of(task["external"], "state") == "queued") {
            state::put_entity(ctx.b, "task", text_of(task, "key"), task.dump());
        }
    }
    return state::status::success();
}

state::status followup_rule::observe(std::string_view invoice_id, context& ctx) const {
    auto l = load(invoice_id, ctx);
    if (!l.ok()) {
        return l.st;
    }
    if (!l.value || l.value->invoice.status == mappings::invoice_status::draft) {
        return state::status::success();
    }
    const auto r = planner_.observe(l.value->state, l.value->view, ctx.now);
    return apply(r, *l.value, ctx);
}

state::status followup_rule::on_reply(const std::vector<std::string>& invoice_ids,
                                      bool verified,
                                      std::string_view text,
                                      std::string_view channel,
                                      std::string_view from,
                                      context& ctx) const {
    const json reply{{"from", from},
                     {"channel", channel},
                     {"received_at", util::format_rfc3339(ctx.now)},
                     {"text", text}};
    for (const auto& id : invoice_ids) {
        auto l = load(id, ctx);
        if (!l.ok()) {
            return l.st;
        }
        if (!l.value) {
            continue;
        }
        const auto r = planner_.on_reply(
            l.value->state, l.value->view, text, channel, ctx.now, from, verified);
        if (auto st = apply(r, *l.value, ctx, &reply); !st.ok) {
            return st;
        }
    }
    return state::status::success();
}

state::result<plan_client> followup_rule::plan_snapshot(std::string_view client_id,
                                                        const payment_plan& plan,
                                                        context& ctx,
                                                        std::string_view changed_invoice) const {
    using result_t = state::result<plan_client>;
    plan_client client;
    client.id = std::string(client_id);
    if (auto row = state::get_entity(*ctx.store, ctx.b, "client", client_id);
        row.ok() && row.value) {
        std::string error;
        if (auto cl = mappings::client_from_json(json::parse(*row.value, nullptr, false), error)) {
            client.name = cl->display_name;
            client.email = cl->contact.billing_email;
        }
    }
    // The open balance: the client's open invoices in the plan's currency, from the ledger the
    // follow-up reads ([sources] invoices). Only invoices with a balance can count: they are
    // found through their index, whose rows carry each invoice's client (state/entity_index.hpp),
    // not by reading every invoice the firm ever had; and through the batch, where this step's
    // changes (the invoice that changed, one re-opened beside it) are not committed yet.
    std::set<std::string, std::less<>> ids;
    if (!changed_invoice.empty()) {
        ids.emplace(changed_invoice);
    }
    const auto open_prefix = state::keys::join(state::entity_index::invoice_open, "");
    const auto of_client = [&](std::string_view key, std::string_view v) {
        if (text_of(json::parse(v, nullptr, false), "client_id") == client_id) {
            ids.emplace(key.substr(open_prefix.size()));
        }
        return true;
    };
    if (auto st = ctx.store->for_each(ctx.b, state::cf::entities, open_prefix, of_client); !st.ok) {
        return result_t::failure(st);
    }
    for (const auto& id : ids) {
        auto row = state::get_entity(*ctx.store, ctx.b, "invoice", id);
        if (!row.ok()) {
            return result_t::failure(row.st);
        }
        if (!row.value) {
            continue;
        }
        const auto j = json::parse(*row.value, nullptr, false);
        if (!j.is_object() || text_of(j, "client_id") != client_id) {
            continue;
        }
        std::string error;
        auto inv = mappings::invoice_from_json(j, error);
        if (!inv || inv->deleted || inv->status != mappings::invoice_status::open ||
            inv->currency != plan.currency) {
            continue;
        }
        if (!routes_.invoices_from.empty() && !inv->source.system.empty() &&
            inv->source.system != routes_.invoices_from) {
            continue;
        }
        if (client.email.empty()) {
            client.email = inv->billing_email;
        }
        client.open_balance += inv->balance.minor;
    }
    return {state::status::success(), std::move(client)};
}

std::optional<std::string> followup_rule::recheck_plan(const json& p, context& ctx) const {
    const auto client_id = text_of(p, "client");
    const auto k = p.value("installment", 0);
    const auto what = text_of(p, "plan_message");
    const auto& plans = planner_.config().payment_plans;
    const auto plan = plans.find(client_id);
    if (plan == plans.end() || k <= 0 ||
        static_cast<std::size_t>(k) > plan->second.installments.size()) {
        return "client " + client_id + " has no such payment-plan installment any more";
    }
    auto client = plan_snapshot(client_id, plan->second, ctx, {});
    auto row = state::get_entity(*ctx.store, ctx.b, "followup_plan", client_id);
    plan_state st;
    if (!client.ok() || !row.ok() || !row.value || !decode_plan(*row.value, st)) {
        return std::nullopt;  // cannot tell: the send goes ahead as decided
    }
    std::int64_t due = 0;
    for (int i = 0; i < k; ++i) {
        due += plan->second.installments[static_cast<std::size_t>(i)].amount;
    }
    if (plan_paid(st, client.value) >= due) {
        return "installment " + std::to_string(k) + " of client " + client_id +
               " was paid meanwhile" + (what == "missed" ? " (no missed notice)" : "");
    }
    return std::nullopt;
}

state::status followup_rule::observe_plan(std::string_view client_id,
                                          context& ctx,
                                          std::string_view changed_invoice) const {
    const auto& cfg = planner_.config();
    const auto plan = cfg.payment_plans.find(client_id);
    if (plan == cfg.payment_plans.end()) {
        return state::status::success();
    }
    auto snapshot = plan_snapshot(client_id, plan->second, ctx, changed_invoice);
    if (!snapshot.ok()) {
        return snapshot.st;
    }
    const auto& client = snapshot.value;
    plan_state state;
    state.client_id = client.id;
    if (auto row = state::get_entity(*ctx.store, ctx.b, "followup_plan", client_id); !row.ok()) {
        return row.st;
    } else if (row.value && !decode_plan(*row.value, state)) {
        return state::status::failure("stored payment-plan state of " + std::string(client_id) +
                                      " is unreadable");
    }
    const auto r = plan_installments(cfg, planner_.zone(), plan->second, state, client, ctx.now);
    if (r.state == state && r.decisions.empty() && r.actions.empty() && r.timers.empty()) {
        return state::status::success();
    }
    state::put_entity(ctx.b, "followup_plan", client_id, encode(r.state));
    for (const auto& d : r.decisions) {
        ctx.audit.append(ctx.b, ctx.now, plan_audit_line(client_id, d, ctx.now));
    }
    const auto window = touch_window();
    for (const auto& a : r.actions) {
        if (a.kind == action_kind::task) {
            json task{{"key", a.key},
                      {"title", a.subject},
                      {"body", a.body},
                      {"client", client.id},
                      {"installment", a.reminder},
                      {"status", "open"},
                      {"created_at", util::format_rfc3339(ctx.now)}};
            if (auto st = external_task(task, client.id, ctx); !st.ok) {
                return st;
            }
            state::put_entity(ctx.b, "task", a.key, task.dump());
            ctx.audit.append(ctx.b,
                             ctx.now,
                             json{{"rule", "followup"},
                                  {"client", client.id},
                                  {"payment_plan", true},
                                  {"decision", "task_created"},
                                  {"task", a.key},
                                  {"title", a.subject}}
                                 .dump());
            if (routes_.coordinator_email.empty() || routes_.email.empty()) {
                continue;
            }
            state::action act;
            act.id = a.key + "/coordinator";
            act.connector = routes_.email;
            act.kind = "email.send";
            act.payload = json{
                {"to", routes_.coordinator_email},
                {"subject", a.subject},
                {"text", a.body},
                {"delivery_id", act.id},
                {"client",
                 client.id}}.dump();
            if (auto st = ctx.enqueue(std::move(act)).st; !st.ok) {
                return st;
            }
            continue;
        }
        if (routes_.email.empty()) {
            ctx.audit.append(
                ctx.b,
                ctx.now,
                plan_audit_line(
                    client_id,
                    {decision_kind::skip, a.reminder, "email: no email connector is configured"},
                    ctx.now));
            continue;
        }
        if (suppressed(*ctx.store, ctx.b, "email:" + lower(a.to))) {
            ctx.audit.append(ctx.b,
                             ctx.now,
                             plan_audit_line(client_id,
                                             {decision_kind::skip,
                                              a.reminder,
                                              "email: " + a.to + " is on the suppression list"},
                                             ctx.now));
            continue;
        }
        state::action act;
        act.id = a.key;
        act.connector = routes_.email;
        act.kind = "email.send";
        act.payload =
            json{{"to", a.to},
                 {"to_name", client.name},
                 {"subject", a.subject},
                 {"text", a.body},
                 {"delivery_id", a.key},
                 {"client", client.id},
                 {"installment", a.reminder},
                 {"plan_message", a.template_id == "payment_plan.missed" ? "missed" : "reminder"}}
                .dump();
        act.window = window;
        act.deadline = ctx.now + touch_deadline;
        if (auto st = ctx.enqueue(std::move(act)).st; !st.ok) {
            return st;
        }
    }
    for (const auto& t : r.timers) {
        auto st = t.cancel ? ctx.timers.cancel(ctx.b, t.name)
                           : ctx.timers.schedule(
                                 ctx.b, t.name, t.due, json{{"client", client.id}}.dump());
        if (!st.ok) {
            return st;
        }
    }
    return state::status::success();
}

state::status followup_rule::on_change(const mappings::change& c, context& ctx) const {
    if (!planner_.config().enabled || ctx.store == nullptr) {
        return state::status::success();
    }
    if (c.entity_type == "invoice") {
        if (auto st = observe(c.entity_id, ctx); !st.ok) {
            return st;
        }
        if (planner_.config().payment_plans.empty()) {
            return state::status::success();
        }
        auto row = state::get_entity(*ctx.store, ctx.b, "invoice", c.entity_id);
        if (!row.ok() || !row.value) {
            return row.st;
        }
        const auto client = text_of(json::parse(*row.value, nullptr, false), "client_id");
        return client.empty() ? state::status::success() : observe_plan(client, ctx, c.entity_id);
    }
    if (c.entity_type == "client") {
        if (auto st = observe_plan(c.entity_id, ctx); !st.ok) {
            return st;
        }
        if (auto st = retry_external_tasks(c.entity_id, ctx); !st.ok) {
            return st;
        }
    }
    // Invoices with a live sequence (or still to be observed) of clients matching `match`.
    auto invoices_of = [&](const std::function<bool(const mappings::client&)>& match) {
        std::vector<std::string> ids;
        std::set<std::string> clients;
        state::for_each_entity(*ctx.store, "client", [&](std::string_view id, std::string_view v) {
            std::string error;
            auto cl = mappings::client_from_json(json::parse(v, nullptr, false), error);
            if (cl && match(*cl)) {
                clients.insert(std::string(id));
            }
            return true;
        });
        if (clients.empty()) {
            return ids;
        }
        state::for_each_entity(*ctx.store, "invoice", [&](std::string_view id, std::string_view v) {
            const auto j = json::parse(v, nullptr, false);
            if (j.is_object() && clients.contains(text_of(j, "client_id"))) {
                ids.emplace_back(id);
            }
            return true;
        });
        return ids;
    };
    const auto* suppression = c.as<mappings::suppression>();
    if (c.entity_type == "client" || suppression != nullptr) {
        std::vector<std::string> ids;
        if (c.entity_type == "client") {
            // Invoices of the client and of every client linked to it (its party).
            std::set<std::string, std::less<>> party{c.entity_id};
            if (auto m = state::identity::members_of(*ctx.store, &ctx.b, c.entity_id); m.ok()) {
                for (const auto& x : m.value) {
                    party.insert(x.client);
                }
            }
            ids =
                invoices_of([&party](const mappings::client& cl) { return party.contains(cl.id); });
        } else if (suppression->via == mappings::channel::sms) {
            const auto& number = suppression->address;
            ids = invoices_of(
                [&number](const mappings::client& cl) { return cl.contact.mobile == number; });
        }
        for (const auto& id : ids) {
            if (auto st = observe(id, ctx); !st.ok) {
                return st;
            }
        }
        return state::status::success();
    }
    const auto* inbound = c.as<mappings::inbound_message>();
    if (inbound == nullptr) {
        return state::status::success();
    }
    if (inbound->via == mappings::channel::sms) {
        if (!inbound->keyword.empty()) {
            return state::status::success();  // STOP/START/HELP: the suppression list's business
        }
        const auto& from = inbound->from;
        const auto ids =
            invoices_of([&from](const mappings::client& cl) { return cl.contact.mobile == from; });
        return on_reply(ids, true, inbound->text, "sms", inbound->from, ctx);
    }
    {
        std::vector<std::string> ids;
        // A keyed token in the reply address names the invoice, whoever sent the mail (only we
        // can make one); an old unkeyed one ("inv-…") could be forged: unverified.
        bool verified = true;
        for (const auto& address : inbound->to) {
            const auto a = bare_address(address);
            const auto plus = a.find('+');
            const auto at = a.find('@');
            if (plus == std::string::npos || at == std::string::npos || plus > at) {
                continue;
            }
            const auto token = a.substr(plus + 1, at - plus - 1);
            auto row = state::get_entity(*ctx.store, ctx.b, "followup_reply", token);
            if (row.ok() && row.value) {
                ids.push_back(*row.value);
                verified = verified && !token.starts_with("inv-");
            }
        }
        if (ids.empty()) {
            // Otherwise: the sender is a client's billing address and the subject names the
            // invoice number (as a whole word). The From address is only trusted when the
            // receiving side verified it (SPF and DKIM passed).
            verified = inbound->sender_verified;
            const auto from = bare_address(inbound->from);
            const auto& subject = inbound->subject;
            const auto candidates = invoices_of([&from](const mappings::client& cl) {
                return !from.empty() && lower(cl.contact.billing_email) == from;
            });
            for (const auto& id : candidates) {
                auto row = state::get_entity(*ctx.store, ctx.b, "invoice", id);
                if (!row.ok() || !row.value) {
                    continue;
                }
                const auto number = text_of(json::parse(*row.value, nullptr, false), "number");
                if (mentions_number(subject, number)) {
                    ids.push_back(id);
                }
            }
        }
        return on_reply(
            ids, verified, inbound->subject + "\n" + inbound->text, "email", inbound->from, ctx);
    }
}

state::status followup_rule::on_timer(const state::timer& t, context& ctx) const {
    if (auto client = plan_timer_client(t.name)) {
        return ctx.store == nullptr ? state::status::success() : observe_plan(*client, ctx);
    }
    const auto p = json::parse(t.payload, nullptr, false);
    auto id = p.is_object() ? text_of(p, "invoice") : std::string();
    if (id.empty()) {
        if (auto from_name = touch_invoice(t.name)) {
            id = *from_name;
        }
    }
    if (id.empty() || ctx.store == nullptr) {
        return state::status::success();
    }
    auto l = load(id, ctx);
    if (!l.ok()) {
        return l.st;
    }
    if (!l.value) {
        ctx.audit.append(ctx.b,
                         ctx.now,
                         json{{"rule", "followup"},
                              {"invoice", id},
                              {"decision", "timer_ignored"},
                              {"cause", "the invoice is not known"}}
                             .dump());
        return state::status::success();
    }
    const auto r = planner_.on_timer(l.value->state, l.value->view, ctx.now);
    return apply(r, *l.value, ctx);
}

state::status followup_rule::operator_command(std::string_view invoice_id,
                                              std::string_view who,
                                              bool resume,
                                              context& ctx) const {
    auto l = load(invoice_id, ctx);
    if (!l.ok()) {
        return l.st;
    }
    if (!l.value || !l.value->state.seen) {
        return state::status::failure("invoice " + std::string(invoice_id) +
                                      " has no follow-up sequence");
    }
    const auto& v = *l.value;
    return apply(resume ? planner_.resume(v.state, v.view, ctx.now, who)
                        : planner_.stop(v.state, v.view, ctx.now, who),
                 v,
                 ctx);
}

state::status followup_rule::resume(std::string_view invoice_id,
                                    std::string_view who,
                                    context& ctx) const {
    return operator_command(invoice_id, who, true, ctx);
}

state::status followup_rule::stop(std::string_view invoice_id,
                                  std::string_view who,
                                  context& ctx) const {
    return operator_command(invoice_id, who, false, ctx);
}

std::vector<verb_spec> followup_rule::verbs() const {
    return {{"list", "", false, "open sequences: stage, next touch, channels"},
            {"show", "INVOICE", false, "one sequence with its audit trail"},
            {"tasks", "", false, "internal tasks for the billing coordinator"},
            {"plans", "", false, "payment plans: installments, missed ones, next step"},
            {"resume", "INVOICE", true, "resume a paused or stopped sequence"},
            {"stop", "INVOICE", true, "stop a sequence"}};
}

operator_answer followup_rule::view(std::string_view path, const state::store& s) const {
    if (path.empty() || path == "list") {
        return operator_answer::ok(followups_json(s, planner_.config()));
    }
    if (path == "tasks") {
        return operator_answer::ok(tasks_json(s));
    }
    if (path == "plans") {
        return operator_answer::ok(plans_json(s, planner_.config()));
    }
    if (path.starts_with("show/")) {
        const auto invoice = path.substr(5);
        if (auto j = followup_json(s, planner_.config(), invoice)) {
            return operator_answer::ok(std::move(*j));
        }
        return operator_answer::fail(
            404, "not_found", "no follow-up sequence for invoice " + std::string(invoice));
    }
    return rule::view(path, s);
}

operator_answer followup_rule::command(std::string_view verb,
                                       const json& args,
                                       context& ctx) const {
    if (verb != "resume" && verb != "stop") {
        return rule::command(verb, args, ctx);
    }
    if (!args.is_object() || !args.contains("invoice") || !args["invoice"].is_string()) {
        return operator_answer::fail(
            400, "bad_request", R"(expected {"invoice": "<invoice id or number>"})");
    }
    const auto invoice = args["invoice"].get<std::string>();
    const auto who = args.value("who", std::string("status api"));
    const auto id = find_invoice(*ctx.store, invoice);
    const auto unknown = "no follow-up sequence for invoice " + invoice;
    if (!id) {
        return operator_answer::fail(404, "not_found", unknown);
    }
    auto st = verb == "resume" ? resume(*id, who, ctx) : stop(*id, who, ctx);
    if (!st.ok) {
        const bool no_sequence = st.message.ends_with("has no follow-up sequence");
        return operator_answer::fail(404, "not_found", no_sequence ? unknown : st.message);
    }
    auto done = operator_answer::ok(nullptr);
    done.then_view = "show/" + *id;
    return done;
}

std::optional<json> followup_rule::cli_request(std::string_view verb,
                                               const std::vector<std::string>& args,
                                               std::ostream& err) const {
    if (args.empty() || args.front().empty()) {
        err << "followup " << verb << " needs an INVOICE (id or number)\n";
        return std::nullopt;
    }
    return json{{"invoice", args.front()}, {"who", "cli"}};
}

cli_result followup_rule::cli_view(std::string_view verb,
                                   const std::vector<std::string>& args,
                                   const state::store& s,
                                   cli_output format,
                                   std::ostream& out,
                                   std::ostream& err) const {
    const auto plural = [](std::size_t n) { return n == 1 ? "" : "s"; };
    const bool as_json = format == cli_output::json;
    if (verb == "tasks") {
        const auto list = tasks_json(s);
        if (as_json) {
            out << list.dump(2) << "\n";
            return cli_result::ok;
        }
        for (const auto& t : list) {
            out << fmt::format("{}  {}  {}\n",
                               t.value("created_at", ""),
                               t.value("status", ""),
                               t.value("title", ""));
            if (const auto ext = t.find("external"); ext != t.end() && ext->is_object()) {
                const auto state = ext->value("state", "");
                out << fmt::format(
                    "  in {}: {}{}\n",
                    ext->value("connector", ""),
                    state == "queued" ? "sent (action " + ext->value("action", "") + ")" : state,
                    state == "waiting" ? " - " + ext->value("cause", "") : "");
            }
        }
        out << fmt::format("{} task{}\n", list.size(), plural(list.size()));
        return cli_result::ok;
    }
    if (verb == "plans") {
        const auto list = plans_json(s, planner_.config());
        if (as_json) {
            out << list.dump(2) << "\n";
            return cli_result::ok;
        }
        for (const auto& p : list) {
            out << fmt::format("{} ({})  next={} {}\n",
                               p.value("client_name", ""),
                               p.value("client", ""),
                               p["next"].is_string() ? p["next"].get<std::string>() : "-",
                               p["next_at"].is_string() ? p["next_at"].get<std::string>() : "");
            for (const auto& i : p["installments"]) {
                out << fmt::format("  installment {}  due {}  {}  {}\n",
                                   i.value("installment", 0u),
                                   i.value("due", ""),
                                   money_text(i["amount"]),
                                   i.value("status", ""));
            }
        }
        out << fmt::format("{} plan{}\n", list.size(), plural(list.size()));
        return cli_result::ok;
    }
    if (verb == "show") {
        if (args.empty() || args.front().empty()) {
            err << "followup show needs an INVOICE (id or number)\n";
            return cli_result::usage;
        }
        auto j = followup_json(s, planner_.config(), args.front());
        if (!j) {
            err << fmt::format("no follow-up sequence for invoice {}\n", args.front());
            return cli_result::not_found;
        }
        if (as_json) {
            out << j->dump(2) << "\n";
        } else {
            print_sequence(out, *j);
        }
        return cli_result::ok;
    }
    if (verb != "list") {
        return rule::cli_view(verb, args, s, format, out, err);
    }
    const auto list = followups_json(s, planner_.config());
    if (as_json) {
        out << list.dump(2) << "\n";
        return cli_result::ok;
    }
    for (const auto& f : list) {
        out << fmt::format("{:<10} {:<28} {:<10} balance={:<14} next=touch{} {} {} ledger={}\n",
                           f.value("number", "?"),
                           f.value("client_name", f.value("client", "")),
                           f.value("phase", ""),
                           money_text(f.value("balance", json())),
                           f.value("next_touch", 0u),
                           f["next_touch_at"].is_string() ? f["next_touch_at"].get<std::string>()
                                                          : std::string("-"),
                           f.value("next_channels", ""),
                           f.value("ledger", "-"));
    }
    out << fmt::format("{} sequence{}\n", list.size(), plural(list.size()));
    return cli_result::ok;
}

std::unique_ptr<followup_rule> make(const settings& s, const rule_deps& deps, std::string* error) {
    if (!s.enabled) {
        return nullptr;
    }
    auto p = planner::make(s, deps.time_zone, error);
    if (!p) {
        return nullptr;
    }
    // The configured connector if it is available, else the first available one of the channel.
    auto pick = [&deps](const std::string& configured, std::string_view channel) {
        for (const auto& c : deps.connectors) {
            if (configured.empty() ? c.channel == channel : c.name == configured) {
                return c.name;
            }
        }
        return std::string();
    };
    channel_routes routes;
    routes.email = pick(s.email_connector, "email");
    routes.sms = pick(s.sms_connector, "sms");
    routes.reply_to = s.reply_to;
    routes.reply_key = deps.reply_key;
    routes.coordinator_email = s.coordinator_email;
    if (!s.task_connector.empty()) {
        const auto it = std::find_if(deps.connectors.begin(),
                                     deps.connectors.end(),
                                     [&](const auto& c) { return c.name == s.task_connector; });
        if (it == deps.connectors.end() ||
            std::find(it->actions.begin(), it->actions.end(), "task.create") == it->actions.end()) {
            if (error != nullptr) {
                *error = "[followup] task_connector '" + s.task_connector +
                         "' is not an enabled connector that creates tasks (task.create)";
            }
            return nullptr;
        }
        routes.tasks = s.task_connector;
    }
    routes.invoices_from = deps.source_of("invoices");
    routes.clients_from = deps.source_of("clients");
    return std::make_unique<followup_rule>(std::move(*p), std::move(routes), deps.metrics);
}

}  // namespace billsync::workflows::followup
