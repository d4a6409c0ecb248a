#include "workflows/weekly_report/report.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <map>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "state/dead_letters.hpp"
#include "state/entity_index.hpp"
#include "state/keys.hpp"
#include "state/tables.hpp"
#include "util/html.hpp"
#include "util/json_scan.hpp"

namespace billsync::workflows::weekly_report {

namespace {

using json = nlohmann::json;
using date::days;
using date::local_days;
using util::html_escape;
namespace ix = state::entity_index;

// ---- calendar ------------------------------------------------------------------------------

local_days local_day(const date::time_zone& tz, util::instant t) {
    return date::floor<days>(tz.to_local(date::floor<std::chrono::seconds>(t)));
}

util::instant local_midnight(const date::time_zone& tz, local_days d) {
    const auto sys = tz.to_sys(date::local_seconds(d.time_since_epoch()), date::choose::earliest);
    return std::chrono::time_point_cast<util::duration>(sys);
}

unsigned iso_weekday(local_days d) { return date::weekday(d).iso_encoding(); }  // 1 Mon..7 Sun

local_days week1_monday(int year) {
    const local_days jan4{date::year(year) / date::January / 4};
    return jan4 - days(iso_weekday(jan4) - 1);
}

week_id iso_week_of(local_days d) {
    const auto thursday = d + days(4) - days(iso_weekday(d));
    const int year = static_cast<int>(date::year_month_day(thursday).year());
    const auto n = (thursday - week1_monday(year)).count() / 7 + 1;
    return {year, static_cast<unsigned>(n)};
}

std::string civil(local_days d) {
    return mappings::format_civil_date(mappings::civil_date(
        std::chrono::sys_days(std::chrono::days(d.time_since_epoch().count()))));
}

std::optional<local_days> civil_of(const json& v) {
    if (!v.is_string()) {
        return std::nullopt;
    }
    const auto d = mappings::parse_civil_date(v.get_ref<const std::string&>());
    if (!d) {
        return std::nullopt;
    }
    return local_days(days(std::chrono::sys_days(*d).time_since_epoch().count()));
}

std::string text(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool flag(const json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

// Rounded half up: a / b for a >= 0, b > 0.
std::int64_t ratio(std::int64_t a, std::int64_t b) { return (2 * a + b) / (2 * b); }

json nullable_ratio(std::int64_t num, std::int64_t den, std::int64_t scale) {
    if (den <= 0) {
        return nullptr;
    }
    return ratio(num * scale, den);
}

const date::time_zone* zone(const settings& cfg, std::string& error) {
    try {
        return date::locate_zone(cfg.time_zone.empty() ? "UTC" : cfg.time_zone);
    } catch (const std::exception&) {
        error = "unknown time zone '" + cfg.time_zone + "'";
        return nullptr;
    }
}

// ---- a fast read of stored rows ----------------------------------------------------------------
// The report reads many rows (the open invoices, the week's payments and time entries, from their
// indexes in state/entity_index.hpp); a full JSON DOM per row costs more than the rest together:
// util::json_scan reads the members as text spans, and only the spans needed become values.

using util::json_scan::members;

std::string as_string(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"' &&
        v.find('\\') == std::string_view::npos) {
        return std::string(v.substr(1, v.size() - 2));
    }
    const auto j = json::parse(v, nullptr, false);
    return j.is_string() ? j.get<std::string>() : std::string();
}

std::int64_t as_int(std::string_view v) {
    std::int64_t out = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size() ? out : 0;
}

bool as_bool(std::string_view v) { return v == "true"; }

std::optional<local_days> as_date(std::string_view v) {
    if (v.size() != 12 || v.front() != '"') {
        return std::nullopt;
    }
    const auto d = mappings::parse_civil_date(v.substr(1, 10));
    if (!d) {
        return std::nullopt;
    }
    return local_days(days(std::chrono::sys_days(*d).time_since_epoch().count()));
}

// {"minor": N, "currency": "USD"}: the minor units, and whether the currency is `currency`.
std::int64_t as_money(std::string_view v, std::string_view currency, bool& same) {
    std::int64_t minor = 0;
    same = false;
    members(v, [&](std::string_view k, std::string_view x) {
        if (k == "minor") {
            minor = as_int(x);
        } else if (k == "currency") {
            same = x.size() == currency.size() + 2 && x.substr(1, currency.size()) == currency;
        }
    });
    return minor;
}

// ---- aging ---------------------------------------------------------------------------------

constexpr std::array<std::string_view, 5> bucket_names{
    "current", "1_30", "31_60", "61_90", "90_plus"};

struct buckets {
    std::array<std::int64_t, 5> amount{};
    std::array<std::int64_t, 5> count{};

    std::int64_t open_amount() const {
        std::int64_t t = 0;
        for (auto a : amount) {
            t += a;
        }
        return t;
    }
    std::int64_t open_count() const {
        std::int64_t t = 0;
        for (auto c : count) {
            t += c;
        }
        return t;
    }
    void add(std::size_t b, std::int64_t minor) {
        amount[b] += minor;
        ++count[b];
    }
};

std::size_t bucket_of(std::int64_t days_past_due) {
    if (days_past_due <= 0) {
        return 0;
    }
    if (days_past_due <= 30) {
        return 1;
    }
    if (days_past_due <= 60) {
        return 2;
    }
    if (days_past_due <= 90) {
        return 3;
    }
    return 4;
}

json to_json(const buckets& b) {
    json out = json::object();
    for (std::size_t i = 0; i < bucket_names.size(); ++i) {
        out[std::string(bucket_names[i])] = {{"amount_minor", b.amount[i]}, {"count", b.count[i]}};
    }
    out["open"] = {{"amount_minor", b.open_amount()}, {"count", b.open_count()}};
    return out;
}

json difference(const json& now, const json& before) {
    json out = json::object();
    for (const auto& [k, v] : now.items()) {
        const auto& p = before.contains(k) ? before[k] : json::object();
        out[k] = {
            {"amount_minor",
             v.value("amount_minor", std::int64_t{0}) - p.value("amount_minor", std::int64_t{0})},
            {"count", v.value("count", std::int64_t{0}) - p.value("count", std::int64_t{0})}};
    }
    return out;
}

struct open_invoice {
    std::string id;
    std::string client;
    std::string number;
    std::optional<local_days> issue, due;
    std::int64_t total = 0;
    std::int64_t balance = 0;
    bool counted = true;  // open or paid (not draft, voided or deleted)
};

struct payment_row {
    local_days date;
    std::int64_t minor = 0;
};

// The balance an invoice had at the end of `day`: today's balance plus what was paid on it
// after that day (never above its total); 0 for an invoice not issued by then.
std::int64_t balance_at(const open_invoice& inv,
                        const std::vector<payment_row>* paid,
                        local_days day) {
    if (!inv.counted || (inv.issue && *inv.issue > day)) {
        return 0;
    }
    std::int64_t b = inv.balance;
    if (paid != nullptr) {
        for (const auto& p : *paid) {
            if (p.date > day) {
                b += p.minor;
            }
        }
    }
    return std::clamp<std::int64_t>(b, 0, std::max<std::int64_t>(inv.total, inv.balance));
}

// ---- audit ---------------------------------------------------------------------------------

struct audit_figures {
    std::int64_t touches_email = 0, touches_sms = 0, reminders = 0;
    std::map<std::string, std::int64_t> touches_by_number;
    std::int64_t stopped_by_payment = 0, disputes_opened = 0;
};

void count_touch(const json& line, audit_figures& f) {
    const auto cause = text(line, "cause");
    auto via = cause.find(" via ");
    if (via == std::string::npos) {
        return;
    }
    auto items = cause.substr(via + 5);
    if (const auto cut = items.find("; "); cut != std::string::npos) {
        items.resize(cut);
    }
    std::size_t pos = 0;
    while (pos <= items.size()) {
        auto next = items.find(", ", pos);
        const auto item =
            items.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
        if (item.rfind("email", 0) == 0) {
            ++f.touches_email;
        } else if (item.rfind("sms", 0) == 0 || item.rfind("SMS", 0) == 0) {
            ++f.touches_sms;
        }
        if (next == std::string::npos) {
            break;
        }
        pos = next + 2;
    }
    if (line.contains("touch") && line["touch"].is_number_integer()) {
        ++f.touches_by_number[std::to_string(line["touch"].get<std::int64_t>())];
    }
}

state::status read_audit(const state::store& s,
                         util::instant from,
                         util::instant to,
                         audit_figures& f) {
    std::string lo, hi;
    state::keys::append_instant(lo, from);
    state::keys::append_instant(hi, to);
    return s.for_each_range(state::cf::audit, lo, hi, [&](std::string_view, std::string_view v) {
        if (v.find("\"rule\":\"followup\"") == std::string_view::npos) {
            return true;
        }
        const auto line = json::parse(v, nullptr, false);
        if (!line.is_object()) {
            return true;
        }
        const auto decision = text(line, "decision");
        if (decision == "touch") {
            count_touch(line, f);
        } else if (decision == "remind") {
            ++f.reminders;
        } else if (decision == "pause") {
            ++f.disputes_opened;
        } else if (decision == "cancel") {
            const auto cause = text(line, "cause");
            if (cause.find("remaining touches cancelled") != std::string::npos &&
                (cause.find("paid in full") != std::string::npos ||
                 cause.find("(paid or credited)") != std::string::npos)) {
                ++f.stopped_by_payment;
            }
        }
        return true;
    });
}

std::optional<util::instant> instant_of(const std::string& t) {
    util::instant out{};
    if (t.empty() || !util::parse_rfc3339(t, out)) {
        return std::nullopt;
    }
    return out;
}

std::int64_t whole_days(util::instant from, util::instant to) {
    return to > from ? std::chrono::duration_cast<std::chrono::hours>(to - from).count() / 24 : 0;
}

// ---- the computation -----------------------------------------------------------------------

struct computation {
    const state::store& s;
    const settings& cfg;
    const date::time_zone& tz;
    week_span w;
    util::instant as_of;
    local_days day;  // the as-of civil date (the week's last day, or today)
    json out = json::object();
    std::string error;

    bool check(const state::status& st) {
        if (!st.ok && error.empty()) {
            error = st.message;
        }
        return st.ok;
    }

    // The rows of a dated index (state/entity_index.hpp) from civil day `from` to `to` (both
    // included; nullopt: no end): fn(entity id, projection).
    state::status dated_rows(std::string_view type,
                             local_days from,
                             std::optional<local_days> to,
                             const std::function<bool(std::string_view, std::string_view)>& fn) {
        const auto prefix = state::keys::join(type, "");
        const auto hi = to ? prefix + civil(*to + days(1)) : state::keys::prefix_end(prefix);
        return s.for_each_range(state::cf::entities,
                                prefix + civil(from),
                                hi,
                                [&](std::string_view key, std::string_view v) {
                                    return fn(ix::dated_entity_id(key.substr(prefix.size())), v);
                                });
    }

    // Open or paid invoices whose total or balance is not in the report's currency: the rows of
    // the currency index outside "<currency>\x1f<currency>\x1f".
    state::status other_currency_count(std::int64_t& n) {
        const auto prefix = state::keys::join(ix::invoice_currency, "");
        std::string same = prefix + cfg.currency;
        same.push_back(ix::sep);
        same += cfg.currency;
        same.push_back(ix::sep);
        const auto count = [&n](std::string_view, std::string_view) {
            ++n;
            return true;
        };
        if (auto st = s.for_each_range(state::cf::entities, prefix, same, count); !st.ok) {
            return st;
        }
        return s.for_each_range(state::cf::entities,
                                state::keys::prefix_end(same),
                                state::keys::prefix_end(prefix),
                                count);
    }

    void run() {
        // The time figures read their own rows (time entries, staff, drafts) and nothing the
        // rest computes: on a second thread, alongside, into their own computation.
        computation timed{s, cfg, tz, w, as_of, day, json::object(), {}};
        std::thread time_thread([&timed] {
            try {
                timed.time_figures();
            } catch (const std::exception& e) {
                timed.error = e.what();
            }
        });
        struct joiner {
            std::thread& t;
            ~joiner() {
                if (t.joinable()) {
                    t.join();
                }
            }
        } join_time{time_thread};
        std::unordered_map<std::string, std::string> names;
        check(state::for_each_entity(s, "client", [&](std::string_view id, std::string_view v) {
            std::string name;
            members(v, [&](std::string_view k, std::string_view x) {
                if (k == "display_name") {
                    name = as_string(x);
                }
            });
            names.emplace(std::string(id), std::move(name));
            return true;
        }));

        // Payments: what was applied to each invoice after the previous week's last day (what
        // the balances at that day and at D add back); what came in this week. Read from the
        // payments' date index: only payments dated after that day.
        const auto prev_day = day - days(7);
        std::unordered_map<std::string, std::vector<payment_row>> paid;
        std::int64_t collected = 0, payments_week = 0;
        check(dated_rows(ix::payment_date,
                         prev_day + days(1),
                         std::nullopt,
                         [&](std::string_view, std::string_view v) {
                             bool dead = false, same = false;
                             std::optional<local_days> d;
                             std::int64_t amount = 0;
                             std::string_view applied;
                             members(v, [&](std::string_view k, std::string_view x) {
                                 if (k == "voided" || k == "deleted") {
                                     dead = dead || as_bool(x);
                                 } else if (k == "date") {
                                     d = as_date(x);
                                 } else if (k == "amount") {
                                     amount = as_money(x, cfg.currency, same);
                                 } else if (k == "applied") {
                                     applied = x;
                                 }
                             });
                             if (dead || !d) {
                                 return true;
                             }
                             if (same && *d >= w.start && *d <= day) {
                                 collected += amount;
                                 ++payments_week;
                             }
                             members(applied, [&](std::string_view, std::string_view a) {
                                 bool ok = false;
                                 std::int64_t m = 0;
                                 std::string inv;
                                 members(a, [&](std::string_view k, std::string_view x) {
                                     if (k == "amount") {
                                         m = as_money(x, cfg.currency, ok);
                                     } else if (k == "invoice_id") {
                                         inv = as_string(x);
                                     }
                                 });
                                 if (ok && !inv.empty()) {
                                     paid[inv].push_back({*d, m});
                                 }
                             });
                             return true;
                         }));

        // Invoices: those with a balance above 0 now, those issued in the 91-day window, and those
        // the payments above were applied to (an invoice outside these three has no balance at D
        // or D - 7 and was not invoiced in the window). Open and dated ones are read from their
        // indexes (projections of the rows), the paid ones by id.
        std::vector<open_invoice> invoices;
        std::int64_t other_currency = 0, invoiced_week = 0, invoiced_91 = 0;
        std::map<std::string, std::string, std::less<>> candidates;
        check(state::for_each_entity(
            s, ix::invoice_open, [&](std::string_view id, std::string_view v) {
                candidates.emplace(std::string(id), std::string(v));
                return true;
            }));
        check(dated_rows(
            ix::invoice_issue, day - days(90), day, [&](std::string_view id, std::string_view v) {
                candidates.emplace(std::string(id), std::string(v));
                return true;
            }));
        // Read in id order: neighbouring reads share the store's blocks.
        std::vector<std::string_view> paid_ids;
        for (const auto& [id, rows] : paid) {
            if (!candidates.contains(id)) {
                paid_ids.emplace_back(id);
            }
        }
        std::sort(paid_ids.begin(), paid_ids.end());
        for (const auto id : paid_ids) {
            auto r = state::get_entity(s, "invoice", id);
            if (check(r.st) && r.value) {
                candidates.emplace(std::string(id), std::move(*r.value));
            }
        }
        // Open or paid invoices in another currency, all of them: counted in the currency index
        // outside the report currency's own range.
        check(other_currency_count(other_currency));
        const auto read_invoice = [&](std::string_view id, std::string_view v) {
            open_invoice inv;
            std::string_view status, total, balance;
            bool deleted = false;
            members(v, [&](std::string_view k, std::string_view x) {
                if (k == "status") {
                    status = x;
                } else if (k == "deleted") {
                    deleted = as_bool(x);
                } else if (k == "client_id") {
                    inv.client = as_string(x);
                } else if (k == "number") {
                    inv.number = as_string(x);
                } else if (k == "issue_date") {
                    inv.issue = as_date(x);
                } else if (k == "due_date") {
                    inv.due = as_date(x);
                } else if (k == "total") {
                    total = x;
                } else if (k == "balance") {
                    balance = x;
                }
            });
            inv.counted = !deleted && (status == "\"open\"" || status == "\"paid\"");
            if (!inv.counted) {
                return;
            }
            bool same_total = false, same_balance = false;
            inv.total = as_money(total, cfg.currency, same_total);
            inv.balance = as_money(balance, cfg.currency, same_balance);
            if (!same_total || !same_balance) {
                return;
            }
            inv.id = std::string(id);
            if (inv.issue && *inv.issue <= day) {
                if (*inv.issue >= w.start) {
                    invoiced_week += inv.total;
                }
                if (*inv.issue > day - days(91)) {
                    invoiced_91 += inv.total;
                }
            }
            invoices.push_back(std::move(inv));
        };
        for (const auto& [id, v] : candidates) {
            read_invoice(id, v);
        }
        std::sort(invoices.begin(), invoices.end(), [](const auto& a, const auto& b) {
            return a.id < b.id;
        });

        buckets total, previous;
        std::map<std::string, buckets> per_client;
        for (const auto& inv : invoices) {
            const auto it = paid.find(inv.id);
            const auto* p = it == paid.end() ? nullptr : &it->second;
            if (const auto b = balance_at(inv, p, day); b > 0) {
                const auto past = inv.due ? (day - *inv.due).count() : 0;
                total.add(bucket_of(past), b);
                per_client[inv.client].add(bucket_of(past), b);
            }
            if (const auto b = balance_at(inv, p, prev_day); b > 0) {
                const auto past = inv.due ? (prev_day - *inv.due).count() : 0;
                previous.add(bucket_of(past), b);
            }
        }
        json prev_total = to_json(previous);
        // The previous week's own snapshot, when stored, is what its report said.
        const auto prev_id = iso_week_of(w.end - days(7));
        if (auto r = state::get_entity(s, snapshot_type, format_week(prev_id)); r.ok() && r.value) {
            const auto j = json::parse(*r.value, nullptr, false);
            if (j.is_object() && j.contains("aging") && j["aging"].contains("total")) {
                prev_total = j["aging"]["total"];
            }
        }
        std::vector<std::pair<std::string, const buckets*>> rows;
        rows.reserve(per_client.size());
        for (const auto& [client, b] : per_client) {
            rows.emplace_back(client, &b);
        }
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
            const auto x = a.second->open_amount(), y = b.second->open_amount();
            return x != y ? x > y : a.first < b.first;
        });
        json clients = json::array();
        for (const auto& [client, b] : rows) {
            json row = to_json(*b);
            row["client"] = client;
            const auto n = names.find(client);
            row["name"] = n == names.end() ? std::string() : n->second;
            clients.push_back(std::move(row));
        }
        const json total_json = to_json(total);
        out["aging"] = {{"as_of_date", civil(day)},
                        {"total", total_json},
                        {"change", difference(total_json, prev_total)},
                        {"clients", std::move(clients)},
                        {"other_currency_invoices", other_currency}};

        audit_figures af;
        check(read_audit(s, w.begins, as_of, af));

        const auto past_due = total.open_count() - total.count[0];
        out["collections"] = {
            {"dso_days", nullable_ratio(total.open_amount(), invoiced_91, 91)},
            {"collection_rate_bp",
             nullable_ratio(collected, previous.open_amount() + invoiced_week, 10000)},
            {"dispute_rate_bp", nullable_ratio(af.disputes_opened, past_due, 10000)},
            {"collected_minor", collected},
            {"payments", payments_week},
            {"invoiced_minor", invoiced_week},
            {"invoiced_91_days_minor", invoiced_91},
            {"past_due_invoices", past_due}};

        followup(af, names, invoices);
        operations();
        time_thread.join();
        if (!timed.error.empty()) {
            check(state::status::failure(timed.error));
        }
        out["time"] = std::move(timed.out["time"]);
    }

    void followup(const audit_figures& af,
                  const std::unordered_map<std::string, std::string>& names,
                  const std::vector<open_invoice>& invoices) {
        std::map<std::string, std::int64_t> phases;
        std::map<std::string, std::int64_t> stages;
        std::map<std::string, json> by_client;
        json disputes = json::array();
        std::int64_t open = 0;
        // Sequence rows name their invoice; the invoice names the client.
        check(state::for_each_entity(s, "followup", [&](std::string_view id, std::string_view v) {
            std::string ph, paused_at;
            std::int64_t last_touch = 0, format = 0;
            members(v, [&](std::string_view k, std::string_view x) {
                if (k == "phase") {
                    ph = as_string(x);
                } else if (k == "last_touch") {
                    last_touch = as_int(x);
                } else if (k == "paused_at") {
                    paused_at = as_string(x);
                } else if (k == "format") {
                    format = as_int(x);
                }
            });
            if (format != 1 || ph.empty()) {
                return true;
            }
            ++phases[ph];
            const bool paused = ph == "paused";
            if (!paused && ph != "active") {
                return true;
            }
            ++open;
            const auto stage = paused ? std::string("paused")
                                      : (last_touch == 0 ? std::string("entered")
                                                         : "touch_" + std::to_string(last_touch));
            ++stages[stage];
            std::string client, number;
            const auto it = std::lower_bound(
                invoices.begin(),
                invoices.end(),
                id,
                [](const open_invoice& a, std::string_view b) { return a.id < b; });
            if (it != invoices.end() && it->id == id) {
                client = it->client;
                number = it->number;
            } else if (auto r = state::get_entity(s, "invoice", id); r.ok() && r.value) {
                const auto j = json::parse(*r.value, nullptr, false);
                client = text(j, "client_id");
                number = text(j, "number");
            }
            json seq{{"invoice", std::string(id)},
                     {"number", number},
                     {"stage", stage},
                     {"last_touch", last_touch}};
            auto& c = by_client[client];
            if (c.is_null()) {
                const auto n = names.find(client);
                c = {{"client", client},
                     {"name", n == names.end() ? std::string() : n->second},
                     {"sequences", json::array()}};
            }
            c["sequences"].push_back(seq);
            if (paused) {
                const auto since = instant_of(paused_at).value_or(as_of);
                disputes.push_back({{"invoice", std::string(id)},
                                    {"number", number},
                                    {"client", client},
                                    {"since", util::format_rfc3339(since)},
                                    {"age_days", whole_days(since, as_of)}});
            }
            return true;
        }));
        std::int64_t opt_outs = 0, opted_out_total = 0;
        check(state::for_each_entity(s, "suppression", [&](std::string_view, std::string_view v) {
            const auto j = json::parse(v, nullptr, false);
            if (!flag(j, "opted_out")) {
                return true;
            }
            ++opted_out_total;
            if (const auto t = instant_of(text(j, "at")); t && *t >= w.begins && *t < as_of) {
                ++opt_outs;
            }
            return true;
        }));
        json clients = json::array();
        for (auto& [k, v] : by_client) {
            clients.push_back(std::move(v));
        }
        out["followup"] = {{"open_sequences", open},
                           {"stages", stages},
                           {"phases", phases},
                           {"touches_sent", {{"email", af.touches_email}, {"sms", af.touches_sms}}},
                           {"touches_by_number", af.touches_by_number},
                           {"reminders_sent", af.reminders},
                           {"stopped_by_payment", af.stopped_by_payment},
                           {"disputes_opened", af.disputes_opened},
                           {"disputes_open", static_cast<std::int64_t>(disputes.size())},
                           {"disputes", std::move(disputes)},
                           {"opt_outs", opt_outs},
                           {"opted_out_total", opted_out_total},
                           {"clients", std::move(clients)}};
    }

    void time_figures() {
        std::int64_t entries = 0, recorded = 0, billed = 0, unreviewed_time = 0;
        std::map<std::pair<std::string, local_days>, std::int64_t> per_staff_day;
        std::vector<std::pair<std::string, std::int64_t>> billable_week;
        // The week's entries, from the date index (entries not deleted, by date; the value has
        // the members read here).
        check(
            dated_rows(ix::time_date, w.start, w.end, [&](std::string_view id, std::string_view v) {
                bool deleted = false, locked = false, billable = false, drafted = false;
                std::optional<local_days> d;
                std::int64_t minutes = 0;
                std::string_view staff;
                members(v, [&](std::string_view k, std::string_view x) {
                    if (k == "date") {
                        d = as_date(x);
                    } else if (k == "deleted") {
                        deleted = as_bool(x);
                    } else if (k == "locked") {
                        locked = as_bool(x);
                    } else if (k == "billable") {
                        billable = as_bool(x);
                    } else if (k == "external_reference") {
                        drafted = x.size() > 2;
                    } else if (k == "minutes") {
                        minutes = as_int(x);
                    } else if (k == "staff_id") {
                        staff = x;
                    }
                });
                if (deleted || !d) {
                    return true;
                }
                ++entries;
                per_staff_day[{as_string(staff), *d}] += minutes;
                if (billable) {
                    recorded += minutes;
                    billable_week.emplace_back(std::string(id), minutes);
                }
                return true;
            }));
        // Billed: the billable entries the invoicing workflow put on a draft, read in id order
        // (neighbouring reads share the store's blocks).
        std::sort(billable_week.begin(), billable_week.end());
        for (const auto& [id, minutes] : billable_week) {
            if (auto r = state::get_entity(s, "invoicing_entry", id); r.ok() && r.value) {
                billed += minutes;
            }
        }
        // Drafted by billsync and not yet locked, over every entry (not deleted): their index.
        check(
            state::for_each_entity(s, ix::time_unreviewed, [&](std::string_view, std::string_view) {
                ++unreviewed_time;
                return true;
            }));
        // Whether any time entry (not deleted) is stored: one dated, else one without a date.
        if (entries == 0) {
            check(state::for_each_entity(s, ix::time_date, [&](std::string_view, std::string_view) {
                ++entries;
                return false;
            }));
        }
        if (entries == 0) {
            check(
                state::for_each_entity(s, "time_entry", [&](std::string_view, std::string_view v) {
                    bool deleted = false;
                    members(v, [&](std::string_view k, std::string_view x) {
                        if (k == "deleted") {
                            deleted = as_bool(x);
                        }
                    });
                    entries += deleted ? 0 : 1;
                    return entries == 0;
                }));
        }
        if (entries == 0) {
            out["time"] = nullptr;
            return;
        }
        // Staff-days (Monday to Friday) of active staff under the expected time.
        json capture = nullptr;
        if (cfg.expected_minutes > 0) {
            std::int64_t staff_days = 0, under = 0;
            check(state::for_each_entity(s, "staff", [&](std::string_view id, std::string_view v) {
                const auto j = json::parse(v, nullptr, false);
                if (!flag(j, "active")) {
                    return true;
                }
                for (auto d = w.start; d <= w.end; d += days(1)) {
                    if (iso_weekday(d) > 5) {
                        continue;
                    }
                    ++staff_days;
                    const auto it = per_staff_day.find({std::string(id), d});
                    if (it == per_staff_day.end() || it->second < cfg.expected_minutes) {
                        ++under;
                    }
                }
                return true;
            }));
            capture = {{"staff_days", staff_days},
                       {"staff_days_under", under},
                       {"expected_minutes", cfg.expected_minutes},
                       {"complete_bp", nullable_ratio(staff_days - under, staff_days, 10000)}};
        }
        // Invoice drafts: waiting for a decision, and how long work waited to be invoiced.
        std::int64_t pending = 0, drafted = 0, lag_total = 0, lag_max = 0;
        check(
            state::for_each_entity(s, "invoicing_draft", [&](std::string_view, std::string_view v) {
                const auto d = json::parse(v, nullptr, false);
                if (!d.is_object()) {
                    return true;
                }
                const auto created = instant_of(text(d, "created_at"));
                if (text(d, "state") == "pending_approval" && created && *created < as_of) {
                    ++pending;
                }
                if (!created || *created < w.begins || *created >= as_of) {
                    return true;
                }
                std::optional<local_days> work;
                for (const auto& l : d.value("lines", json::array())) {
                    for (const auto& e : l.value("entries", json::array())) {
                        if (!e.is_string()) {
                            continue;
                        }
                        if (auto r = state::get_entity(s, "time_entry", e.get<std::string>());
                            r.ok() && r.value) {
                            const auto t = json::parse(*r.value, nullptr, false);
                            if (const auto td = civil_of(t.value("date", json()));
                                td && (!work || *td > *work)) {
                                work = td;
                            }
                        }
                    }
                }
                if (!work && !text(d, "work_item").empty()) {
                    if (auto r = state::get_entity(s, "work_item", text(d, "work_item"));
                        r.ok() && r.value) {
                        work = civil_of(
                            json::parse(*r.value, nullptr, false).value("completed_date", json()));
                    }
                }
                if (work) {
                    const auto lag =
                        std::max<std::int64_t>(0, (local_day(tz, *created) - *work).count());
                    ++drafted;
                    lag_total += lag;
                    lag_max = std::max(lag_max, lag);
                }
                return true;
            }));
        out["time"] = {
            {"recorded_billable_minutes", recorded},
            {"billed_minutes", billed},
            {"leakage_bp", nullable_ratio(recorded - billed, recorded, 10000)},
            {"capture", std::move(capture)},
            {"drafts_unreviewed", {{"time_entries", unreviewed_time}, {"invoices", pending}}},
            {"work_to_invoice_days",
             {{"invoices", drafted},
              {"average", drafted == 0 ? json(nullptr) : json(ratio(lag_total, drafted))},
              {"max", drafted == 0 ? json(nullptr) : json(lag_max)}}}};
    }

    void operations() {
        std::int64_t dead = 0, dead_week = 0;
        std::map<std::string, json> connectors;
        check(s.for_each(state::cf::dead_letters, "", [&](std::string_view, std::string_view v) {
            state::dead_letter d;
            if (!state::decode_dead_letter(v, d) || d.at >= as_of) {
                return true;
            }
            ++dead;
            const bool this_week = d.at >= w.begins;
            dead_week += this_week ? 1 : 0;
            const auto name = d.connector.empty() ? std::string("(none)") : d.connector;
            auto& c = connectors[name];
            if (c.is_null()) {
                c = {{"connector", name}, {"dead_letters", 0}, {"dead_letters_week", 0}};
            }
            c["dead_letters"] = c["dead_letters"].get<std::int64_t>() + 1;
            c["dead_letters_week"] =
                c["dead_letters_week"].get<std::int64_t>() + (this_week ? 1 : 0);
            c["last_error"] = d.error.substr(0, 200);
            return true;
        }));
        std::int64_t exceptions = 0, oldest_days = 0;
        std::map<std::string, std::int64_t> by_type;
        check(
            state::for_each_entity(s, "invoicing_open", [&](std::string_view, std::string_view v) {
                const auto j = json::parse(v, nullptr, false);
                const auto since = instant_of(text(j, "since"));
                if (since && *since >= as_of) {
                    return true;
                }
                ++exceptions;
                ++by_type[text(j, "type")];
                if (since) {
                    oldest_days = std::max(oldest_days, whole_days(*since, as_of));
                }
                return true;
            }));
        json list = json::array();
        for (auto& [k, v] : connectors) {
            list.push_back(std::move(v));
        }
        out["operations"] = {{"dead_letters", dead},
                             {"dead_letters_week", dead_week},
                             {"exceptions_open", exceptions},
                             {"exceptions_by_type", by_type},
                             {"oldest_exception_days", oldest_days},
                             {"connectors", std::move(list)}};
    }
};

}  // namespace

// ---- weeks ---------------------------------------------------------------------------------

std::optional<week_id> parse_week(std::string_view t) {
    // YYYY-Www
    if (t.size() != 8 || t[4] != '-' || (t[5] != 'W' && t[5] != 'w')) {
        return std::nullopt;
    }
    int year = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        if (t[i] < '0' || t[i] > '9') {
            return std::nullopt;
        }
        year = year * 10 + (t[i] - '0');
    }
    if (t[6] < '0' || t[6] > '9' || t[7] < '0' || t[7] > '9') {
        return std::nullopt;
    }
    const auto n = static_cast<unsigned>((t[6] - '0') * 10 + (t[7] - '0'));
    if (year < 1970 || n < 1 || n > iso_week_of(local_days{date::year(year) / 12 / 28}).number) {
        return std::nullopt;
    }
    return week_id{year, n};
}

std::string format_week(week_id w) { return fmt::format("{:04}-W{:02}", w.year, w.number); }

week_span span_of(const settings& cfg, const date::time_zone& tz, week_id w) {
    const auto monday = week1_monday(w.year) + days(7 * (static_cast<int>(w.number) - 1));
    week_span s;
    s.id = w;
    s.end = monday + days((cfg.week_end_day + 6) % 7);
    s.start = s.end - days(6);
    s.begins = local_midnight(tz, s.start);
    s.ends = local_midnight(tz, s.end + days(1));
    return s;
}

week_id week_of(const settings& cfg, const date::time_zone& tz, util::instant t) {
    const auto d = local_day(tz, t);
    const auto wd = static_cast<int>(date::weekday(d).c_encoding());
    return iso_week_of(d + days((cfg.week_end_day - wd + 7) % 7));
}

week_id last_completed_week(const settings& cfg, const date::time_zone& tz, util::instant now) {
    const auto current = span_of(cfg, tz, week_of(cfg, tz, now));
    return iso_week_of(current.end - days(7));
}

settings resolved(settings cfg, std::string_view fallback_time_zone) {
    if (cfg.time_zone.empty()) {
        cfg.time_zone = fallback_time_zone.empty() ? "UTC" : std::string(fallback_time_zone);
    }
    return cfg;
}

// ---- reports -------------------------------------------------------------------------------

report_answer compute_report(const state::store& s,
                             const settings& cfg,
                             week_id w,
                             util::instant now) {
    std::string error;
    const auto* tz = zone(cfg, error);
    if (tz == nullptr) {
        return {nullptr, error};
    }
    const auto span = span_of(cfg, *tz, w);
    if (now < span.begins) {
        return {nullptr, "bad_week: " + format_week(w) + " has not started yet"};
    }
    const bool final = now >= span.ends;
    computation c{s,
                  cfg,
                  *tz,
                  span,
                  final ? span.ends : now,
                  final ? span.end : local_day(*tz, now),
                  json::object(),
                  {}};
    c.run();
    if (!c.error.empty()) {
        return {nullptr, c.error};
    }
    json out{{"week", format_week(w)},
             {"week_start", civil(span.start)},
             {"week_end", civil(span.end)},
             {"time_zone", tz->name()},
             {"currency", cfg.currency},
             {"as_of", util::format_rfc3339(c.as_of)},
             {"final", final},
             {"source", "computed"},
             {"computed_at", util::format_rfc3339(now)}};
    // Figures that only exist as current state: exact in a snapshot taken at the week's end,
    // "as of now" in a past week computed later.
    out["as_of_now"] = final ? json{"followup.open_sequences",
                                    "followup.stages",
                                    "followup.phases",
                                    "followup.disputes",
                                    "followup.clients",
                                    "followup.disputes_open",
                                    "followup.opted_out_total",
                                    "time.billed_minutes",
                                    "time.leakage_bp",
                                    "time.drafts_unreviewed",
                                    "operations.dead_letters",
                                    "operations.connectors",
                                    "operations.exceptions_open",
                                    "operations.exceptions_by_type",
                                    "operations.oldest_exception_days"}
                             : json::array();
    for (auto& [k, v] : c.out.items()) {
        out[k] = std::move(v);
    }
    return {std::move(out), {}};
}

report_answer weekly_report(const state::store& s,
                            const settings& cfg,
                            std::string_view week,
                            util::instant now) {
    std::string error;
    const auto* tz = zone(cfg, error);
    if (tz == nullptr) {
        return {nullptr, error};
    }
    week_id w{};
    if (week.empty()) {
        w = last_completed_week(cfg, *tz, now);
    } else if (auto p = parse_week(week)) {
        w = *p;
    } else {
        return {nullptr,
                "bad_week: expected an ISO week YYYY-Www (e.g. 2026-W49), got '" +
                    std::string(week) + "'"};
    }
    auto snap = state::get_entity(s, snapshot_type, format_week(w));
    if (!snap.ok()) {
        return {nullptr, snap.st.message};
    }
    if (snap.value) {
        auto j = json::parse(*snap.value, nullptr, false);
        if (j.is_object()) {
            j["source"] = "snapshot";
            j["as_of_now"] = json::array();
            return {std::move(j), {}};
        }
    }
    return compute_report(s, cfg, w, now);
}

nlohmann::json weekly_report_json(const state::store& s, const settings& cfg, util::instant now) {
    auto r = weekly_report(s, cfg, "", now);
    return r.ok() ? std::move(r.body) : json(nullptr);
}

void put_snapshot(state::batch& b, const nlohmann::json& report) {
    auto copy = report;
    copy.erase("source");
    state::put_entity(b, snapshot_type, report.value("week", ""), copy.dump());
}

// ---- rendering -----------------------------------------------------------------------------

std::string money_text(std::int64_t minor, std::string_view currency) {
    return mappings::format_decimal(minor, mappings::minor_digits(currency));
}

namespace {

std::int64_t int_at(const json& j, std::string_view a, std::string_view b = {}) {
    const json* p = &j;
    for (auto k : {a, b}) {
        if (k.empty()) {
            break;
        }
        if (!p->is_object() || !p->contains(k)) {
            return 0;
        }
        p = &(*p)[std::string(k)];
    }
    return p->is_number_integer() ? p->get<std::int64_t>() : 0;
}

std::string opt_text(const json& v, std::string_view unit) {
    if (!v.is_number_integer()) {
        return "n/a";
    }
    const auto n = v.get<std::int64_t>();
    if (unit == "bp") {
        return fmt::format("{}.{:02}%", n / 100, n % 100);
    }
    return fmt::format("{} {}", n, unit);
}

std::string signed_money(std::int64_t m, std::string_view cur) {
    return (m > 0 ? "+" : "") + money_text(m, cur);
}

// One aging cell, "1,234.56 (3)", or for the change row "+120.00 (+1)"; the text and HTML tables
// both show it.
std::string bucket_cell(const json& b, std::string_view k, std::string_view cur, bool change) {
    const auto a = int_at(b, k, "amount_minor");
    const auto n = int_at(b, k, "count");
    return change ? fmt::format("{} ({:+})", signed_money(a, cur), n)
                  : fmt::format("{} ({})", money_text(a, cur), n);
}

constexpr std::array<std::string_view, 6> bucket_labels{
    "Current", "1-30", "31-60", "61-90", "90+", "Open"};
constexpr std::array<std::string_view, 6> bucket_keys{
    "current", "1_30", "31_60", "61_90", "90_plus", "open"};

constexpr std::size_t client_rows = 25;

}  // namespace

std::string render_text(const json& r) {
    const auto cur = r.value("currency", "");
    std::string out = fmt::format("Weekly report {} ({} to {}, {}){}\n",
                                  r.value("week", ""),
                                  r.value("week_start", ""),
                                  r.value("week_end", ""),
                                  r.value("time_zone", ""),
                                  r.value("final", true) ? "" : " - week not over, as of now");
    const auto& aging = r["aging"];
    out += fmt::format("\nAccounts receivable aging ({}, days past due)\n", cur);
    out += fmt::format("{:<28}", "");
    for (auto l : bucket_labels) {
        out += fmt::format("{:>16}", l);
    }
    out += "\n";
    const auto row = [&](std::string_view label, const json& b, bool change) {
        std::string line = fmt::format("{:<28}", std::string(label.substr(0, 27)));
        for (auto k : bucket_keys) {
            line += fmt::format("{:>16}", bucket_cell(b, k, cur, change));
        }
        return line + "\n";
    };
    out += row("Total", aging["total"], false);
    out += row("Change since last week", aging["change"], true);
    std::size_t shown = 0;
    for (const auto& c : aging["clients"]) {
        if (shown++ == client_rows) {
            out += fmt::format("  ... {} more clients (--json lists all)\n",
                               aging["clients"].size() - client_rows);
            break;
        }
        const auto name = c.value("name", "");
        out += row(name.empty() ? c.value("client", "") : name, c, false);
    }
    const auto& col = r["collections"];
    out += fmt::format(
        "\nCollections\n  DSO {}   collection rate {}   dispute rate {}\n"
        "  collected {} {} in {} payments; invoiced {} {}\n",
        opt_text(col["dso_days"], "days"),
        opt_text(col["collection_rate_bp"], "bp"),
        opt_text(col["dispute_rate_bp"], "bp"),
        money_text(int_at(col, "collected_minor"), cur),
        cur,
        int_at(col, "payments"),
        money_text(int_at(col, "invoiced_minor"), cur),
        cur);
    const auto& f = r["followup"];
    out += fmt::format(
        "\nFollow-up\n  open sequences {}  touches sent: email {}, sms {}  reminders {}\n"
        "  stopped by payment {}  disputes opened {}, open {}  opt-outs {}\n",
        int_at(f, "open_sequences"),
        int_at(f, "touches_sent", "email"),
        int_at(f, "touches_sent", "sms"),
        int_at(f, "reminders_sent"),
        int_at(f, "stopped_by_payment"),
        int_at(f, "disputes_opened"),
        int_at(f, "disputes_open"),
        int_at(f, "opt_outs"));
    if (f.contains("stages")) {
        out += "  by stage:";
        for (const auto& [k, v] : f["stages"].items()) {
            out += fmt::format(" {} {}", k, v.get<std::int64_t>());
        }
        out += "\n";
    }
    for (const auto& d : f.value("disputes", json::array())) {
        out += fmt::format("  dispute: invoice {} ({}), {} days\n",
                           d.value("number", ""),
                           d.value("client", ""),
                           int_at(d, "age_days"));
    }
    const auto& t = r["time"];
    if (t.is_object()) {
        out += fmt::format(
            "\nTime and billing\n  billable recorded {} min, billed {} min, leakage {}\n"
            "  drafts unreviewed: {} time entries, {} invoices; work to invoice avg {}\n",
            int_at(t, "recorded_billable_minutes"),
            int_at(t, "billed_minutes"),
            opt_text(t["leakage_bp"], "bp"),
            int_at(t, "drafts_unreviewed", "time_entries"),
            int_at(t, "drafts_unreviewed", "invoices"),
            opt_text(t["work_to_invoice_days"]["average"], "days"));
        if (t["capture"].is_object()) {
            out += fmt::format("  capture: {} of {} staff-days under {} min ({} complete)\n",
                               int_at(t, "capture", "staff_days_under"),
                               int_at(t, "capture", "staff_days"),
                               int_at(t, "capture", "expected_minutes"),
                               opt_text(t["capture"]["complete_bp"], "bp"));
        }
    } else {
        out += "\nTime and billing\n  no time data\n";
    }
    const auto& o = r["operations"];
    out += fmt::format(
        "\nOperations\n  dead letters {} ({} this week)  open exceptions {} "
        "(oldest {} days)\n",
        int_at(o, "dead_letters"),
        int_at(o, "dead_letters_week"),
        int_at(o, "exceptions_open"),
        int_at(o, "oldest_exception_days"));
    for (const auto& c : o.value("connectors", json::array())) {
        out += fmt::format("  {}: {} dead letters ({} this week)\n",
                           c.value("connector", ""),
                           int_at(c, "dead_letters"),
                           int_at(c, "dead_letters_week"));
    }
    return out;
}

std::string render_html(const json& r) {
    const auto cur = r.value("currency", "");
    const auto e = [](std::string_view s) { return html_escape(s); };
    std::string out =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<title>Weekly report " + e(r.value("week", "")) + "</title>\n";
    out +=
        "<style>body{font-family:sans-serif;margin:1em;color:#222}table{border-collapse:collapse;"
        "margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}"
        "th:first-child,td:first-child{text-align:left}h2{font-size:1.1em;margin-top:1.5em}"
        ".muted{color:#666}</style>\n</head>\n<body>\n";
    out += fmt::format("<h1>Weekly report {}</h1>\n<p class=\"muted\">{} to {} ({}){}</p>\n",
                       e(r.value("week", "")),
                       e(r.value("week_start", "")),
                       e(r.value("week_end", "")),
                       e(r.value("time_zone", "")),
                       r.value("final", true) ? "" : " &mdash; week not over, as of now");
    const auto& aging = r["aging"];
    out += "<h2>Accounts receivable aging (" + e(cur) +
           ", days past due)</h2>\n<table>\n<tr><th></th>";
    for (auto l : bucket_labels) {
        out += "<th>" + std::string(l) + "</th>";
    }
    out += "</tr>\n";
    const auto row = [&](std::string_view label, const json& b, bool change) {
        std::string line = "<tr><td>" + e(label) + "</td>";
        for (auto k : bucket_keys) {
            line += "<td>" + bucket_cell(b, k, cur, change) + "</td>";
        }
        return line + "</tr>\n";
    };
    out += row("Total", aging["total"], false);
    out += row("Change since last week", aging["change"], true);
    std::size_t shown = 0;
    for (const auto& c : aging["clients"]) {
        if (shown++ == client_rows) {
            out += fmt::format("<tr><td colspan=\"7\">&hellip; {} more clients</td></tr>\n",
                               aging["clients"].size() - client_rows);
            break;
        }
        const auto name = c.value("name", "");
        out += row(name.empty() ? c.value("client", "") : name, c, false);
    }
    out += "</table>\n";
    const auto& col = r["collections"];
    out += fmt::format(
        "<h2>Collections</h2>\n<table>\n<tr><td>DSO</td><td>{}</td></tr>\n"
        "<tr><td>Collection rate</td><td>{}</td></tr>\n<tr><td>Dispute rate</td><td>{}</td></tr>\n"
        "<tr><td>Collected</td><td>{} {}</td></tr>\n</table>\n",
        opt_text(col["dso_days"], "days"),
        opt_text(col["collection_rate_bp"], "bp"),
        opt_text(col["dispute_rate_bp"], "bp"),
        money_text(int_at(col, "collected_minor"), cur),
        e(cur));
    const auto& f = r["followup"];
    out += fmt::format(
        "<h2>Follow-up</h2>\n<table>\n<tr><td>Open sequences</td><td>{}</td></tr>\n"
        "<tr><td>Touches sent (email / SMS)</td><td>{} / {}</td></tr>\n"
        "<tr><td>Stopped by payment</td><td>{}</td></tr>\n"
        "<tr><td>Disputes opened / open</td><td>{} / {}</td></tr>\n"
        "<tr><td>Opt-outs</td><td>{}</td></tr>\n</table>\n",
        int_at(f, "open_sequences"),
        int_at(f, "touches_sent", "email"),
        int_at(f, "touches_sent", "sms"),
        int_at(f, "stopped_by_payment"),
        int_at(f, "disputes_opened"),
        int_at(f, "disputes_open"),
        int_at(f, "opt_outs"));
    const auto& t = r["time"];
    out += "<h2>Time and billing</h2>\n";
    if (t.is_object()) {
        out += fmt::format(
            "<table>\n<tr><td>Billable minutes recorded / billed</td><td>{} / {}</td></tr>\n"
            "<tr><td>Leakage</td><td>{}</td></tr>\n"
            "<tr><td>Drafts unreviewed (time / invoices)</td><td>{} / {}</td></tr>\n"
            "<tr><td>Work to invoice (average)</td><td>{}</td></tr>\n</table>\n",
            int_at(t, "recorded_billable_minutes"),
            int_at(t, "billed_minutes"),
            opt_text(t["leakage_bp"], "bp"),
            int_at(t, "drafts_unreviewed", "time_entries"),
            int_at(t, "drafts_unreviewed", "invoices"),
            opt_text(t["work_to_invoice_days"]["average"], "days"));
    } else {
        out += "<p class=\"muted\">No time data.</p>\n";
    }
    const auto& o = r["operations"];
    out += fmt::format(
        "<h2>Operations</h2>\n<table>\n<tr><td>Dead letters</td><td>{}</td></tr>\n"
        "<tr><td>Open exceptions (oldest, days)</td><td>{} ({})</td></tr>\n</table>\n",
        int_at(o, "dead_letters"),
        int_at(o, "exceptions_open"),
        int_at(o, "oldest_exception_days"));
    out += "</body>\n</html>\n";
    return out;
}

}  // namespace billsync::workflows::weekly_report
