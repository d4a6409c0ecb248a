// The dashboard page (GET /): what it shows from the status document, the workflows' views and
// the weekly report, escaped, and well-formed; and the checker that says so.

#include "daemon/dashboard.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/fakes/html_check.hpp"

namespace billsync::daemon {
namespace {

using json = nlohmann::json;

const std::string hostile = R"(<script>alert("x")</script> & 'O'Brien' <b>)";

json status_doc() {
    return json::parse(R"({
      "version": "1.2.3", "commit": "abc", "uptime_s": 3725, "now": "2026-12-03T15:00:00Z",
      "clock": "simulated", "ready": true,
      "connectors": [
        {"name": "qbo", "kind": "qbo", "enabled": true, "state": "running",
         "last_webhook": "2026-12-03T14:58:00Z",
         "detail": {"credential": "valid", "token_expires_at": "2026-12-03T16:00:00Z",
                    "refresh_token_expires_at": "2027-03-01T00:00:00Z",
                    "rate_limit": {"in_flight": 0, "waiting": 0, "available": [499, 9999]},
                    "last_success": "2026-12-03T14:59:00Z"}},
        {"name": "ledger2", "kind": "xero", "enabled": true, "state": "reconnect_needed",
         "detail": {"credential": "reconnect_needed", "last_verified_webhook": "2026-12-02T10:00:00Z",
                    "action_needed": "run billsync connect ledger2"}}
      ],
      "queues": {
        "inbox": {"count": 3, "by_connector": {"qbo": {"count": 3, "oldest_age_s": 125}}},
        "dead_letters": {"count": 2, "by_connector": {"qbo": {"count": 2, "oldest_age_s": 90000}}},
        "timers": {"count": 7, "by_connector": {"": {"count": 7, "oldest_age_s": null}}}
      }
    })");
}

json weekly_doc() {
    return json::parse(R"({
      "week": "2026-W49", "week_start": "2026-11-30", "week_end": "2026-12-06", "currency": "USD",
      "aging": {
        "total": {"current": {"amount_minor": 123456, "count": 3},
                  "1_30": {"amount_minor": 250000, "count": 2},
                  "31_60": {"amount_minor": 0, "count": 0},
                  "61_90": {"amount_minor": 99, "count": 1},
                  "90_plus": {"amount_minor": 100000000, "count": 4},
                  "open": {"amount_minor": 100373555, "count": 10}},
        "change": {"current": {"amount_minor": -5000, "count": -1},
                   "1_30": {"amount_minor": 250000, "count": 2},
                   "31_60": {"amount_minor": 0, "count": 0},
                   "61_90": {"amount_minor": 0, "count": 0},
                   "90_plus": {"amount_minor": 0, "count": 0},
                   "open": {"amount_minor": 245000, "count": 1}},
        "clients": []},
      "collections": {"dso_days": 41, "collection_rate_bp": 8750, "dispute_rate_bp": null},
      "followup": {"open_sequences": 6, "touches_sent": {"email": 11, "sms": 4},
                   "stopped_by_payment": 2, "disputes_open": 1, "opt_outs": 1},
      "operations": {"dead_letters": 2, "exceptions_open": 1}
    })");
}

dashboard_input full_input() {
    dashboard_input in;
    in.status = status_doc();
    in.followups = json::array();
    in.followups.push_back({{"invoice", "inv-1"},
                            {"number", "1001"},
                            {"phase", "active"},
                            {"last_touch", 2},
                            {"next_touch_at", "2026-12-10T14:00:00Z"},
                            {"balance", {{"minor", 123456}, {"currency", "USD"}}},
                            {"client_name", hostile}});
    in.followups.push_back({{"invoice", "inv-2"},
                            {"number", "1002"},
                            {"phase", "paused"},
                            {"last_touch", 1},
                            {"balance", {{"minor", 5000}, {"currency", "USD"}}},
                            {"client_name", "Acme & Sons"}});
    in.followups.push_back({{"invoice", "inv-3"},
                            {"number", "1003"},
                            {"phase", "active"},
                            {"last_touch", 2},
                            {"balance", {{"minor", 700}, {"currency", "USD"}}},
                            {"client_name", "Bolt LLC"}});
    in.approvals = {{"approvals",
                     json::array({{{"id", "d-7"},
                                   {"engagement", hostile},
                                   {"total_minor", 240000},
                                   {"currency", "USD"},
                                   {"pending_since", "2026-12-01T10:00:00Z"},
                                   {"approvers", json::array({"partner@firm.example"})}}})}};
    in.exceptions = {{"exceptions",
                      json::array({{{"id", "d-9"},
                                    {"type", "missing_po"},
                                    {"cause", "the engagement requires a PO \"x\" <y>"},
                                    {"owner", "coordinator@firm.example"},
                                    {"since", "2026-12-02T09:00:00Z"}}})}};
    in.identities = {
        {"exceptions",
         json::array({{{"client", "c-1"},
                       {"name", hostile},
                       {"kind", "ambiguous"},
                       {"reason", "two customers share the e-mail"},
                       {"candidates", json::array({{{"client", "c-2"}, {"name", "Acme 2"}}})},
                       {"since", "2026-12-01T00:00:00Z"}}})},
        {"parties", json::array()}};
    in.weekly = weekly_doc();
    return in;
}

bool has(const std::string& page, std::string_view needle) {
    return page.find(needle) != std::string::npos;
}

TEST(dashboard, shows_connector_health_queues_and_dead_letters) {
    const auto page = render_dashboard(full_input());
    EXPECT_EQ(testing::html_problem(page), "");
    EXPECT_TRUE(has(page, "<meta name=\"viewport\""));
    EXPECT_TRUE(has(page, "<meta http-equiv=\"refresh\" content=\"30\">"));
    EXPECT_TRUE(has(page, "2026-12-03T16:00:00Z"));           // token expiry
    EXPECT_TRUE(has(page, "2026-12-03T14:59:00Z"));           // last poll
    EXPECT_TRUE(has(page, "<td>2026-12-03T14:58:00Z</td>"));  // last webhook, the daemon's
    EXPECT_TRUE(has(page, "<td>2026-12-02T10:00:00Z</td>"));  // last webhook, the connector's
    EXPECT_TRUE(has(page, "499 / 9999"));                     // rate-limit headroom per window
    EXPECT_TRUE(has(page, "Reconnect needed: <code>billsync connect ledger2</code>"));
    EXPECT_TRUE(has(page, "<td class=\"num\">3</td><td>2 min</td>"));  // inbox, oldest 125 s
    EXPECT_TRUE(has(page, "Dead letters: <strong>2</strong>"));
    EXPECT_TRUE(has(page, "1 d 1 h"));  // the oldest dead letter
}

TEST(dashboard, groups_followups_by_stage_and_lists_the_waiting_decisions) {
    const auto page = render_dashboard(full_input());
    EXPECT_TRUE(has(page, "<tr><td>touch 2 sent</td><td class=\"num\">2</td></tr>"));
    EXPECT_TRUE(has(page, "<tr><td>paused</td><td class=\"num\">1</td></tr>"));
    EXPECT_TRUE(has(page, "$1,234.56"));
    EXPECT_TRUE(has(page, "Acme &amp; Sons"));
    EXPECT_TRUE(has(page, "<span id=\"exceptions-open\">1</span>"));
    EXPECT_TRUE(has(page, "<span id=\"approvals-waiting\">1</span>"));
    EXPECT_TRUE(has(page, "$2,400.00"));
    EXPECT_TRUE(has(page, "<strong id=\"identities-waiting\">1</strong>"));
    EXPECT_TRUE(has(page, "two customers share the e-mail"));
}

TEST(dashboard, shows_the_weekly_figures_and_the_aging_chart_from_the_report) {
    const auto page = render_dashboard(full_input());
    EXPECT_TRUE(has(page, "Week 2026-W49 (2026-11-30 to 2026-12-06)"));
    EXPECT_TRUE(has(page, "<dd id=\"open-ar\">$1,003,735.55 (10)</dd>"));
    EXPECT_TRUE(has(page, "<dd id=\"dso\">41 days</dd>"));
    EXPECT_TRUE(has(page, "<dd id=\"collection-rate\">87.50 %</dd>"));
    EXPECT_TRUE(has(page, "<dd id=\"dispute-rate\">not available</dd>"));
    EXPECT_TRUE(has(page, "<dd id=\"touches\">11 / 4</dd>"));
    EXPECT_TRUE(has(page, "<svg id=\"aging-chart\""));
    // The largest bucket (90+) is the full 160 px; 61-90 ($0.99) stays visible at 1 px; 31-60
    // ($0) has no bar.
    EXPECT_TRUE(has(page, "y=\"24\" width=\"72\" height=\"160\"><title>90+ days: $1,000,000.00"));
    EXPECT_TRUE(has(page, "height=\"1\"><title>61-90 days: $0.99</title>"));
    EXPECT_TRUE(has(page, "height=\"0\"><title>31-60 days: $0.00</title>"));
    EXPECT_TRUE(has(page, "<td class=\"num\">-$50.00</td>"));     // change, current
    EXPECT_TRUE(has(page, "<td class=\"num\">+$2,500.00</td>"));  // change, 1-30
}

// The daemon keeps the weekly figures for the page without the report's per-client rows (at a
// large firm, megabytes copied on every page request), and the page shows the same figures.
TEST(dashboard, keeps_the_weekly_figures_without_the_per_client_rows) {
    auto in = full_input();
    const auto before = render_dashboard(in);
    auto report = in.weekly;
    report["aging"]["clients"] = json::array({{{"client", "c-1"}, {"open", 1}}});
    report["followup"]["clients"] = json::array({{{"client", "c-1"}}});
    in.weekly = dashboard_weekly(report);
    EXPECT_FALSE(in.weekly["aging"].contains("clients"));
    EXPECT_FALSE(in.weekly["followup"].contains("clients"));
    EXPECT_EQ(in.weekly["aging"]["total"], report["aging"]["total"]);
    EXPECT_EQ(in.weekly["collections"], report["collections"]);
    EXPECT_EQ(render_dashboard(in), before);
    EXPECT_TRUE(dashboard_weekly(json()).is_null());
}

TEST(dashboard, says_what_is_not_available) {
    dashboard_input in;
    in.status = status_doc();
    const auto page = render_dashboard(in);
    EXPECT_EQ(testing::html_problem(page), "");
    EXPECT_TRUE(has(page, "The weekly figures are not available."));
    EXPECT_TRUE(has(page, "The follow-up workflow is off."));
    EXPECT_TRUE(has(page, "The invoicing workflow is off."));
    EXPECT_FALSE(has(page, "<svg"));
    // An empty status document still makes a page.
    EXPECT_EQ(testing::html_problem(render_dashboard(dashboard_input{})), "");
}

TEST(dashboard, escapes_every_text_it_shows) {
    auto in = full_input();
    in.status["connectors"][0]["name"] = hostile;
    in.status["connectors"][0]["detail"]["action_needed"] = hostile;
    in.status["queues"][hostile] = {{"count", 1}, {"by_connector", {{hostile, {{"count", 1}}}}}};
    in.weekly["week"] = hostile;
    in.weekly["currency"] = "<i>";
    const auto page = render_dashboard(in);
    EXPECT_EQ(testing::html_problem(page), "");
    EXPECT_FALSE(has(page, "<script"));
    EXPECT_FALSE(has(page, "<b>"));
    EXPECT_FALSE(has(page, "<i>"));
    EXPECT_TRUE(has(page,
                    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                    "&#39;O&#39;Brien&#39; &lt;b&gt;"));
    EXPECT_EQ(html_escape(R"(a<b>&"c'd)"), "a&lt;b&gt;&amp;&quot;c&#39;d");
}

TEST(dashboard, lists_at_most_fifty_rows_and_points_at_the_full_list) {
    auto in = full_input();
    in.followups = json::array();
    for (int i = 0; i < 120; ++i) {
        in.followups.push_back({{"number", std::to_string(2000 + i)}, {"phase", "waiting"}});
    }
    const auto page = render_dashboard(in);
    EXPECT_TRUE(has(page, "<tr><td>waiting</td><td class=\"num\">120</td></tr>"));
    EXPECT_TRUE(has(page, "50 of 120 shown"));
    EXPECT_TRUE(has(page, ">2049<"));
    EXPECT_FALSE(has(page, ">2050<"));
}

TEST(dashboard, counts_stages_from_the_stage_counts_when_it_has_only_the_first_rows) {
    auto in = full_input();
    in.followups = json::array();
    for (int i = 0; i < 50; ++i) {
        in.followups.push_back({{"number", std::to_string(3000 + i)}, {"phase", "waiting"}});
    }
    in.followup_stages = {
        {"open", 15030},
        {"stages",
         json::array({{{"phase", "active"}, {"last_touch", 0}, {"count", 10}},
                      {{"phase", "active"}, {"last_touch", 2}, {"count", 14000}},
                      {{"phase", "paused"}, {"last_touch", 1}, {"count", 12}},
                      {{"phase", "paused"}, {"last_touch", 3}, {"count", 8}},
                      {{"phase", "waiting"}, {"last_touch", 0}, {"count", 1000}}})}};
    const auto page = render_dashboard(in);
    EXPECT_TRUE(has(page, "<tr><td>active, no touch yet</td><td class=\"num\">10</td></tr>"));
    EXPECT_TRUE(has(page, "<tr><td>touch 2 sent</td><td class=\"num\">14000</td></tr>"));
    EXPECT_TRUE(has(page, "<tr><td>paused</td><td class=\"num\">20</td></tr>"));
    EXPECT_TRUE(has(page, "<tr><td>waiting</td><td class=\"num\">1000</td></tr>"));
    EXPECT_TRUE(has(page, "50 of 15030 shown"));
    EXPECT_TRUE(has(page, ">3049<"));
}

// The checker itself: it must fail on what is not well-formed.
TEST(html_check, accepts_well_formed_documents) {
    EXPECT_EQ(
        testing::html_problem("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                              "<style>a>b{}</style></head><body><p class='x'>a &amp; b "
                              "&#39; &#x27;<br></p><svg><rect x=\"1\"/></svg></body></html>\n"),
        "");
}

TEST(html_check, finds_unclosed_misnested_unquoted_and_unescaped_markup) {
    const auto bad = [](std::string_view h) { return !testing::html_problem(h).empty(); };
    EXPECT_TRUE(bad("<html><body><p>x</body></html>"));         // <p> not closed
    EXPECT_TRUE(bad("<html><b><i>x</b></i></html>"));           // misnested
    EXPECT_TRUE(bad("<html><p class=x>y</p></html>"));          // unquoted attribute
    EXPECT_TRUE(bad("<html><p>a & b</p></html>"));              // bare &
    EXPECT_TRUE(bad("<html><p>a < b</p></html>"));              // bare <
    EXPECT_TRUE(bad("<html><p title=\"a<b\">x</p></html>"));    // < in a value
    EXPECT_TRUE(bad("<html><p>x</p></html><p>y</p>"));          // second root
    EXPECT_TRUE(bad("<html><br></br></html>"));                 // void end tag
    EXPECT_TRUE(bad("<html><style>x</html>"));                  // raw text unclosed
    EXPECT_TRUE(bad("<html><p a=\"1\" a=\"2\">x</p></html>"));  // repeated attribute
    EXPECT_TRUE(bad("<html><p>x</p>"));                         // root unclosed
    EXPECT_TRUE(bad("<html><p>x</p></html>trailing"));          // after the root
    EXPECT_TRUE(bad("<html><p a=\"1\"b=\"2\">x</p></html>"));   // no space between
}

}  // namespace
}  // namespace billsync::daemon
