// invoice.create end to end through the daemon, for both ledgers (and QBO's time_entry.create). The
// daemon is killed (SIGKILL) after the create reached the simulator, which stored the invoice, and
// before the outcome was recorded. After the restart the action is in doubt: it is reconciled (QBO:
// the customer's invoices of the issue date, matched by the key's marker in PrivateNote; Xero: the
// Reference) and adopted, so the ledger holds exactly one invoice and the action is done with the
// result the invoicing workflow shows ("Invoice/<id> #<number>").

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/xero_simulator.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* action_id = "invoicing/milestone:eng-7:Return Filed/1";
constexpr const char* realm = "9130350000000001";
constexpr const char* tenant = "b2c3d4e5-0000-4000-8000-000000000001";
constexpr const char* start_time = "2026-12-01T15:00:00Z";

std::string config_text(const std::string& kind, const std::string& base_url) {
    std::string c = testing::simulated_daemon_toml("America/Chicago", start_time) +
                    "[connectors.books]\n"
                    "kind = \"" +
                    kind +
                    "\"\n"
                    "base_url = \"" +
                    base_url +
                    "\"\n"
                    "token_url = \"" +
                    base_url +
                    "/oauth2/token\"\n"
                    "client_id = \"sim-client-id\"\n"
                    "client_secret = \"sim-client-secret\"\n"
                    "poll_interval_s = 3600\n";
    if (kind == "qbo") {
        c += "webhook_verifier_token = \"qbo-verifier-token-crash\"\n"
             "realm_id = \"" +
             std::string(realm) + "\"\n";
    } else {
        c += "webhook_key = \"xero-crash-webhook-key\"\n"
             "tenant_id = \"" +
             std::string(tenant) + "\"\n";
    }
    return c;
}

// The action the invoicing workflow queues, put into the outbox before the daemon first starts.
void seed_action(const std::filesystem::path& data_dir, const std::string& client_ref) {
    std::filesystem::create_directories(data_dir);
    auto st = state::store::open(data_dir / "state");
    ASSERT_TRUE(st.ok()) << st.st.message;
    auto ob = state::outbox::open(*st.value);
    ASSERT_TRUE(ob.ok()) << ob.st.message;
    state::action a;
    a.id = action_id;
    a.connector = "books";
    a.kind = "invoice.create";
    a.payload = json{{"key", action_id},
                     {"client_ref", client_ref},
                     {"currency", "USD"},
                     {"issue_date", "2026-12-01"},
                     {"due_date", "2026-12-31"},
                     {"po_number", "PO-7"},
                     {"lines",
                      json::array({{{"description", "Return Filed (50% of 2,400.00)"},
                                    {"quantity", "1"},
                                    {"unit_amount_minor", 120000},
                                    {"amount_minor", 120000},
                                    {"account_code", "200"}}})}}
                    .dump();
    state::batch b(*st.value);
    ASSERT_TRUE(ob.value->enqueue(b, a).ok());
    ASSERT_TRUE(st.value->write(b, true).ok);
}

std::optional<state::action> stored_action(const std::filesystem::path& data_dir) {
    auto st = state::store::open(data_dir / "state");
    if (!st.ok()) {
        return std::nullopt;
    }
    auto ob = state::outbox::open(*st.value);
    if (!ob.ok()) {
        return std::nullopt;
    }
    auto a = ob.value->get(action_id);
    return a.ok() ? a.value : std::nullopt;
}

util::instant now() { return testing::parse_time(start_time); }

// Kills the daemon once `stored()` says the ledger holds the invoice (its answer held back),
// then restarts it until the in-doubt action is recorded; `lookups()` counts reconcile reads.
std::optional<state::action> crash_and_recover(testing::billsync_daemon& daemon,
                                               const std::filesystem::path& data_dir,
                                               const std::function<bool()>& stored,
                                               const std::function<void()>& release,
                                               const std::function<std::size_t()>& lookups) {
    EXPECT_TRUE(daemon.start()) << daemon.output();
    EXPECT_TRUE(testing::eventually(stored)) << daemon.output();
    daemon.kill();
    release();
    std::optional<state::action> after;
    for (int round = 0; round < 5; ++round) {
        const auto before = lookups();
        EXPECT_TRUE(daemon.start()) << daemon.output();
        EXPECT_TRUE(testing::eventually([&] { return lookups() > before; })) << daemon.output();
        EXPECT_TRUE(daemon.stop().has_value());
        after = stored_action(data_dir);
        if (after && after->state == state::action_state::done) {
            break;
        }
    }
    return after;
}

TEST(ledger_crash, an_invoice_created_before_a_sigkill_is_created_once_in_qbo) {
    testing::temp_dir dir;
    simulators::qbo_sim_options o;
    o.realms = {realm};
    o.now = [] { return now(); };
    simulators::qbo_simulator sim(o);
    simulators::sim_server server;
    sim.add_routes(server.routes());
    sim.configure(server);
    ASSERT_EQ(server.start(), "");
    const auto data = dir.path() / "data";
    const auto customer =
        sim.add_customer(realm, json{{"DisplayName", "Acme Holdings"}}).value("Id", "");
    ASSERT_FALSE(customer.empty());
    ASSERT_EQ(simulators::seed_qbo_grant(data, sim, realm, now()), "");
    seed_action(data, customer);
    testing::billsync_daemon daemon(dir.path(), config_text("qbo", server.base_url()));

    sim.hold_create_answers(120s);  // stored, but the answer never reaches the daemon
    const auto after = crash_and_recover(
        daemon,
        data,
        [&] { return sim.count(realm, "Invoice") == 1; },
        [&] { sim.hold_create_answers(0ms); },
        [&] {
            std::size_t n = 0;
            for (const auto& r :
                 server.requests_to(std::string("/v3/company/") + realm + "/query")) {
                n += r.query.find("TxnDate") != std::string::npos ? 1 : 0;
            }
            return n;
        });
    ASSERT_TRUE(after);
    EXPECT_EQ(after->state, state::action_state::done) << daemon.output();
    ASSERT_EQ(sim.count(realm, "Invoice"), 1u);
    EXPECT_EQ(sim.creates(), 1u);
    EXPECT_EQ(sim.requestid_replays(), 0u);  // adopted by the lookup, not sent again
    const auto inv = *sim.get(realm, "Invoice", "1");
    EXPECT_EQ(after->result, "Invoice/1 #" + inv.value("DocNumber", std::string("?")));
    EXPECT_NE(inv.value("PrivateNote", "").find(action_id), std::string::npos);
}

// Issue 12: the draft-time workflow's TimeActivity, the same way. After the restart the action is
// reconciled (the TimeActivities of the draft's date, matched by the key in Description) and
// adopted: one activity, never sent again.
TEST(ledger_crash, a_time_activity_created_before_a_sigkill_is_created_once_in_qbo) {
    testing::temp_dir dir;
    simulators::qbo_sim_options o;
    o.realms = {realm};
    o.now = [] { return now(); };
    simulators::qbo_simulator sim(o);
    simulators::sim_server server;
    sim.add_routes(server.routes());
    sim.configure(server);
    ASSERT_EQ(server.start(), "");
    const auto data = dir.path() / "data";
    const auto customer =
        sim.add_customer(realm, json{{"DisplayName", "Acme Holdings"}}).value("Id", "");
    const auto employee =
        sim.add_employee(realm,
                         json{{"DisplayName", "Kim Allen"},
                              {"PrimaryEmailAddr", {{"Address", "kim@example-cpa.com"}}}})
            .value("Id", "");
    sim.add_item(realm, json{{"Name", "Tax Preparation"}, {"UnitPrice", 150}});
    ASSERT_FALSE(customer.empty());
    ASSERT_EQ(simulators::seed_qbo_grant(data, sim, realm, now()), "");
    const std::string key = "draft_time:karbon:work:W1:1";
    {
        std::filesystem::create_directories(data);
        auto st = state::store::open(data / "state");
        ASSERT_TRUE(st.ok()) << st.st.message;
        auto ob = state::outbox::open(*st.value);
        ASSERT_TRUE(ob.ok()) << ob.st.message;
        state::action a;
        a.id = key;
        a.connector = "books";
        a.kind = "time_entry.create";
        a.payload = json{
            {"key", key},
            {"group_id", "karbon:work:W1"},
            {"client_ref", std::string(realm) + "/client/" + customer},
            {"user_ref", employee},
            {"project", "-"},
            {"task", "Tax Preparation"},
            {"spent_date", "2026-12-01"},
            {"hours", "3.5"},
            {"notes", "2025 1040 - Acme - drafted by billsync"},
            {"billable",
             true}}.dump();
        state::batch b(*st.value);
        ASSERT_TRUE(ob.value->enqueue(b, a).ok());
        ASSERT_TRUE(st.value->write(b, true).ok);
    }
    testing::billsync_daemon daemon(dir.path(), config_text("qbo", server.base_url()));

    sim.hold_create_answers(120s);  // stored, but the answer never reaches the daemon
    const auto stored_time = [&]() -> std::optional<state::action> {
        auto st = state::store::open(data / "state");
        if (!st.ok()) {
            return std::nullopt;
        }
        auto ob = state::outbox::open(*st.value);
        if (!ob.ok()) {
            return std::nullopt;
        }
        auto a = ob.value->get(key);
        return a.ok() ? a.value : std::nullopt;
    };
    const auto lookups = [&] {
        std::size_t n = 0;
        for (const auto& r : server.requests_to(std::string("/v3/company/") + realm + "/query")) {
            n += r.query.find("TimeActivity") != std::string::npos &&
                         r.query.find("TxnDate") != std::string::npos
                     ? 1
                     : 0;
        }
        return n;
    };
    EXPECT_TRUE(daemon.start()) << daemon.output();
    EXPECT_TRUE(testing::eventually([&] { return sim.count(realm, "TimeActivity") == 1; }))
        << daemon.output();
    daemon.kill();
    sim.hold_create_answers(0ms);
    std::optional<state::action> after;
    for (int round = 0; round < 5; ++round) {
        const auto before = lookups();
        EXPECT_TRUE(daemon.start()) << daemon.output();
        EXPECT_TRUE(testing::eventually([&] { return lookups() > before; })) << daemon.output();
        EXPECT_TRUE(daemon.stop().has_value());
        after = stored_time();
        if (after && after->state == state::action_state::done) {
            break;
        }
    }
    ASSERT_TRUE(after);
    EXPECT_EQ(after->state, state::action_state::done) << daemon.output();
    EXPECT_EQ(after->result, "TimeActivity/1 (existing)");
    ASSERT_EQ(sim.count(realm, "TimeActivity"), 1u);
    EXPECT_EQ(sim.creates(), 1u);
    EXPECT_EQ(sim.requestid_replays(), 0u);  // adopted by the lookup, not sent again
}

TEST(ledger_crash, an_invoice_created_before_a_sigkill_is_created_once_in_xero) {
    testing::temp_dir dir;
    simulators::xero_sim_options o;
    o.tenants = {tenant};
    o.webhook_key = "xero-crash-webhook-key";
    o.now = [] { return now(); };
    simulators::xero_simulator sim(o);
    simulators::sim_server server;
    sim.add_routes(server.routes());
    sim.configure(server);
    ASSERT_EQ(server.start(), "");
    const auto data = dir.path() / "data";
    const auto contact =
        sim.add_contact(tenant, json{{"Name", "Acme Holdings"}, {"EmailAddress", "ap@acme.test"}})
            .value("ContactID", "");
    ASSERT_FALSE(contact.empty());
    {
        // What `billsync connect books` would have stored.
        std::error_code ec;
        std::filesystem::create_directories(data, ec);
        std::filesystem::permissions(data, std::filesystem::perms::owner_all, ec);
        auto st = state::store::open(data / "state");
        ASSERT_TRUE(st.ok()) << st.st.message;
        connectors::token_store tokens(*st.value, std::nullopt);
        const auto grant = sim.oauth().issue_grant();
        connectors::oauth2::credential c;
        c.id = std::string("xero/") + tenant;
        c.vendor = "xero";
        c.account = tenant;
        c.access_token = grant.access_token;
        c.access_expires_at = now() + grant.expires_in;
        c.refresh_token = grant.refresh_token;
        c.connected_at = now();
        c.refreshed_at = now();
        ASSERT_TRUE(connectors::oauth2::store_credential(tokens, c).ok);
    }
    seed_action(data, contact);
    testing::billsync_daemon daemon(dir.path(), config_text("xero", server.base_url()));

    sim.hold_create_answers(120s);  // stored, but the answer never reaches the daemon
    const auto after = crash_and_recover(
        daemon,
        data,
        [&] { return sim.count(tenant, "Invoices") == 1; },
        [&] { sim.hold_create_answers(0ms); },
        [&] {
            std::size_t n = 0;
            for (const auto& r : server.requests_to("/api.xro/2.0/Invoices")) {
                n += r.method == "GET" && r.query.find("Reference") != std::string::npos ? 1 : 0;
            }
            return n;
        });
    ASSERT_TRUE(after);
    EXPECT_EQ(after->state, state::action_state::done) << daemon.output();
    ASSERT_EQ(sim.count(tenant, "Invoices"), 1u);
    EXPECT_EQ(sim.invoices_created(), 1u);
    EXPECT_EQ(sim.idempotent_replays(), 0u);  // adopted by the lookup, not sent again
    const auto id = after->result.substr(8, after->result.find(' ') - 8);
    const auto inv = sim.get(tenant, "Invoices", id);
    ASSERT_TRUE(inv) << after->result;
    EXPECT_EQ(after->result,
              "Invoice/" + id + " #" + inv->value("InvoiceNumber", std::string("?")));
    EXPECT_EQ(inv->value("Status", ""), "AUTHORISED");
}

}  // namespace
}  // namespace billsync
