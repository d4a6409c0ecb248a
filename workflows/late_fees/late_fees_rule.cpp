#include "workflows/late_fees/late_fees_rule.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "mappings/entity.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "state/tables.hpp"
#include "workflows/action_key.hpp"
#include "workflows/followup/planner.hpp"
#include "workflows/late_fees/fee.hpp"
#include "workflows/rows.hpp"

namespace billsync::workflows::late_fees {

namespace {

using json = nlohmann::json;
constexpr std::string_view rule_name = "late_fees";
constexpr std::string_view timer_prefix = "late_fees/";
// The start of the line billsync writes on a fee invoice; an invoice of such lines is a fee.
constexpr std::string_view fee_line_prefix = "Late fee on invoice ";
constexpr std::string_view row_type = "late_fee";

// "f-" and 10 hex digits of SHA-256 of invoice/period: short to type, stable across replays.
std::string fee_id_for(std::string_view invoice, std::uint32_t period) {
    return short_id("f-", fmt::format("{}/{}", invoice, period));
}

date::year_month_day to_date(const mappings::civil_date& d) {
    return date::year_month_day{
        date::sys_days(date::days(std::chrono::sys_days(d).time_since_epoch().count()))};
}

std::string civil(date::year_month_day d) {
    return mappings::format_civil_date(mappings::civil_date{
        std::chrono::sys_days(std::chrono::days(date::sys_days(d).time_since_epoch().count()))});
}

std::optional<date::year_month_day> parse_day(std::string_view text) {
    auto d = mappings::parse_civil_date(text);
    if (!d) {
        return std::nullopt;
    }
    return to_date(*d);
}

date::year_month_day local_today(const date::time_zone* tz, util::instant t) {
    return date::year_month_day{date::sys_days(local_day(tz, t).time_since_epoch())};
}

util::instant at_local(const date::time_zone* tz, date::year_month_day day, int hour) {
    return workflows::at_local(tz, date::local_days(date::sys_days(day).time_since_epoch()), hour);
}

void audit(context& ctx, std::string_view decision, json extra) {
    workflows::audit(ctx, rule_name, decision, std::move(extra));
}

// The outcome of the fee's invoice.create, from the outbox.
json with_result(json period, const state::store& s) {
    const auto key = text_of(period, "action");
    if (key.empty()) {
        return period;
    }
    if (const auto a = queued_action(s, key)) {
        period["ledger_action"] = json{{"state", state::to_string(a->state)},
                                       {"attempts", a->attempts},
                                       {"result", a->result},
                                       {"last_error", a->last_error}};
        if (a->state == state::action_state::done && text_of(period, "state") == "approved") {
            period["state"] = "created";
            period["ledger_invoice"] = a->result;
        } else if (a->state == state::action_state::dead) {
            period["state"] = "failed";
        }
    }
    return period;
}

}  // namespace

struct late_fees_rule::impl {
    const late_fees_rule& r;
    const settings& s;

    struct loaded {
        mappings::invoice invoice;
        std::optional<mappings::client> client;
    };

    state::result<std::optional<loaded>> load(std::string_view invoice_id, context& ctx) const {
        using result_t = state::result<std::optional<loaded>>;
        auto row = state::get_entity(*ctx.store, ctx.b, "invoice", invoice_id);
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
        loaded l;
        l.invoice = std::move(*inv);
        if (!l.invoice.client_id.empty()) {
            auto c = state::get_entity(*ctx.store, ctx.b, "client", l.invoice.client_id);
            if (!c.ok()) {
                return result_t::failure(c.st);
            }
            if (c.value) {
                l.client = mappings::client_from_json(json::parse(*c.value, nullptr, false), error);
            }
        }
        return {state::status::success(), std::move(l)};
    }

    // A late-fee invoice: one billsync created (every line is its "Late fee on invoice …" line),
    // or, with a fee `item` configured, one whose every line bills that item (a fee the
    // coordinator raised by hand). Fees are never charged on fees.
    bool is_fee_invoice(const mappings::invoice& inv) const {
        bool any = false;
        for (const auto& l : inv.lines) {
            if (l.kind == mappings::line_kind::description) {
                continue;
            }
            const bool ours = l.description.starts_with(fee_line_prefix);
            const bool fee_item = !s.item.empty() && l.item_ref == s.item;
            if (!ours && !fee_item) {
                return false;
            }
            any = true;
        }
        return any;
    }

    // Whether this invoice can still be charged at all (nullopt), or why not.
    std::optional<std::string> closed(const mappings::invoice& inv) const {
        if (inv.deleted) {
            return "the invoice was deleted";
        }
        if (inv.status == mappings::invoice_status::voided) {
            return "the invoice was voided";
        }
        if (inv.status == mappings::invoice_status::paid || inv.balance.minor <= 0) {
            return "the invoice is paid";
        }
        if (inv.status != mappings::invoice_status::open) {
            return "the invoice is not open";
        }
        if (!inv.due_date) {
            return "the invoice has no due date";
        }
        if (inv.currency != s.currency) {
            return "the invoice is in " + inv.currency + ", the policy in " + s.currency;
        }
        if (is_fee_invoice(inv)) {
            return "the invoice is itself a late fee (no fee is charged on a fee)";
        }
        if (!r.invoices_from_.empty() && !inv.source.system.empty() &&
            inv.source.system != r.invoices_from_) {
            return "the invoice is not from the invoices source";
        }
        if (r.read_only_.contains(inv.source.system)) {
            return "the invoice is a read-only fact of " + inv.source.system +
                   " (it creates no invoices: a fee cannot be charged there)";
        }
        return std::nullopt;
    }

    // Why this period is skipped (the invoice stays chargeable later), or nullopt.
    state::result<std::optional<std::string>> standing(const loaded& l, context& ctx) const {
        using result_t = state::result<std::optional<std::string>>;
        const auto& inv = l.invoice;
        if (s.opt_out_clients.contains(inv.client_id)) {
            return {state::status::success(), "the client is in opt_out_clients"};
        }
        if (l.client) {
            for (const auto& t : l.client->tags) {
                if (!s.opt_out_tag.empty() && same_tag(t, s.opt_out_tag)) {
                    return {state::status::success(), "the client is tagged " + s.opt_out_tag};
                }
            }
            if (l.client->payment_plan) {
                return {state::status::success(), "the client is on a payment plan"};
            }
        }
        if (!inv.client_id.empty()) {
            auto plan = state::get_entity(*ctx.store, ctx.b, "followup_plan", inv.client_id);
            if (!plan.ok()) {
                return result_t::failure(plan.st);
            }
            if (plan.value) {
                return {state::status::success(), "the client is on a payment plan"};
            }
        }
        auto seq = state::get_entity(*ctx.store, ctx.b, "followup", inv.id);
        if (!seq.ok()) {
            return result_t::failure(seq.st);
        }
        followup::sequence_state st;
        if (seq.value && followup::decode(*seq.value, st)) {
            if (st.current == followup::phase::paused) {
                return {state::status::success(),
                        "the invoice is disputed (its follow-up is paused)"};
            }
            if (st.current == followup::phase::excluded) {
                return {state::status::success(), "the client is on a payment plan"};
            }
        }
        return {state::status::success(), std::nullopt};
    }

    state::result<date::year_month_day> start_day(context& ctx) const {
        if (s.start) {
            return {state::status::success(), *s.start};
        }
        auto meta = read_row(*ctx.store, &ctx.b, "late_fee_meta", "policy");
        if (!meta.ok()) {
            return state::result<date::year_month_day>::failure(meta.st);
        }
        if (meta.value) {
            if (auto d = parse_day(text_of(*meta.value, "start"))) {
                return {state::status::success(), *d};
            }
        }
        return {state::status::success(), local_today(zone_of(s.time_zone), ctx.now)};
    }

    static std::uint32_t last_period(const std::optional<json>& row) {
        std::uint32_t k = 0;
        if (row && row->contains("periods") && (*row)["periods"].is_array()) {
            for (const auto& p : (*row)["periods"]) {
                k = std::max(k, static_cast<std::uint32_t>(int_of(p, "period")));
            }
        }
        return k;
    }

    static std::int64_t charged(const json& row) {
        std::int64_t sum = 0;
        for (const auto& p : row.value("periods", json::array())) {
            const auto st = text_of(p, "state");
            if (st == "pending" || st == "approved") {
                sum += int_of(p, "fee_minor");
            }
        }
        return sum;
    }

    // The timer of the next period not assessed yet, or none when the invoice cannot be charged.
    state::status plan(const mappings::invoice& inv, context& ctx) const {
        const auto timer = std::string(timer_prefix) + inv.id;
        if (closed(inv)) {
            return ctx.timers.cancel(ctx.b, timer);
        }
        auto row = read_row(*ctx.store, &ctx.b, row_type, inv.id);
        if (!row.ok()) {
            return row.st;
        }
        if (row.value && row.value->value("done", false)) {
            return ctx.timers.cancel(ctx.b, timer);  // the cap is reached
        }
        auto from = start_day(ctx);
        if (!from.ok()) {
            return from.st;
        }
        const auto due = to_date(*inv.due_date);
        const auto k =
            std::max(last_period(row.value) + 1, first_period_from(due, s.grace_days, from.value));
        const auto when =
            at_local(zone_of(s.time_zone), period_start(due, s.grace_days, k), s.run_hour);
        return ctx.timers.schedule(
            ctx.b, timer, when, json{{"invoice", inv.id}, {"period", k}}.dump());
    }

    state::status write_row(context& ctx, const std::string& invoice, const json& row) const {
        state::put_entity(ctx.b, row_type, invoice, row.dump());
        return state::status::success();
    }

    state::status queue_fee(context& ctx,
                            const json& row,
                            json& period,
                            const std::string& by) const {
        const auto today = local_today(zone_of(s.time_zone), ctx.now);
        const auto due = date::year_month_day{date::sys_days(today) + date::days(s.terms_days)};
        const auto action = text_of(period, "action");
        json line{{"description",
                   fmt::format("{}{}, period {} from {}",
                               fee_line_prefix,
                               text_of(row, "number"),
                               int_of(period, "period"),
                               text_of(period, "starts"))},
                  {"amount_minor", int_of(period, "fee_minor")}};
        if (!s.item.empty()) {
            line["item_ref"] = s.item;
        }
        if (!s.account_code.empty()) {
            line["account_code"] = s.account_code;
        }
        if (!s.tax_code.empty()) {
            line["tax_code"] = s.tax_code;
        }
        json payload{
            {"key", action},
            {"client_ref", text_of(row, "client_ref")},
            {"currency", text_of(row, "currency")},
            {"issue_date", civil(today)},
            {"due_date", civil(due)},
            {"memo",
             fmt::format("Late fee, policy {}: {}", s.rate_text, text_of(period, "arithmetic"))},
            {"lines", json::array({line})}};
        state::action a;
        a.id = action;
        a.connector = text_of(row, "ledger");
        a.kind = "invoice.create";
        a.payload = payload.dump();
        const auto invoice = text_of(row, "invoice");
        auto added = ctx.enqueue(std::move(a),
                                 cause{rule_name,
                                       invoice,
                                       static_cast<std::uint64_t>(int_of(period, "period")),
                                       "late fee approved by " + by});
        if (!added.ok()) {
            return added.st;
        }
        period["state"] = "approved";
        period["decided_by"] = by;
        period["decided_at"] = util::format_rfc3339(ctx.now);
        audit(ctx,
              "fee_approved",
              json{{"invoice", invoice},
                   {"fee", text_of(period, "fee")},
                   {"period", int_of(period, "period")},
                   {"by", by},
                   {"action", action},
                   {"ledger", text_of(row, "ledger")},
                   {"fee_minor", int_of(period, "fee_minor")}});
        return state::status::success();
    }

    state::status assess_period(const state::timer& t, context& ctx) const {
        const auto p = json::parse(t.payload, nullptr, false);
        const auto invoice_id = text_of(p, "invoice");
        const auto k = static_cast<std::uint32_t>(int_of(p, "period"));
        if (invoice_id.empty() || k == 0) {
            return state::status::success();
        }
        auto l = load(invoice_id, ctx);
        if (!l.ok()) {
            return l.st;
        }
        if (!l.value) {
            audit(ctx,
                  "no_fee",
                  json{{"invoice", invoice_id},
                       {"period", k},
                       {"why", "the invoice is no longer known"}});
            return state::status::success();
        }
        const auto& inv = l.value->invoice;
        if (auto why = closed(inv)) {
            audit(ctx, "no_fee", json{{"invoice", invoice_id}, {"period", k}, {"why", *why}});
            return state::status::success();
        }
        auto row_r = read_row(*ctx.store, &ctx.b, row_type, invoice_id);
        if (!row_r.ok()) {
            return row_r.st;
        }
        if (last_period(row_r.value) >= k) {
            return plan(inv, ctx);  // assessed already (a replayed timer)
        }
        json row = row_r.value.value_or(json{{"invoice", invoice_id}, {"periods", json::array()}});
        row["number"] = inv.number;
        row["client"] = inv.client_id;
        row["client_name"] = l.value->client ? l.value->client->display_name : std::string();
        row["client_ref"] = inv.client_ref;
        row["currency"] = inv.currency;
        row["ledger"] = inv.source.system;
        const auto due = to_date(*inv.due_date);
        json period{{"period", k},
                    {"fee", fee_id_for(invoice_id, k)},
                    {"starts", civil(period_start(due, s.grace_days, k))},
                    {"balance_minor", inv.balance.minor},
                    {"assessed_at", util::format_rfc3339(ctx.now)}};
        auto standing_r = standing(*l.value, ctx);
        if (!standing_r.ok()) {
            return standing_r.st;
        }
        if (standing_r.value) {
            period["state"] = "skipped";
            period["why"] = *standing_r.value;
            audit(ctx,
                  "fee_skipped",
                  json{{"invoice", invoice_id}, {"period", k}, {"why", *standing_r.value}});
        } else {
            const auto a =
                assess(s, inv.balance.minor, charged(row), mappings::minor_digits(inv.currency));
            period["fee_minor"] = a.fee_minor;
            period["arithmetic"] = a.arithmetic;
            if (a.fee_minor <= 0) {
                period["state"] = "skipped";
                period["why"] = "the cap is reached";
                row["done"] = true;
                audit(ctx,
                      "fee_skipped",
                      json{{"invoice", invoice_id}, {"period", k}, {"why", "the cap is reached"}});
            } else {
                period["action"] = action_key(rule_name, invoice_id, k);
                period["state"] = "pending";
                state::put_entity(ctx.b, "late_fee_id", text_of(period, "fee"), invoice_id);
                state::put_entity(ctx.b, "late_fee_action", text_of(period, "action"), invoice_id);
                audit(ctx,
                      "fee_assessed",
                      json{{"invoice", invoice_id},
                           {"fee", text_of(period, "fee")},
                           {"period", k},
                           {"starts", text_of(period, "starts")},
                           {"policy", s.rate_text},
                           {"arithmetic", a.arithmetic},
                           {"fee_minor", a.fee_minor},
                           {"currency", inv.currency},
                           {"approval", s.auto_approve ? "automatic" : "coordinator"}});
                if (s.auto_approve) {
                    if (auto st = queue_fee(ctx, row, period, "policy (auto_approve)"); !st.ok) {
                        return st;
                    }
                }
            }
        }
        row["periods"].push_back(std::move(period));
        if (auto st = write_row(ctx, invoice_id, row); !st.ok) {
            return st;
        }
        return plan(inv, ctx);
    }

    // The invoice and the index of the period a fee id (or an invoice's id or number with
    // its only pending fee) names.
    state::result<std::optional<std::pair<json, std::size_t>>> find_fee(
        const state::store& st, state::batch* b, std::string_view fee) const {
        using result_t = state::result<std::optional<std::pair<json, std::size_t>>>;
        auto idx = b != nullptr ? state::get_entity(st, *b, "late_fee_id", fee)
                                : state::get_entity(st, "late_fee_id", fee);
        if (!idx.ok()) {
            return result_t::failure(idx.st);
        }
        if (!idx.value) {
            return {state::status::success(), std::nullopt};
        }
        auto row = read_row(st, b, row_type, *idx.value);
        if (!row.ok()) {
            return result_t::failure(row.st);
        }
        if (!row.value) {
            return {state::status::success(), std::nullopt};
        }
        const auto& periods = (*row.value)["periods"];
        for (std::size_t i = 0; i < periods.size(); ++i) {
            if (text_of(periods[i], "fee") == fee) {
                return {state::status::success(), std::make_pair(*row.value, i)};
            }
        }
        return {state::status::success(), std::nullopt};
    }
};

late_fees_rule::late_fees_rule(settings s,
                               std::string invoices_from,
                               std::set<std::string, std::less<>> read_only)
    : s_(std::move(s)),
      invoices_from_(std::move(invoices_from)),
      read_only_(std::move(read_only)) {}

bool late_fees_rule::owns_timer(std::string_view timer_name) const noexcept {
    return timer_name.starts_with(timer_prefix);
}

std::vector<refresh_target> late_fees_rule::before_timer(std::string_view timer_name,
                                                         const state::store& /*s*/) const {
    if (!owns_timer(timer_name)) {
        return {};
    }
    return {refresh_target{"invoice", std::string(timer_name.substr(timer_prefix.size()))}};
}

state::status late_fees_rule::on_start(context& ctx) const {
    impl m{*this, s_};
    auto meta = read_row(*ctx.store, &ctx.b, "late_fee_meta", "policy");
    if (!meta.ok()) {
        return meta.st;
    }
    auto start = m.start_day(ctx);
    if (!start.ok()) {
        return start.st;
    }
    // Every open invoice is planned again when the policy is new or its periods moved (a new
    // start or grace): the invoices that do not change would otherwise never be charged.
    const json wanted{
        {"start", civil(start.value)}, {"grace_days", s_.grace_days}, {"run_hour", s_.run_hour}};
    if (meta.value && *meta.value == wanted) {
        return state::status::success();
    }
    state::put_entity(ctx.b, "late_fee_meta", "policy", wanted.dump());
    audit(ctx,
          "policy",
          json{{"policy", s_.rate_text},
               {"start", civil(start.value)},
               {"grace_days", s_.grace_days}});
    std::vector<mappings::invoice> open;
    auto st =
        state::for_each_entity(*ctx.store, "invoice", [&](std::string_view, std::string_view v) {
            std::string error;
            auto inv = mappings::invoice_from_json(json::parse(v, nullptr, false), error);
            if (inv && !m.closed(*inv)) {
                open.push_back(std::move(*inv));
            }
            return true;
        });
    if (!st.ok) {
        return st;
    }
    for (const auto& inv : open) {
        if (auto p = m.plan(inv, ctx); !p.ok) {
            return p;
        }
    }
    return state::status::success();
}

state::status late_fees_rule::on_change(const mappings::change& c, context& ctx) const {
    const auto* inv = c.as<mappings::invoice>();
    if (inv == nullptr) {
        return state::status::success();
    }
    impl m{*this, s_};
    if (c.what == mappings::change::op::deleted) {
        return ctx.timers.cancel(ctx.b, std::string(timer_prefix) + c.entity_id);
    }
    return m.plan(*inv, ctx);
}

state::status late_fees_rule::on_timer(const state::timer& t, context& ctx) const {
    impl m{*this, s_};
    return m.assess_period(t, ctx);
}

std::optional<std::string> late_fees_rule::recheck(const state::action& a, context& ctx) const {
    if (a.kind != "invoice.create") {
        return std::nullopt;
    }
    auto idx = state::get_entity(*ctx.store, ctx.b, "late_fee_action", a.id);
    if (!idx.ok() || !idx.value) {
        return std::nullopt;
    }
    impl m{*this, s_};
    auto l = m.load(*idx.value, ctx);
    if (!l.ok() || !l.value) {
        return std::nullopt;  // cannot tell: it goes ahead as approved
    }
    const auto& inv = l.value->invoice;
    if (inv.status == mappings::invoice_status::voided || inv.deleted) {
        return "invoice " + inv.number + " was voided since its late fee was approved";
    }
    auto why = m.standing(*l.value, ctx);
    if (why.ok() && why.value && why.value->find("disputed") != std::string::npos) {
        return "invoice " + inv.number + " is disputed since its late fee was approved";
    }
    return std::nullopt;
}

std::vector<verb_spec> late_fees_rule::verbs() const {
    return {
        {"list", "", false, "fees waiting for approval, then the latest decided ones"},
        {"show", "FEE|INVOICE", false, "one fee, or every period of an invoice"},
        {"approve", "FEE --by NAME", true, "approve a fee: it is created in the invoice's ledger"},
        {"reject", "FEE --by NAME [--reason TEXT]", true, "reject a fee: it is never charged"},
    };
}

operator_answer late_fees_rule::view(std::string_view path, const state::store& s) const {
    if (path.empty() || path == "list") {
        json pending = json::array();
        json decided = json::array();
        state::for_each_entity(s, row_type, [&](std::string_view, std::string_view v) {
            auto row = json::parse(v, nullptr, false);
            if (!row.is_object()) {
                return true;
            }
            for (const auto& p : row.value("periods", json::array())) {
                auto item = with_result(p, s);
                item["invoice"] = row.value("invoice", "");
                item["number"] = row.value("number", "");
                item["client"] = row.value("client", "");
                item["client_name"] = row.value("client_name", "");
                item["currency"] = row.value("currency", "");
                (text_of(item, "state") == "pending" ? pending : decided)
                    .push_back(std::move(item));
            }
            return true;
        });
        std::sort(decided.begin(), decided.end(), [](const json& a, const json& b) {
            return std::make_pair(text_of(a, "assessed_at"), text_of(a, "fee")) >
                   std::make_pair(text_of(b, "assessed_at"), text_of(b, "fee"));
        });
        if (decided.size() > 100) {
            decided.erase(decided.begin() + 100, decided.end());
        }
        return operator_answer::ok(json{{"policy", s_.rate_text},
                                        {"approval", s_.auto_approve ? "automatic" : "coordinator"},
                                        {"pending", std::move(pending)},
                                        {"recent", std::move(decided)}});
    }
    if (path.starts_with("show/")) {
        const auto what = path.substr(5);
        impl m{*this, s_};
        auto fee = m.find_fee(s, nullptr, what);
        if (fee.ok() && fee.value) {
            auto item = with_result(fee.value->first["periods"][fee.value->second], s);
            item["invoice"] = fee.value->first.value("invoice", "");
            item["number"] = fee.value->first.value("number", "");
            item["client_name"] = fee.value->first.value("client_name", "");
            item["currency"] = fee.value->first.value("currency", "");
            return operator_answer::ok(item);
        }
        json found;
        state::for_each_entity(s, row_type, [&](std::string_view id, std::string_view v) {
            auto row = json::parse(v, nullptr, false);
            if (row.is_object() && (id == what || row.value("number", "") == what)) {
                for (auto& p : row["periods"]) {
                    p = with_result(p, s);
                }
                found = std::move(row);
                return false;
            }
            return true;
        });
        if (found.is_null()) {
            return operator_answer::fail(
                404, "not_found", "no late fee or invoice " + std::string(what));
        }
        return operator_answer::ok(found);
    }
    return operator_answer::fail(404, "not_found", "no such view");
}

operator_answer late_fees_rule::command(std::string_view verb,
                                        const json& args,
                                        context& ctx) const {
    if (verb != "approve" && verb != "reject") {
        return operator_answer::fail(404, "not_found", "no such command");
    }
    const auto fee = text_of(args, "fee");
    const auto by = text_of(args, "by");
    if (fee.empty() || by.empty()) {
        return operator_answer::fail(400, "bad_request", "'fee' and 'by' are required");
    }
    impl m{*this, s_};
    auto found = m.find_fee(*ctx.store, &ctx.b, fee);
    if (!found.ok()) {
        return operator_answer::fail(503, "unavailable", found.st.message);
    }
    if (!found.value) {
        return operator_answer::fail(404, "not_found", "no late fee " + fee);
    }
    auto row = std::move(found.value->first);
    auto& period = row["periods"][found.value->second];
    const auto state = text_of(period, "state");
    if (state != "pending") {
        return operator_answer::fail(
            400, "bad_request", "late fee " + fee + " is " + state + ", not pending");
    }
    const auto invoice = text_of(row, "invoice");
    if (verb == "approve") {
        if (auto st = m.queue_fee(ctx, row, period, by); !st.ok) {
            return operator_answer::fail(503, "unavailable", st.message);
        }
    } else {
        period["state"] = "rejected";
        period["decided_by"] = by;
        period["decided_at"] = util::format_rfc3339(ctx.now);
        period["reason"] = text_of(args, "reason");
        audit(ctx,
              "fee_rejected",
              json{{"invoice", invoice},
                   {"fee", fee},
                   {"period", int_of(period, "period")},
                   {"by", by},
                   {"reason", text_of(args, "reason")}});
    }
    state::put_entity(ctx.b, row_type, invoice, row.dump());
    auto answer = operator_answer::ok(nullptr);
    answer.then_view = "show/" + fee;
    return answer;
}

std::optional<json> late_fees_rule::cli_request(std::string_view verb,
                                                const std::vector<std::string>& args,
                                                std::ostream& err) const {
    if (args.empty() || args.front().starts_with("--")) {
        err << "late_fees " << verb << " needs a fee id (billsync workflow late_fees list)\n";
        return std::nullopt;
    }
    json out{{"fee", args.front()}};
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        if ((a == "--by" || a == "--reason") && i + 1 < args.size()) {
            out[a.substr(2)] = args[++i];
        } else {
            err << (a == "--by" || a == "--reason"
                        ? a + " needs a value\n"
                        : "unknown option " + a + " for " + std::string(verb) + "\n");
            return std::nullopt;
        }
    }
    if (!out.contains("by")) {
        err << "late_fees " << verb << " needs --by NAME (who decides, for the audit)\n";
        return std::nullopt;
    }
    return out;
}

cli_result late_fees_rule::cli_view(std::string_view verb,
                                    const std::vector<std::string>& args,
                                    const state::store& s,
                                    cli_output format,
                                    std::ostream& out,
                                    std::ostream& err) const {
    std::string path = "list";
    if (verb == "show") {
        if (args.empty()) {
            err << "late_fees show needs a fee id, an invoice id or an invoice number\n";
            return cli_result::usage;
        }
        path = "show/" + args.front();
    } else if (verb != "list") {
        err << "unknown view " << verb << "\n";
        return cli_result::usage;
    }
    const auto a = view(path, s);
    if (a.status != 200) {
        err << a.message << "\n";
        return a.status == 404 ? cli_result::not_found : cli_result::usage;
    }
    if (format == cli_output::json) {
        out << a.body.dump(2) << "\n";
        return cli_result::ok;
    }
    const auto money = [](const json& p, std::string_view currency) {
        return mappings::format_decimal(int_of(p, "fee_minor"), mappings::minor_digits(currency)) +
               " " + std::string(currency);
    };
    const auto line = [&](const json& p, std::string_view currency) {
        out << fmt::format("{:<14} {:<10} invoice {:<10} period {} from {}  {}{}\n",
                           text_of(p, "fee"),
                           text_of(p, "state"),
                           text_of(p, "number"),
                           int_of(p, "period"),
                           text_of(p, "starts"),
                           p.contains("fee_minor") ? money(p, currency) : std::string("-"),
                           p.contains("why") ? "  (" + text_of(p, "why") + ")" : std::string());
    };
    if (verb == "list") {
        out << "Late fees: " << a.body.value("policy", "") << ", approval "
            << a.body.value("approval", "") << "\n";
        out << "Waiting for approval (" << a.body["pending"].size() << ")\n";
        for (const auto& p : a.body["pending"]) {
            line(p, text_of(p, "currency"));
            out << "    " << text_of(p, "client_name") << ": " << text_of(p, "arithmetic") << "\n";
        }
        out << "Recent (" << a.body["recent"].size() << ")\n";
        for (const auto& p : a.body["recent"]) {
            line(p, text_of(p, "currency"));
        }
        return cli_result::ok;
    }
    if (a.body.contains("periods")) {
        out << "Invoice " << text_of(a.body, "number") << " (" << text_of(a.body, "invoice")
            << "), " << text_of(a.body, "client_name") << "\n";
        for (auto p : a.body["periods"]) {
            p["number"] = text_of(a.body, "number");
            line(p, text_of(a.body, "currency"));
        }
        return cli_result::ok;
    }
    line(a.body, text_of(a.body, "currency"));
    if (a.body.contains("arithmetic")) {
        out << "  " << text_of(a.body, "arithmetic") << "\n";
    }
    if (a.body.contains("ledger_invoice")) {
        out << "  created in the ledger as " << text_of(a.body, "ledger_invoice") << "\n";
    }
    return cli_result::ok;
}

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* /*error*/) {
    if (!s.enabled) {
        return nullptr;
    }
    auto copy = s;
    if (copy.time_zone.empty()) {
        copy.time_zone = deps.time_zone;
    }
    std::set<std::string, std::less<>> read_only;
    for (const auto& c : deps.connectors) {
        if (std::find(c.actions.begin(), c.actions.end(), "invoice.create") == c.actions.end()) {
            read_only.insert(c.name);
        }
    }
    return std::make_unique<late_fees_rule>(
        std::move(copy), deps.source_of("invoices"), std::move(read_only));
}

}  // namespace billsync::workflows::late_fees
