#include "daemon/dashboard.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "mappings/money.hpp"
#include "workflows/templates.hpp"

namespace billsync::daemon {

namespace {

using json = nlohmann::json;

constexpr std::size_t max_rows = dashboard_max_rows;

const json& field(const json& j, std::string_view key) {
    static const json null_value;
    if (!j.is_object()) {
        return null_value;
    }
    const auto it = j.find(key);
    return it == j.end() ? null_value : *it;
}

// A scalar as text ("-" when absent or null); objects and arrays as compact JSON.
std::string text_of(const json& v) {
    if (v.is_null()) {
        return "-";
    }
    if (v.is_string()) {
        return v.get<std::string>();
    }
    return v.dump();
}

std::string text_of(const json& j, std::string_view key) { return text_of(field(j, key)); }

std::string esc(const json& j, std::string_view key) { return html_escape(text_of(j, key)); }

std::optional<std::int64_t> int_of(const json& v) {
    if (v.is_number_integer()) {
        return v.get<std::int64_t>();
    }
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return static_cast<std::int64_t>(u);
        }
    }
    return std::nullopt;
}

std::string money_html(std::int64_t minor, const std::string& currency) {
    return html_escape(workflows::format_money(mappings::money{minor, currency}));
}

// {"minor": N, "currency": "USD"} (canonical money) as "$1,234.56"; "-" otherwise.
std::string money_html(const json& m) {
    const auto minor = int_of(field(m, "minor"));
    const auto& currency = field(m, "currency");
    if (!minor || !currency.is_string()) {
        return "-";
    }
    return money_html(*minor, currency.get<std::string>());
}

// Basis points as a percentage with two decimals, in integers: 8750 -> "87.50 %".
std::string percent_of_bp(const json& v) {
    const auto bp = int_of(v);
    if (!bp) {
        return "not available";
    }
    const auto a = *bp < 0 ? -*bp : *bp;
    return fmt::format("{}{}.{:02} %", *bp < 0 ? "-" : "", a / 100, a % 100);
}

std::string age_text(const json& seconds) {
    const auto s = int_of(seconds);
    if (!s) {
        return "-";
    }
    if (*s < 60) {
        return fmt::format("{} s", *s);
    }
    if (*s < 3600) {
        return fmt::format("{} min", *s / 60);
    }
    if (*s < 86400) {
        return fmt::format("{} h {} min", *s / 3600, (*s % 3600) / 60);
    }
    return fmt::format("{} d {} h", *s / 86400, (*s % 86400) / 3600);
}

std::size_t size_of(const json& v) { return v.is_array() ? v.size() : 0; }

struct page {
    std::string out;

    void raw(std::string_view s) { out += s; }
    template <typename... A>
    void f(fmt::format_string<A...> format, A&&... args) {
        out += fmt::format(format, std::forward<A>(args)...);
    }
    void table_open(std::initializer_list<std::string_view> headings) {
        raw("<div class=\"scroll\"><table><thead><tr>");
        for (const auto h : headings) {
            f("<th>{}</th>", html_escape(h));
        }
        raw("</tr></thead><tbody>");
    }
    void table_close() { raw("</tbody></table></div>"); }
    void more(std::size_t total, std::string_view route) {
        if (total > max_rows) {
            f("<p class=\"note\">{} of {} shown; the full list is at <code>{}</code>.</p>",
              max_rows,
              total,
              html_escape(route));
        }
    }
};

constexpr std::string_view style = R"(
:root{color-scheme:light;--fg:#1d2330;--mute:#5b6475;--line:#d9dde5;--bg:#f5f6f8;--card:#fff;
--ok:#1f7a3d;--warn:#a35c00;--bad:#b3261e;--bar:#2f6db5}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{padding:12px 16px;background:#1d2330;color:#fff;display:flex;flex-wrap:wrap;gap:8px 16px;
align-items:baseline}
header h1{font-size:1.2rem;margin:0}
header span{color:#c9cfdb;font-size:.9rem}
main{padding:12px;display:grid;gap:12px;grid-template-columns:repeat(auto-fit,minmax(min(100%,30rem),1fr))}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;
min-width:0}
h2{font-size:1.05rem;margin:0 0 8px}
h3{font-size:.95rem;margin:12px 0 6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:4px 8px 4px 0;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:.8rem;font-weight:600;
color:#fff;background:var(--mute)}
.ok{background:var(--ok)}.warn{background:var(--warn)}.bad{background:var(--bad)}
.note{color:var(--mute);font-size:.85rem;margin:6px 0}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:8px;margin:0}
.figures div{border:1px solid var(--line);border-radius:6px;padding:6px 8px}
.figures dt{color:var(--mute);font-size:.8rem}
.figures dd{margin:0;font-size:1.1rem;font-weight:600;font-variant-numeric:tabular-nums}
svg{width:100%;height:auto;max-width:640px}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
svg rect.bar{fill:var(--bar)}
code{font-size:.85rem}
)";

std::string state_badge(const std::string& state) {
    const auto* cls = state == "running" || state == "idle" || state == "ready" ? "ok"
                      : state == "disabled"                                     ? ""
                      : state == "reconnect_needed" || state == "unavailable"   ? "bad"
                                                                                : "warn";
    return fmt::format("<span class=\"badge {}\">{}</span>", cls, html_escape(state));
}

// The rate-limit headroom as the connector reports it (a number, or one per window).
std::string headroom_text(const json& detail) {
    const auto& r = field(detail, "rate_limit");
    const auto& a = field(r, "available");
    if (a.is_array()) {
        std::string out;
        for (const auto& v : a) {
            out += out.empty() ? "" : " / ";
            out += text_of(v);
        }
        return out.empty() ? "-" : out;
    }
    return text_of(a);
}

// The daemon's own record (since the start), else what the connector reports.
std::string last_webhook_of(const json& connector) {
    if (const auto& v = field(connector, "last_webhook"); v.is_string()) {
        return v.get<std::string>();
    }
    if (const auto& v = field(field(connector, "detail"), "last_verified_webhook"); v.is_string()) {
        return v.get<std::string>();
    }
    return "-";
}

void connectors_section(page& p, const json& status) {
    p.raw("<section id=\"connectors\"><h2>Connector health</h2>");
    const auto& list = field(status, "connectors");
    if (size_of(list) == 0) {
        p.raw("<p class=\"note\">No connector is configured.</p></section>");
        return;
    }
    p.table_open({"Connector",
                  "State",
                  "Last webhook",
                  "Last poll",
                  "Token expires",
                  "Rate-limit headroom",
                  "Action"});
    for (const auto& c : list) {
        const auto& d = field(c, "detail");
        const auto state = text_of(c, "state");
        const bool reconnect = state == "reconnect_needed" ||
                               field(d, "reconnect_needed") == json(true) ||
                               field(d, "credential") == json("reconnect_needed");
        std::string action;
        if (reconnect) {
            action = "Reconnect needed: <code>billsync connect " + esc(c, "name") + "</code>";
        }
        if (const auto& a = field(d, "action_needed"); a.is_string() && !a.empty()) {
            action += (action.empty() ? "" : "<br>") + html_escape(a.get<std::string>());
        }
        std::string token = html_escape(text_of(d, "token_expires_at"));
        if (const auto& r = field(d, "refresh_token_expires_at"); r.is_string()) {
            token += "<br>refresh " + html_escape(r.get<std::string>());
        }
        p.f("<tr><td>{} <span class=\"note\">{}</span></td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(c, "name"),
            esc(c, "kind"),
            state_badge(reconnect ? std::string("reconnect_needed") : state),
            html_escape(last_webhook_of(c)),
            esc(d, "last_success"),
            token,
            html_escape(headroom_text(d)),
            action.empty() ? std::string("-") : action);
    }
    p.table_close();
    p.raw("</section>");
}

void queues_section(page& p, const json& status) {
    p.raw("<section id=\"queues\"><h2>Queues and dead letters</h2>");
    const auto& queues = field(status, "queues");
    p.table_open({"Queue", "Connector", "Items", "Oldest"});
    std::size_t rows = 0;
    if (queues.is_object()) {
        for (const auto& [name, q] : queues.items()) {
            const auto& by = field(q, "by_connector");
            if (!by.is_object() || by.empty()) {
                continue;
            }
            for (const auto& [connector, depth] : by.items()) {
                ++rows;
                p.f("<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    html_escape(name),
                    connector.empty() ? std::string("all") : html_escape(connector),
                    esc(depth, "count"),
                    html_escape(age_text(field(depth, "oldest_age_s"))));
            }
        }
    }
    if (rows == 0) {
        p.raw("<tr><td colspan=\"4\">Every queue is empty.</td></tr>");
    }
    p.table_close();
    const auto dead = int_of(field(field(queues, "dead_letters"), "count")).value_or(0);
    p.f("<p class=\"note\" id=\"dead-letters\">Dead letters: <strong>{}</strong>{}</p>",
        dead,
        dead > 0 ? " &mdash; <code>billsync deadletters list</code> shows them" : "");
    p.raw("</section>");
}

std::string stage_of(const json& s) {
    const auto phase = text_of(s, "phase");
    if (phase == "active") {
        const auto last = int_of(field(s, "last_touch")).value_or(0);
        return last == 0 ? std::string("active, no touch yet") : fmt::format("touch {} sent", last);
    }
    return phase;
}

void followups_section(page& p, const json& followups, const json& counted) {
    p.raw("<section id=\"followups\"><h2>Follow-ups by stage</h2>");
    if (!followups.is_array()) {
        p.raw("<p class=\"note\">The follow-up workflow is off.</p></section>");
        return;
    }
    std::map<std::string, std::size_t> stages;
    std::size_t total = followups.size();
    if (counted.is_object()) {
        total = 0;
        for (const auto& s : field(counted, "stages")) {
            const auto n = static_cast<std::size_t>(int_of(field(s, "count")).value_or(0));
            stages[stage_of(s)] += n;
            total += n;
        }
    } else {
        for (const auto& s : followups) {
            ++stages[stage_of(s)];
        }
    }
    if (stages.empty()) {
        p.raw("<p class=\"note\">No open follow-up sequence.</p></section>");
        return;
    }
    p.table_open({"Stage", "Sequences"});
    for (const auto& [stage, n] : stages) {
        p.f("<tr><td>{}</td><td class=\"num\">{}</td></tr>", html_escape(stage), n);
    }
    p.table_close();
    p.raw("<h3>Open sequences</h3>");
    p.table_open({"Client", "Invoice", "Balance", "Stage", "Next touch"});
    std::size_t shown = 0;
    for (const auto& s : followups) {
        if (shown++ == max_rows) {
            break;
        }
        p.f("<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(s, "client_name"),
            esc(s, "number"),
            money_html(field(s, "balance")),
            html_escape(stage_of(s)),
            esc(s, "next_touch_at"));
    }
    p.table_close();
    p.more(total, "/followups");
    p.raw("</section>");
}

void invoicing_section(page& p, const json& approvals, const json& exceptions) {
    p.raw("<section id=\"invoicing\"><h2>Invoicing: exceptions and approvals</h2>");
    const auto& a = field(approvals, "approvals");
    const auto& x = field(exceptions, "exceptions");
    if (!a.is_array() && !x.is_array()) {
        p.raw("<p class=\"note\">The invoicing workflow is off.</p></section>");
        return;
    }
    p.f("<h3>Exceptions open: <span id=\"exceptions-open\">{}</span></h3>", size_of(x));
    if (size_of(x) > 0) {
        p.table_open({"Exception", "Type", "Cause", "Owner", "Since"});
        std::size_t shown = 0;
        for (const auto& e : x) {
            if (shown++ == max_rows) {
                break;
            }
            p.f("<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(e, "id"),
                esc(e, "type"),
                esc(e, "cause"),
                esc(e, "owner"),
                esc(e, "since"));
        }
        p.table_close();
        p.more(x.size(), "/exceptions");
    }
    p.f("<h3>Approvals waiting: <span id=\"approvals-waiting\">{}</span></h3>", size_of(a));
    if (size_of(a) > 0) {
        p.table_open({"Draft", "Engagement", "Total", "Waiting since", "Approvers"});
        std::size_t shown = 0;
        for (const auto& d : a) {
            if (shown++ == max_rows) {
                break;
            }
            std::string approvers;
            for (const auto& who :
                 field(d, "approvers").is_array() ? field(d, "approvers") : json::array()) {
                approvers += (approvers.empty() ? "" : ", ") + html_escape(text_of(who));
            }
            const auto total = int_of(field(d, "total_minor"));
            const auto& currency = field(d, "currency");
            p.f("<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td>{}</td>"
                "<td>{}</td></tr>",
                esc(d, "id"),
                esc(d, "engagement"),
                total && currency.is_string() ? money_html(*total, currency.get<std::string>())
                                              : std::string("-"),
                esc(d, "pending_since"),
                approvers.empty() ? std::string("-") : approvers);
        }
        p.table_close();
        p.more(a.size(), "/approvals");
    }
    p.raw("</section>");
}

void identities_section(page& p, const json& identities) {
    p.raw("<section id=\"identities\"><h2>Identity matches waiting</h2>");
    const auto& x = field(identities, "exceptions");
    p.f("<p class=\"note\">Waiting for a person: <strong id=\"identities-waiting\">{}</strong>"
        "{}</p>",
        size_of(x),
        size_of(x) > 0 ? " &mdash; <code>billsync identities link A B</code> decides" : "");
    if (size_of(x) > 0) {
        p.table_open({"Client", "Kind", "Reason", "Candidates", "Since"});
        std::size_t shown = 0;
        for (const auto& e : x) {
            if (shown++ == max_rows) {
                break;
            }
            std::string candidates;
            for (const auto& c :
                 field(e, "candidates").is_array() ? field(e, "candidates") : json::array()) {
                candidates += (candidates.empty() ? "" : "<br>") + esc(c, "name") + " <code>" +
                              esc(c, "client") + "</code>";
            }
            p.f("<tr><td>{} <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(e, "name"),
                esc(e, "client"),
                esc(e, "kind"),
                esc(e, "reason"),
                candidates.empty() ? std::string("-") : candidates,
                esc(e, "since"));
        }
        p.table_close();
        p.more(x.size(), "/identities");
    }
    p.raw("</section>");
}

struct bucket {
    std::string_view key;
    std::string_view label;
};
constexpr std::array<bucket, 5> buckets{{{"current", "Current"},
                                         {"1_30", "1-30"},
                                         {"31_60", "31-60"},
                                         {"61_90", "61-90"},
                                         {"90_plus", "90+"}}};

std::int64_t amount_of(const json& aging, std::string_view key) {
    return int_of(field(field(aging, key), "amount_minor")).value_or(0);
}

// The aging buckets as bars; heights in whole pixels from integer amounts.
void aging_chart(page& p, const json& total, const std::string& currency) {
    constexpr std::int64_t height = 160;
    constexpr std::int64_t top = 24;
    std::int64_t max = 0;
    for (const auto& b : buckets) {
        max = std::max(max, amount_of(total, b.key));
    }
    p.f("<svg id=\"aging-chart\" viewBox=\"0 0 520 230\" role=\"img\" "
        "aria-label=\"Accounts receivable aging by days past due\" "
        "xmlns=\"http://www.w3.org/2000/svg\">"
        "<line x1=\"10\" y1=\"{0}\" x2=\"510\" y2=\"{0}\" stroke=\"#9aa3b2\"></line>",
        top + height);
    std::int64_t x = 20;
    for (const auto& b : buckets) {
        const auto amount = std::max<std::int64_t>(0, amount_of(total, b.key));
        std::int64_t h = 0;
        if (max > 0) {
            h = max < std::numeric_limits<std::int64_t>::max() / height ? amount * height / max
                                                                        : amount / (max / height);
        }
        if (amount > 0 && h == 0) {
            h = 1;  // a small bucket stays visible
        }
        p.f("<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"72\" height=\"{}\">"
            "<title>{} days: {}</title></rect>",
            x,
            top + height - h,
            h,
            html_escape(b.label),
            money_html(amount_of(total, b.key), currency));
        p.f("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + 36,
            top + height - h - 6,
            money_html(amount_of(total, b.key), currency));
        p.f("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + 36,
            top + height + 20,
            html_escape(b.label));
        x += 100;
    }
    p.raw("</svg>");
}

void weekly_section(page& p, const json& weekly) {
    p.raw("<section id=\"weekly\"><h2>This week</h2>");
    if (!weekly.is_object()) {
        p.raw(
            "<p class=\"note\" id=\"weekly-unavailable\">The weekly figures are not available.</p>"
            "</section>");
        return;
    }
    const auto currency = field(weekly, "currency").is_string()
                              ? field(weekly, "currency").get<std::string>()
                              : std::string();
    p.f("<p class=\"note\">Week {} ({} to {}), {}</p>",
        esc(weekly, "week"),
        esc(weekly, "week_start"),
        esc(weekly, "week_end"),
        html_escape(currency));
    const auto& aging = field(weekly, "aging");
    const auto& total = field(aging, "total");
    const auto& change = field(aging, "change");
    const auto& col = field(weekly, "collections");
    const auto& fu = field(weekly, "followup");
    const auto& ops = field(weekly, "operations");
    const auto count_text = [](const json& v) {
        const auto n = int_of(v);
        return n ? std::to_string(*n) : std::string("-");
    };
    const auto money_or_dash = [&currency](const json& v) {
        const auto n = int_of(v);
        return n && !currency.empty() ? money_html(*n, currency) : std::string("-");
    };
    const auto dso = int_of(field(col, "dso_days"));
    p.raw("<dl class=\"figures\">");
    const auto figure = [&p](std::string_view id, std::string_view label, const std::string& v) {
        p.f("<div><dt>{}</dt><dd id=\"{}\">{}</dd></div>", html_escape(label), id, v);
    };
    figure("open-ar",
           "Open receivables",
           money_or_dash(field(field(total, "open"), "amount_minor")) + " (" +
               count_text(field(field(total, "open"), "count")) + ")");
    figure("dso", "DSO", dso ? fmt::format("{} days", *dso) : std::string("not available"));
    figure("collection-rate", "Collection rate", percent_of_bp(field(col, "collection_rate_bp")));
    figure("dispute-rate", "Dispute rate", percent_of_bp(field(col, "dispute_rate_bp")));
    figure("open-sequences", "Open sequences", count_text(field(fu, "open_sequences")));
    figure("touches",
           "Touches sent (email / SMS)",
           count_text(field(field(fu, "touches_sent"), "email")) + " / " +
               count_text(field(field(fu, "touches_sent"), "sms")));
    figure("stopped-by-payment", "Stopped by payment", count_text(field(fu, "stopped_by_payment")));
    figure("disputes-open", "Disputes open", count_text(field(fu, "disputes_open")));
    figure("opt-outs", "Opt-outs", count_text(field(fu, "opt_outs")));
    figure("weekly-dead-letters", "Dead letters", count_text(field(ops, "dead_letters")));
    figure("weekly-exceptions", "Exceptions open", count_text(field(ops, "exceptions_open")));
    p.raw("</dl>");

    p.raw("<h3>Receivables aging (days past due)</h3>");
    if (!total.is_object()) {
        p.raw("<p class=\"note\">The aging figures are not available.</p></section>");
        return;
    }
    aging_chart(p, total, currency);
    p.raw(
        "<div class=\"scroll\" id=\"aging\"><table><thead><tr><th>Bucket</th>"
        "<th class=\"num\">Amount</th><th class=\"num\">Invoices</th>"
        "<th class=\"num\">Change</th></tr></thead><tbody>");
    auto rows = std::vector<bucket>(buckets.begin(), buckets.end());
    rows.push_back({"open", "Open"});
    for (const auto& b : rows) {
        const auto& t = field(total, b.key);
        const auto& c = field(change, b.key);
        const auto delta = int_of(field(c, "amount_minor"));
        p.f("<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
            "<td class=\"num\">{}</td></tr>",
            html_escape(b.label),
            money_or_dash(field(t, "amount_minor")),
            count_text(field(t, "count")),
            delta ? (*delta > 0 ? "+" : "") + money_or_dash(field(c, "amount_minor"))
                  : std::string("-"));
    }
    p.raw("</tbody></table></div></section>");
}

}  // namespace

json dashboard_weekly(json report) {
    for (const char* section : {"aging", "followup"}) {
        if (report.is_object() && report.contains(section) && report[section].is_object()) {
            report[section].erase("clients");
        }
    }
    return report;
}

std::string render_dashboard(const dashboard_input& in) {
    page p;
    p.out.reserve(32 * 1024);
    const auto& s = in.status;
    const bool ready = field(s, "ready") == json(true);
    p.raw(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    p.f("<meta http-equiv=\"refresh\" content=\"{}\">", std::max<long long>(5, in.refresh.count()));
    p.raw("<meta name=\"robots\" content=\"noindex\"><title>billsync status</title><style>");
    p.raw(style);
    p.raw("</style></head><body><header><h1>billsync</h1>");
    p.f("<span class=\"badge {}\" id=\"ready\">{}</span>",
        ready ? "ok" : "bad",
        ready ? "ready" : "NOT READY");
    p.f("<span>now <span id=\"now\">{}</span> ({} clock)</span>", esc(s, "now"), esc(s, "clock"));
    p.f("<span>version {} &middot; up {}</span>",
        esc(s, "version"),
        html_escape(age_text(field(s, "uptime_s"))));
    p.f("<span>refreshes every {} s</span></header><main>",
        std::max<long long>(5, in.refresh.count()));
    connectors_section(p, s);
    queues_section(p, s);
    followups_section(p, in.followups, in.followup_stages);
    invoicing_section(p, in.approvals, in.exceptions);
    identities_section(p, in.identities);
    weekly_section(p, in.weekly);
    p.raw("</main></body></html>\n");
    return std::move(p.out);
}

}  // namespace billsync::daemon
