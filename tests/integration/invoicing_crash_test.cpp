// The invoicing workflow end to end through the daemon, against the Karbon and QBO simulators:
// a work item reaches "Return Filed" (delivered twice, then the stage left and re-entered), one
// draft waits for approval, the partner approves it over HTTP, and the daemon is killed (SIGKILL)
// after QuickBooks stored the invoice but before the answer came back. After the restart the
// invoice is found, not created again: exactly one invoice at the ledger, the draft "created".

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>

#include "sim/karbon_simulator.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sim_server.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* realm = "9130350000000077";
constexpr const char* start_time = "2026-12-01T15:00:00Z";

std::string config_text(const std::string& qbo_base,
                        const std::string& karbon_base,
                        const std::filesystem::path& book,
                        bool keeps_time = false) {
    return testing::simulated_daemon_toml(
               "America/Chicago", start_time, "https://billsync.smithlee.example") +
           "[connectors.books]\n"
           "kind = \"qbo\"\n"
           "base_url = \"" +
           qbo_base +
           "\"\n"
           "token_url = \"" +
           qbo_base +
           "/oauth2/token\"\n"
           "client_id = \"sim-client-id\"\n"
           "client_secret = \"sim-client-secret\"\n"
           "webhook_verifier_token = \"qbo-verifier-token-invoicing\"\n"
           "realm_id = \"" +
           realm +
           "\"\n"
           "poll_interval_s = 3600\n" +
           std::string(keeps_time ? "sync_time = true\n" : "") +
           "[connectors.practice]\n"
           "kind = \"karbon\"\n"
           "base_url = \"" +
           karbon_base +
           "\"\n"
           "bearer_token = \"${env:KARBON_BEARER}\"\n"
           "access_key = \"${env:KARBON_ACCESS}\"\n"
           "webhook_signing_key = \"${env:KARBON_SIGNING}\"\n"
           "[invoicing]\n"
           "ledger = \"books\"\n"
           "engagements = \"" +
           book.string() +
           "\"\n"
           "[invoicing.approval]\n"
           "auto_approve_below = \"500.00\"\n"
           "approvers = [\"partner@smithlee.example\"]\n";
}

util::instant now() { return testing::parse_time(start_time); }

// The simulators and the daemon of one firm: QBO (customer "Cedar Farms"), Karbon (its 1040
// work item), and an engagement book billing that work item under a fixed fee, or (`tm_rate`)
// as time and materials from the time kept in QBO at that default rate, when it completes.
struct invoicing_firm {
    explicit invoicing_firm(const std::string& book_extra = {}, const std::string& tm_rate = {}) {
        qo.realms = {realm};
        qo.now = [] { return now(); };
        qbo = std::make_unique<simulators::qbo_simulator>(qo);
        qbo->add_routes(qbo_server.routes());
        qbo->configure(qbo_server);
        started = qbo_server.start();
        ko.now = [] { return now(); };
        karbon = std::make_unique<simulators::karbon_simulator>(ko);
        karbon->add_routes(karbon_server.routes());
        karbon->configure(karbon_server);
        started += karbon_server.start();
        customer = qbo->add_customer(realm, json{{"DisplayName", "Cedar Farms"}}).value("Id", "");
        started += simulators::seed_qbo_grant(dir.path() / "data", *qbo, realm, now());
        const auto org = karbon->add_organization({{"FullName", "Cedar Farms"}});
        key = karbon
                  ->add_work_item({{"Title", "2025 Form 1040 - Cedar Farms"},
                                   {"ClientKey", org["OrganizationKey"]},
                                   {"ClientType", "Organization"},
                                   {"WorkType", "Tax Return"},
                                   {"PrimaryStatus", "In Progress"}})
                  .value("WorkItemKey", "");
        book = dir.path() / "engagements.toml";
        if (tm_rate.empty()) {
            write_book(book_extra);
        } else {
            write_tm_book(tm_rate);
        }
        daemon = std::make_unique<testing::billsync_daemon>(
            dir.path(),
            config_text(qbo_server.base_url(), karbon_server.base_url(), book, !tm_rate.empty()),
            std::vector<std::string>{"KARBON_BEARER=" + ko.bearer_token,
                                     "KARBON_ACCESS=" + ko.access_key,
                                     "KARBON_SIGNING=invoicing-signing-key-000000"});
    }

    void write_book(const std::string& extra, const std::string& fee = "2400.00") {
        std::ofstream out(book, std::ios::trunc);
        out << "[engagement.\"cedar-1040\"]\n"
               "client = \"books:"
            << customer << "\"\nwork_items = [\"" << key
            << "\"]\n"
               "model = \"fixed_fee\"\n"
               "fee = \""
            << fee << "\"\n"
            << extra
            << "[engagement.\"cedar-1040\".milestones]\n"
               "\"Return Filed\" = \"50%\"\n"
               "\"Delivered\" = \"remainder\"\n";
    }

    void write_tm_book(const std::string& rate) {
        std::ofstream out(book, std::ios::trunc);
        out << "[engagement.\"cedar-advisory\"]\n"
               "client = \"books:"
            << customer << "\"\nwork_items = [\"" << key
            << "\"]\n"
               "model = \"time_and_materials\"\n"
               "schedule = \"on_completion\"\n"
               "[engagement.\"cedar-advisory\".rates]\n"
               "default = \""
            << rate << "\"\n";
    }

    bool start() {
        if (!daemon->start()) {
            return false;
        }
        karbon->set_delivery_base("http://127.0.0.1:" + std::to_string(daemon->webhook_port()));
        return testing::eventually([&] { return karbon->subscriptions().contains("Work"); });
    }

    json drafts() {
        const auto j =
            json::parse(daemon->status_get("/workflows/invoicing/drafts").body, nullptr, false);
        return j.is_object() ? j.value("drafts", json::array()) : json::array();
    }

    // After the book was corrected: reloads it (SIGHUP), redrafts the rejected draft `id` with
    // `billsync approvals redraft`, checks the old one stays rejected and returns the new draft.
    json reload_and_redraft(const std::string& id, const std::string& reason) {
        daemon->process().signal(SIGHUP);
        EXPECT_TRUE(daemon->process().wait_for_line("(reloaded)")) << daemon->output();
        const auto [rc, out] = daemon->cli(
            {"approvals", "redraft", id, "--by", "partner@smithlee.example", "--reason", reason});
        EXPECT_EQ(rc, 0) << out;
        std::string fresh;
        for (const auto& d : drafts()) {
            if (d.value("id", "") == id) {
                EXPECT_EQ(d.value("state", ""), "rejected");
                fresh = d.value("redrafted_as", "");
            }
        }
        EXPECT_FALSE(fresh.empty()) << drafts().dump();
        return json::parse(
            daemon->status_get("/workflows/invoicing/show/" + fresh).body, nullptr, false);
    }

    testing::temp_dir dir;
    simulators::qbo_sim_options qo;
    std::unique_ptr<simulators::qbo_simulator> qbo;
    simulators::sim_server qbo_server;
    simulators::karbon_options ko;
    std::unique_ptr<simulators::karbon_simulator> karbon;
    simulators::sim_server karbon_server;
    std::string started;
    std::string customer;
    std::string key;
    std::filesystem::path book;
    std::unique_ptr<testing::billsync_daemon> daemon;
};

TEST(invoicing_daemon, an_edited_engagement_book_is_read_again_on_sighup) {
    invoicing_firm f("po_required = true\n");
    ASSERT_EQ(f.started, "");
    ASSERT_TRUE(f.start()) << f.daemon->output();
    f.karbon->update_work_item(f.key, {{"SecondaryStatus", "Return Filed"}});
    EXPECT_EQ(f.karbon->notify("Work", "Work", f.key, "Updated"), 200u);
    ASSERT_TRUE(testing::eventually([&] {
        const auto d = f.drafts();
        return d.size() == 1 && d[0].value("state", "") == "blocked";
    })) << f.daemon->output();
    const std::string id = f.drafts()[0].value("id", "");
    const auto open = json::parse(f.daemon->status_get("/exceptions").body, nullptr, false);
    ASSERT_EQ(open.value("exceptions", json::array()).size(), 1u) << open.dump();
    EXPECT_EQ(open["exceptions"][0].value("type", ""), "missing_po");
    // The admin gives the PO in the book and reloads; the coordinator re-checks the draft.
    f.write_book("po_required = true\npo_number = \"PO-88\"\n");
    f.daemon->process().signal(SIGHUP);
    ASSERT_TRUE(f.daemon->process().wait_for_line("(reloaded)")) << f.daemon->output();
    const auto r = f.daemon->status_post("/exceptions/" + id + "/resolve", "{}");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(json::parse(r.body, nullptr, false).value("state", ""), "pending_approval") << r.body;
    const auto a = f.daemon->status_post("/approvals/" + id + "/approve",
                                         R"({"by": "partner@smithlee.example"})");
    ASSERT_EQ(a.status, 200u) << a.body;
    ASSERT_TRUE(testing::eventually([&] { return f.qbo->count(realm, "Invoice") == 1; }))
        << f.daemon->output();
    EXPECT_NE(f.qbo->get(realm, "Invoice", "1")->dump().find("PO-88"), std::string::npos);
    ASSERT_TRUE(f.daemon->stop().has_value());
}

TEST(invoicing_daemon, a_rejected_milestone_is_redrafted_by_the_cli_from_the_reloaded_book) {
    invoicing_firm f;
    ASSERT_EQ(f.started, "");
    ASSERT_TRUE(f.start()) << f.daemon->output();
    f.karbon->update_work_item(f.key, {{"SecondaryStatus", "Return Filed"}});
    EXPECT_EQ(f.karbon->notify("Work", "Work", f.key, "Updated"), 200u);
    ASSERT_TRUE(testing::eventually([&] {
        const auto d = f.drafts();
        return d.size() == 1 && d[0].value("state", "") == "pending_approval";
    })) << f.daemon->output();
    const std::string id = f.drafts()[0].value("id", "");
    // Not rejected: refused, nothing changes.
    auto r = f.daemon->status_post("/approvals/" + id + "/redraft",
                                   R"({"by": "partner@smithlee.example"})");
    EXPECT_EQ(r.status, 409u) << r.body;
    r = f.daemon->status_post("/approvals/" + id + "/reject",
                              R"({"by": "partner@smithlee.example", "reason": "rate error"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    // The fee is corrected in the book; the partner asks for the milestone again.
    f.write_book("", "3000.00");
    const auto made = f.reload_and_redraft(id, "fee corrected");
    const std::string fresh = made.value("id", "");
    ASSERT_FALSE(fresh.empty()) << made.dump();
    EXPECT_EQ(made.value("state", ""), "pending_approval") << made.dump();
    EXPECT_EQ(made.value("total_minor", 0), 150000);  // 50 % of the corrected 3,000.00
    EXPECT_EQ(f.qbo->count(realm, "Invoice"), 0u);
    // Redrafted once only.
    r = f.daemon->status_post("/approvals/" + id + "/redraft",
                              R"({"by": "partner@smithlee.example"})");
    EXPECT_EQ(r.status, 409u) << r.body;
    r = f.daemon->status_post("/approvals/" + fresh + "/approve",
                              R"({"by": "partner@smithlee.example"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    ASSERT_TRUE(testing::eventually([&] { return f.qbo->count(realm, "Invoice") == 1; }))
        << f.daemon->output();
    EXPECT_EQ(f.drafts().size(), 2u);
    ASSERT_TRUE(f.daemon->stop().has_value());
}

TEST(invoicing_daemon, a_rejected_tm_draft_is_redrafted_by_the_cli_from_its_own_time_entries) {
    invoicing_firm f({}, "250.00");
    ASSERT_EQ(f.started, "");
    // Time kept in QBO for Cedar Farms: 1 h 30 and 45 min, billable.
    const auto kim = f.qbo->add_employee(realm, json{{"GivenName", "Kim"}, {"FamilyName", "Lee"}})
                         .value("Id", "");
    ASSERT_FALSE(kim.empty());
    for (const auto& [date, hours, minutes] :
         {std::tuple{"2026-11-20", 1, 30}, std::tuple{"2026-11-23", 0, 45}}) {
        const auto ta = f.qbo->add_time_activity(realm,
                                                 json{{"NameOf", "Employee"},
                                                      {"EmployeeRef", {{"value", kim}}},
                                                      {"CustomerRef", {{"value", f.customer}}},
                                                      {"TxnDate", date},
                                                      {"Hours", hours},
                                                      {"Minutes", minutes},
                                                      {"BillableStatus", "Billable"},
                                                      {"HourlyRate", 150}});
        ASSERT_FALSE(ta.value("Id", "").empty()) << ta.dump();
    }
    ASSERT_TRUE(f.start()) << f.daemon->output();
    // The first poll reads the time; every event it queued is applied.
    ASSERT_TRUE(testing::eventually([&] {
        const auto s = json::parse(f.daemon->status_get("/status").body, nullptr, false);
        return s.is_object() && s.dump().find("\"TimeActivity\"") != std::string::npos;
    })) << f.daemon->output();
    ASSERT_NE(f.daemon->advance(0), "");
    ASSERT_TRUE(testing::eventually([&] {
        const auto s = json::parse(f.daemon->status_get("/status").body, nullptr, false);
        return s.is_object() && s["queues"]["inbox"]["count"] == 0;
    })) << f.daemon->output();
    // The work item completes: its time is drafted, 2 h 15 at 250.00, above auto-approval.
    f.karbon->update_work_item(f.key, {{"PrimaryStatus", "Completed"}});
    EXPECT_EQ(f.karbon->notify("Work", "Work", f.key, "Updated"), 200u);
    ASSERT_TRUE(testing::eventually([&] {
        const auto d = f.drafts();
        return d.size() == 1 && d[0].value("state", "") == "pending_approval";
    })) << f.daemon->output()
        << f.drafts().dump();
    const auto first = f.drafts()[0];
    const std::string id = first.value("id", "");
    EXPECT_EQ(first.value("total_minor", 0), 56250);
    const auto entries = first["lines"][0]["entries"];
    ASSERT_EQ(entries.size(), 2u) << first.dump();
    auto r = f.daemon->status_post("/approvals/" + id + "/reject",
                                   R"({"by": "partner@smithlee.example", "reason": "rate error"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    // The rate is corrected in the book; the partner asks for the draft again from the CLI.
    f.write_tm_book("240.00");
    const auto made = f.reload_and_redraft(id, "rate corrected");
    const std::string fresh = made.value("id", "");
    ASSERT_FALSE(fresh.empty()) << made.dump();
    EXPECT_EQ(made.value("state", ""), "pending_approval") << made.dump();
    EXPECT_EQ(made.value("redraft_of", ""), id);
    EXPECT_EQ(made.value("total_minor", 0), 54000);  // the same 2 h 15 at the corrected 240.00
    EXPECT_EQ(made["lines"][0]["entries"], entries);
    EXPECT_EQ(f.qbo->count(realm, "Invoice"), 0u);
    // Redrafted once only: the CLI fails, nothing changes.
    const auto [rc2, out2] = f.daemon->cli({"approvals", "redraft", id});
    EXPECT_NE(rc2, 0) << out2;
    EXPECT_EQ(f.drafts().size(), 2u);
    r = f.daemon->status_post("/approvals/" + fresh + "/approve",
                              R"({"by": "partner@smithlee.example"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    ASSERT_TRUE(testing::eventually([&] { return f.qbo->count(realm, "Invoice") == 1; }))
        << f.daemon->output();
    EXPECT_NE(f.qbo->get(realm, "Invoice", "1")->dump().find("540"), std::string::npos);
    EXPECT_EQ(f.drafts().size(), 2u);
    ASSERT_TRUE(f.daemon->stop().has_value());
}

TEST(invoicing_crash, a_milestone_invoice_approved_then_killed_mid_create_exists_once) {
    testing::temp_dir dir;
    simulators::qbo_sim_options qo;
    qo.realms = {realm};
    qo.now = [] { return now(); };
    simulators::qbo_simulator qbo(qo);
    simulators::sim_server qbo_server;
    qbo.add_routes(qbo_server.routes());
    qbo.configure(qbo_server);
    ASSERT_EQ(qbo_server.start(), "");
    simulators::karbon_options ko;
    ko.now = [] { return now(); };
    simulators::karbon_simulator karbon(ko);
    simulators::sim_server karbon_server;
    karbon.add_routes(karbon_server.routes());
    karbon.configure(karbon_server);
    ASSERT_EQ(karbon_server.start(), "");

    const auto data = dir.path() / "data";
    const auto customer =
        qbo.add_customer(realm, json{{"DisplayName", "Cedar Farms"}}).value("Id", "");
    ASSERT_FALSE(customer.empty());
    ASSERT_EQ(simulators::seed_qbo_grant(data, qbo, realm, now()), "");
    const auto org = karbon.add_organization({{"FullName", "Cedar Farms"}});
    const auto item = karbon.add_work_item({{"Title", "2025 Form 1040 - Cedar Farms"},
                                            {"ClientKey", org["OrganizationKey"]},
                                            {"ClientType", "Organization"},
                                            {"WorkType", "Tax Return"},
                                            {"PrimaryStatus", "In Progress"}});
    const std::string key = item["WorkItemKey"];
    const auto book = dir.path() / "engagements.toml";
    {
        std::ofstream out(book);
        out << "[engagement.\"cedar-1040\"]\n"
               "client = \"books:"
            << customer
            << "\"\n"
               "work_items = [\""
            << key
            << "\"]\n"
               "model = \"fixed_fee\"\n"
               "fee = \"2400.00\"\n"
               "[engagement.\"cedar-1040\".milestones]\n"
               "\"Return Filed\" = \"50%\"\n"
               "\"Delivered\" = \"remainder\"\n";
    }
    testing::billsync_daemon daemon(
        dir.path(),
        config_text(qbo_server.base_url(), karbon_server.base_url(), book),
        {"KARBON_BEARER=" + ko.bearer_token,
         "KARBON_ACCESS=" + ko.access_key,
         "KARBON_SIGNING=invoicing-signing-key-000000"});
    ASSERT_TRUE(daemon.start()) << daemon.output();
    karbon.set_delivery_base("http://127.0.0.1:" + std::to_string(daemon.webhook_port()));
    ASSERT_TRUE(testing::eventually([&] { return karbon.subscriptions().contains("Work"); }))
        << daemon.output();

    const auto pending = [&] {
        const auto j = json::parse(daemon.status_get("/approvals").body, nullptr, false);
        return j.is_object() ? j.value("approvals", json::array()) : json::array();
    };
    const auto drafts = [&] {
        const auto j =
            json::parse(daemon.status_get("/workflows/invoicing/drafts").body, nullptr, false);
        return j.is_object() ? j.value("drafts", json::array()) : json::array();
    };
    // The stage, delivered twice; then left and re-entered.
    karbon.update_work_item(key, {{"SecondaryStatus", "Return Filed"}});
    EXPECT_EQ(karbon.notify("Work", "Work", key, "Updated"), 200u);
    EXPECT_EQ(karbon.notify("Work", "Work", key, "Updated"), 200u);
    ASSERT_TRUE(testing::eventually([&] { return pending().size() == 1; })) << daemon.output();
    karbon.update_work_item(key, {{"SecondaryStatus", "In Review"}});
    EXPECT_EQ(karbon.notify("Work", "Work", key, "Updated"), 200u);
    karbon.update_work_item(key, {{"SecondaryStatus", "Return Filed"}});
    EXPECT_EQ(karbon.notify("Work", "Work", key, "Updated"), 200u);
    daemon.advance(60);  // every delivery processed
    ASSERT_EQ(drafts().size(), 1u) << daemon.output();
    const auto draft = pending().at(0);
    EXPECT_EQ(draft.value("total_minor", 0), 120000);
    const std::string id = draft.value("id", "");
    EXPECT_EQ(qbo.count(realm, "Invoice"), 0u);  // nothing before the approval

    // Refused: not an approver. Accepted: the partner. QBO stores the invoice, its answer is lost.
    EXPECT_EQ(
        daemon.status_post("/approvals/" + id + "/approve", R"({"by": "intern@x.example"})").status,
        403u);
    qbo.hold_create_answers(120s);
    const auto ok = daemon.status_post("/approvals/" + id + "/approve",
                                       R"({"by": "partner@smithlee.example"})");
    ASSERT_EQ(ok.status, 200u) << ok.body;
    ASSERT_TRUE(testing::eventually([&] { return qbo.count(realm, "Invoice") == 1; }))
        << daemon.output();
    daemon.kill();
    qbo.hold_create_answers(0ms);

    std::string state;
    for (int round = 0; round < 5 && state != "created"; ++round) {
        ASSERT_TRUE(daemon.start()) << daemon.output();
        karbon.set_delivery_base("http://127.0.0.1:" + std::to_string(daemon.webhook_port()));
        testing::eventually([&] {
            const auto j = json::parse(
                daemon.status_get("/workflows/invoicing/show/" + id).body, nullptr, false);
            state = j.is_object() ? j.value("state", "") : "";
            return state == "created";
        });
        // One more delivery of the stage after the restart: still billed once.
        EXPECT_EQ(karbon.notify("Work", "Work", key, "Updated"), 200u);
        ASSERT_TRUE(daemon.stop().has_value());
    }
    EXPECT_EQ(state, "created") << daemon.output();
    EXPECT_EQ(qbo.count(realm, "Invoice"), 1u);
    EXPECT_EQ(qbo.creates(), 1u);
    const auto inv = *qbo.get(realm, "Invoice", "1");
    EXPECT_EQ(inv.value("CustomerRef", json::object()).value("value", ""), customer);
    EXPECT_NE(inv.dump().find("1200"), std::string::npos) << inv.dump();
}

}  // namespace
}  // namespace billsync
