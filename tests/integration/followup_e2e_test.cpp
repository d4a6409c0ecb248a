// The three-touch follow-up end to end: the real billsync binary on a simulated clock, against the
// QBO, SendGrid and Twilio simulators. Each test builds a small firm in the QBO simulator, lets
// billsync sync it, moves business time and checks what the clients received, exactly.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "http/client.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/twilio_simulator.hpp"
#include "state/store.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/crypto.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using testing::eventually;
using testing::parse_time;
using namespace std::chrono_literals;

constexpr const char* realm = "9130350000000001";
constexpr const char* verifier = "followup-verifier";
constexpr const char* firm_number = "+15005550006";
// Monday 2026-01-05, 08:00 in New York (before the sending window opens).
constexpr const char* start_time = "2026-01-05T13:00:00Z";

class followup_e2e : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::qbo_sim_options qo;
        qo.realms = {realm};
        qo.verifier_token = verifier;
        qo.now = [this] { return now(); };
        qbo_ = std::make_unique<simulators::qbo_simulator>(qo);
        mail_ = std::make_unique<simulators::sendgrid_simulator>();
        simulators::twilio_options to;
        to.numbers = {firm_number};
        to.now = [this] { return now(); };
        sms_ = std::make_unique<simulators::twilio_simulator>(to);
        qbo_->add_routes(qbo_server_.routes());
        qbo_->configure(qbo_server_);
        mail_->add_routes(mail_server_.routes());
        sms_->add_routes(sms_server_.routes());
        sms_->configure(sms_server_);
        ASSERT_EQ(qbo_server_.start(), "");
        ASSERT_EQ(mail_server_.start(), "");
        ASSERT_EQ(sms_server_.start(), "");
    }

    util::instant now() {
        std::lock_guard lock(clock_mutex_);
        return now_;
    }

    std::string config() {
        return "[daemon]\n"
               "data_dir = \"data\"\n"
               "time_zone = \"America/New_York\"\n"
               "log_level = \"info\"\n"
               "[daemon.webhook_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[daemon.status_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[daemon.clock]\n"
               "mode = \"simulated\"\n"
               "start = \"" +
               std::string(start_time) +
               "\"\n"
               "[connectors.qbo]\n"
               "kind = \"qbo\"\n"
               "base_url = \"" +
               qbo_server_.base_url() +
               "\"\n"
               "token_url = \"" +
               qbo_server_.base_url() +
               "/oauth2/token\"\n"
               "client_id = \"sim-client-id\"\n"
               "client_secret = \"sim-client-secret\"\n"
               "webhook_verifier_token = \"" +
               verifier +
               "\"\n"
               "realm_id = \"" +
               realm +
               "\"\n"
               "poll_interval_s = 3600\n"
               "[connectors.sendgrid]\n"
               "kind = \"sendgrid\"\n"
               "base_url = \"" +
               mail_server_.base_url() +
               "\"\n"
               "api_key = \"SG.simulated-key\"\n"
               "from_email = \"billing@smithlee.example\"\n"
               "event_webhook_public_key = \"" +
               mail_->public_key_base64() +
               "\"\n"
               "inbound_secret = \"inbound-secret\"\n"
               "[connectors.twilio]\n"
               "kind = \"twilio\"\n"
               "base_url = \"" +
               sms_server_.base_url() +
               "\"\n"
               "account_sid = \"AC00000000000000000000000000000001\"\n"
               "auth_token = \"sim-twilio-auth-token\"\n"
               "from = \"" +
               firm_number +
               "\"\n"
               "public_url = \"https://billsync.smithlee.example\"\n" +
               karbon_section() +
               "[followup]\n"
               "firm_name = \"Smith & Lee CPA\"\n"
               "firm_phone = \"+1 555 0100\"\n"
               "reply_to = \"billing@smithlee.example\"\n" +
               extra_followup_;
    }

    // The practice system (Karbon), when a test adds it with with_karbon().
    void with_karbon() {
        karbon_ = std::make_unique<simulators::karbon_simulator>(karbon_options_);
        karbon_->add_routes(karbon_server_.routes());
        karbon_->configure(karbon_server_);
        ASSERT_EQ(karbon_server_.start(), "");
    }

    std::string karbon_section() const {
        if (!karbon_) {
            return {};
        }
        return "[connectors.practice]\n"
               "kind = \"karbon\"\n"
               "base_url = \"" +
               karbon_server_.base_url() +
               "\"\n"
               "bearer_token = \"" +
               karbon_options_.bearer_token +
               "\"\n"
               "access_key = \"" +
               karbon_options_.access_key +
               "\"\n"
               "webhook_signing_key = \"karbon-signing-key-0123456789\"\n"
               "public_url = \"https://billsync.smithlee.example\"\n"
               "task_assignee_email = \"ann@smithlee.example\"\n";
    }

    // Seeds the QBO grant, starts the daemon and waits until the first sync is done.
    void start() {
        ASSERT_EQ(simulators::seed_qbo_grant(dir_.path() / "data", *qbo_, realm, now()), "");
        qbo_->take_deliveries();
        daemon_ = std::make_unique<testing::billsync_daemon>(dir_.path(), config());
        restart();
    }

    void restart() {
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
        sms_->set_callback_base("http://127.0.0.1:" + std::to_string(daemon_->webhook_port()));
        ASSERT_TRUE(eventually([&] {
            auto [rc, out] = daemon_->cli({"inspect", "cursor/qbo/sync"});
            return rc == 0 && out.find("\"cdc\"") != std::string::npos;
        })) << daemon_->output();
    }

    std::string hook(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(daemon_->webhook_port()) + "/webhooks/" + path;
    }

    // Business time moves for everyone; the daemon runs everything that falls due, in order.
    void advance_to(std::string_view when) {
        const auto target = parse_time(when);
        const auto by = std::chrono::duration_cast<std::chrono::seconds>(target - now());
        ASSERT_GE(by.count(), 0);
        {
            std::lock_guard lock(clock_mutex_);
            now_ = target;
        }
        ASSERT_NE(daemon_->advance(by.count()), "") << daemon_->output();
        sms_->flush_status_callbacks();
    }

    // Pushes the simulator's pending webhooks and waits until the daemon has mapped them.
    void sync_qbo() {
        for (const auto s : qbo_->deliver(hook("qbo"))) {
            ASSERT_EQ(s, 200u);
        }
        ASSERT_TRUE(eventually([&] {
            const auto s = json::parse(daemon_->status_get("/status").body, nullptr, false);
            return s.is_object() && s["queues"]["inbox"]["count"] == 0;
        })) << daemon_->output();
        ASSERT_NE(daemon_->advance(0), "");
    }

    std::string customer(const std::string& name,
                         const std::string& mobile = {},
                         const std::string& notes = {}) {
        json f{{"DisplayName", name}, {"PrimaryEmailAddr", {{"Address", email_of(name)}}}};
        if (!mobile.empty()) {
            f["Mobile"] = {{"FreeFormNumber", mobile}};
        }
        if (!notes.empty()) {
            f["Notes"] = notes;
        }
        return qbo_->add_customer(realm, f).value("Id", "");
    }

    static std::string email_of(const std::string& name) {
        std::string slug;
        for (const char c : name) {
            if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
                slug += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
        }
        return "ap@" + slug + ".example";
    }

    json invoice(const std::string& customer_id,
                 const std::string& amount,
                 const std::string& due) {
        return qbo_->add_invoice(realm,
                                 json{{"CustomerRef", {{"value", customer_id}}},
                                      {"DueDate", due},
                                      {"DocNumber", std::to_string(next_number_++)},
                                      {"Line",
                                       json::array({{{"Amount", json::parse(amount)},
                                                     {"DetailType", "SalesItemLineDetail"},
                                                     {"SalesItemLineDetail",
                                                      {{"ItemRef", {{"value", "1"}}},
                                                       {"Qty", 1},
                                                       {"UnitPrice", json::parse(amount)}}}}})}});
    }

    void pay(const std::string& customer_id,
             const std::string& invoice_id,
             const std::string& amount) {
        qbo_->add_payment(
            realm,
            json{{"CustomerRef", {{"value", customer_id}}},
                 {"TotalAmt", json::parse(amount)},
                 {"Line",
                  json::array(
                      {{{"Amount", json::parse(amount)},
                        {"LinkedTxn",
                         json::array({{{"TxnId", invoice_id}, {"TxnType", "Invoice"}}})}}})}});
    }

    std::vector<simulators::sendgrid_simulator::message> emails_to(const std::string& to) {
        std::vector<simulators::sendgrid_simulator::message> out;
        for (auto& m : mail_->messages()) {
            if (m.to == to) {
                out.push_back(std::move(m));
            }
        }
        return out;
    }

    std::vector<json> texts_to(const std::string& to) {
        std::vector<json> out;
        for (auto& m : sms_->messages()) {
            if (m.value("to", "") == to && m.value("direction", "") == "outbound-api") {
                out.push_back(std::move(m));
            }
        }
        return out;
    }

    // A client texts the firm's number; Twilio signs the public URL.
    void text_in(const std::string& from, const std::string& body) {
        for (const auto s :
             sms_->send_inbound(hook("twilio/sms"),
                                from,
                                firm_number,
                                body,
                                "https://billsync.smithlee.example/webhooks/twilio/sms")) {
            ASSERT_EQ(s, 200u);
        }
    }

    json tasks() { return json::parse(daemon_->status_get("/tasks").body, nullptr, false); }

    testing::temp_dir dir_;
    std::mutex clock_mutex_;
    util::instant now_ = parse_time(start_time);
    std::string extra_followup_;
    int next_number_ = 1001;
    std::unique_ptr<simulators::qbo_simulator> qbo_;
    std::unique_ptr<simulators::sendgrid_simulator> mail_;
    std::unique_ptr<simulators::twilio_simulator> sms_;
    simulators::karbon_options karbon_options_;
    std::unique_ptr<simulators::karbon_simulator> karbon_;
    simulators::sim_server karbon_server_;
    simulators::sim_server qbo_server_;
    simulators::sim_server mail_server_;
    simulators::sim_server sms_server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(followup_e2e, standard_cadence_day_1_email_day_15_email_and_sms_day_30_hold_and_task) {
    const auto c = customer("Acme Dental", "+14155550100", "#sms-consent");
    invoice(c, "500.00", "2026-01-05");
    start();
    const auto to = email_of("Acme Dental");

    advance_to("2026-01-06T13:59:00Z");  // day 1, 08:59 in New York: window still closed
    EXPECT_TRUE(emails_to(to).empty());
    advance_to("2026-01-06T15:00:00Z");  // 10:00: touch 1 went out at 09:00
    ASSERT_EQ(emails_to(to).size(), 1u);
    EXPECT_TRUE(texts_to("+14155550100").empty());

    advance_to("2026-01-20T18:00:00Z");  // day 15
    EXPECT_EQ(emails_to(to).size(), 2u);
    ASSERT_EQ(texts_to("+14155550100").size(), 1u);
    EXPECT_NE(texts_to("+14155550100")[0].value("body", "").find("1001"), std::string::npos);

    advance_to("2026-02-04T18:00:00Z");  // day 30
    EXPECT_EQ(emails_to(to).size(), 3u);
    EXPECT_EQ(texts_to("+14155550100").size(), 1u);
    const auto t = tasks();
    ASSERT_EQ(t.size(), 1u);
    EXPECT_NE(t[0].value("title", "").find("1001"), std::string::npos);

    advance_to("2026-03-10T18:00:00Z");  // nothing more
    EXPECT_EQ(emails_to(to).size(), 3u);
    EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(followup_e2e, retainer_clients_get_the_softer_cadence) {
    const auto c = customer("Birch Law", "+14155550101", "#sms-consent #retainer");
    invoice(c, "900.00", "2026-01-05");
    start();
    const auto to = email_of("Birch Law");
    advance_to("2026-01-09T18:00:00Z");  // day 4
    EXPECT_TRUE(emails_to(to).empty());
    advance_to("2026-01-12T18:00:00Z");  // day 5 fell on Saturday: sent Monday
    EXPECT_EQ(emails_to(to).size(), 1u);
    advance_to("2026-02-10T18:00:00Z");  // day 35: a coordinator task, no hold notice
    EXPECT_EQ(emails_to(to).size(), 2u);
    EXPECT_EQ(texts_to("+14155550101").size(), 1u);
    EXPECT_EQ(tasks().size(), 1u);
}

TEST_F(followup_e2e, payment_in_full_before_touch_two_cancels_the_rest) {
    const auto c = customer("Cedar Farms", "+14155550102", "#sms-consent");
    const auto inv = invoice(c, "250.00", "2026-01-05")["Id"].get<std::string>();
    start();
    advance_to("2026-01-06T18:00:00Z");
    ASSERT_EQ(emails_to(email_of("Cedar Farms")).size(), 1u);
    pay(c, inv, "250.00");
    sync_qbo();
    advance_to("2026-02-20T18:00:00Z");
    EXPECT_EQ(emails_to(email_of("Cedar Farms")).size(), 1u);
    EXPECT_TRUE(texts_to("+14155550102").empty());
    EXPECT_TRUE(tasks().empty());
}

TEST_F(followup_e2e, a_partial_payment_is_acknowledged_and_restarts_the_sequence) {
    const auto c = customer("Dogwood Bakery");
    const auto inv = invoice(c, "500.00", "2026-01-05")["Id"].get<std::string>();
    start();
    const auto to = email_of("Dogwood Bakery");
    advance_to("2026-01-06T18:00:00Z");
    ASSERT_EQ(emails_to(to).size(), 1u);
    advance_to("2026-01-08T15:00:00Z");
    pay(c, inv, "200.00");
    sync_qbo();
    advance_to("2026-01-08T18:00:00Z");
    auto list = emails_to(to);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_NE(list[1].body.find("300.00"), std::string::npos) << list[1].body;
    advance_to("2026-01-09T18:00:00Z");  // touch 1 again, for the remaining balance
    list = emails_to(to);
    ASSERT_EQ(list.size(), 3u);
    EXPECT_NE(list[2].body.find("300.00"), std::string::npos) << list[2].body;
}

TEST_F(followup_e2e, a_dispute_reply_pauses_until_an_operator_resumes) {
    const auto c = customer("Elm Street Clinic", "+14155550104", "#sms-consent");
    invoice(c, "700.00", "2026-01-05");
    start();
    advance_to("2026-01-06T18:00:00Z");
    ASSERT_EQ(emails_to(email_of("Elm Street Clinic")).size(), 1u);
    text_in("+14155550104", "We dispute this invoice");
    ASSERT_TRUE(eventually([&] { return tasks().size() == 1; })) << daemon_->output();
    EXPECT_NE(tasks()[0].value("title", "").find("Billing dispute"), std::string::npos);
    advance_to("2026-01-27T18:00:00Z");  // touch 2's day passed while paused
    EXPECT_EQ(emails_to(email_of("Elm Street Clinic")).size(), 1u);
    auto [rc, out] = daemon_->cli({"followup", "resume", "1001"});
    ASSERT_EQ(rc, 0) << out;
    advance_to("2026-01-28T18:00:00Z");
    // The skipped touch is not sent late; the next one comes on its own day.
    EXPECT_EQ(emails_to(email_of("Elm Street Clinic")).size(), 1u);
    advance_to("2026-02-05T18:00:00Z");
    EXPECT_EQ(emails_to(email_of("Elm Street Clinic")).size(), 2u);
}

// Courtesy reminders 3 days before and on the due date (Friday 01-09): Tuesday and Friday at
// 09:00; the client tagged #autopay gets none, and both get touch 1 after the due date.
TEST_F(followup_e2e, courtesy_reminders_before_and_on_the_due_date_skip_autopay_clients) {
    extra_followup_ = "[followup.reminders.standard]\ndays_before = [3, 0]\n";
    const auto plain = customer("Dover Inc");
    const auto autopay = customer("Elm Co", {}, "#autopay");
    invoice(plain, "400.00", "2026-01-09");
    invoice(autopay, "400.00", "2026-01-09");
    start();
    advance_to("2026-01-06T13:59:00Z");  // Tuesday 08:59: not yet
    EXPECT_TRUE(emails_to(email_of("Dover Inc")).empty());
    advance_to("2026-01-06T15:00:00Z");
    ASSERT_EQ(emails_to(email_of("Dover Inc")).size(), 1u);
    EXPECT_NE(emails_to(email_of("Dover Inc"))[0].subject.find("is due on January 9, 2026"),
              std::string::npos);
    advance_to("2026-01-09T15:00:00Z");
    EXPECT_EQ(emails_to(email_of("Dover Inc")).size(), 2u);
    EXPECT_TRUE(emails_to(email_of("Elm Co")).empty());
    advance_to("2026-01-12T15:00:00Z");  // day 1 was Saturday: touch 1 on Monday
    EXPECT_EQ(emails_to(email_of("Dover Inc")).size(), 3u);
    EXPECT_EQ(emails_to(email_of("Elm Co")).size(), 1u);
    EXPECT_EQ(daemon_->stop(), 0);
}

// Quiet days: 01-06 is a firm holiday, so touch 1 (day 1) goes out on Wednesday 01-07.
TEST_F(followup_e2e, a_holiday_moves_touch_one_to_the_next_business_day) {
    extra_followup_ = "[followup.window]\nholidays = [\"2026-01-06\"]\n";
    const auto c = customer("Gum Tree Dental");
    invoice(c, "300.00", "2026-01-05");
    start();
    advance_to("2026-01-06T22:00:00Z");
    EXPECT_TRUE(emails_to(email_of("Gum Tree Dental")).empty());
    advance_to("2026-01-07T14:30:00Z");  // 09:30 on Wednesday
    EXPECT_EQ(emails_to(email_of("Gum Tree Dental")).size(), 1u);
    EXPECT_EQ(daemon_->stop(), 0);
}

// The dispute reaches a person: the client's text arrives verbatim (no template expansion) in
// the coordinator's inbox and on the task.
TEST_F(followup_e2e, a_dispute_is_forwarded_to_the_coordinator_with_the_clients_text_intact) {
    extra_followup_ = "coordinator_email = \"ann@smithlee.example\"\n";
    const auto c = customer("Hazel Partners", "+14155550109", "#sms-consent");
    invoice(c, "650.00", "2026-01-05");
    start();
    advance_to("2026-01-06T18:00:00Z");
    ASSERT_EQ(emails_to(email_of("Hazel Partners")).size(), 1u);
    const std::string words = "We dispute {invoice_number}: {balance} is {{wrong}}";
    text_in("+14155550109", words);
    ASSERT_TRUE(eventually([&] { return tasks().size() == 1; })) << daemon_->output();
    EXPECT_EQ(tasks()[0]["reply"].value("text", ""), words);
    EXPECT_EQ(tasks()[0]["reply"].value("from", ""), "+14155550109");
    advance_to("2026-01-06T19:00:00Z");
    const auto forwarded = emails_to("ann@smithlee.example");
    ASSERT_EQ(forwarded.size(), 1u) << daemon_->output();
    const auto body = json::parse(forwarded[0].body, nullptr, false).dump();
    EXPECT_NE(body.find("We dispute {invoice_number}: {balance} is {{wrong}}"), std::string::npos)
        << body;
    EXPECT_NE(body.find("Channel: sms"), std::string::npos) << body;
    EXPECT_NE(body.find("Invoice: 1001"), std::string::npos) << body;
    auto [rc, out] = daemon_->cli({"followup", "stop", "1001"});
    EXPECT_EQ(rc, 0) << out;
}

// A payment plan from the TOML table: the client leaves the overdue sequence; the installment
// is reminded, missed (notice + coordinator task), then paid late in QBO.
TEST_F(followup_e2e, an_installment_is_reminded_missed_and_then_paid) {
    const auto c = customer("Ivy Lane Studio");
    const auto inv = invoice(c, "500.00", "2026-01-05")["Id"].get<std::string>();
    extra_followup_ = std::string("[followup.payment_plans.\"qbo:") + realm + ":client:" + c +
                      "\"]\ninstallments = [{ due = \"2026-01-20\", amount = \"200.00\" }]\n";
    start();
    const auto to = email_of("Ivy Lane Studio");
    advance_to("2026-01-16T18:00:00Z");  // no overdue touches: the client is on a plan
    EXPECT_TRUE(emails_to(to).empty());
    advance_to("2026-01-19T15:00:00Z");  // 3 days before 01-20 was Saturday: Monday 09:00
    ASSERT_EQ(emails_to(to).size(), 1u) << daemon_->output();
    EXPECT_NE(emails_to(to)[0].subject.find("$200.00 is due on January 20, 2026"),
              std::string::npos);
    advance_to("2026-01-21T15:00:00Z");  // checked at 00:00: missed
    ASSERT_EQ(emails_to(to).size(), 2u);
    EXPECT_NE(emails_to(to)[1].subject.find("not received"), std::string::npos);
    ASSERT_EQ(tasks().size(), 1u);
    EXPECT_NE(tasks()[0].value("title", "").find("Missed installment"), std::string::npos);
    advance_to("2026-01-23T15:00:00Z");
    pay(c, inv, "200.00");
    sync_qbo();
    advance_to("2026-01-23T18:00:00Z");
    auto [rc, out] = daemon_->cli({"followup", "plans", "--json"});
    ASSERT_EQ(rc, 0) << out;
    const auto plans = json::parse(out, nullptr, false);
    ASSERT_TRUE(plans.is_array()) << out;
    ASSERT_EQ(plans.size(), 1u);
    EXPECT_TRUE(plans[0]["missed"].empty()) << out;
    EXPECT_EQ(plans[0]["installments"][0]["status"], "checked") << out;
    EXPECT_EQ(emails_to(to).size(), 2u);
    EXPECT_EQ(daemon_->stop(), 0);
}

// The installment is paid in QBO just before its check and no webhook tells billsync: the check
// re-reads the client's open invoices from the ledger first, so no missed notice goes out.
TEST_F(followup_e2e, an_installment_paid_unannounced_is_seen_before_its_check) {
    const auto c = customer("Juniper Loft");
    const auto inv = invoice(c, "500.00", "2026-01-05")["Id"].get<std::string>();
    extra_followup_ = std::string("[followup.payment_plans.\"qbo:") + realm + ":client:" + c +
                      "\"]\ninstallments = [{ due = \"2026-01-20\", amount = \"200.00\" }]\n";
    start();
    const auto to = email_of("Juniper Loft");
    advance_to("2026-01-19T15:00:00Z");
    ASSERT_EQ(emails_to(to).size(), 1u) << daemon_->output();  // the reminder
    advance_to("2026-01-21T04:59:00Z");  // the check is at 00:00 New York (05:00Z)
    pay(c, inv, "200.00");               // in QBO only: no webhook is delivered
    advance_to("2026-01-21T15:00:00Z");
    EXPECT_EQ(emails_to(to).size(), 1u) << daemon_->output();  // no "not received" notice
    EXPECT_TRUE(tasks().empty());
    auto [rc, out] = daemon_->cli({"followup", "plans", "--json"});
    ASSERT_EQ(rc, 0) << out;
    const auto plans = json::parse(out, nullptr, false);
    ASSERT_TRUE(plans.is_array() && plans.size() == 1u) << out;
    EXPECT_TRUE(plans[0]["missed"].empty()) << out;
    EXPECT_EQ(plans[0]["installments"][0]["status"], "checked") << out;
    EXPECT_EQ(daemon_->stop(), 0);
}

// [followup] task_connector: the dispute task also becomes a work item in Karbon, for the Karbon
// organization the identity map links to the QBO customer (same billing email).
TEST_F(followup_e2e, a_dispute_task_becomes_a_karbon_work_item_for_the_linked_organization) {
    with_karbon();
    extra_followup_ = "task_connector = \"practice\"\n";
    const auto c = customer("Ivy Dental", "+14155550119", "#sms-consent");
    invoice(c, "420.00", "2026-01-05");
    const auto org = karbon_->add_organization(
        json{{"FullName", "Ivy Dental"}, {"EmailAddress", email_of("Ivy Dental")}});
    const auto org_key = org.value("OrganizationKey", "");
    start();
    ASSERT_TRUE(eventually([&] {
        auto [rc, out] = daemon_->cli({"identities", "list", "--json"});
        return rc == 0 && out.find(org_key) != std::string::npos;
    })) << daemon_->output();
    advance_to("2026-01-06T18:00:00Z");
    ASSERT_EQ(emails_to(email_of("Ivy Dental")).size(), 1u) << daemon_->output();
    const std::string words = "We dispute {invoice_number}: the audit fee was never agreed";
    text_in("+14155550119", words);
    ASSERT_TRUE(eventually([&] { return tasks().size() == 1; })) << daemon_->output();
    ASSERT_TRUE(eventually([&] { return karbon_->work_item_count() == 1; })) << daemon_->output();
    const auto item = karbon_->work_items().front();
    EXPECT_EQ(item.value("ClientKey", ""), org_key);
    EXPECT_EQ(item.value("ClientType", ""), "Organization");
    EXPECT_EQ(item.value("AssigneeEmailAddress", ""), "ann@smithlee.example");
    EXPECT_NE(item.value("Title", "").find("[bs:"), std::string::npos) << item.dump();
    EXPECT_NE(item.value("Description", "").find(words), std::string::npos) << item.dump();
    ASSERT_TRUE(eventually([&] {
        return tasks()[0].value("external", json::object()).value("state", "") == "queued";
    }));
    EXPECT_EQ(daemon_->stop(), 0);
    EXPECT_EQ(karbon_->creates_received(), 1u);
}

TEST_F(followup_e2e, payment_plan_clients_never_enter_the_sequence) {
    const auto c = customer("Fir Realty", "+14155550105", "#sms-consent #payment-plan");
    invoice(c, "1200.00", "2026-01-05");
    start();
    advance_to("2026-02-20T18:00:00Z");
    EXPECT_TRUE(emails_to(email_of("Fir Realty")).empty());
    EXPECT_TRUE(texts_to("+14155550105").empty());
}

TEST_F(followup_e2e, stop_opts_the_number_out_and_touch_two_goes_by_email_only) {
    const auto c = customer("Granite Builders", "+14155550106", "#sms-consent");
    invoice(c, "300.00", "2026-01-05");
    start();
    text_in("+14155550106", "STOP");
    ASSERT_NE(daemon_->advance(0), "");
    advance_to("2026-01-20T18:00:00Z");
    EXPECT_EQ(emails_to(email_of("Granite Builders")).size(), 2u);
    EXPECT_TRUE(texts_to("+14155550106").empty());
}

TEST_F(followup_e2e, an_invoice_first_seen_overdue_sends_only_its_stage) {
    const auto c = customer("Harbor Marine", "+14155550107", "#sms-consent");
    invoice(c, "640.00", "2025-12-19");  // 17 days overdue at the start: stage 2
    start();
    advance_to("2026-01-05T18:00:00Z");
    EXPECT_EQ(emails_to(email_of("Harbor Marine")).size(), 1u);
    EXPECT_EQ(texts_to("+14155550107").size(), 1u);
}

TEST_F(followup_e2e, a_crash_between_send_and_record_ends_with_one_sms_and_one_email) {
    const auto c = customer("Iris Florist", "+14155550108", "#sms-consent");
    invoice(c, "410.00", "2025-12-19");  // stage 2: email and SMS at the window's opening
    start();
    // Both vendors take the request at once and answer late: billsync dies in between.
    mail_server_.set_response_delay(3s);
    sms_server_.set_response_delay(3s);
    auto advancing = std::async(std::launch::async, [&] { daemon_->advance(5 * 3600); });
    // Both requests must have reached their vendor before the kill: an email whose request never
    // left billsync is an unknown outcome too, and is rightly never resent.
    ASSERT_TRUE(eventually([&] {
        return !emails_to(email_of("Iris Florist")).empty() && !texts_to("+14155550108").empty();
    }));
    daemon_->kill();
    advancing.wait();
    mail_server_.set_response_delay(0ms);
    sms_server_.set_response_delay(0ms);
    restart();
    advance_to("2026-01-05T20:00:00Z");
    advance_to("2026-01-06T20:00:00Z");
    EXPECT_EQ(emails_to(email_of("Iris Florist")).size(), 1u);
    EXPECT_EQ(texts_to("+14155550108").size(), 1u);
}

TEST_F(followup_e2e, a_stalled_ledger_holds_up_neither_a_due_touch_nor_an_inbound_stop) {
    const auto c = customer("Kestrel Dental", "+14155550110", "#sms-consent");
    invoice(c, "520.00", "2025-12-19");  // stage 2 at the window's opening: email and SMS
    customer("Linden Cafe", "+14155550111", "#sms-consent");
    start();
    // From now on QBO takes every request (the touch's re-read, the hourly poll) and answers a
    // minute later. Its lane waits; the email and SMS lanes do not.
    qbo_server_.set_response_delay(60s);
    auto advancing = std::async(std::launch::async, [&] { return daemon_->advance(5 * 3600); });
    ASSERT_TRUE(eventually(
        [&] {
            return emails_to(email_of("Kestrel Dental")).size() == 1 &&
                   texts_to("+14155550110").size() == 1;
        },
        40s))
        << daemon_->output();
    text_in("+14155550111", "STOP");
    ASSERT_TRUE(eventually([&] {
        return daemon_->cli({"inspect", "entity/suppression/sms:+14155550111"}).first == 0;
    })) << daemon_->output();
    // All of it while QBO had not answered: the advance itself still waits for those calls.
    EXPECT_EQ(advancing.wait_for(0s), std::future_status::timeout);
    EXPECT_NE(daemon_->output().find("Source did not answer before its timer"), std::string::npos);
    daemon_->kill();
    advancing.wait();
}

TEST_F(followup_e2e, forged_and_malformed_channel_webhooks_are_rejected_and_change_nothing) {
    customer("Juniper Yoga", "+14155550109", "#sms-consent");
    start();
    auto post = [&](const std::string& path,
                    const std::vector<http::header>& headers,
                    const std::string& body) {
        return http::fetch(
            "127.0.0.1", daemon_->webhook_port(), "POST", "/webhooks/" + path, headers, body);
    };
    const std::string form = "MessageSid=SM1&From=%2B14155550109&To=%2B15005550006&Body=STOP";
    // Twilio: no signature, a wrong one.
    EXPECT_EQ(
        post("twilio/sms", {{"Content-Type", "application/x-www-form-urlencoded"}}, form).status,
        401u);
    EXPECT_EQ(post("twilio/sms",
                   {{"Content-Type", "application/x-www-form-urlencoded"},
                    {"X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl"}},
                   form)
                  .status,
              401u);
    // SendGrid events: unsigned, and signed over other bytes.
    const std::string events = R"([{"email":"a@b.example","event":"bounce","sg_event_id":"e1"}])";
    EXPECT_EQ(post("sendgrid/events", {{"Content-Type", "application/json"}}, events).status, 401u);
    const auto ts = std::string("1767618000");
    EXPECT_EQ(post("sendgrid/events",
                   {{"Content-Type", "application/json"},
                    {"X-Twilio-Email-Event-Webhook-Signature", mail_->sign(ts, "[]")},
                    {"X-Twilio-Email-Event-Webhook-Timestamp", ts}},
                   events)
                  .status,
              401u);
    // Inbound Parse without its secret.
    EXPECT_EQ(
        post("sendgrid/inbound", {{"Content-Type", "multipart/form-data; boundary=x"}}, "--x--")
            .status,
        401u);
    const auto metrics = daemon_->status_get("/metrics").body;
    EXPECT_NE(metrics.find("billsync_webhook_events_total"), std::string::npos);
    EXPECT_NE(metrics.find("rejected"), std::string::npos);
    // Nothing was stored: the number is not suppressed, no event waits.
    auto [rc, out] = daemon_->cli({"inspect", "entity/suppression/sms:+14155550109"});
    EXPECT_NE(rc, 0) << out;
    const auto s = json::parse(daemon_->status_get("/status").body, nullptr, false);
    EXPECT_EQ(s["queues"]["inbox"]["count"], 0);
}

}  // namespace
}  // namespace billsync
