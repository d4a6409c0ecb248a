// The follow-up over Xero invoices, end to end: the real billsync binary on a simulated clock
// against the Xero and SendGrid simulators (and the QBO simulator, for two ledgers at once).
// Xero sends no payment events: a payment is found by polling. A voided invoice arrives as a
// thin INVOICE webhook, is read back and stops its sequence.

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/xero_simulator.hpp"
#include "state/store.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using testing::eventually;
using testing::parse_time;

constexpr const char* tenant = "b2c3d4e5-0000-4000-8000-000000000001";
constexpr const char* realm = "9130350000000001";
constexpr const char* webhook_key = "xero-e2e-webhook-key";
// Monday 2026-01-05, 08:00 in New York (before the sending window opens).
constexpr const char* start_time = "2026-01-05T13:00:00Z";

class xero_followup_e2e : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::xero_sim_options xo;
        xo.tenants = {tenant};
        xo.webhook_key = webhook_key;
        xo.now = [this] { return now(); };
        xo.enforce_limits = enforce_limits_;
        xero_ = std::make_unique<simulators::xero_simulator>(xo);
        xero_->add_routes(xero_server_.routes());
        xero_->configure(xero_server_);
        simulators::qbo_sim_options qo;
        qo.realms = {realm};
        qo.now = [this] { return now(); };
        qbo_ = std::make_unique<simulators::qbo_simulator>(qo);
        qbo_->add_routes(qbo_server_.routes());
        qbo_->configure(qbo_server_);
        mail_ = std::make_unique<simulators::sendgrid_simulator>();
        mail_->add_routes(mail_server_.routes());
        ASSERT_EQ(xero_server_.start(), "");
        ASSERT_EQ(qbo_server_.start(), "");
        ASSERT_EQ(mail_server_.start(), "");
    }

    util::instant now() {
        std::lock_guard lock(clock_mutex_);
        return now_;
    }

    std::string config() const {
        std::string c = testing::simulated_daemon_toml("America/New_York", start_time) +
                        "[connectors.books]\n"
                        "kind = \"xero\"\n"
                        "base_url = \"" +
                        xero_server_.base_url() +
                        "\"\n"
                        "token_url = \"" +
                        xero_server_.base_url() +
                        "/oauth2/token\"\n"
                        "client_id = \"sim-client-id\"\n"
                        "client_secret = \"sim-client-secret\"\n"
                        "webhook_key = \"" +
                        webhook_key +
                        "\"\n"
                        "tenant_id = \"" +
                        tenant +
                        "\"\n"
                        "poll_interval_s = 3600\n";
        if (with_qbo_) {
            c += "[connectors.qbo]\n"
                 "kind = \"qbo\"\n"
                 "base_url = \"" +
                 qbo_server_.base_url() +
                 "\"\n"
                 "token_url = \"" +
                 qbo_server_.base_url() +
                 "/oauth2/token\"\n"
                 "client_id = \"sim-client-id\"\n"
                 "client_secret = \"sim-client-secret\"\n"
                 "webhook_verifier_token = \"qbo-verifier-token-e2e\"\n"
                 "realm_id = \"" +
                 std::string(realm) +
                 "\"\n"
                 "poll_interval_s = 3600\n";
        }
        c += "[connectors.sendgrid]\n"
             "kind = \"sendgrid\"\n"
             "base_url = \"" +
             mail_server_.base_url() +
             "\"\n"
             "api_key = \"SG.simulated-key\"\n"
             "from_email = \"billing@smithlee.example\"\n";
        if (!with_qbo_) {
            // Two ledgers at once: no single source of invoices, so both are followed up.
            c += "[sources]\n"
                 "invoices = \"books\"\n"
                 "payments = \"books\"\n"
                 "clients = \"books\"\n";
        }
        c += "[followup]\n"
             "firm_name = \"Smith & Lee CPA\"\n"
             "firm_phone = \"+1 555 0100\"\n"
             "reply_to = \"billing@smithlee.example\"\n";
        c += extra_followup_;
        if (!with_qbo_) {  // QBO invoices in these tests carry no payment link
            c += "[followup.templates.standard.touch1]\n"
                 "email_body = \"Invoice {invoice_number}: pay at {payment_link}\"\n";
        }
        return c;
    }

    // What `billsync connect books` would have stored.
    void seed_grant() {
        std::error_code ec;
        const auto data = dir_.path() / "data";
        std::filesystem::create_directories(data, ec);
        std::filesystem::permissions(data, std::filesystem::perms::owner_all, ec);
        auto st = state::store::open(data / "state");
        ASSERT_TRUE(st.ok()) << st.st.message;
        connectors::token_store tokens(*st.value, std::nullopt);
        const auto grant = xero_->oauth().issue_grant();
        connectors::oauth2::credential c;
        c.id = std::string("xero/") + tenant;
        c.vendor = "xero";
        c.account = tenant;
        c.access_token = grant.access_token;
        c.access_expires_at = now() + grant.expires_in;
        c.refresh_token = grant.refresh_token;
        c.scope = granted_scope_;
        c.connected_at = now();
        c.refreshed_at = now();
        ASSERT_TRUE(connectors::oauth2::store_credential(tokens, c).ok);
    }

    void start() {
        seed_grant();
        if (with_qbo_) {
            ASSERT_EQ(simulators::seed_qbo_grant(dir_.path() / "data", *qbo_, realm, now()), "");
            qbo_->take_deliveries();
        }
        xero_->take_deliveries();
        daemon_ = std::make_unique<testing::billsync_daemon>(dir_.path(), config());
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
        ASSERT_TRUE(eventually([&] {
            auto [rc, out] = daemon_->cli({"inspect", "cursor/books/sync"});
            return rc == 0 && out.find("incremental") != std::string::npos;
        })) << daemon_->output();
        if (with_qbo_) {
            ASSERT_TRUE(eventually([&] {
                auto [rc, out] = daemon_->cli({"inspect", "cursor/qbo/sync"});
                return rc == 0 && out.find("\"cdc\"") != std::string::npos;
            })) << daemon_->output();
        }
    }

    std::string hook(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(daemon_->webhook_port()) + "/webhooks/" + path;
    }

    void advance_to(std::string_view when) {
        const auto target = parse_time(when);
        const auto by = std::chrono::duration_cast<std::chrono::seconds>(target - now());
        ASSERT_GE(by.count(), 0);
        {
            std::lock_guard lock(clock_mutex_);
            now_ = target;
        }
        ASSERT_NE(daemon_->advance(by.count()), "") << daemon_->output();
    }

    bool stored(const std::string& type, const std::string& id, std::string_view needle) {
        auto [rc, out] = daemon_->cli({"inspect", "entity/" + type + "/" + id});
        return rc == 0 && out.find(needle) != std::string::npos;
    }

    std::string contact(const std::string& name) {
        return xero_->add_contact(tenant, json{{"Name", name}, {"EmailAddress", email_of(name)}})
            .value("ContactID", "");
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

    std::string invoice(const std::string& contact_id,
                        const std::string& number,
                        const std::string& amount) {
        return xero_
            ->add_invoice(tenant,
                          json{{"Contact", {{"ContactID", contact_id}}},
                               {"InvoiceNumber", number},
                               {"DueDate", "2026-01-05"},
                               {"LineItems",
                                json::array({{{"Description", "Bookkeeping"},
                                              {"LineAmount", json::parse(amount)}}})}})
            .value("InvoiceID", "");
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

    static std::string canonical(const std::string& kind, const std::string& id) {
        return std::string("books:") + tenant + ":" + kind + ":" + id;
    }

    testing::temp_dir dir_;
    std::mutex clock_mutex_;
    util::instant now_ = parse_time(start_time);
    bool with_qbo_ = false;
    bool enforce_limits_ = true;  // the simulator answers 429 past Xero's limits
    std::string granted_scope_;   // recorded with the seeded grant ("": an old record, unknown)
    std::string extra_followup_;
    std::unique_ptr<simulators::xero_simulator> xero_;
    std::unique_ptr<simulators::qbo_simulator> qbo_;
    std::unique_ptr<simulators::sendgrid_simulator> mail_;
    simulators::sim_server xero_server_;
    simulators::sim_server qbo_server_;
    simulators::sim_server mail_server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(xero_followup_e2e, a_payment_found_by_polling_stops_the_follow_up) {
    const auto c = contact("Acme Dental");
    const auto inv = invoice(c, "INV-1001", "500.00");
    start();
    const auto to = email_of("Acme Dental");
    advance_to("2026-01-06T15:00:00Z");  // day 1, 10:00 in New York: touch 1 went out at 09:00
    const auto first = emails_to(to);
    ASSERT_EQ(first.size(), 1u) << daemon_->output();
    // The online invoice link, read before the touch, is the payment link.
    EXPECT_NE(first[0].body.find("https://in.xero.com/" + inv), std::string::npos) << first[0].body;
    EXPECT_NE(first[0].body.find("INV-1001"), std::string::npos);

    // Paid in Xero; its INVOICE webhook is lost, so only polling can find it.
    const auto p = xero_->add_payment(
        tenant, json{{"Invoice", {{"InvoiceID", inv}}}, {"Amount", 500}, {"Date", "2026-01-06"}});
    ASSERT_FALSE(p.contains("error")) << p.dump();
    xero_->take_deliveries();
    advance_to("2026-01-07T15:00:00Z");  // past the poll interval
    ASSERT_TRUE(eventually([&] {
        return stored("invoice", canonical("invoice", inv), "\"paid\"");
    })) << daemon_->output();
    ASSERT_TRUE(eventually([&] {
        return stored("payment", canonical("payment", p.value("PaymentID", "")), inv);
    })) << daemon_->output();
    advance_to("2026-02-20T18:00:00Z");  // past touch 2 and touch 3
    EXPECT_EQ(emails_to(to).size(), 1u);
    EXPECT_EQ(daemon_->stop(), 0);
}

// Under the simulated clock a simulated minute is a minute for billsync's Xero call budget too:
// a month of touches over 8 invoices (invoices re-read before each touch, daily polls: about 200
// calls in all, a few seconds of real time) is not held to Xero's 60 calls per real minute, which
// kept the simulated month waiting for minutes of real time. (At one simulated moment the calls
// are still paced in real time.)
// A Xero that never throttles (as a test double may): what paces the calls is billsync's own
// budget.
class xero_unthrottled_e2e : public xero_followup_e2e {
protected:
    void SetUp() override {
        enforce_limits_ = false;
        xero_followup_e2e::SetUp();
    }
};

TEST_F(xero_unthrottled_e2e, a_month_of_touches_over_many_invoices_is_not_held_to_real_minutes) {
    std::vector<std::string> to;
    for (int i = 0; i < 8; ++i) {
        const auto name = "Client " + std::to_string(i);
        invoice(contact(name), "INV-2" + std::to_string(100 + i), "100.00");
        to.push_back(email_of(name));
    }
    start();
    const auto began = std::chrono::steady_clock::now();
    // A day at a time, as the simulator counts calls per simulated minute: past touch 1, touch 2
    // and touch 3.
    for (auto day = parse_time("2026-01-06T15:00:00Z"); day <= parse_time("2026-02-20T15:00:00Z");
         day += std::chrono::days(1)) {
        advance_to(util::format_rfc3339(day));
    }
    const auto took = std::chrono::steady_clock::now() - began;
    for (const auto& address : to) {
        EXPECT_EQ(emails_to(address).size(), 3u) << address << daemon_->output();
    }
    EXPECT_LT(took, std::chrono::seconds(45));
    EXPECT_EQ(daemon_->stop(), 0);
}

// A payment plan over a Xero contact: the installment is reminded; it is paid in Xero on its due
// date with the webhook lost; polling or the check's own re-read of the contact's open invoices
// finds it, so no missed notice goes out.
TEST_F(xero_followup_e2e, an_installment_reminded_and_paid_unannounced_is_not_missed) {
    const auto c = contact("Ivy Lane Studio");
    const auto inv = invoice(c, "INV-1201", "500.00");
    extra_followup_ = "[followup.payment_plans.\"" + canonical("client", c) +
                      "\"]\ninstallments = [{ due = \"2026-01-20\", amount = \"200.00\" }]\n";
    start();
    const auto to = email_of("Ivy Lane Studio");
    advance_to("2026-01-16T18:00:00Z");  // on a plan: no overdue touches
    EXPECT_TRUE(emails_to(to).empty()) << daemon_->output();
    advance_to("2026-01-19T15:00:00Z");  // 3 days before 01-20 was Saturday: Monday 09:00
    ASSERT_EQ(emails_to(to).size(), 1u) << daemon_->output();
    EXPECT_NE(emails_to(to)[0].subject.find("$200.00 is due on January 20, 2026"),
              std::string::npos)
        << emails_to(to)[0].subject;
    advance_to("2026-01-20T18:00:00Z");
    const auto p = xero_->add_payment(
        tenant, json{{"Invoice", {{"InvoiceID", inv}}}, {"Amount", 200}, {"Date", "2026-01-20"}});
    ASSERT_FALSE(p.contains("error")) << p.dump();
    xero_->take_deliveries();            // the webhook is lost
    advance_to("2026-01-21T15:00:00Z");  // checked at 00:00 New York
    EXPECT_EQ(emails_to(to).size(), 1u) << daemon_->output();
    auto [rc, out] = daemon_->cli({"followup", "plans", "--json"});
    ASSERT_EQ(rc, 0) << out;
    const auto plans = json::parse(out, nullptr, false);
    ASSERT_TRUE(plans.is_array() && plans.size() == 1u) << out;
    EXPECT_TRUE(plans[0]["missed"].empty()) << out;
    EXPECT_EQ(plans[0]["installments"][0]["status"], "checked") << out;
    EXPECT_EQ(daemon_->stop(), 0);
}

// Late fees over the Xero ledger: each monthly period of an unpaid invoice gets one fee invoice
// in Xero, and the fee invoices themselves are never charged a fee.
TEST_F(xero_followup_e2e, late_fees_are_separate_xero_invoices_once_per_period) {
    // The follow-up is off: its touches are not what this test is about.
    extra_followup_ =
        "enabled = false\n"
        "[late_fees]\n"
        "percent_per_month = \"1.5\"\n"
        "grace_days = 1\n"
        "auto_approve = true\n"
        "account_code = \"200\"\n"
        "start = \"2026-01-01\"\n";
    const auto c = contact("Birch Dental");
    invoice(c, "INV-1301", "500.00");  // due 2026-01-05: period 1 begins 01-06 at 06:00
    start();
    const auto fee_periods = [&] {
        const auto j = json::parse(
            daemon_->status_get("/workflows/late_fees/show/INV-1301").body, nullptr, false);
        std::vector<std::string> states;
        for (const auto& p : j.is_object() ? j.value("periods", json::array()) : json::array()) {
            states.push_back(p.value("state", ""));
        }
        return states;
    };
    advance_to("2026-01-06T15:00:00Z");
    ASSERT_TRUE(eventually([&] { return xero_->count(tenant, "Invoices") == 2u; }))
        << daemon_->output();
    ASSERT_TRUE(eventually([&] { return fee_periods() == std::vector<std::string>{"created"}; }))
        << daemon_->output();
    EXPECT_EQ(xero_->invoices_created(), 1u);
    advance_to("2026-02-06T15:00:00Z");  // period 2 of INV-1301; the fee invoice is no debtor
    ASSERT_TRUE(eventually([&] {
        return fee_periods() == std::vector<std::string>{"created", "created"};
    })) << daemon_->output();
    EXPECT_EQ(xero_->count(tenant, "Invoices"), 3u);
    EXPECT_EQ(xero_->invoices_created(), 2u);
    EXPECT_EQ(daemon_->stop(), 0);
}

// Courtesy reminder on the due date against the Xero ledger: a contact in the "Auto Pay" contact
// group is on auto-pay and gets none.
TEST_F(xero_followup_e2e, a_due_date_reminder_skips_the_auto_pay_contact_group) {
    extra_followup_ = "[followup.reminders.standard]\ndays_before = [0]\n";
    const auto plain = contact("Cedar Group");
    const auto autopay =
        xero_
            ->add_contact(tenant,
                          json{{"Name", "Dune Co"},
                               {"EmailAddress", email_of("Dune Co")},
                               {"ContactGroups", json::array({{{"Name", "Auto Pay"}}})}})
            .value("ContactID", "");
    invoice(plain, "INV-1101", "300.00");
    invoice(autopay, "INV-1102", "300.00");
    start();
    advance_to("2026-01-05T15:00:00Z");  // the due date, 10:00 in New York
    const auto reminded = emails_to(email_of("Cedar Group"));
    ASSERT_EQ(reminded.size(), 1u) << daemon_->output();
    EXPECT_NE(reminded[0].subject.find("is due on January 5, 2026"), std::string::npos);
    EXPECT_TRUE(emails_to(email_of("Dune Co")).empty());
    advance_to("2026-01-06T15:00:00Z");  // touch 1 for both
    EXPECT_EQ(emails_to(email_of("Cedar Group")).size(), 2u);
    EXPECT_EQ(emails_to(email_of("Dune Co")).size(), 1u);
    EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(xero_followup_e2e, a_voided_invoice_stops_its_sequence) {
    const auto c = contact("Birch Law");
    const auto inv = invoice(c, "INV-1002", "900.00");
    start();
    const auto to = email_of("Birch Law");
    advance_to("2026-01-06T15:00:00Z");
    ASSERT_EQ(emails_to(to).size(), 1u) << daemon_->output();
    const auto v = xero_->void_invoice(tenant, inv);
    ASSERT_EQ(v.value("Status", ""), "VOIDED") << v.dump();
    for (const auto s : xero_->deliver(hook("books"))) {
        ASSERT_EQ(s, 200u);
    }
    ASSERT_TRUE(eventually([&] {
        return stored("invoice", canonical("invoice", inv), "\"void\"");
    })) << daemon_->output();
    advance_to("2026-02-20T18:00:00Z");
    EXPECT_EQ(emails_to(to).size(), 1u);
    EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(xero_followup_e2e, intent_to_receive_gets_bare_answers) {
    start();
    const auto answers = xero_->intent_to_receive(hook("books"), 2);
    ASSERT_EQ(answers.size(), 4u);
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(answers[i].status, 200u);
        EXPECT_EQ(answers[i].body, "");
    }
    for (std::size_t i = 2; i < 4; ++i) {
        EXPECT_EQ(answers[i].status, 401u);
        EXPECT_EQ(answers[i].body, "");
    }
    EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(xero_followup_e2e, two_ledgers_at_once_keep_invoices_apart) {
    with_qbo_ = true;
    const auto c = contact("Cedar Farms");
    const auto xinv = invoice(c, "1001", "250.00");
    // The same invoice number and client name in the QBO company.
    const auto qc = qbo_->add_customer(realm,
                                       json{{"DisplayName", "Cedar Farms"},
                                            {"PrimaryEmailAddr", {{"Address", "ap@cedar.qbo"}}}})
                        .value("Id", "");
    qbo_->add_invoice(
        realm,
        json{{"CustomerRef", {{"value", qc}}},
             {"DueDate", "2026-01-05"},
             {"DocNumber", "1001"},
             {"Line",
              json::array({{{"Amount", 75},
                            {"DetailType", "SalesItemLineDetail"},
                            {"SalesItemLineDetail",
                             {{"ItemRef", {{"value", "1"}}}, {"Qty", 1}, {"UnitPrice", 75}}}}})}});
    start();
    advance_to("2026-01-06T15:00:00Z");
    EXPECT_EQ(emails_to(email_of("Cedar Farms")).size(), 1u);
    EXPECT_EQ(emails_to("ap@cedar.qbo").size(), 1u);
    auto [rc, out] = daemon_->cli({"followup", "list"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("ledger=books"), std::string::npos) << out;
    EXPECT_NE(out.find("ledger=qbo"), std::string::npos) << out;
    EXPECT_NE(out.find("2 sequences"), std::string::npos) << out;
    EXPECT_EQ(daemon_->stop(), 0);
}

// The grant was made before an upgrade added a scope the connector needs: billsync keeps working
// and says to consent again, in /status, `billsync status`, `billsync validate` and the log once.
TEST_F(xero_followup_e2e, a_grant_missing_a_needed_scope_asks_for_reconsent) {
    granted_scope_ = "offline_access accounting.contacts accounting.settings.read";
    start();
    const auto status = json::parse(daemon_->status_get("/status").body, nullptr, false);
    ASSERT_TRUE(status.is_object());
    json books;
    for (const auto& c : status["connectors"]) {
        if (c.value("name", "") == "books") {
            books = c["detail"];
        }
    }
    EXPECT_EQ(books.value("reconsent_needed", false), true) << books.dump();
    EXPECT_EQ(books["missing_scopes"], json::array({"accounting.transactions"}));
    EXPECT_EQ(books.value("credential", ""), "ok");
    auto [rc, out] = daemon_->cli({"status"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("RECONSENT NEEDED: the stored OAuth2 grant lacks accounting.transactions"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("billsync connect books"), std::string::npos) << out;
    // Logged once however often the token is used.
    advance_to("2026-01-06T15:00:00Z");
    const auto log = daemon_->output();
    const auto first = log.find("Reconsent needed connector=books");
    EXPECT_NE(first, std::string::npos) << log;
    EXPECT_EQ(log.find("Reconsent needed connector=books", first + 1), std::string::npos) << log;
    EXPECT_EQ(daemon_->stop(), 0);
    auto [vrc, vout] = daemon_->cli({"validate"});
    EXPECT_EQ(vrc, 0) << vout;
    EXPECT_NE(vout.find("warning: [connectors.books] the stored OAuth2 grant lacks the scopes "
                        "accounting.transactions"),
              std::string::npos)
        << vout;
}

TEST_F(xero_followup_e2e, an_old_grant_without_a_scope_list_is_not_reported) {
    start();  // granted_scope_ empty: the record has no scope list
    const auto body = daemon_->status_get("/status").body;
    EXPECT_EQ(body.find("reconsent_needed"), std::string::npos) << body;
    EXPECT_EQ(daemon_->stop(), 0);
    auto [vrc, vout] = daemon_->cli({"validate"});
    EXPECT_EQ(vrc, 0) << vout;
    EXPECT_EQ(vout.find("reconsent"), std::string::npos) << vout;
}

}  // namespace
}  // namespace billsync
