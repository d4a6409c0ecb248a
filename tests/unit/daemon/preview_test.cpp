// `billsync preview`: the follow-up workflow run on a copy of the state with a simulated clock.
// A data dir holds canonical clients and invoices; the preview must show the touches of the
// standard cadence on the right days (weekend touches moved to Monday), nothing for paid
// invoices or payment-plan clients, and leave the real state exactly as it was.

#include "daemon/preview.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/tools.hpp"
#include "mappings/model.hpp"
#include "state/entity_index.hpp"
#include "state/sim_time.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::daemon {
namespace {

using json = nlohmann::json;

std::chrono::year_month_day ymd(int y, unsigned m, unsigned d) {
    return std::chrono::year_month_day{
        std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
}

// Monday 2026-01-05, 08:00 in New York.
constexpr const char* config_text = R"(
[daemon]
data_dir = "data"
time_zone = "America/New_York"

[daemon.clock]
mode = "simulated"
start = "2026-01-05T13:00:00Z"

[followup]
firm_name = "Smith & Lee CPA"
firm_phone = "+1 212 555 0100"

[connectors.mail]
kind = "sendgrid"
api_key = "SG.test-key"
from_email = "billing@firm.example"

[connectors.texts]
kind = "twilio"
account_sid = "AC0123456789"
auth_token = "test-token"
from = "+12125550100"
public_url = "https://billsync.example.com"
)";

struct run_result {
    int rc = 0;
    std::string out;
    std::string err;
};

class preview_test : public ::testing::Test {
protected:
    void SetUp() override {
        testing::write_file(config_, config_text);
        std::filesystem::create_directories(state_dir_);
        auto opened = state::store::open(state_dir_);
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        auto& s = *opened.value;

        mappings::client acme;
        acme.id = "c-1";
        acme.display_name = "Acme Dental";
        acme.contact.billing_email = "ap@acme.example";
        acme.contact.mobile = "+14155550123";
        acme.contact.sms_consent = true;
        put(s, "client", acme.id, mappings::to_json(acme));

        mappings::client plan;
        plan.id = "c-2";
        plan.display_name = "Plan Partners";
        plan.contact.billing_email = "ap@plan.example";
        plan.payment_plan = true;
        put(s, "client", plan.id, mappings::to_json(plan));

        // Due Monday 2026-01-05: day 1 Tue 01-06, day 15 Tue 01-20, day 30 Wed 02-04.
        put(s, "invoice", "inv-1", mappings::to_json(invoice("inv-1", "1042", "c-1", 50000, {})));
        // Due Friday 2026-01-09: day 1 Sat 01-10, day 15 Sat 01-24, day 30 Sun 02-08, each moved
        // to the Monday after.
        auto friday = invoice("inv-2", "1043", "c-1", 120000, ymd(2026, 1, 9));
        put(s, "invoice", "inv-2", mappings::to_json(friday));
        // Paid in full.
        auto paid = invoice("inv-3", "1044", "c-1", 0, ymd(2025, 12, 20));
        paid.status = mappings::invoice_status::paid;
        put(s, "invoice", "inv-3", mappings::to_json(paid));
        // A payment-plan client's overdue invoice.
        put(s,
            "invoice",
            "inv-4",
            mappings::to_json(invoice("inv-4", "1045", "c-2", 70000, ymd(2025, 12, 20))));
    }

    static mappings::invoice invoice(std::string id,
                                     std::string number,
                                     std::string client,
                                     std::int64_t balance,
                                     std::optional<std::chrono::year_month_day> due) {
        mappings::invoice inv;
        inv.id = std::move(id);
        inv.number = std::move(number);
        inv.client_id = std::move(client);
        inv.currency = "USD";
        inv.total = {balance == 0 ? 30000 : balance, "USD"};
        inv.balance = {balance, "USD"};
        inv.due_date = due ? *due : ymd(2026, 1, 5);
        inv.source = {"qbo", "1", inv.id, "0", std::nullopt};
        return inv;
    }

    // Stores a row as the apply step does: its indexes (open invoices, ...) follow it.
    static void put(state::store& s, std::string_view type, std::string_view id, const json& j) {
        state::batch b(s);
        const auto before = state::get_entity(s, type, id);
        ASSERT_TRUE(before.ok());
        state::put_entity(b, type, id, j.dump());
        state::entity_index::update(b, type, id, before.value, j.dump());
        ASSERT_TRUE(s.write(b, true).ok);
    }

    run_result run(preview_options o) {
        std::ostringstream out;
        std::ostringstream err;
        const int rc = cmd_preview(config_.string(), o, out, err);
        return {rc, out.str(), err.str()};
    }

    static preview_options days(int n, bool as_json = false) {
        preview_options o;
        o.days = n;
        o.json = as_json;
        return o;
    }

    // Every file of the state dir, byte for byte.
    std::map<std::string, std::string> files() const {
        std::map<std::string, std::string> out;
        for (const auto& e : std::filesystem::recursive_directory_iterator(state_dir_)) {
            if (e.is_regular_file()) {
                out[e.path().lexically_relative(state_dir_).string()] =
                    testing::read_file(e.path());
            }
        }
        return out;
    }

    // Every row of every column family.
    static std::vector<std::string> rows(const state::store& s) {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < state::cf_count; ++i) {
            const auto family = static_cast<state::cf>(i);
            EXPECT_TRUE(s.for_each(family, "", [&](std::string_view k, std::string_view v) {
                             out.push_back(std::string(state::cf_name(family)) + "|" +
                                           std::string(k) + "|" + std::string(v));
                             return true;
                         }).ok);
        }
        return out;
    }

    testing::temp_dir dir_;
    std::filesystem::path config_ = dir_ / "billsync.toml";
    std::filesystem::path state_dir_ = dir_.path() / "data" / "state";
};

// The text output: day header -> its lines.
std::map<std::string, std::vector<std::string>> by_day(const std::string& text) {
    std::map<std::string, std::vector<std::string>> out;
    std::istringstream in(text);
    std::string line;
    std::string day;
    while (std::getline(in, line)) {
        if (line.size() == 14 && line[3] == ' ' && line[8] == '-') {  // "Mon 2026-01-12"
            day = line;
            out[day];
        } else if (!day.empty() && line.starts_with("    ")) {
            out[day].push_back(line);
        }
    }
    return out;
}

bool has_line(const std::vector<std::string>& lines, std::initializer_list<std::string> parts) {
    for (const auto& l : lines) {
        bool all = true;
        for (const auto& p : parts) {
            all = all && l.find(p) != std::string::npos;
        }
        if (all) {
            return true;
        }
    }
    return false;
}

TEST_F(preview_test, shows_the_standard_cadence_day_by_day_with_weekend_touches_on_monday) {
    const auto r = run(days(40));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    ASSERT_EQ(d.size(), 40u) << r.out;
    EXPECT_TRUE(d.contains("Mon 2026-01-05"));
    EXPECT_TRUE(d.contains("Fri 2026-02-13"));
    EXPECT_NE(r.out.find("stored invoice"), std::string::npos);

    // Invoice 1042, due Monday: touch 1 on day 1, touch 2 (email + SMS) on day 15, touch 3
    // (hold email + coordinator task) on day 30, all at 09:00 when the window opens.
    EXPECT_TRUE(has_line(d.at("Tue 2026-01-06"),
                         {"09:00",
                          "email",
                          "Acme Dental <ap@acme.example>",
                          "invoice 1042",
                          "touch 1 (standard)",
                          "balance $500.00"}))
        << r.out;
    EXPECT_TRUE(has_line(d.at("Tue 2026-01-20"), {"email", "invoice 1042", "touch 2"})) << r.out;
    EXPECT_TRUE(has_line(d.at("Tue 2026-01-20"), {"sms", "+14155550123", "invoice 1042"})) << r.out;
    EXPECT_TRUE(has_line(d.at("Wed 2026-02-04"), {"email", "invoice 1042", "touch 3"})) << r.out;
    EXPECT_TRUE(has_line(d.at("Wed 2026-02-04"), {"task", "invoice 1042"})) << r.out;

    // Invoice 1043, due Friday: its weekend touches go out on Monday.
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-12"),
                         {"09:00", "email", "invoice 1043", "touch 1", "balance $1,200.00"}))
        << r.out;
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-26"), {"sms", "invoice 1043"})) << r.out;
    EXPECT_TRUE(has_line(d.at("Mon 2026-02-09"), {"task", "invoice 1043"})) << r.out;
    for (const auto* weekend : {"Sat 2026-01-10", "Sun 2026-01-11", "Sat 2026-01-24"}) {
        ASSERT_EQ(d.at(weekend).size(), 1u) << weekend << "\n" << r.out;
        EXPECT_EQ(d.at(weekend)[0], "    (nothing)");
    }

    // Nothing for the paid invoice or the payment-plan client.
    EXPECT_EQ(r.out.find("invoice 1044"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("invoice 1045"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("Plan Partners"), std::string::npos) << r.out;

    // 3 touches for each of two invoices: 3 + 3 emails, 2 SMS, 2 tasks.
    EXPECT_NE(r.out.find("6 emails, 2 SMS, 2 tasks, 0 skipped"), std::string::npos) << r.out;
}

// Courtesy reminders show up on their days with their number, and the ones not sent with their
// cause.
TEST_F(preview_test, lists_courtesy_reminders_before_the_due_date_with_their_causes) {
    std::string text = config_text;
    const std::string after = "firm_phone = \"+1 212 555 0100\"\n";
    text.insert(text.find(after) + after.size(),
                "\n[followup.reminders.standard]\ndays_before = [2, 0]\n");
    testing::write_file(config_, text);
    const auto r = run(days(7));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    // 1042 is due Monday 01-05: its 2-days-before day was Saturday, moved to Monday 09:00 with
    // the due-date reminder, so only the latter goes out (no burst).
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-05"),
                         {"09:00", "email", "invoice 1042", "reminder 2", "is due on January 5"}))
        << r.out;
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-05"),
                         {"skip",
                          "invoice 1042",
                          "courtesy reminder 1 not sent: a later reminder "
                          "is due (no burst)"}))
        << r.out;
    // 1043 is due Friday 01-09: Wednesday and Friday.
    EXPECT_TRUE(has_line(d.at("Wed 2026-01-07"), {"09:00", "email", "invoice 1043", "reminder 1"}))
        << r.out;
    EXPECT_TRUE(has_line(d.at("Fri 2026-01-09"), {"09:00", "email", "invoice 1043", "reminder 2"}))
        << r.out;
    EXPECT_TRUE(has_line(d.at("Tue 2026-01-06"), {"email", "invoice 1042", "touch 1"})) << r.out;
    EXPECT_NE(r.out.find("4 emails, 0 SMS, 0 tasks, 1 skipped"), std::string::npos) << r.out;

    const auto j = json::parse(run(days(7, true)).out, nullptr, false);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["schedule"][2]["items"][0]["reminder"], 1);
    bool planned = false;
    for (const auto& line : j["decisions"]) {
        planned = planned || line.value("cause", "")
                                     .find(
                                         "courtesy reminder 1 (2 days before the "
                                         "due date) of invoice 1043") != std::string::npos;
    }
    EXPECT_TRUE(planned) << j["decisions"].dump(1);
}

TEST_F(preview_test, lists_a_payment_plans_reminder_and_missed_notice_with_their_causes) {
    std::string text = config_text;
    const std::string after = "firm_phone = \"+1 212 555 0100\"\n";
    text.insert(text.find(after) + after.size(),
                "\n[followup.payment_plans.\"c-2\"]\n"
                "installments = [{ due = \"2026-01-08\", amount = \"200.00\" }]\n");
    testing::write_file(config_, text);
    const auto r = run(days(7));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    // Reminded 3 days before 01-08: Monday 01-05, 09:00.
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-05"),
                         {"09:00",
                          "email",
                          "Plan Partners <ap@plan.example>",
                          "installment 1",
                          "$200.00 is due on January 8, 2026"}))
        << r.out;
    // Checked at 00:00 on 01-09: missed. The coordinator's task is opened then; the notice to
    // the client waits for the sending window.
    EXPECT_TRUE(
        has_line(d.at("Fri 2026-01-09"), {"00:00", "task", "Missed installment: Plan Partners"}))
        << r.out;
    EXPECT_TRUE(has_line(
        d.at("Fri 2026-01-09"),
        {"09:00", "email", "installment 1", "We have not received your installment of $200.00"}))
        << r.out;
    EXPECT_NE(r.out.find("3 emails, 0 SMS, 1 task, 0 skipped"), std::string::npos) << r.out;

    const auto j = json::parse(run(days(7, true)).out, nullptr, false);
    ASSERT_TRUE(j.is_object());
    bool missed = false;
    for (const auto& line : j["decisions"]) {
        missed = missed || (line.value("decision", "") == "missed" &&
                            line.value("cause", "")
                                    .find("installment 1 ($200.00 due 2026-01-08) "
                                          "missed: $0.00 of the $200.00") != std::string::npos);
    }
    EXPECT_TRUE(missed) << j["decisions"].dump(1);
}

TEST_F(preview_test, stops_at_the_last_day) {
    const auto r = run(days(7));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    ASSERT_EQ(d.size(), 7u) << r.out;
    EXPECT_TRUE(d.contains("Sun 2026-01-11"));
    EXPECT_NE(r.out.find("1 email, 0 SMS, 0 tasks, 0 skipped"), std::string::npos) << r.out;
}

TEST_F(preview_test, json_output_parses_and_matches) {
    const auto r = run(days(40, true));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto j = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j["days"], 40);
    EXPECT_EQ(j["time_zone"], "America/New_York");
    EXPECT_EQ(j["from"], "2026-01-05T13:00:00Z");
    EXPECT_EQ(j["summary"]["emails"], 6);
    EXPECT_EQ(j["summary"]["sms"], 2);
    EXPECT_EQ(j["summary"]["tasks"], 2);
    ASSERT_EQ(j["schedule"].size(), 40u);
    const auto& jan12 = j["schedule"][7];
    EXPECT_EQ(jan12["date"], "2026-01-12");
    EXPECT_EQ(jan12["weekday"], "Mon");
    ASSERT_EQ(jan12["items"].size(), 1u);
    const auto& it = jan12["items"][0];
    EXPECT_EQ(it["channel"], "email");
    EXPECT_EQ(it["invoice"], "inv-2");
    EXPECT_EQ(it["invoice_number"], "1043");
    EXPECT_EQ(it["touch"], 1);
    EXPECT_EQ(it["class"], "standard");
    EXPECT_EQ(it["to"], "ap@acme.example");
    EXPECT_EQ(it["connector"], "mail");
    EXPECT_EQ(it["balance"]["minor"], 120000);
    EXPECT_EQ(it["local_time"], "09:00");
    // Every decision is there, with its cause: the payment-plan invoice is excluded.
    bool excluded = false;
    for (const auto& d : j["decisions"]) {
        excluded = excluded ||
                   (d.value("invoice", "") == "inv-4" && d.value("decision", "") == "exclude" &&
                    d.value("cause", "").find("payment plan") != std::string::npos);
    }
    EXPECT_TRUE(excluded) << j["decisions"].dump(1);
}

// The preview leaves closed invoices out of its re-observation only when their follow-up never
// started or has finished: a paid invoice whose stored sequence is still active (its payment
// arrived, the sequence was not told yet) is observed, and its sequence ends in the preview.
TEST_F(preview_test, a_paid_invoice_with_a_live_sequence_is_observed_again) {
    {
        auto opened = state::store::open(state_dir_);
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        workflows::followup::sequence_state st;
        st.invoice_id = "inv-3";
        st.seen = true;
        st.entered = true;
        st.current = workflows::followup::phase::active;
        st.next_touch = 2;
        st.last_touch = 1;
        st.balance = 30000;
        st.due_date = st.anchor = date::year(2025) / date::month(12) / date::day(20);
        put(*opened.value,
            "followup",
            "inv-3",
            json::parse(workflows::followup::encode(st), nullptr, false));
    }
    const auto r = run(days(3, true));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto j = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    bool ended = false;
    for (const auto& d : j["decisions"]) {
        ended = ended || d.value("invoice", "") == "inv-3";
    }
    EXPECT_TRUE(ended) << j["decisions"].dump(1);
}

TEST_F(preview_test, a_channel_that_cannot_be_used_is_shown_as_skipped) {
    {
        auto opened = state::store::open(state_dir_);
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        mappings::client quiet;
        quiet.id = "c-3";
        quiet.display_name = "Quiet Books";
        quiet.contact.billing_email = "ap@quiet.example";
        quiet.contact.mobile = "+14155550199";  // no SMS consent
        put(*opened.value, "client", quiet.id, mappings::to_json(quiet));
        put(*opened.value,
            "invoice",
            "inv-5",
            mappings::to_json(invoice("inv-5", "1046", "c-3", 9900, {})));
        // First seen 21 days overdue: touch 2 goes out, touch 1 is skipped (no burst).
        put(*opened.value,
            "invoice",
            "inv-6",
            mappings::to_json(invoice("inv-6", "1047", "c-3", 4400, ymd(2025, 12, 15))));
    }
    const auto r = run(days(16));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    const auto& jan20 = d.at("Tue 2026-01-20");
    EXPECT_TRUE(has_line(jan20, {"email", "Quiet Books <ap@quiet.example>", "invoice 1046"}))
        << r.out;
    EXPECT_FALSE(has_line(jan20, {"09:00  sms", "invoice 1046"})) << r.out;
    EXPECT_TRUE(has_line(jan20, {"--", "skip", "invoice 1046: touch 2 not sent by sms"})) << r.out;
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-05"), {"--", "skip", "invoice 1047: touch 1 not sent"}))
        << r.out;
    EXPECT_TRUE(has_line(d.at("Mon 2026-01-05"), {"09:00", "email", "invoice 1047", "touch 2"}))
        << r.out;
    EXPECT_NE(r.out.find(", 3 skipped"), std::string::npos) << r.out;
}

TEST_F(preview_test, from_starts_elsewhere) {
    auto o = days(3);
    o.from = "2026-01-19T12:00:00Z";  // Monday 07:00 in New York
    const auto r = run(o);
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    ASSERT_TRUE(d.contains("Tue 2026-01-20")) << r.out;
    // Touch 1 of both invoices is overdue by then: it goes out at once; touch 2 of 1042 is due
    // on the 20th.
    EXPECT_TRUE(has_line(d.at("Tue 2026-01-20"), {"sms", "invoice 1042"})) << r.out;
}

TEST_F(preview_test, starts_at_the_state_simulated_time_not_the_configured_start) {
    // A sandbox that has run for two weeks: its state is at Monday 2026-01-19, 07:00 New York.
    {
        auto opened = state::store::open(state_dir_);
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        util::instant t{};
        ASSERT_TRUE(util::parse_rfc3339("2026-01-19T12:00:00Z", t));
        state::batch b(*opened.value);
        state::put_simulated_time(b, t);
        ASSERT_TRUE(opened.value->write(b, true).ok);
    }
    const auto r = run(days(3));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    const auto d = by_day(r.out);
    ASSERT_EQ(d.size(), 3u) << r.out;
    EXPECT_TRUE(d.contains("Mon 2026-01-19")) << r.out;
    EXPECT_FALSE(d.contains("Mon 2026-01-05")) << r.out;
    EXPECT_TRUE(has_line(d.at("Tue 2026-01-20"), {"sms", "invoice 1042"})) << r.out;
}

TEST_F(preview_test, the_real_state_is_left_byte_for_byte_unchanged) {
    const auto files_before = files();
    ASSERT_FALSE(files_before.empty());
    std::vector<std::string> rows_before;
    {
        state::open_options ro;
        ro.read_only = true;
        auto s = state::store::open(state_dir_, ro);
        ASSERT_TRUE(s.ok()) << s.st.message;
        rows_before = rows(*s.value);
    }
    ASSERT_EQ(run(days(40)).rc, exit_ok);
    ASSERT_EQ(run(days(10, true)).rc, exit_ok);
    EXPECT_EQ(files(), files_before);
    state::open_options ro;
    ro.read_only = true;
    auto s = state::store::open(state_dir_, ro);
    ASSERT_TRUE(s.ok()) << s.st.message;
    EXPECT_EQ(rows(*s.value), rows_before);
    EXPECT_FALSE(state::get_entity(*s.value, "followup", "inv-1").value);
}

TEST_F(preview_test, runs_next_to_a_daemon_holding_the_data_dir) {
    auto held = state::store::open(state_dir_);  // as the running daemon does
    ASSERT_TRUE(held.ok()) << held.st.message;
    const auto before = rows(*held.value);
    const auto r = run(days(40));
    ASSERT_EQ(r.rc, exit_ok) << r.err;
    EXPECT_NE(r.out.find("6 emails, 2 SMS, 2 tasks"), std::string::npos) << r.out;
    EXPECT_EQ(rows(*held.value), before);
}

TEST_F(preview_test, leaves_no_copy_behind) {
    // A temp dir of this test's own: other previews running in parallel cannot move the count.
    const auto tmp = dir_ / "tmp";
    std::filesystem::create_directories(tmp);
    ::setenv("TMPDIR", tmp.c_str(), 1);
    auto count = [] {
        std::size_t n = 0;
        for (const auto& e :
             std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
            n += e.path().filename().string().starts_with("billsync-preview-") ? 1u : 0u;
        }
        return n;
    };
    const auto before = count();
    ASSERT_EQ(run(days(5)).rc, exit_ok);
    EXPECT_EQ(count(), before);
    ::unsetenv("TMPDIR");
}

TEST_F(preview_test, bad_arguments_and_configuration) {
    EXPECT_EQ(run(days(0)).rc, exit_usage);
    EXPECT_EQ(run(days(367)).rc, exit_usage);
    EXPECT_EQ(run(days(-3)).rc, exit_usage);
    auto o = days(5);
    o.from = "next tuesday";
    EXPECT_EQ(run(o).rc, exit_usage);

    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(cmd_preview((dir_ / "missing.toml").string(), 5, out, err), exit_config);

    testing::write_file(dir_ / "nofollowup.toml",
                        "[daemon]\ndata_dir = \"data\"\ntime_zone = \"America/New_York\"\n");
    EXPECT_EQ(cmd_preview((dir_ / "nofollowup.toml").string(), 5, out, err), exit_config);
    EXPECT_NE(err.str().find("follow-up workflow is off"), std::string::npos) << err.str();

    testing::write_file(
        dir_ / "nodata.toml",
        std::string(config_text)
            .replace(std::string(config_text).find("\"data\""), 6, "\"elsewhere\""));
    std::ostringstream err2;
    EXPECT_EQ(cmd_preview((dir_ / "nodata.toml").string(), 5, out, err2), exit_unavailable);
    EXPECT_FALSE(std::filesystem::exists(dir_ / "elsewhere" / "state"));
}

}  // namespace
}  // namespace billsync::daemon
