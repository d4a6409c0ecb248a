#include "workflows/invoicing/invoicing_rule.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "state/entity_scan.hpp"
#include "state/identity.hpp"
#include "state/tables.hpp"
#include "util/metrics.hpp"
#include "workflows/action_key.hpp"
#include "workflows/invoicing/pricing.hpp"
#include "workflows/rows.hpp"

namespace billsync::workflows::invoicing {

namespace {

using json = nlohmann::json;
using mappings::change;

constexpr std::string_view rule_name = "invoicing";
constexpr std::string_view bill_type = "invoicing_bill";         // bill key -> draft id
constexpr std::string_view draft_type = "invoicing_draft";       // draft id -> draft
constexpr std::string_view entry_type = "invoicing_entry";       // time entry -> draft id
constexpr std::string_view stats_type = "invoicing_engagement";  // engagement -> history
constexpr std::string_view client_type = "invoicing_client";     // party -> drafts so far
constexpr std::string_view exception_type = "invoicing_exception";
// Approved, billable, unbilled time by client: "<client>\x1f<entry>" -> the entry's facts
// (staff, service, date, minutes, project), and "invoicing_time_at"/<entry> -> its client. Kept
// by on_change, built once at start from the stored entries; a run reads only its clients' rows.
constexpr std::string_view time_index_type = "invoicing_time";
constexpr std::string_view time_at_type = "invoicing_time_at";
constexpr std::string_view meta_type = "invoicing_meta";
// Open exceptions only (id -> {type, since}), for /metrics without reading every draft.
constexpr std::string_view open_type = "invoicing_open";
// PO numbers operators gave (exceptions resolve --po), per engagement: later drafts use them.
constexpr std::string_view po_type = "invoicing_po";
constexpr char index_sep = '\x1f';
// Engagements decided per step of a scheduled run: bounded steps, the rest continues at once.
constexpr std::size_t run_chunk = 100;
constexpr std::string_view timer_prefix = "invoicing/";
constexpr std::string_view retainer_timer = "invoicing/retainer";
constexpr std::string_view tm_monthly_timer = "invoicing/tm/monthly";
constexpr std::string_view tm_weekly_timer = "invoicing/tm/weekly";
constexpr std::string_view sla_prefix = "invoicing/sla/";
constexpr std::string_view send_prefix = "invoicing/send/";  // send to the client once created

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// "d-" and 10 hex digits of SHA-256 of the bill key: short enough to type, stable across replays.
std::string draft_id_for(std::string_view bill_key) { return short_id("d-", bill_key); }

void audit(context& ctx, std::string_view decision, json extra) {
    workflows::audit(ctx, rule_name, decision, std::move(extra));
}

std::string civil(date::local_days d) {
    return mappings::format_civil_date(std::chrono::year_month_day{
        std::chrono::sys_days(std::chrono::days(d.time_since_epoch().count()))});
}

date::local_days month_start(date::year_month ym, int day) {
    const auto last = static_cast<unsigned>((ym / date::last).day());
    const auto d = std::min(static_cast<unsigned>(day), last);
    return date::local_days(ym / date::day(d));
}

std::string period_label(date::local_days d) {
    const date::year_month_day ymd(d);
    return fmt::format("{:04}-{:02}", int(ymd.year()), unsigned(ymd.month()));
}

}  // namespace

// The decisions, with the store and batch of one step.
struct invoicing_rule::impl {
    const settings& s;
    context& ctx;
    const date::time_zone* tz;

    impl(const settings& set, context& c) : s(set), ctx(c), tz(zone_of(set.time_zone)) {}

    const engagement* find_engagement(std::string_view id) const {
        for (const auto& e : s.engagements) {
            if (e.id == id) {
                return &e;
            }
        }
        return nullptr;
    }

    // The engagement's client: its canonical id and party; empty when it is not known yet.
    state::result<std::pair<std::string, std::string>> client_of(const engagement& e) {
        using R = state::result<std::pair<std::string, std::string>>;
        auto c = state::identity::find_client(*ctx.store, e.client);
        if (!c.ok()) {
            return R::failure(c.st);
        }
        if (!c.value) {
            return {state::status::success(), {}};
        }
        auto p = state::identity::party_of(*ctx.store, &ctx.b, *c.value);
        if (!p.ok()) {
            return R::failure(p.st);
        }
        return {state::status::success(), {*c.value, p.value}};
    }

    state::result<std::string> party(std::string_view client) {
        return state::identity::party_of(*ctx.store, &ctx.b, client);
    }

    // Next run of a schedule strictly after now.
    util::instant next_monthly(int day) const {
        const auto today = local_day(tz, ctx.now);
        const date::year_month_day ymd(today);
        auto ym = ymd.year() / ymd.month();
        for (int i = 0; i < 3; ++i, ym += date::months(1)) {
            const auto t = at_local(tz, month_start(ym, day), s.run_hour);
            if (t > ctx.now) {
                return t;
            }
        }
        return ctx.now + std::chrono::hours(24 * 28);
    }
    util::instant next_weekly() const {
        auto d = local_day(tz, ctx.now);
        for (int i = 0; i < 8; ++i, d += date::days(1)) {
            if (static_cast<int>(date::weekday(d).c_encoding()) == s.weekly_day) {
                const auto t = at_local(tz, d, s.run_hour);
                if (t > ctx.now) {
                    return t;
                }
            }
        }
        return ctx.now + std::chrono::hours(24 * 7);
    }
    // `n` business days (Monday to Friday, not a firm holiday) after now, same local time.
    util::instant business_days_after(int n) const {
        auto local = tz->to_local(date::floor<std::chrono::seconds>(ctx.now));
        auto day = date::floor<date::days>(local);
        const auto time = local - day;
        int left = n;
        while (left > 0) {
            day += date::days(1);
            const auto wd = date::weekday(day).c_encoding();
            const auto sys = date::sys_days(day.time_since_epoch());
            if (wd != 0 && wd != 6 && !s.holidays.contains(sys)) {
                --left;
            }
        }
        return std::chrono::time_point_cast<util::instant::duration>(
            tz->to_sys(day + time, date::choose::earliest));
    }

    state::status ensure_timer(std::string_view name, util::instant due, const json& payload) {
        auto cur = ctx.timers.get(name);
        if (!cur.ok()) {
            return cur.st;
        }
        if (cur.value) {
            return state::status::success();
        }
        return ctx.timers.schedule(ctx.b, name, due, payload.dump());
    }

    // ---- exceptions not tied to a draft ---------------------------------------------------

    state::status raise(std::string type,
                        std::string subject,
                        std::string cause,
                        std::string owner,
                        std::string engagement = {}) {
        const auto id = type + ":" + subject;
        auto cur = read_row(*ctx.store, &ctx.b, exception_type, id);
        if (!cur.ok()) {
            return cur.st;
        }
        if (cur.value && text_of(*cur.value, "state") == "open" &&
            text_of(*cur.value, "cause") == cause) {
            return state::status::success();
        }
        json row{
            {"id", id},
            {"type", type},
            {"subject", subject},
            {"cause", cause},
            {"owner", owner},
            {"engagement", engagement},
            {"state", "open"},
            {"raised_at",
             cur.value && text_of(*cur.value, "state") == "open" ? text_of(*cur.value, "raised_at")
                                                                 : util::format_rfc3339(ctx.now)}};
        state::put_entity(ctx.b, exception_type, id, row.dump());
        state::put_entity(
            ctx.b, open_type, id, json{{"type", type}, {"since", row["raised_at"]}}.dump());
        audit(ctx, "exception", json{{"exception", type}, {"subject", subject}, {"cause", cause}});
        return state::status::success();
    }

    state::status clear(const std::string& id, const std::string& who, const std::string& how) {
        auto cur = read_row(*ctx.store, &ctx.b, exception_type, id);
        if (!cur.ok()) {
            return cur.st;
        }
        if (!cur.value || text_of(*cur.value, "state") != "open") {
            return state::status::success();
        }
        (*cur.value)["state"] = "resolved";
        (*cur.value)["resolved_at"] = util::format_rfc3339(ctx.now);
        (*cur.value)["resolved_by"] = who;
        (*cur.value)["resolution"] = how;
        state::put_entity(ctx.b, exception_type, id, cur.value->dump());
        state::delete_entity(ctx.b, open_type, id);
        audit(ctx, "exception_resolved", json{{"exception", id}, {"by", who}, {"how", how}});
        return state::status::success();
    }

    // ---- drafts -----------------------------------------------------------------------------

    struct proposal {
        std::string bill_key;
        std::string trigger;  // "milestone", "retainer", "time_and_materials"
        std::string why;      // one sentence: what caused it
        std::string period;   // retainer / T&M period, or the milestone stage
        std::vector<line> lines;
        std::vector<std::string> arithmetic;
        std::int64_t overage = 0;
        std::string work_item;
        std::map<std::string, std::string> clients;  // billed entry -> its client (the index)
        std::string redraft_of;                      // the rejected draft this one replaces
        int redraft_round = 0;                       // 1 for the first redraft of a bill key
        std::string base_bill;  // a redraft: the bill key whose row then names the new draft
        json left_out = json::array();  // a redraft: entries of the rejected draft not on it
        std::string origin;  // what first caused the draft (a redraft keeps its original's)
    };

    json lines_json(const std::vector<line>& lines) const {
        json out = json::array();
        for (const auto& l : lines) {
            json j{{"kind", l.kind}, {"description", l.description}, {"amount_minor", l.amount}};
            if (!l.quantity.empty()) {
                j["quantity"] = l.quantity;
            }
            if (l.unit_amount) {
                j["unit_amount_minor"] = *l.unit_amount;
            }
            if (l.share_of) {
                j["share_of_minor"] = *l.share_of;
            }
            if (!l.entries.empty()) {
                j["entries"] = l.entries;
            }
            out.push_back(std::move(j));
        }
        return out;
    }

    static std::int64_t total_of(const json& draft) {
        std::int64_t t = 0;
        for (const auto& l : draft.value("lines", json::array())) {
            t += int_of(l, "amount_minor");
        }
        return t;
    }

    // Whether any approved time of the party's clients is known (unbilled in the index, or
    // billed on an earlier draft).
    state::result<bool> time_recorded_for(const std::string& party_id) {
        auto members = state::identity::members_of(*ctx.store, &ctx.b, party_id);
        if (!members.ok()) {
            return state::result<bool>::failure(members.st);
        }
        std::vector<std::string> clients{party_id};
        for (const auto& m : members.value) {
            clients.push_back(m.client);
        }
        bool found = false;
        for (const auto& c : clients) {
            auto st = state::for_each_entity_with_prefix(*ctx.store,
                                                         time_index_type,
                                                         c + index_sep,
                                                         [&](std::string_view, std::string_view) {
                                                             found = true;
                                                             return false;
                                                         });
            if (!st.ok) {
                return state::result<bool>::failure(st);
            }
            if (found) {
                break;
            }
        }
        return {state::status::success(), found};
    }

    // Re-checks every draft blocked on its client (unmatched_client).
    state::status retry_unmatched() {
        std::vector<std::string> ids;
        auto st = state::for_each_entity(
            *ctx.store, open_type, [&](std::string_view key, std::string_view) {
                constexpr std::string_view suffix = ":unmatched_client";
                if (key.ends_with(suffix)) {
                    ids.emplace_back(key.substr(0, key.size() - suffix.size()));
                }
                return true;
            });
        if (!st.ok) {
            return st;
        }
        for (const auto& id : ids) {
            auto d = read_row(*ctx.store, &ctx.b, draft_type, id);
            if (!d.ok()) {
                return d.st;
            }
            if (!d.value || text_of(*d.value, "state") != "blocked") {
                continue;
            }
            const auto* e = find_engagement(text_of(*d.value, "engagement"));
            if (e == nullptr) {
                continue;
            }
            if (auto s2 = evaluate(*e, *d.value, false); !s2.ok) {
                return s2;
            }
        }
        return state::status::success();
    }

    // Billed entries leave the index.
    void unindex(const std::string& client, const std::string& id) {
        state::delete_entity(ctx.b, time_index_type, client + index_sep + id);
        state::delete_entity(ctx.b, time_at_type, id);
    }

    // The draft for a proposal, once per bill key: false when the key was already billed.
    state::result<bool> propose(const engagement& e, proposal p) {
        auto known = read_row(*ctx.store, &ctx.b, bill_type, p.bill_key);
        if (!known.ok()) {
            return state::result<bool>::failure(known.st);
        }
        if (known.value) {
            audit(ctx,
                  "skipped",
                  json{{"engagement", e.id},
                       {"bill", p.bill_key},
                       {"draft", text_of(*known.value, "draft")},
                       {"cause", "already drafted once for this bill key"}});
            return {state::status::success(), false};
        }
        const auto id = draft_id_for(p.bill_key);
        json d{{"id", id},
               {"bill", p.bill_key},
               {"engagement", e.id},
               {"model", to_string(e.billing)},
               {"client", e.client},
               {"currency", e.currency},
               {"ledger", e.ledger},
               {"trigger", p.trigger},
               {"period", p.period},
               {"lines", lines_json(p.lines)},
               {"why",
                json{{"trigger", p.why},
                     {"terms", terms_text(e)},
                     {"arithmetic", p.arithmetic},
                     {"rounding",
                      "each line rounded once, half away from zero, to the minor unit; the total "
                      "is the sum of the lines (as the ledgers add them)"}}},
               {"origin", p.origin.empty() ? p.why : p.origin},
               {"overage_minor", p.overage},
               {"po_number", e.po_number},
               {"approvals", json::array()},
               {"created_at", util::format_rfc3339(ctx.now)},
               {"action", action_key(rule_name, p.bill_key, 1)}};
        if (!p.work_item.empty()) {
            d["work_item"] = p.work_item;
        }
        if (!p.redraft_of.empty()) {
            d["redraft_of"] = p.redraft_of;
            d["redraft_round"] = p.redraft_round;
        }
        if (!p.left_out.empty()) {
            d["why"]["left_out"] = p.left_out;
        }
        d["total_minor"] = total_of(d);
        state::put_entity(ctx.b, bill_type, p.bill_key, json{{"draft", id}}.dump());
        if (!p.base_bill.empty()) {
            // The milestone, period or run still has one live draft: this one.
            state::put_entity(ctx.b,
                              bill_type,
                              p.base_bill,
                              json{{"draft", id}, {"redraft_of", p.redraft_of}}.dump());
        }
        for (const auto& l : p.lines) {
            for (const auto& entry : l.entries) {
                state::put_entity(ctx.b, entry_type, entry, json{{"draft", id}}.dump());
                if (auto c = p.clients.find(entry); c != p.clients.end()) {
                    unindex(c->second, entry);
                }
            }
        }
        // History, for "first invoice", "new client" and "unusual amount".
        auto stats = read_row(*ctx.store, &ctx.b, stats_type, e.id);
        if (!stats.ok()) {
            return state::result<bool>::failure(stats.st);
        }
        auto h = stats.value.value_or(json{{"drafts", 0}, {"sum_minor", 0}, {"billed_minor", 0}});
        d["history"] = json{{"drafts", int_of(h, "drafts")},
                            {"sum_minor", int_of(h, "sum_minor")},
                            {"billed_minor", int_of(h, "billed_minor")}};
        h["drafts"] = int_of(h, "drafts") + 1;
        h["sum_minor"] = int_of(h, "sum_minor") + int_of(d, "total_minor");
        h["billed_minor"] = int_of(h, "billed_minor") + int_of(d, "total_minor");
        state::put_entity(ctx.b, stats_type, e.id, h.dump());
        audit(ctx,
              "drafted",
              json{{"engagement", e.id},
                   {"draft", id},
                   {"bill", p.bill_key},
                   {"total_minor", int_of(d, "total_minor")},
                   {"currency", e.currency},
                   {"trigger", p.why}});
        if (auto st = evaluate(e, d, true); !st.ok) {
            return state::result<bool>::failure(st);
        }
        return {state::status::success(), true};
    }

    static std::string terms_text(const engagement& e) {
        std::string out = fmt::format("{} engagement {}", to_string(e.billing), e.id);
        switch (e.billing) {
            case model::fixed_fee:
                out += fmt::format(", fee {} {}", money_text(e.fee, e.currency), e.currency);
                for (const auto& m : e.milestones) {
                    out += m.remainder ? fmt::format("; {}: the remainder", m.stage)
                           : m.amount
                               ? fmt::format("; {}: {}", m.stage, money_text(*m.amount, e.currency))
                               : fmt::format("; {}: {}.{:02} %",
                                             m.stage,
                                             m.percent_bp / 100,
                                             m.percent_bp % 100);
                }
                break;
            case model::retainer:
            case model::hybrid:
                out += fmt::format(", retainer {} {} a month, {} min included",
                                   money_text(e.retainer, e.currency),
                                   e.currency,
                                   e.included_minutes);
                if (e.overage_rate) {
                    out += fmt::format(", overage {}/h, tolerance {}",
                                       money_text(*e.overage_rate, e.currency),
                                       money_text(e.tolerance, e.currency));
                }
                break;
            case model::time_and_materials:
                if (e.rates.default_rate) {
                    out += fmt::format(", default rate {}/h",
                                       money_text(*e.rates.default_rate, e.currency));
                }
                if (e.cap) {
                    out += fmt::format(", cap {}", money_text(*e.cap, e.currency));
                }
                break;
        }
        if (!e.po_number.empty()) {
            out += ", PO " + e.po_number;
        }
        return out;
    }

    std::vector<std::string> approvers_for(const engagement& e) const {
        if (!e.partner.empty()) {
            return {lower(e.partner)};
        }
        std::vector<std::string> out;
        for (const auto& a : s.approval.approvers) {
            out.push_back(lower(a));
        }
        return out;
    }

    // The ledger item `code` of connector `ledger` as last synced; nullopt when billsync has
    // never read it (or the ledger deleted it).
    state::result<std::optional<mappings::ledger_item>> ledger_item_of(const std::string& ledger,
                                                                       const std::string& code) {
        using R = state::result<std::optional<mappings::ledger_item>>;
        std::optional<mappings::ledger_item> found;
        auto st = state::for_each_entity(
            *ctx.store, "ledger_item", [&](std::string_view, std::string_view value) {
                std::string error;
                auto item =
                    mappings::ledger_item_from_json(json::parse(value, nullptr, false), error);
                if (item && item->source.system == ledger && item->code == code && !item->deleted) {
                    found = std::move(item);
                    return false;
                }
                return true;
            });
        if (!st.ok) {
            return R::failure(st);
        }
        return {state::status::success(), std::move(found)};
    }

    // [invoicing] check_item_prices: why the draft's lines disagree with the sales price of the
    // ledger item they name, or "" when they agree (or nothing is to be checked). Each line's
    // unit price per the terms (time: the hourly rate; overage: the overage rate; retainer: the
    // retainer) must equal the item's price; a milestone line is a share of the fee, so the fee
    // is compared. Not checked: an engagement without `item` (the ledger's default item), an
    // item without a price or priced 0, an item priced in another currency than the draft,
    // write-down lines.
    state::result<std::string> item_price_cause(const engagement& e, const json& d) {
        using R = state::result<std::string>;
        if (e.item.empty()) {
            return {state::status::success(), std::string()};
        }
        auto item = ledger_item_of(e.ledger, e.item);
        if (!item.ok()) {
            return R::failure(item.st);
        }
        if (!item.value) {
            return {
                state::status::success(),
                fmt::format("item '{}' of engagement {} is not known to billsync: no item with "
                            "that id or code has been read from {} (is sync_items = true on that "
                            "connector? sync it, correct the engagement's item, or resolve "
                            "with a reason to bill at the terms)",
                            e.item,
                            e.id,
                            e.ledger)};
        }
        const auto& it = *item.value;
        const auto label = fmt::format("item '{}' ({}) in {}", it.name, it.code, e.ledger);
        if (!it.unit_price) {
            const auto zero = it.unit_price_text.find_first_not_of("0.-") == std::string::npos;
            if (zero) {
                return {state::status::success(), std::string()};  // no price, or 0
            }
            return {state::status::success(),
                    fmt::format("{} sells at {}, which is not a whole number of minor units of "
                                "its currency: no line of engagement {} can equal it (correct the "
                                "price in the ledger, or resolve with a reason to bill at the "
                                "terms)",
                                label,
                                it.unit_price_text,
                                e.id)};
        }
        const auto price = it.unit_price->minor;
        if (price == 0 || it.unit_price->currency != e.currency) {
            return {state::status::success(), std::string()};
        }
        std::string out;
        int n = 0;
        for (const auto& l : d.value("lines", json::array())) {
            ++n;
            const auto kind = text_of(l, "kind");
            std::optional<std::int64_t> terms;
            std::string what;
            if (kind == "milestone") {
                // The fee the draft was priced from (drafts made before it was kept: the book's).
                terms = l.contains("share_of_minor") ? int_of(l, "share_of_minor") : e.fee;
                what = "the fee";
            } else if (kind == "time" || kind == "overage" || kind == "retainer") {
                if (l.contains("unit_amount_minor")) {
                    terms = int_of(l, "unit_amount_minor");
                }
                what = kind == "time"      ? "the hourly rate"
                       : kind == "overage" ? "the overage rate"
                                           : "the retainer";
            }
            if (!terms || *terms == price) {
                continue;
            }
            out += fmt::format("{}line {} ({}) is priced {} {} per the terms ({}), {} sells at {}",
                               out.empty() ? "" : "; ",
                               n,
                               text_of(l, "description"),
                               money_text(*terms, e.currency),
                               e.currency,
                               what,
                               label,
                               money_text(price, e.currency));
        }
        if (!out.empty()) {
            out +=
                " (correct the price in the ledger, then resolve; or correct the terms in the "
                "engagement book, reload, then reject and redraft this draft; or resolve with a "
                "reason to bill at the terms)";
        }
        return {state::status::success(), std::move(out)};
    }

    // Checks a draft's blocking conditions and routes it: blocked (exceptions), waiting for
    // approval, or approved (queued to the ledger). `fresh`: first evaluation (flags decided).
    state::status evaluate(const engagement& e, json& d, bool fresh) {
        const auto id = text_of(d, "id");
        const auto total = int_of(d, "total_minor");
        json exceptions = json::array();
        const auto block = [&](std::string type, std::string cause, std::string owner) {
            exceptions.push_back(json{{"type", std::move(type)},
                                      {"cause", std::move(cause)},
                                      {"owner", std::move(owner)}});
        };
        if (text_of(d, "po_number").empty()) {
            // The book's PO (it may have gained one since the draft was made), else the one an
            // operator gave for this engagement when resolving an earlier draft.
            if (!e.po_number.empty()) {
                d["po_number"] = e.po_number;
            } else {
                auto given = read_row(*ctx.store, &ctx.b, po_type, e.id);
                if (!given.ok()) {
                    return given.st;
                }
                if (given.value) {
                    d["po_number"] = text_of(*given.value, "po_number");
                }
            }
        }
        const auto po = text_of(d, "po_number");
        if (e.po_required && po.empty()) {
            block("missing_po",
                  "engagement " + e.id + " requires a PO number and none is set",
                  "billing coordinator");
        }
        if (e.po_limit) {
            const auto before = int_of(d.value("history", json::object()), "billed_minor");
            if (before + total > *e.po_limit) {
                block("po_limit",
                      fmt::format("PO limit {} reached: {} billed before, this draft {}",
                                  money_text(*e.po_limit, e.currency),
                                  money_text(before, e.currency),
                                  money_text(total, e.currency)),
                      "engagement partner");
            } else if ((before + total) * 100 >= *e.po_limit * s.po_warning_percent) {
                d["po_warning"] = fmt::format("{} of the PO limit {} used",
                                              money_text(before + total, e.currency),
                                              money_text(*e.po_limit, e.currency));
            }
        }
        // The client as the ledger knows it.
        auto client = client_of(e);
        if (!client.ok()) {
            return client.st;
        }
        std::string client_ref;
        if (client.value.first.empty()) {
            block("unmatched_client",
                  "client " + e.client + " of engagement " + e.id + " is not known yet",
                  "billing coordinator");
        } else {
            auto peer =
                state::identity::counterpart(*ctx.store, &ctx.b, client.value.first, e.ledger);
            if (!peer.ok()) {
                return peer.st;
            }
            auto ref = state::remote_id(
                *ctx.store, ctx.b, peer.value ? *peer.value : client.value.first, e.ledger);
            if (!ref.ok()) {
                return ref.st;
            }
            if (ref.value) {
                // The identity key is "[<account>/]<type>/<id>": the ledger wants its own id.
                const auto slash = ref.value->rfind('/');
                client_ref = slash == std::string::npos ? *ref.value : ref.value->substr(slash + 1);
                d["client_ref"] = client_ref;
                d["client_party"] = client.value.second;
            } else {
                if (auto st =
                        state::identity::need_counterpart(*ctx.store,
                                                          ctx.b,
                                                          client.value.first,
                                                          e.ledger,
                                                          std::string(rule_name) + " draft " + id,
                                                          ctx.now);
                    !st.ok) {
                    return st;
                }
                block("unmatched_client",
                      "client " + e.client + " is not linked to a customer in " + e.ledger +
                          " (billsync identities link)",
                      "billing coordinator");
            }
        }
        if (fresh) {
            json flags = json::array();
            const auto& h = d["history"];
            if (int_of(h, "drafts") == 0) {
                flags.push_back("first_invoice");
            }
            if (!client.value.second.empty()) {
                auto seen = read_row(*ctx.store, &ctx.b, client_type, client.value.second);
                if (!seen.ok()) {
                    return seen.st;
                }
                if (!seen.value) {
                    flags.push_back("new_client");
                }
                state::put_entity(
                    ctx.b, client_type, client.value.second, json{{"first_draft", id}}.dump());
            }
            for (const auto& l : d["lines"]) {
                if (text_of(l, "kind") == "write_down") {
                    flags.push_back("write_down");
                    break;
                }
            }
            if (int_of(d, "overage_minor") > e.tolerance) {
                flags.push_back("overage_above_tolerance");
            }
            if (const auto n = int_of(h, "drafts"); n > 0) {
                const auto avg = int_of(h, "sum_minor") / n;
                const auto diff = total > avg ? total - avg : avg - total;
                if (avg > 0 && diff * 100 > avg * s.approval.unusual_percent) {
                    flags.push_back("unusual_amount");
                }
            }
            d["flags"] = flags;
            bool review = total >= s.approval.auto_approve_below;
            for (const auto& f : flags) {
                const auto name = f.get<std::string>();
                // Overage above tolerance always needs a person (the engagement says how much
                // is fine without one).
                if (name == "overage_above_tolerance" || s.approval.always_review.contains(name)) {
                    review = true;
                }
            }
            d["needs_approval"] = review;
            d["required_approvals"] =
                s.approval.second_approver_from && total >= *s.approval.second_approver_from ? 2
                                                                                             : 1;
            d["approvers"] = approvers_for(e);
        }
        if (s.require_tax_code && e.tax_code.empty()) {
            block("missing_tax",
                  "engagement " + e.id + " has no tax_code and [invoicing] require_tax_code is on",
                  "admin");
        }
        if (s.milestone_needs_time && text_of(d, "trigger") == "milestone" &&
            !d.value("time_waived", false) && !client.value.second.empty()) {
            auto any = time_recorded_for(client.value.second);
            if (!any.ok()) {
                return any.st;
            }
            if (!any.value) {
                block("missing_time",
                      "no approved time is recorded for the client of engagement " + e.id +
                          " (record it, or resolve with a reason to bill without it)",
                      "engagement partner");
            }
        }
        if (s.check_item_prices && !d.value("prices_waived", false)) {
            auto cause = item_price_cause(e, d);
            if (!cause.ok()) {
                return cause.st;
            }
            if (!cause.value.empty()) {
                block("pricing_mismatch", cause.value, "engagement partner");
            }
        }
        if (d.value("needs_approval", true) && d["approvers"].empty()) {
            block("missing_approver",
                  "no approver: engagement " + e.id +
                      " names no partner and [invoicing.approval] approvers is empty",
                  "admin");
        }
        // The open-exception rows of this draft follow what blocks it now.
        for (const auto& old : d.value("exceptions", json::array())) {
            state::delete_entity(ctx.b, open_type, id + ":" + text_of(old, "type"));
        }
        const auto since = text_of(d, "state") == "blocked" && d.contains("blocked_at")
                               ? text_of(d, "blocked_at")
                               : util::format_rfc3339(ctx.now);
        for (const auto& x : exceptions) {
            state::put_entity(ctx.b,
                              open_type,
                              id + ":" + text_of(x, "type"),
                              json{{"type", x["type"]}, {"since", since}}.dump());
        }
        d["exceptions"] = exceptions;
        if (!exceptions.empty()) {
            const bool again = text_of(d, "state") == "blocked";
            d["state"] = "blocked";
            if (!again) {
                d["blocked_at"] = util::format_rfc3339(ctx.now);
                for (const auto& x : exceptions) {
                    audit(ctx,
                          "exception",
                          json{{"draft", id}, {"exception", x["type"]}, {"cause", x["cause"]}});
                }
            }
            write(d);
            return state::status::success();
        }
        if (!d.value("needs_approval", true)) {
            d["approvals"].push_back(
                json{{"by", "policy"},
                     {"at", util::format_rfc3339(ctx.now)},
                     {"reason",
                      fmt::format("below auto_approve_below {} with no review flag",
                                  money_text(s.approval.auto_approve_below, e.currency))}});
            return approve_and_queue(e, d, "policy");
        }
        d["state"] = "pending_approval";
        d["pending_since"] = util::format_rfc3339(ctx.now);
        write(d);
        audit(ctx,
              "approval_requested",
              json{{"draft", id}, {"approvers", d["approvers"]}, {"flags", d["flags"]}});
        if (auto st = notify(d, d["approvers"], "approval requested", 0); !st.ok) {
            return st;
        }
        return ctx.timers.schedule(ctx.b,
                                   std::string(sla_prefix) + id,
                                   business_days_after(s.approval.sla_business_days),
                                   json{{"round", 1}}.dump());
    }

    void write(const json& d) { state::put_entity(ctx.b, draft_type, text_of(d, "id"), d.dump()); }

    state::status notify(const json& d, const json& to, std::string_view what, int round) {
        if (s.email_connector.empty()) {
            return state::status::success();
        }
        const auto id = text_of(d, "id");
        std::string text = fmt::format(
            "Invoice draft {} ({} {}) for engagement {} needs your approval.\n\nWhy: {}\nTerms: "
            "{}\n",
            id,
            money_text(int_of(d, "total_minor"), text_of(d, "currency")),
            text_of(d, "currency"),
            text_of(d, "engagement"),
            text_of(d["why"], "trigger"),
            text_of(d["why"], "terms"));
        for (const auto& l : d["lines"]) {
            text += fmt::format("  {}  {}\n",
                                money_text(int_of(l, "amount_minor"), text_of(d, "currency")),
                                text_of(l, "description"));
        }
        for (const auto& a : d["why"].value("arithmetic", json::array())) {
            text += "  = " + a.get<std::string>() + "\n";
        }
        text += fmt::format(
            "\nApprove: billsync approvals approve {} --by <you>\nReject:  billsync approvals "
            "reject {} --by <you> --reason <reason>\n",
            id,
            id);
        for (const auto& who : to) {
            const auto addr = who.get<std::string>();
            const auto key =
                action_key(rule_name, fmt::format("{}/notify/{}/{}", id, addr, round), 1);
            state::action a;
            a.id = key;
            a.connector = s.email_connector;
            a.kind = "email.send";
            a.payload = json{
                {"to", addr},
                {"subject",
                 fmt::format("[billsync] {}: invoice draft {} ({} {})",
                             what,
                             id,
                             money_text(int_of(d, "total_minor"), text_of(d, "currency")),
                             text_of(d, "currency"))},
                {"text", text},
                {"delivery_id",
                 key}}.dump();
            auto added = ctx.enqueue(std::move(a));
            if (!added.ok()) {
                return added.st;
            }
        }
        return state::status::success();
    }

    state::status approve_and_queue(const engagement& e, json& d, const std::string& by) {
        const auto id = text_of(d, "id");
        json lines = json::array();
        for (const auto& l : d["lines"]) {
            json out{{"description", text_of(l, "description")},
                     {"amount_minor", int_of(l, "amount_minor")}};
            if (l.contains("quantity")) {
                out["quantity"] = l["quantity"];
            }
            if (l.contains("unit_amount_minor")) {
                out["unit_amount_minor"] = l["unit_amount_minor"];
            }
            if (!e.item.empty()) {
                out["item_ref"] = e.item;
            }
            if (!e.account_code.empty()) {
                out["account_code"] = e.account_code;
            }
            if (!e.tax_code.empty()) {
                out["tax_code"] = e.tax_code;
            }
            lines.push_back(std::move(out));
        }
        const auto today = local_day(tz, ctx.now);
        json payload{{"key", text_of(d, "action")},
                     {"client_ref", text_of(d, "client_ref")},
                     {"currency", e.currency},
                     {"issue_date", civil(today)},
                     {"due_date", civil(today + date::days(e.terms_days))},
                     {"memo", text_of(d["why"], "trigger")},
                     {"lines", lines}};
        if (const auto po = text_of(d, "po_number"); !po.empty()) {
            payload["po_number"] = po;
        }
        state::action a;
        a.id = text_of(d, "action");
        a.connector = e.ledger;
        a.kind = "invoice.create";
        a.payload = payload.dump();
        auto added =
            ctx.enqueue(std::move(a), cause{rule_name, id, 1, "invoice draft approved by " + by});
        if (!added.ok()) {
            return added.st;
        }
        d["state"] = "approved";
        d["approved_at"] = util::format_rfc3339(ctx.now);
        d["issue_date"] = civil(today);
        write(d);
        audit(ctx,
              "approved",
              json{{"draft", id},
                   {"by", by},
                   {"action", text_of(d, "action")},
                   {"ledger", e.ledger},
                   {"total_minor", int_of(d, "total_minor")}});
        if (e.send_to_client) {
            // Sent by the ledger once it holds the invoice (its id comes with the creation).
            if (auto st = ctx.timers.schedule(ctx.b,
                                              std::string(send_prefix) + id,
                                              ctx.now + std::chrono::minutes(1),
                                              json{{"tries", 0}}.dump());
                !st.ok) {
                return st;
            }
        }
        return ctx.timers.cancel(ctx.b, std::string(sla_prefix) + id);
    }

    // The created invoice goes to the client through the ledger: "invoice.send" with the ledger's
    // invoice id, once the creation is done; checked every 5 minutes for up to a week.
    state::status send_when_created(const state::timer& t) {
        const auto id = t.name.substr(send_prefix.size());
        auto d = read_row(*ctx.store, &ctx.b, draft_type, id);
        if (!d.ok()) {
            return d.st;
        }
        if (!d.value) {
            return state::status::success();
        }
        auto& draft = *d.value;
        const auto* e = find_engagement(text_of(draft, "engagement"));
        auto v = ctx.store->get(state::cf::outbox, "a/" + text_of(draft, "action"));
        if (!v.ok()) {
            return v.st;
        }
        state::action created;
        const bool known = v.value && state::decode_action(*v.value, created);
        if (known && created.state == state::action_state::done && e != nullptr) {
            // "Invoice/<id> #<number>"
            const auto& r = created.result;
            const auto slash = r.find('/');
            const auto space = r.find(' ');
            const auto invoice =
                slash == std::string::npos
                    ? std::string()
                    : r.substr(slash + 1,
                               space == std::string::npos ? std::string::npos : space - slash - 1);
            if (invoice.empty()) {
                audit(ctx, "not_sent", json{{"draft", id}, {"cause", "no invoice id in " + r}});
                return state::status::success();
            }
            json payload{{"id", invoice}};
            if (!e->billing_contact.empty()) {
                payload["send_to"] = e->billing_contact;
            }
            state::action a;
            a.id = action_key(rule_name, id + "/send", 1);
            a.connector = e->ledger;
            a.kind = "invoice.send";
            a.payload = payload.dump();
            auto added = ctx.enqueue(std::move(a), cause{rule_name, id, 1, "send_to_client"});
            if (!added.ok()) {
                return added.st;
            }
            draft["sent"] =
                json{{"invoice", invoice}, {"queued_at", util::format_rfc3339(ctx.now)}};
            write(draft);
            return state::status::success();
        }
        const auto payload = json::parse(t.payload, nullptr, false);
        const auto tries = payload.is_object() ? payload.value("tries", 0) : 0;
        if ((known && created.state == state::action_state::dead) || tries >= 7 * 24 * 12) {
            audit(ctx,
                  "not_sent",
                  json{{"draft", id},
                       {"cause",
                        known && created.state == state::action_state::dead
                            ? "the invoice was not created (dead letter)"
                            : "the invoice was not created within a week"}});
            return state::status::success();
        }
        return ctx.timers.schedule(
            ctx.b, t.name, ctx.now + std::chrono::minutes(5), json{{"tries", tries + 1}}.dump());
    }

    // ---- triggers ---------------------------------------------------------------------------

    state::result<bool> matches(const engagement& e, const mappings::work_item& w) {
        if (!e.work_items.empty()) {
            return {state::status::success(),
                    std::find_if(e.work_items.begin(), e.work_items.end(), [&](const auto& k) {
                        return k == w.id || k == w.source.id;
                    }) != e.work_items.end()};
        }
        if (lower(e.work_type) != lower(w.work_type)) {
            return {state::status::success(), false};
        }
        auto c = client_of(e);
        if (!c.ok()) {
            return state::result<bool>::failure(c.st);
        }
        if (c.value.second.empty()) {
            return {state::status::success(), false};
        }
        auto p = party(w.client_id);
        if (!p.ok()) {
            return state::result<bool>::failure(p.st);
        }
        return {state::status::success(), p.value == c.value.second};
    }

    state::status on_work_item(const mappings::work_item& w) {
        if (w.deleted) {
            return state::status::success();
        }
        bool any = false;
        for (const auto& e : s.engagements) {
            auto m = matches(e, w);
            if (!m.ok()) {
                return m.st;
            }
            if (!m.value) {
                continue;
            }
            any = true;
            if (e.billing == model::fixed_fee && !w.stage.empty()) {
                for (const auto& ms : e.milestones) {
                    if (lower(ms.stage) != lower(w.stage)) {
                        continue;
                    }
                    if (auto st = milestone(e, ms, w); !st.ok) {
                        return st;
                    }
                }
            }
            if ((e.billing == model::time_and_materials || e.billing == model::hybrid) &&
                e.every == schedule::on_completion && lower(w.status) == "completed") {
                if (auto st = time_draft(e,
                                         "tm|" + e.id + "|work_item:" + w.id,
                                         "work item " + w.id + " (" + w.title + ") completed",
                                         w.id,
                                         "work item " + w.id);
                    !st.ok) {
                    return st;
                }
            }
        }
        if (!any && !w.stage.empty()) {
            // A billing stage reached by work no engagement covers: a person decides.
            for (const auto& e : s.engagements) {
                for (const auto& ms : e.milestones) {
                    if (lower(ms.stage) == lower(w.stage) &&
                        lower(e.work_type) == lower(w.work_type)) {
                        return raise("no_engagement",
                                     "work_item:" + w.id,
                                     "work item " + w.id + " (" + w.title +
                                         ") reached billing stage '" + w.stage +
                                         "' but no engagement matches its client and work type",
                                     "billing coordinator");
                    }
                }
            }
        }
        return state::status::success();
    }

    static std::string milestone_bill_key(const engagement& e, const invoicing::milestone& ms) {
        return "milestone|" + e.id + "|" + lower(ms.stage);
    }

    // What the milestone would bill now (the book as it is, what the engagement billed so far);
    // nullopt: more than the fee.
    state::result<std::optional<std::int64_t>> milestone_price(const engagement& e,
                                                               const invoicing::milestone& ms) {
        auto stats = read_row(*ctx.store, &ctx.b, stats_type, e.id);
        if (!stats.ok()) {
            return state::result<std::optional<std::int64_t>>::failure(stats.st);
        }
        const auto billed = stats.value ? int_of(*stats.value, "billed_minor") : 0;
        return {state::status::success(), milestone_amount(e, ms, billed)};
    }

    // A redraft of a rejected draft: who asked, why, and which round it is.
    struct redraft_request {
        std::string rejected;  // the rejected draft's id
        std::string by, reason;
        int round = 1;
    };

    // The bill key a draft was made for, without the redraft rounds: milestone|…, retainer|…,
    // tm|….
    static std::string base_bill_of(const json& d) {
        const auto bill = text_of(d, "bill");
        return bill.substr(0, bill.find("|redraft:"));
    }

    static std::string redraft_bill(const std::string& base, int round) {
        return fmt::format("{}|redraft:{}", base, round);
    }

    // Makes `p` the redraft `again` asks for: its own bill key (<base>|redraft:<round>), and the
    // base bill key then names it.
    static void as_redraft(proposal& p, const std::string& base, const redraft_request& again) {
        if (p.origin.empty()) {
            p.origin = p.why;
        }
        p.bill_key = redraft_bill(base, again.round);
        p.base_bill = base;
        p.redraft_of = again.rejected;
        p.redraft_round = again.round;
        p.why = fmt::format("redraft of the rejected draft {} asked by {}{}: {}",
                            again.rejected,
                            again.by,
                            again.reason.empty() ? "" : " (" + again.reason + ")",
                            p.why);
    }

    // A milestone's draft, once per (engagement, milestone). With `again`: the redraft of the
    // rejected draft, priced from the current book under its own bill key
    // (<bill key>|redraft:<round>); the milestone's bill key then names the new draft, so a stage
    // re-entered still finds exactly one live draft.
    state::status milestone(const engagement& e,
                            const milestone& ms,
                            const mappings::work_item& w,
                            const redraft_request* again = nullptr) {
        auto stats = read_row(*ctx.store, &ctx.b, stats_type, e.id);
        if (!stats.ok()) {
            return stats.st;
        }
        const auto billed = stats.value ? int_of(*stats.value, "billed_minor") : 0;
        const auto bill_key = milestone_bill_key(e, ms);
        auto known = read_row(*ctx.store, &ctx.b, bill_type, bill_key);
        if (!known.ok()) {
            return known.st;
        }
        const auto amount = known.value && again == nullptr ? std::optional<std::int64_t>(0)
                                                            : milestone_amount(e, ms, billed);
        if (!amount) {
            return raise(
                "pricing_mismatch",
                "milestone:" + e.id + ":" + lower(ms.stage),
                fmt::format("milestone '{}' of engagement {} cannot be billed: {} of the fee {} "
                            "already billed",
                            ms.stage,
                            e.id,
                            money_text(billed, e.currency),
                            money_text(e.fee, e.currency)),
                "engagement partner",
                e.id);
        }
        proposal p;
        p.bill_key = bill_key;
        p.trigger = "milestone";
        p.period = ms.stage;
        p.work_item = w.id;
        p.why = "work item " + w.id + " (" + w.title + ") reached stage '" + w.stage + "'";
        if (again != nullptr) {
            as_redraft(p, bill_key, *again);
        }
        line l;
        l.kind = "milestone";
        l.share_of = e.fee;
        l.amount = *amount;
        l.quantity = "1";
        l.unit_amount = *amount;
        l.description = ms.remainder ? fmt::format("{}: {} (remainder of the {} fee)",
                                                   w.work_type,
                                                   ms.stage,
                                                   money_text(e.fee, e.currency))
                        : ms.amount  ? fmt::format("{}: {}", w.work_type, ms.stage)
                                     : fmt::format("{}: {} ({}.{:02} % of {})",
                                                  w.work_type,
                                                  ms.stage,
                                                  ms.percent_bp / 100,
                                                  ms.percent_bp % 100,
                                                  money_text(e.fee, e.currency));
        p.arithmetic.push_back(
            ms.remainder ? fmt::format("{} fee - {} billed before = {}",
                                       money_text(e.fee, e.currency),
                                       money_text(billed, e.currency),
                                       money_text(*amount, e.currency))
            : ms.amount  ? fmt::format("fixed milestone amount {}", money_text(*amount, e.currency))
                         : fmt::format("{} x {} / 10000 = {} (rounded half up)",
                                      money_text(e.fee, e.currency),
                                      ms.percent_bp,
                                      money_text(*amount, e.currency)));
        p.lines.push_back(std::move(l));
        return propose(e, std::move(p)).st;
    }

    // `approvals redraft`: a new draft for a rejected draft, from the book as it is now, routed
    // for approval like any draft. The rejected draft stays rejected (and says which draft
    // replaced it); anything but the latest rejected draft is refused unchanged. A milestone is
    // priced again; a retainer period again, its overage from the time index as it is now; a
    // time-and-materials draft takes exactly its own entries that are still unbilled.
    operator_answer redraft(const engagement& e,
                            json& d,
                            const std::string& by,
                            const std::string& reason) {
        const auto id = text_of(d, "id");
        const auto state = text_of(d, "state");
        if (state != "rejected") {
            return operator_answer::fail(
                409,
                "not_rejected",
                "draft " + id + " is " + state + ": only a rejected draft can be redrafted");
        }
        if (d.contains("redrafted_as")) {
            return operator_answer::fail(
                409,
                "already_redrafted",
                "draft " + id + " was already redrafted as " + text_of(d, "redrafted_as"));
        }
        const auto who = by.empty() ? std::string("operator") : by;
        const redraft_request again{id, who, reason, d.value("redraft_round", 0) + 1};
        const auto trigger = text_of(d, "trigger");
        auto made = trigger == "milestone"  ? redraft_milestone(e, d, again)
                    : trigger == "retainer" ? redraft_retainer(e, d, again)
                    : trigger == "time_and_materials"
                        ? redraft_time(e, d, again)
                        : operator_answer::fail(409,
                                                "not_redraftable",
                                                "draft " + id + " is a '" + trigger +
                                                    "' draft, which is not redrafted");
        if (made.status != 200) {
            return made;
        }
        const auto fresh = text_of(made.body, "draft");
        d["redrafted_as"] = fresh;
        d["redraft"] = json{{"by", who}, {"at", util::format_rfc3339(ctx.now)}, {"reason", reason}};
        write(d);
        audit(
            ctx, "redrafted", json{{"draft", id}, {"as", fresh}, {"by", who}, {"reason", reason}});
        auto done = operator_answer::ok(json{{"redrafted", id}, {"draft", fresh}});
        done.then_view = "show/" + fresh;
        return done;
    }

    // The milestone of a rejected milestone draft, priced from the book as it is now. Answers
    // {"draft": <new id>}; refused before anything is written.
    operator_answer redraft_milestone(const engagement& e,
                                      const json& d,
                                      const redraft_request& again) {
        const auto stage = text_of(d, "period");
        const auto ms = std::find_if(e.milestones.begin(), e.milestones.end(), [&](const auto& m) {
            return lower(m.stage) == lower(stage);
        });
        if (e.billing != model::fixed_fee || ms == e.milestones.end()) {
            return operator_answer::fail(409,
                                         "no_milestone",
                                         "engagement " + e.id + " no longer bills the milestone '" +
                                             stage + "' in the engagement book");
        }
        auto price = milestone_price(e, *ms);
        if (!price.ok()) {
            return operator_answer::fail(500, "store", price.st.message);
        }
        if (!price.value) {
            return operator_answer::fail(
                409,
                "pricing_mismatch",
                "milestone '" + stage + "' of engagement " + e.id +
                    " cannot be billed: the engagement already billed its fee");
        }
        // The work item as stored now (its title for the why); the draft's facts otherwise.
        mappings::work_item w;
        w.id = text_of(d, "work_item");
        w.work_type = e.work_type;
        w.stage = stage;
        if (!w.id.empty()) {
            auto stored = state::get_entity(*ctx.store, ctx.b, "work_item", w.id);
            if (!stored.ok()) {
                return operator_answer::fail(500, "store", stored.st.message);
            }
            if (stored.value) {
                std::string error;
                if (auto item = mappings::work_item_from_json(
                        json::parse(*stored.value, nullptr, false), error)) {
                    w.title = item->title;
                    if (!item->work_type.empty()) {
                        w.work_type = item->work_type;
                    }
                }
            }
        }
        if (auto st = milestone(e, *ms, w, &again); !st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        return operator_answer::ok(
            json{{"draft", draft_id_for(redraft_bill(milestone_bill_key(e, *ms), again.round))}});
    }

    // The period of a rejected retainer draft again: the retainer as the book says now, and the
    // overage recomputed from the previous period's approved, unbilled time in the index now
    // (the rejection gave the draft's own entries back to it).
    operator_answer redraft_retainer(const engagement& e,
                                     const json& d,
                                     const redraft_request& again) {
        if (!has_retainer(e)) {
            return operator_answer::fail(409,
                                         "no_retainer",
                                         "engagement " + e.id + " is " +
                                             std::string(to_string(e.billing)) +
                                             " in the engagement book: it bills no retainer");
        }
        const auto period = text_of(d, "period");
        const auto first = mappings::parse_civil_date(period + "-01");
        if (!first) {
            return operator_answer::fail(
                409, "no_period", "draft " + text_of(d, "id") + " names no retainer period");
        }
        const date::year_month_day ymd(
            date::local_days(std::chrono::sys_days(*first).time_since_epoch()));
        const auto start = month_start(ymd.year() / ymd.month(), s.retainer_day);
        if (auto st = retainer_draft(e, period, start, &again, &d); !st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        return operator_answer::ok(
            json{{"draft", draft_id_for(redraft_bill(base_bill_of(d), again.round))}});
    }

    // A rejected time-and-materials draft again: exactly its own time entries that are still
    // approved and unbilled (in the index), at the book's rates now. An entry billed meanwhile
    // (by a later run, or at its vendor) is left out, and the new draft's why says so. Nothing
    // left to bill: refused, nothing written.
    operator_answer redraft_time(const engagement& e, const json& d, const redraft_request& again) {
        const auto id = text_of(d, "id");
        if (!bills_time(e)) {
            return operator_answer::fail(409,
                                         "no_time_billing",
                                         "engagement " + e.id + " is " +
                                             std::string(to_string(e.billing)) +
                                             " in the engagement book: it bills no time");
        }
        std::vector<time_fact> facts;
        json left_out = json::array();
        for (const auto& entry : entries_of(d)) {
            auto f = indexed_fact(entry);
            if (!f.ok()) {
                return operator_answer::fail(500, "store", f.st.message);
            }
            if (!f.value) {
                auto cause = left_out_cause(entry, "no longer among the unbilled time");
                if (!cause.ok()) {
                    return operator_answer::fail(500, "store", cause.st.message);
                }
                left_out.push_back(json{{"entry", entry}, {"cause", cause.value}});
                continue;
            }
            if (e.billing == model::hybrid && !out_of_scope(e, *f.value)) {
                left_out.push_back(
                    json{{"entry", entry},
                         {"cause", "now within the retainer's scope (out_of_scope_services)"}});
                continue;
            }
            facts.push_back(std::move(*f.value));
        }
        auto priced = price_time(e, facts);
        for (const auto& missing : priced.no_rate) {
            left_out.push_back(
                json{{"entry", missing}, {"cause", "no rate of the engagement book applies"}});
        }
        if (priced.lines.empty()) {
            std::string causes;
            for (const auto& x : left_out) {
                causes += fmt::format("{}{} ({})",
                                      causes.empty() ? "" : ", ",
                                      text_of(x, "entry"),
                                      text_of(x, "cause"));
            }
            return operator_answer::fail(
                409,
                "nothing_to_redraft",
                "none of the time entries of draft " + id + " can be billed again: " +
                    (causes.empty() ? std::string("it has none") : causes));
        }
        for (const auto& missing : priced.no_rate) {
            if (auto st = raise_no_rate(e, missing); !st.ok) {
                return operator_answer::fail(500, "store", st.message);
            }
        }
        proposal p;
        p.trigger = "time_and_materials";
        p.period = text_of(d, "period");
        p.work_item = text_of(d, "work_item");
        p.why = text_of(d, "origin").empty() ? text_of(d["why"], "trigger") : text_of(d, "origin");
        for (const auto& t : facts) {
            p.clients[t.id] = t.client;
        }
        p.lines = std::move(priced.lines);
        p.arithmetic = std::move(priced.arithmetic);
        if (auto st = cap_time(e, p, priced.total); !st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        as_redraft(p, base_bill_of(d), again);
        note_left_out(p, std::move(left_out));
        if (auto made = propose(e, std::move(p)); !made.ok()) {
            return operator_answer::fail(500, "store", made.st.message);
        }
        return operator_answer::ok(
            json{{"draft", draft_id_for(redraft_bill(base_bill_of(d), again.round))}});
    }

    // The time entries a draft billed, in line order.
    static std::vector<std::string> entries_of(const json& d) {
        std::vector<std::string> out;
        for (const auto& l : d.value("lines", json::array())) {
            for (const auto& x : l.value("entries", json::array())) {
                if (x.is_string()) {
                    out.push_back(x.get<std::string>());
                }
            }
        }
        return out;
    }

    // Why a time entry is not (or no longer) among the approved, unbilled time; `otherwise`
    // when its stored facts do not say.
    state::result<std::string> left_out_cause(const std::string& entry, std::string otherwise) {
        using R = state::result<std::string>;
        auto billed = read_row(*ctx.store, &ctx.b, entry_type, entry);
        if (!billed.ok()) {
            return R::failure(billed.st);
        }
        if (billed.value) {
            return {state::status::success(), "billed on draft " + text_of(*billed.value, "draft")};
        }
        auto stored = state::get_entity(*ctx.store, ctx.b, "time_entry", entry);
        if (!stored.ok()) {
            return R::failure(stored.st);
        }
        const auto j = stored.value ? json::parse(*stored.value, nullptr, false)
                                    : json(json::value_t::discarded);
        if (!j.is_object() || j.value("deleted", false)) {
            return {state::status::success(), "deleted in its time system"};
        }
        if (j.value("billed", false)) {
            return {state::status::success(), "invoiced in its time system"};
        }
        if (!j.value("billable", true)) {
            return {state::status::success(), "no longer billable"};
        }
        if (!j.value("locked", false)) {
            return {state::status::success(), "no longer approved"};
        }
        if (text_of(j, "client_id").empty()) {
            return {state::status::success(), "no longer recorded for a client"};
        }
        return {state::status::success(), std::move(otherwise)};
    }

    // A redraft's entries that did not make it: on its why, one sentence and one row each.
    static void note_left_out(proposal& p, json left_out) {
        if (left_out.empty()) {
            return;
        }
        std::string text;
        for (const auto& x : left_out) {
            text += fmt::format(
                "{}{} ({})", text.empty() ? "" : ", ", text_of(x, "entry"), text_of(x, "cause"));
        }
        p.why += fmt::format("; left out of the rejected draft's time: {}", text);
        p.left_out = std::move(left_out);
    }

    state::status raise_no_rate(const engagement& e, const std::string& entry) {
        return raise("no_rate",
                     "time_entry:" + entry,
                     "no rate in engagement " + e.id + " applies to time entry " + entry +
                         " (add rates.default, or a staff, role or service rate)",
                     "admin",
                     e.id);
    }

    // A write-down line when the time would bring the engagement's billing above its cap.
    state::status cap_time(const engagement& e, proposal& p, std::int64_t total) {
        if (!e.cap) {
            return state::status::success();
        }
        auto stats = read_row(*ctx.store, &ctx.b, stats_type, e.id);
        if (!stats.ok()) {
            return stats.st;
        }
        const auto before = stats.value ? int_of(*stats.value, "billed_minor") : 0;
        const auto room = std::max<std::int64_t>(0, *e.cap - before);
        if (total > room) {
            line w;
            w.kind = "write_down";
            w.amount = room - total;
            w.description = fmt::format("Write-down: engagement cap {} ({} billed before)",
                                        money_text(*e.cap, e.currency),
                                        money_text(before, e.currency));
            p.arithmetic.push_back(fmt::format("{} of time, capped at {} left of {}: write-down {}",
                                               money_text(total, e.currency),
                                               money_text(room, e.currency),
                                               money_text(*e.cap, e.currency),
                                               money_text(w.amount, e.currency)));
            p.lines.push_back(std::move(w));
        }
        return state::status::success();
    }

    struct staff_info {
        std::string email, role;
    };
    std::map<std::string, staff_info> staff_cache;

    // Approved (locked), billable time that its vendor has not invoiced (billed: never billed
    // again, whoever billed it).
    static bool indexable(const json& j) {
        return j.is_object() && !j.value("deleted", false) && j.value("billable", true) &&
               j.value("locked", false) && !j.value("billed", false);
    }

    // Keeps the index rows of one time entry (the canonical entry as JSON) in step with it.
    state::status index_entry(std::string_view id, const json& j) {
        const auto client = text_of(j, "client_id");
        auto at_row = state::get_entity(*ctx.store, ctx.b, time_at_type, id);
        if (!at_row.ok()) {
            return at_row.st;
        }
        if (at_row.value && *at_row.value != client) {
            // Moved to another client: the old row goes.
            state::delete_entity(
                ctx.b, time_index_type, *at_row.value + index_sep + std::string(id));
        }
        bool wanted = indexable(j) && !client.empty();
        if (wanted) {
            auto billed = state::get_entity(*ctx.store, ctx.b, entry_type, id);
            if (!billed.ok()) {
                return billed.st;
            }
            wanted = !billed.value;
        }
        const auto key = client + index_sep + std::string(id);
        if (!wanted) {
            state::delete_entity(ctx.b, time_index_type, key);
            state::delete_entity(ctx.b, time_at_type, id);
            return state::status::success();
        }
        state::put_entity(ctx.b,
                          time_index_type,
                          key,
                          json{{"staff", text_of(j, "staff_id")},
                               {"service", text_of(j, "service")},
                               {"date", text_of(j, "date")},
                               {"minutes", int_of(j, "minutes")},
                               {"project", text_of(j, "engagement_id")}}
                              .dump());
        state::put_entity(ctx.b, time_at_type, id, client);
        return state::status::success();
    }

    // Once: index every stored entry (entries stored before the rule was on).
    state::status build_index() {
        auto done = read_row(*ctx.store, &ctx.b, meta_type, "time_index");
        if (!done.ok()) {
            return done.st;
        }
        if (done.value) {
            return state::status::success();
        }
        state::status failed = state::status::success();
        std::uint64_t n = 0;
        auto st = state::for_each_entity(
            *ctx.store, "time_entry", [&](std::string_view id, std::string_view value) {
                const auto j = json::parse(value, nullptr, false);
                if (indexable(j)) {
                    failed = index_entry(id, j);
                    ++n;
                }
                return failed.ok;
            });
        if (!st.ok) {
            return st;
        }
        if (!failed.ok) {
            return failed;
        }
        state::put_entity(ctx.b,
                          meta_type,
                          "time_index",
                          json{{"built_at", util::format_rfc3339(ctx.now)}, {"entries", n}}.dump());
        return state::status::success();
    }

    // A time entry of the index as pricing wants it: its facts, and its staff member's email and
    // role (cached for the step).
    time_fact fact_of(const std::string& id, const std::string& client, const json& j) {
        time_fact t;
        t.id = id;
        t.client = client;
        t.service = text_of(j, "service");
        t.date = text_of(j, "date");
        t.minutes = int_of(j, "minutes");
        const auto staff = text_of(j, "staff");
        auto sit = staff_cache.find(staff);
        if (sit == staff_cache.end()) {
            staff_info info;
            auto r = state::get_entity(*ctx.store, "staff", staff);
            if (r.ok() && r.value) {
                const auto sj = json::parse(*r.value, nullptr, false);
                info.email = lower(text_of(sj, "email"));
                info.role = text_of(sj, "role");
            }
            sit = staff_cache.emplace(staff, info).first;
        }
        t.staff = sit->second.email;
        t.role = sit->second.role;
        return t;
    }

    // One time entry if it is in the index (approved, billable, unbilled); nullopt otherwise.
    state::result<std::optional<time_fact>> indexed_fact(const std::string& id) {
        using R = state::result<std::optional<time_fact>>;
        auto client = state::get_entity(*ctx.store, ctx.b, time_at_type, id);
        if (!client.ok()) {
            return R::failure(client.st);
        }
        if (!client.value) {
            return {state::status::success(), std::nullopt};
        }
        auto row = read_row(*ctx.store, &ctx.b, time_index_type, *client.value + index_sep + id);
        if (!row.ok()) {
            return R::failure(row.st);
        }
        if (!row.value) {
            return {state::status::success(), std::nullopt};
        }
        return {state::status::success(), fact_of(id, *client.value, *row.value)};
    }

    // The engagement's client party, cached for the step.
    std::map<std::string, std::string> party_cache;
    state::result<std::string> party_of_engagement(const engagement& e) {
        if (auto it = party_cache.find(e.id); it != party_cache.end()) {
            return {state::status::success(), it->second};
        }
        auto c = client_of(e);
        if (!c.ok()) {
            return state::result<std::string>::failure(c.st);
        }
        party_cache[e.id] = c.value.second;
        return {state::status::success(), c.value.second};
    }

    // Approved, billable, unbilled time of one engagement, within [from, to) when dates are
    // given. An entry belongs to the first engagement of the book (among those `eligible`) with
    // the same client party whose projects admit it.
    state::result<std::vector<time_fact>> unbilled_time(
        const engagement& e,
        const std::function<bool(const engagement&)>& eligible,
        std::optional<std::pair<std::string, std::string>> dates = std::nullopt) {
        using R = state::result<std::vector<time_fact>>;
        auto p = party_of_engagement(e);
        if (!p.ok()) {
            return R::failure(p.st);
        }
        if (p.value.empty()) {
            if (auto st = raise("unmatched_client",
                                "engagement:" + e.id,
                                "client " + e.client + " of engagement " + e.id + " is not known",
                                "billing coordinator",
                                e.id);
                !st.ok) {
                return R::failure(st);
            }
            return {state::status::success(), {}};
        }
        std::vector<const engagement*> rivals;  // same party, eligible, in book order
        for (const auto& other : s.engagements) {
            if (!eligible(other)) {
                continue;
            }
            auto op = party_of_engagement(other);
            if (!op.ok()) {
                return R::failure(op.st);
            }
            if (op.value == p.value) {
                rivals.push_back(&other);
            }
        }
        auto members = state::identity::members_of(*ctx.store, &ctx.b, p.value);
        if (!members.ok()) {
            return R::failure(members.st);
        }
        std::vector<std::string> clients;
        for (const auto& m : members.value) {
            clients.push_back(m.client);
        }
        if (clients.empty()) {
            clients.push_back(p.value);
        }
        std::vector<time_fact> out;
        state::status failed = state::status::success();
        for (const auto& client : clients) {
            std::vector<std::pair<std::string, json>> rows;
            auto st = state::for_each_entity_with_prefix(
                *ctx.store,
                time_index_type,
                client + index_sep,
                [&](std::string_view key, std::string_view value) {
                    rows.emplace_back(std::string(key.substr(client.size() + 1)),
                                      json::parse(value, nullptr, false));
                    return true;
                });
            if (!st.ok) {
                return R::failure(st);
            }
            for (auto& [id, j] : rows) {
                const auto date = text_of(j, "date");
                if (dates && (date < dates->first || date >= dates->second)) {
                    continue;
                }
                const auto project = text_of(j, "project");
                const engagement* owner = nullptr;
                for (const auto* r : rivals) {
                    if (r->projects.empty() ||
                        std::find(r->projects.begin(), r->projects.end(), project) !=
                            r->projects.end()) {
                        owner = r;
                        break;
                    }
                }
                if (owner != &e) {
                    continue;
                }
                out.push_back(fact_of(id, client, j));
            }
        }
        if (!failed.ok) {
            return R::failure(failed);
        }
        return {state::status::success(), std::move(out)};
    }

    static bool out_of_scope(const engagement& e, const time_fact& t) {
        return std::any_of(e.out_of_scope_services.begin(),
                           e.out_of_scope_services.end(),
                           [&](const auto& svc) { return lower(svc) == lower(t.service); });
    }

    static bool bills_time(const engagement& e) {
        return e.billing == model::time_and_materials || e.billing == model::hybrid;
    }
    static bool has_retainer(const engagement& e) {
        return e.billing == model::retainer || e.billing == model::hybrid;
    }

    // One engagement's time-and-materials draft from its unbilled time.
    state::status time_draft(const engagement& e,
                             const std::string& bill_key,
                             const std::string& why,
                             const std::string& work_item,
                             const std::string& period) {
        auto found = unbilled_time(e, bills_time);
        if (!found.ok()) {
            return found.st;
        }
        std::vector<time_fact> facts;
        for (auto& t : found.value) {
            if (e.billing == model::hybrid && !out_of_scope(e, t)) {
                continue;  // within the retainer's scope: counts against its hours
            }
            facts.push_back(std::move(t));
        }
        if (facts.empty()) {
            return state::status::success();
        }
        auto priced = price_time(e, facts);
        for (const auto& missing : priced.no_rate) {
            if (auto st = raise_no_rate(e, missing); !st.ok) {
                return st;
            }
        }
        if (priced.lines.empty()) {
            return state::status::success();
        }
        proposal p;
        p.bill_key = bill_key;
        p.trigger = "time_and_materials";
        p.period = period;
        p.work_item = work_item;
        p.why = why;
        for (const auto& t : facts) {
            p.clients[t.id] = t.client;
        }
        p.lines = std::move(priced.lines);
        p.arithmetic = std::move(priced.arithmetic);
        if (auto st = cap_time(e, p, priced.total); !st.ok) {
            return st;
        }
        return propose(e, std::move(p)).st;
    }

    // One engagement's retainer draft for the period starting `start`. With `again`: the
    // redraft of the rejected draft `rejected` of that period (its entries that are no longer
    // counted are named on the why).
    state::status retainer_draft(const engagement& e,
                                 const std::string& period,
                                 date::local_days start,
                                 const redraft_request* again = nullptr,
                                 const json* rejected = nullptr) {
        const date::year_month_day ymd(start);
        const auto prev = month_start(ymd.year() / ymd.month() - date::months(1), s.retainer_day);
        auto found = unbilled_time(e, has_retainer, std::make_pair(civil(prev), civil(start)));
        if (!found.ok()) {
            return found.st;
        }
        std::int64_t minutes = 0;
        std::vector<std::string> ids;
        for (const auto& t : found.value) {
            if (e.billing == model::hybrid && out_of_scope(e, t)) {
                continue;  // billed as T&M
            }
            minutes += t.minutes;
            ids.push_back(t.id);
        }
        auto priced = price_retainer(e, period, minutes, ids);
        proposal p;
        p.bill_key = "retainer|" + e.id + "|" + period;
        p.trigger = "retainer";
        p.period = period;
        p.why = "retainer period " + period + " started " + civil(start);
        p.overage = priced.overage;
        for (const auto& t : found.value) {
            p.clients[t.id] = t.client;
        }
        if (priced.overage == 0) {
            // The time stays with the retainer period it was recorded in: marked billed by the
            // retainer line, so no later run counts it again.
            for (auto& l : priced.lines) {
                if (l.kind == "retainer") {
                    l.entries = ids;
                }
            }
        }
        p.lines = std::move(priced.lines);
        p.arithmetic = std::move(priced.arithmetic);
        if (again != nullptr && rejected != nullptr) {
            as_redraft(p, base_bill_of(*rejected), *again);
            const std::set<std::string> counted(ids.begin(), ids.end());
            json left_out = json::array();
            for (const auto& entry : entries_of(*rejected)) {
                if (counted.contains(entry)) {
                    continue;
                }
                auto cause = left_out_cause(
                    entry, "no longer counted in the period's time (its date or scope changed)");
                if (!cause.ok()) {
                    return cause.st;
                }
                left_out.push_back(json{{"entry", entry}, {"cause", cause.value}});
            }
            note_left_out(p, std::move(left_out));
        }
        return propose(e, std::move(p)).st;
    }

    // One step of a scheduled run: the next `run_chunk` engagements (by id) after `after`.
    // Returns the last id decided, or empty when the run is complete.
    state::result<std::string> run_step(
        const std::function<bool(const engagement&)>& in_run,
        const std::string& after,
        const std::function<state::status(const engagement&)>& decide) {
        std::vector<const engagement*> es;
        for (const auto& e : s.engagements) {
            if (in_run(e) && e.id > after) {
                es.push_back(&e);
            }
        }
        std::sort(es.begin(), es.end(), [](const auto* a, const auto* b) { return a->id < b->id; });
        std::size_t n = 0;
        for (const auto* e : es) {
            if (n == run_chunk) {
                return {state::status::success(), es[n - 1]->id};
            }
            if (auto st = decide(*e); !st.ok) {
                return state::result<std::string>::failure(st);
            }
            ++n;
        }
        return {state::status::success(), std::string()};
    }
};

invoicing_rule::invoicing_rule(settings s, util::metrics_registry* metrics)
    : s_(std::move(s)), metrics_(metrics) {}

bool invoicing_rule::owns_timer(std::string_view timer_name) const noexcept {
    return timer_name.starts_with(timer_prefix);
}

void invoicing_rule::collect_into(util::metrics_registry& m, const state::store& store) {
    // Open exceptions by type: how many, and since when the oldest waits.
    std::map<std::string, std::pair<std::int64_t, std::string>> by_type;
    for (const auto* t : {"missing_po",
                          "po_limit",
                          "unmatched_client",
                          "no_engagement",
                          "no_rate",
                          "missing_approver",
                          "pricing_mismatch",
                          "missing_tax",
                          "missing_time"}) {
        by_type[t] = {0, {}};
    }
    (void)state::for_each_entity(store, open_type, [&](std::string_view, std::string_view v) {
        const auto j = json::parse(v, nullptr, false);
        auto& [n, oldest] = by_type[text_of(j, "type")];
        ++n;
        const auto since = text_of(j, "since");
        if (oldest.empty() || since < oldest) {
            oldest = since;
        }
        return true;
    });
    for (const auto& [type, v] : by_type) {
        m.get_gauge("billsync_invoicing_exceptions",
                    "Open invoicing exceptions by type (billsync exceptions list).",
                    {{"type", type}})
            .set(v.first);
        util::instant t{};
        const auto at =
            !v.second.empty() && util::parse_rfc3339(v.second, t)
                ? std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count()
                : 0;
        m.get_gauge("billsync_invoicing_exception_oldest_timestamp_seconds",
                    "When the oldest open invoicing exception of a type was raised (Unix time; 0: "
                    "none open). Its age is time() minus this.",
                    {{"type", type}})
            .set(at);
    }
}

state::status invoicing_rule::on_start(context& ctx) const {
    // One collector per process: a reload builds a new rule, the collector reads the store.
    static std::atomic<bool> collecting{false};
    if (metrics_ != nullptr && !collecting.exchange(true)) {
        metrics_->add_collector(
            [store = ctx.store](util::metrics_registry& m) { collect_into(m, *store); });
    }
    impl im(s_, ctx);
    if (auto st = im.build_index(); !st.ok) {
        return st;
    }
    bool retainers = false, monthly = false, weekly = false;
    for (const auto& e : s_.engagements) {
        retainers = retainers || e.billing == model::retainer || e.billing == model::hybrid;
        const bool tm = e.billing == model::time_and_materials || e.billing == model::hybrid;
        monthly = monthly || (tm && e.every == schedule::monthly);
        weekly = weekly || (tm && e.every == schedule::weekly);
    }
    if (retainers) {
        if (auto st =
                im.ensure_timer(retainer_timer, im.next_monthly(s_.retainer_day), json::object());
            !st.ok) {
            return st;
        }
    }
    if (monthly) {
        if (auto st = im.ensure_timer(tm_monthly_timer, im.next_monthly(1), json::object());
            !st.ok) {
            return st;
        }
    }
    if (weekly) {
        if (auto st = im.ensure_timer(tm_weekly_timer, im.next_weekly(), json::object()); !st.ok) {
            return st;
        }
    }
    return state::status::success();
}

state::status invoicing_rule::on_change(const change& c, context& ctx) const {
    if (c.entity_type == "work_item") {
        const auto* w = c.as<mappings::work_item>();
        if (w == nullptr || c.what == change::op::deleted) {
            return state::status::success();
        }
        impl im(s_, ctx);
        return im.on_work_item(*w);
    }
    if (c.entity_type == "client") {
        // A client seen again (a new link in the identity map, a changed record): drafts waiting
        // for their client in the ledger try again.
        impl im(s_, ctx);
        return im.retry_unmatched();
    }
    if (c.entity_type == "time_entry") {
        const auto* t = c.as<mappings::time_entry>();
        if (t == nullptr) {
            return state::status::success();
        }
        impl im(s_, ctx);
        json j{{"client_id", t->client_id},
               {"staff_id", t->staff_id},
               {"service", t->service},
               {"date", t->date ? mappings::format_civil_date(*t->date) : std::string()},
               {"minutes", t->minutes},
               {"engagement_id", t->engagement_id},
               {"billable", t->billable},
               {"locked", t->locked},
               {"billed", t->billed},
               {"deleted", t->deleted || c.what == change::op::deleted}};
        return im.index_entry(t->id, j);
    }
    return state::status::success();
}

state::status invoicing_rule::on_timer(const state::timer& t, context& ctx) const {
    impl im(s_, ctx);
    // The run is for the period the timer was due in, however late it fires.
    const auto day = local_day(im.tz, t.due);
    const auto payload = json::parse(t.payload, nullptr, false);
    const auto after = text_of(payload, "after");
    // A run continues in bounded steps: the same timer, due at once, carries the period and
    // the last engagement decided.
    const auto continue_or_next = [&](const state::result<std::string>& step,
                                      json carry,
                                      util::instant next) -> state::status {
        if (!step.ok()) {
            return step.st;
        }
        if (!step.value.empty()) {
            carry["after"] = step.value;
            return ctx.timers.schedule(ctx.b, t.name, ctx.now, carry.dump());
        }
        audit(ctx, "run_complete", json{{"run", t.name}, {"period", carry.value("period", "")}});
        return ctx.timers.schedule(ctx.b, t.name, next, "{}");
    };
    if (t.name == retainer_timer) {
        const date::year_month_day ymd(day);
        auto start = month_start(ymd.year() / ymd.month(), s_.retainer_day);
        if (const auto carried = mappings::parse_civil_date(text_of(payload, "start"))) {
            start = date::local_days(std::chrono::sys_days(*carried).time_since_epoch());
        }
        const auto period = period_label(start);
        auto step = im.run_step(impl::has_retainer, after, [&](const engagement& e) {
            return im.retainer_draft(e, period, start);
        });
        return continue_or_next(step,
                                json{{"period", period}, {"start", civil(start)}},
                                im.next_monthly(s_.retainer_day));
    }
    if (t.name == tm_monthly_timer || t.name == tm_weekly_timer) {
        const bool weekly = t.name == tm_weekly_timer;
        const auto every = weekly ? schedule::weekly : schedule::monthly;
        auto period = text_of(payload, "period");
        if (period.empty()) {
            period = weekly ? civil(day) : period_label(day);
        }
        const auto why =
            std::string(weekly ? "weekly" : "monthly") + " time and materials run " + period;
        auto step = im.run_step(
            [&](const engagement& e) { return impl::bills_time(e) && e.every == every; },
            after,
            [&](const engagement& e) {
                return im.time_draft(e, "tm|" + e.id + "|" + period, why, {}, period);
            });
        return continue_or_next(
            step, json{{"period", period}}, weekly ? im.next_weekly() : im.next_monthly(1));
    }
    if (t.name.starts_with(send_prefix)) {
        return im.send_when_created(t);
    }
    if (t.name.starts_with(sla_prefix)) {
        const auto id = t.name.substr(sla_prefix.size());
        auto d = read_row(*ctx.store, &ctx.b, draft_type, id);
        if (!d.ok()) {
            return d.st;
        }
        if (!d.value || text_of(*d.value, "state") != "pending_approval") {
            return state::status::success();
        }
        const auto round = payload.is_object() ? payload.value("round", 1) : 1;
        auto& draft = *d.value;
        if (round >= 2 && !draft.value("escalated", false) && !s_.approval.escalate_to.empty()) {
            json added = json::array();
            for (const auto& who : s_.approval.escalate_to) {
                const auto addr = lower(who);
                if (std::find(draft["approvers"].begin(), draft["approvers"].end(), addr) ==
                    draft["approvers"].end()) {
                    draft["approvers"].push_back(addr);
                    added.push_back(addr);
                }
            }
            draft["escalated"] = true;
            draft["escalated_at"] = util::format_rfc3339(ctx.now);
            im.write(draft);
            audit(ctx, "escalated", json{{"draft", id}, {"to", added}, {"round", round}});
            if (auto st = im.notify(draft, added, "escalated", round); !st.ok) {
                return st;
            }
        } else {
            draft["reminded_at"] = util::format_rfc3339(ctx.now);
            draft["reminders"] = int_of(draft, "reminders") + 1;
            im.write(draft);
            audit(ctx,
                  "reminded",
                  json{{"draft", id}, {"approvers", draft["approvers"]}, {"round", round}});
            if (auto st = im.notify(draft, draft["approvers"], "reminder", round); !st.ok) {
                return st;
            }
        }
        return ctx.timers.schedule(ctx.b,
                                   t.name,
                                   im.business_days_after(s_.approval.sla_business_days),
                                   json{{"round", round + 1}}.dump());
    }
    return state::status::success();
}

std::vector<verb_spec> invoicing_rule::verbs() const {
    return {{"drafts", "", false, "Every invoice draft and its state"},
            {"show", "DRAFT", false, "One draft: lines, why, approvals, exceptions, ledger result"},
            {"approvals", "", false, "Drafts waiting for an approval"},
            {"exceptions", "", false, "Open exceptions: type, cause, owner, age"},
            {"exception", "ID", false, "One exception (or the blocked draft it holds)"},
            {"approve",
             "DRAFT --by EMAIL [--reason TEXT] [--write-down AMOUNT]",
             true,
             "Approve a draft (a write-down needs a reason from the taxonomy)"},
            {"reject", "DRAFT --by EMAIL --reason TEXT", true, "Reject a draft, with a reason"},
            {"redraft",
             "DRAFT [--by EMAIL] [--reason TEXT]",
             true,
             "Draft a rejected milestone, retainer period or time-and-materials draft again from "
             "the current engagement book (once per rejected draft)"},
            {"resolve",
             "EXCEPTION|DRAFT [--po NUMBER] [--by EMAIL]",
             true,
             "Re-check a blocked draft (after a fix), or close an exception"}};
}

namespace {

json with_result(json d, const state::store& s) {
    const auto key = text_of(d, "action");
    if (key.empty()) {
        return d;
    }
    if (const auto a = queued_action(s, key)) {
        d["ledger_action"] = json{{"state", state::to_string(a->state)},
                                  {"attempts", a->attempts},
                                  {"result", a->result},
                                  {"last_error", a->last_error}};
        if (a->state == state::action_state::done) {
            d["state"] = "created";
            d["invoice"] = a->result;
        } else if (a->state == state::action_state::dead) {
            d["state"] = "failed";
        }
    }
    return d;
}

}  // namespace

operator_answer invoicing_rule::view(std::string_view path, const state::store& s) const {
    if (path.starts_with("exception/")) {
        // An exception: a blocked draft's (by draft id) or one of its own.
        const auto id = std::string(path.substr(10));
        auto x = read_row(s, nullptr, exception_type, id);
        if (x.ok() && x.value) {
            return operator_answer::ok(std::move(*x.value));
        }
        return view("show/" + id, s);
    }
    json drafts = json::array();
    json pending = json::array();
    json exceptions = json::array();
    std::optional<json> one;
    const bool show = path.starts_with("show/");
    const auto wanted = show ? std::string(path.substr(5)) : std::string();
    if (!path.empty() && path != "drafts" && path != "approvals" && path != "exceptions" && !show) {
        return rule::view(path, s);
    }
    auto st =
        state::for_each_entity(s, draft_type, [&](std::string_view id, std::string_view value) {
            auto j = json::parse(value, nullptr, false);
            if (!j.is_object()) {
                return true;
            }
            if (show) {
                if (id == wanted) {
                    one = with_result(std::move(j), s);
                    return false;
                }
                return true;
            }
            j = with_result(std::move(j), s);
            const auto state = text_of(j, "state");
            if (state == "pending_approval") {
                pending.push_back(j);
            } else if (state == "blocked") {
                for (const auto& x : j.value("exceptions", json::array())) {
                    exceptions.push_back(
                        json{{"id", text_of(j, "id")},
                             {"type", x["type"]},
                             {"cause", x["cause"]},
                             {"owner", x["owner"]},
                             {"since", text_of(j, "blocked_at")},
                             {"draft", text_of(j, "id")},
                             {"engagement", text_of(j, "engagement")},
                             {"resolve", "billsync exceptions resolve " + text_of(j, "id")}});
                }
            }
            drafts.push_back(std::move(j));
            return true;
        });
    if (!st.ok) {
        return operator_answer::fail(500, "store", st.message);
    }
    if (show) {
        if (!one) {
            return operator_answer::fail(404, "not_found", "no invoice draft " + wanted);
        }
        return operator_answer::ok(std::move(*one));
    }
    if (path == "exceptions") {
        st = state::for_each_entity(
            s, exception_type, [&](std::string_view, std::string_view value) {
                auto j = json::parse(value, nullptr, false);
                if (j.is_object() && text_of(j, "state") == "open") {
                    exceptions.push_back(
                        json{{"id", text_of(j, "id")},
                             {"type", j["type"]},
                             {"cause", j["cause"]},
                             {"owner", j["owner"]},
                             {"since", text_of(j, "raised_at")},
                             {"engagement", text_of(j, "engagement")},
                             {"resolve", "billsync exceptions resolve " + text_of(j, "id")}});
                }
                return true;
            });
        if (!st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        return operator_answer::ok(json{{"exceptions", std::move(exceptions)}});
    }
    if (path == "approvals") {
        return operator_answer::ok(json{{"approvals", std::move(pending)}});
    }
    return operator_answer::ok(json{{"drafts", std::move(drafts)}});
}

operator_answer invoicing_rule::command(std::string_view verb,
                                        const json& args,
                                        context& ctx) const {
    if (verb != "approve" && verb != "reject" && verb != "resolve" && verb != "redraft") {
        return rule::command(verb, args, ctx);
    }
    if (!args.is_object() || !args.contains("id") || !args["id"].is_string()) {
        return operator_answer::fail(
            400,
            "bad_request",
            R"(expected {"id": "<draft or exception id>", "by": "<email>", ...})");
    }
    const auto id = args["id"].get<std::string>();
    const auto by = lower(args.value("by", std::string()));
    const auto reason = args.value("reason", std::string());
    impl im(s_, ctx);
    const auto known_reason = [&](const std::string& r) {
        if (r.empty()) {
            return false;
        }
        if (s_.approval.reasons.empty()) {
            return true;
        }
        return std::any_of(s_.approval.reasons.begin(),
                           s_.approval.reasons.end(),
                           [&](const auto& x) { return lower(x) == lower(r); });
    };
    const auto reasons_text = [&] {
        std::string out;
        for (const auto& r : s_.approval.reasons) {
            out += (out.empty() ? "" : ", ") + r;
        }
        return out;
    };
    auto row = read_row(*ctx.store, &ctx.b, draft_type, id);
    if (!row.ok()) {
        return operator_answer::fail(500, "store", row.st.message);
    }
    if (verb == "resolve" && !row.value) {
        auto x = read_row(*ctx.store, &ctx.b, exception_type, id);
        if (!x.ok()) {
            return operator_answer::fail(500, "store", x.st.message);
        }
        if (!x.value || text_of(*x.value, "state") != "open") {
            return operator_answer::fail(404, "not_found", "no open exception or draft " + id);
        }
        if (auto st = im.clear(id,
                               by.empty() ? "operator" : by,
                               reason.empty() ? "closed by an operator" : reason);
            !st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        return operator_answer::ok(json{{"resolved", id}});
    }
    if (!row.value) {
        return operator_answer::fail(404, "not_found", "no invoice draft " + id);
    }
    auto& d = *row.value;
    const auto* e = im.find_engagement(text_of(d, "engagement"));
    if (e == nullptr) {
        return operator_answer::fail(
            409,
            "no_engagement",
            "engagement " + text_of(d, "engagement") + " is no longer in the engagement book");
    }
    const auto state = text_of(d, "state");
    if (verb == "resolve") {
        if (state != "blocked") {
            return operator_answer::fail(
                409, "not_blocked", "draft " + id + " is " + state + ", not blocked");
        }
        if (!reason.empty()) {
            // A person decided to bill without recorded time.
            d["time_waived"] = true;
            d["time_waived_by"] = json{{"by", by}, {"reason", reason}};
            // ... or at the terms although the ledger item's price differs.
            const auto& current = d.value("exceptions", json::array());
            if (std::any_of(current.begin(), current.end(), [](const json& x) {
                    return text_of(x, "type") == "pricing_mismatch";
                })) {
                d["prices_waived"] = true;
                d["prices_waived_by"] = json{{"by", by}, {"reason", reason}};
                audit(ctx,
                      "exception_waived",
                      json{{"draft", id},
                           {"exception", "pricing_mismatch"},
                           {"by", by},
                           {"reason", reason}});
            }
        }
        if (auto po = args.value("po", std::string()); !po.empty()) {
            d["po_number"] = po;
            state::put_entity(
                ctx.b,
                po_type,
                e->id,
                json{{"po_number", po}, {"by", by}, {"at", util::format_rfc3339(ctx.now)}}.dump());
            audit(ctx, "po_set", json{{"draft", id}, {"po_number", po}, {"by", by}});
        }
        if (auto st = im.evaluate(*e, d, false); !st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        auto done = operator_answer::ok(nullptr);
        done.then_view = "show/" + id;
        return done;
    }
    if (verb == "redraft") {
        return im.redraft(*e, d, by, reason);
    }
    // A draft blocked because its terms disagree with the ledger item may be rejected (then
    // redrafted from the corrected book); any other blocked draft waits for its resolution.
    const auto& blocked_by = d.value("exceptions", json::array());
    const bool mispriced =
        state == "blocked" && std::any_of(blocked_by.begin(), blocked_by.end(), [](const json& x) {
            return text_of(x, "type") == "pricing_mismatch";
        });
    if (state != "pending_approval" && !(verb == "reject" && mispriced)) {
        return operator_answer::fail(
            409, "not_pending", "draft " + id + " is " + state + ", not waiting for approval");
    }
    if (by.empty() || by.find('@') == std::string::npos) {
        return operator_answer::fail(400, "bad_request", "say who decides: --by <email>");
    }
    if (!e->terms_by.empty() && lower(e->terms_by) == by) {
        return operator_answer::fail(403,
                                     "segregation_of_duties",
                                     by + " changed the terms of engagement " + e->id +
                                         " and cannot decide on the invoice they produce");
    }
    const auto& approvers = d["approvers"];
    if (std::find(approvers.begin(), approvers.end(), by) == approvers.end()) {
        return operator_answer::fail(
            403, "not_an_approver", by + " is not an approver of draft " + id);
    }
    if (verb == "reject") {
        if (!known_reason(reason)) {
            return operator_answer::fail(
                400, "reason_required", "a rejection needs --reason, one of: " + reasons_text());
        }
        d["state"] = "rejected";
        d["rejected"] = json{{"by", by}, {"at", util::format_rfc3339(ctx.now)}, {"reason", reason}};
        // A blocked draft's exceptions end with it.
        for (const auto& x : blocked_by) {
            state::delete_entity(ctx.b, open_type, id + ":" + text_of(x, "type"));
        }
        // Its time goes back to the unbilled pool; the bill key stays used (billed at most once).
        for (const auto& l : d["lines"]) {
            for (const auto& entry : l.value("entries", json::array())) {
                const auto eid = entry.get<std::string>();
                state::delete_entity(ctx.b, entry_type, eid);
                auto te = state::get_entity(*ctx.store, ctx.b, "time_entry", eid);
                if (te.ok() && te.value) {
                    if (auto st = im.index_entry(eid, json::parse(*te.value, nullptr, false));
                        !st.ok) {
                        return operator_answer::fail(500, "store", st.message);
                    }
                }
            }
        }
        auto stats = read_row(*ctx.store, &ctx.b, stats_type, e->id);
        if (stats.ok() && stats.value) {
            (*stats.value)["billed_minor"] =
                int_of(*stats.value, "billed_minor") - int_of(d, "total_minor");
            state::put_entity(ctx.b, stats_type, e->id, stats.value->dump());
        }
        im.write(d);
        audit(ctx, "rejected", json{{"draft", id}, {"by", by}, {"reason", reason}});
        if (auto st = ctx.timers.cancel(ctx.b, std::string(sla_prefix) + id); !st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        auto done = operator_answer::ok(nullptr);
        done.then_view = "show/" + id;
        return done;
    }
    for (const auto& a : d["approvals"]) {
        if (text_of(a, "by") == by) {
            return operator_answer::fail(
                409, "already_approved", by + " already approved draft " + id);
        }
    }
    if (auto wd = args.value("write_down", std::string()); !wd.empty()) {
        const auto minor = mappings::parse_decimal(wd, mappings::minor_digits(e->currency));
        if (!minor || *minor <= 0 || *minor > int_of(d, "total_minor")) {
            return operator_answer::fail(
                400,
                "bad_request",
                "--write-down must be an amount above 0 and at most the draft's total");
        }
        if (!known_reason(reason)) {
            return operator_answer::fail(
                400, "reason_required", "a write-down needs --reason, one of: " + reasons_text());
        }
        d["lines"].push_back(json{{"kind", "write_down"},
                                  {"description", "Write-down: " + reason},
                                  {"amount_minor", -*minor}});
        d["total_minor"] = impl::total_of(d);
        d["why"]["arithmetic"].push_back(
            fmt::format("write-down {} by {} ({})", money_text(*minor, e->currency), by, reason));
        auto stats = read_row(*ctx.store, &ctx.b, stats_type, e->id);
        if (stats.ok() && stats.value) {
            (*stats.value)["billed_minor"] = int_of(*stats.value, "billed_minor") - *minor;
            state::put_entity(ctx.b, stats_type, e->id, stats.value->dump());
        }
        audit(ctx,
              "written_down",
              json{{"draft", id}, {"by", by}, {"amount_minor", *minor}, {"reason", reason}});
    }
    d["approvals"].push_back(
        json{{"by", by}, {"at", util::format_rfc3339(ctx.now)}, {"reason", reason}});
    operator_answer done = operator_answer::ok(nullptr);
    done.then_view = "show/" + id;
    if (static_cast<std::int64_t>(d["approvals"].size()) < d.value("required_approvals", 1)) {
        im.write(d);
        audit(ctx,
              "approval_recorded",
              json{{"draft", id},
                   {"by", by},
                   {"still_needed",
                    d.value("required_approvals", 1) - static_cast<int>(d["approvals"].size())}});
        return done;
    }
    if (auto st = im.approve_and_queue(*e, d, by); !st.ok) {
        return operator_answer::fail(500, "store", st.message);
    }
    return done;
}

std::optional<json> invoicing_rule::cli_request(std::string_view verb,
                                                const std::vector<std::string>& args,
                                                std::ostream& err) const {
    if (args.empty() || args.front().starts_with("--")) {
        err << "invoicing " << verb
            << " needs an id (billsync approvals list, billsync exceptions list)\n";
        return std::nullopt;
    }
    json out{{"id", args.front()}};
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        const auto take = [&](std::string_view key) -> bool {
            if (i + 1 >= args.size()) {
                err << a << " needs a value\n";
                return false;
            }
            out[std::string(key)] = args[++i];
            return true;
        };
        bool ok = true;
        if (a == "--by") {
            ok = take("by");
        } else if (a == "--reason") {
            ok = take("reason");
        } else if (a == "--write-down") {
            ok = take("write_down");
        } else if (a == "--po") {
            ok = take("po");
        } else {
            err << "unknown option " << a << " for " << verb << "\n";
            ok = false;
        }
        if (!ok) {
            return std::nullopt;
        }
    }
    return out;
}

cli_result invoicing_rule::cli_view(std::string_view verb,
                                    const std::vector<std::string>& args,
                                    const state::store& s,
                                    cli_output format,
                                    std::ostream& out,
                                    std::ostream& err) const {
    if (verb != "drafts" && verb != "approvals" && verb != "exceptions" && verb != "show" &&
        verb != "exception") {
        return rule::cli_view(verb, args, s, format, out, err);
    }
    std::string path(verb);
    if (verb == "show" || verb == "exception") {
        if (args.empty()) {
            err << verb << " needs an id\n";
            return cli_result::usage;
        }
        path += "/" + args.front();
    }
    auto a = view(path, s);
    if (a.status == 200 && verb == "exception" && a.body.contains("type")) {
        // One of the rule's own exceptions (a blocked draft prints as a draft below).
        if (format == cli_output::json) {
            out << a.body.dump(2) << "\n";
        } else {
            out << fmt::format(
                "Exception {}  {}  {}\n  type: {}\n  cause: {}\n  owner: {}\n  "
                "raised: {}\n",
                text_of(a.body, "id"),
                text_of(a.body, "state"),
                text_of(a.body, "engagement"),
                text_of(a.body, "type"),
                text_of(a.body, "cause"),
                text_of(a.body, "owner"),
                text_of(a.body, "raised_at"));
        }
        return cli_result::ok;
    }
    if (a.status == 404) {
        err << a.message << "\n";
        return cli_result::not_found;
    }
    if (a.status != 200) {
        err << a.message << "\n";
        return cli_result::usage;
    }
    if (format == cli_output::json) {
        out << a.body.dump(2) << "\n";
        return cli_result::ok;
    }
    const auto money = [](const json& d, std::string_view key) {
        return money_text(int_of(d, key), text_of(d, "currency")) + " " + text_of(d, "currency");
    };
    if (verb == "show" || verb == "exception") {
        const auto& d = a.body;
        out << fmt::format("Draft {}  {}  engagement {} ({})\n",
                           text_of(d, "id"),
                           text_of(d, "state"),
                           text_of(d, "engagement"),
                           text_of(d, "model"));
        out << fmt::format("Client {}  ledger {}  total {}\n",
                           text_of(d, "client"),
                           text_of(d, "ledger"),
                           money(d, "total_minor"));
        out << "Why: " << text_of(d["why"], "trigger") << "\nTerms: " << text_of(d["why"], "terms")
            << "\n";
        out << "Lines:\n";
        for (const auto& l : d["lines"]) {
            out << fmt::format("  {:>14}  {}\n",
                               money_text(int_of(l, "amount_minor"), text_of(d, "currency")),
                               text_of(l, "description"));
        }
        out << "Arithmetic:\n";
        for (const auto& x : d["why"].value("arithmetic", json::array())) {
            out << "  " << x.get<std::string>() << "\n";
        }
        out << "Rounding: " << text_of(d["why"], "rounding") << "\n";
        if (!d.value("flags", json::array()).empty()) {
            out << "Review flags: " << d["flags"].dump() << "\n";
        }
        for (const auto& ap : d.value("approvals", json::array())) {
            out << fmt::format(
                "Approved by {} at {}{}\n",
                text_of(ap, "by"),
                text_of(ap, "at"),
                text_of(ap, "reason").empty() ? "" : " (" + text_of(ap, "reason") + ")");
        }
        for (const auto& x : d.value("exceptions", json::array())) {
            out << fmt::format("Exception {}: {} (owner: {})\n",
                               text_of(x, "type"),
                               text_of(x, "cause"),
                               text_of(x, "owner"));
        }
        if (d.contains("redraft_of")) {
            out << "Redraft of: " << text_of(d, "redraft_of") << "\n";
        }
        if (d.contains("redrafted_as")) {
            out << "Redrafted as: " << text_of(d, "redrafted_as") << "\n";
        }
        if (d.contains("invoice")) {
            out << "Ledger: " << text_of(d, "invoice") << "\n";
        }
        return cli_result::ok;
    }
    if (verb == "exceptions") {
        const auto& xs = a.body["exceptions"];
        if (xs.empty()) {
            out << "No open exceptions.\n";
        }
        for (const auto& x : xs) {
            out << fmt::format("{:<28} {:<18} owner={:<20} since {}\n    {}\n    resolve: {}\n",
                               text_of(x, "id"),
                               text_of(x, "type"),
                               text_of(x, "owner"),
                               text_of(x, "since"),
                               text_of(x, "cause"),
                               text_of(x, "resolve"));
        }
        return cli_result::ok;
    }
    const auto& ds = a.body[verb == "approvals" ? "approvals" : "drafts"];
    if (ds.empty()) {
        out << (verb == "approvals" ? "No drafts waiting for approval.\n" : "No invoice drafts.\n");
    }
    for (const auto& d : ds) {
        out << fmt::format("{:<14} {:<17} {:>18}  {:<22} {}\n",
                           text_of(d, "id"),
                           text_of(d, "state"),
                           money(d, "total_minor"),
                           text_of(d, "engagement"),
                           text_of(d["why"], "trigger"));
    }
    return cli_result::ok;
}

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error) {
    if (!s.enabled) {
        return nullptr;
    }
    auto copy = s;
    if (copy.time_zone.empty()) {
        copy.time_zone = deps.time_zone;
    }
    const auto known = [&](const std::string& name) {
        return std::any_of(deps.connectors.begin(), deps.connectors.end(), [&](const auto& c) {
            return c.name == name;
        });
    };
    for (auto& e : copy.engagements) {
        if (e.ledger.empty()) {
            e.ledger = copy.ledger;
        }
        if (!known(e.ledger)) {
            if (error != nullptr) {
                *error = "[invoicing] engagement " + e.id + ": ledger '" + e.ledger +
                         "' is not an enabled connector";
            }
            return nullptr;
        }
    }
    if (copy.email_connector.empty()) {
        for (const auto& c : deps.connectors) {
            if (c.channel == "email") {
                copy.email_connector = c.name;
                break;
            }
        }
    } else if (!known(copy.email_connector)) {
        if (error != nullptr) {
            *error = "[invoicing] email_connector '" + copy.email_connector +
                     "' is not an enabled connector";
        }
        return nullptr;
    }
    return std::make_unique<invoicing_rule>(std::move(copy), deps.metrics);
}

}  // namespace billsync::workflows::invoicing
