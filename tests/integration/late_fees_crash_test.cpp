// Late fees end to end through the daemon, against the QBO simulator: an invoice stays unpaid,
// the policy's monthly period begins, the fee is assessed and approved automatically, and the
// daemon is killed (SIGKILL) after QuickBooks stored the fee invoice but before its answer came
// back. After the restart the fee invoice is found, not created again: exactly one fee invoice
// for the period, and the fee is shown as created with it.

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <nlohmann/json.hpp>

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

constexpr const char* realm = "9130350000000091";
// Monday 2026-11-30, 09:00 in Chicago: the policy's period 2 begins tomorrow at 06:00.
constexpr const char* start_time = "2026-11-30T15:00:00Z";

std::string config_text(const std::string& qbo_base) {
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
           "webhook_verifier_token = \"qbo-verifier-token-late-fees\"\n"
           "realm_id = \"" +
           realm +
           "\"\n"
           "poll_interval_s = 3600\n"
           "[late_fees]\n"
           "percent_per_month = \"1.5\"\n"
           "grace_days = 0\n"
           "auto_approve = true\n"
           "run_hour = 6\n"
           "start = \"2026-12-01\"\n";
}

util::instant now() { return testing::parse_time(start_time); }

TEST(late_fees_crash, a_fee_killed_mid_create_exists_once_at_the_ledger) {
    testing::temp_dir dir;
    simulators::qbo_sim_options qo;
    qo.realms = {realm};
    qo.now = [] { return now(); };
    simulators::qbo_simulator qbo(qo);
    simulators::sim_server qbo_server;
    qbo.add_routes(qbo_server.routes());
    qbo.configure(qbo_server);
    ASSERT_EQ(qbo_server.start(), "");

    const auto customer =
        qbo.add_customer(realm, json{{"DisplayName", "Cedar Farms"}}).value("Id", "");
    ASSERT_FALSE(customer.empty());
    // Due 1 November: period 1 (from 1 November) began before the policy's start and is never
    // charged; period 2 begins 1 December.
    const auto overdue = qbo.add_invoice(
        realm,
        json{{"CustomerRef", {{"value", customer}}},
             {"DueDate", "2026-11-01"},
             {"DocNumber", "1043"},
             {"Line",
              json::array(
                  {{{"Amount", 1200.00},
                    {"DetailType", "SalesItemLineDetail"},
                    {"SalesItemLineDetail",
                     {{"ItemRef", {{"value", "1"}}}, {"Qty", 1}, {"UnitPrice", 1200.00}}}}})}});
    const std::string overdue_id = overdue.value("Id", "");
    ASSERT_FALSE(overdue_id.empty());
    ASSERT_EQ(simulators::seed_qbo_grant(dir.path() / "data", qbo, realm, now()), "");
    ASSERT_EQ(qbo.count(realm, "Invoice"), 1u);

    testing::billsync_daemon daemon(dir.path(), config_text(qbo_server.base_url()));
    ASSERT_TRUE(daemon.start()) << daemon.output();
    ASSERT_TRUE(testing::eventually([&] {
        auto [rc, out] = daemon.cli({"inspect", "cursor/books/sync"});
        return rc == 0 && out.find("\"cdc\"") != std::string::npos;
    })) << daemon.output();

    // QuickBooks stores the fee invoice and its answer is lost: the daemon dies meanwhile.
    qbo.hold_create_answers(120s);
    auto advancing = std::async(std::launch::async, [&] { return daemon.advance(24 * 3600); });
    ASSERT_TRUE(testing::eventually([&] { return qbo.count(realm, "Invoice") == 2; }))
        << daemon.output();
    daemon.kill();
    advancing.wait();
    qbo.hold_create_answers(0ms);

    // Restarted (more than once: a crash during the recovery changes nothing either).
    std::string state;
    for (int round = 0; round < 3 && state != "created"; ++round) {
        ASSERT_TRUE(daemon.start()) << daemon.output();
        ASSERT_NE(daemon.advance(60), "") << daemon.output();
        testing::eventually([&] {
            const auto j = json::parse(
                daemon.status_get("/workflows/late_fees/show/1043").body, nullptr, false);
            if (!j.is_object()) {
                return false;
            }
            for (const auto& p : j.value("periods", json::array())) {
                if (p.value("state", "") == "created") {
                    state = "created";
                }
            }
            return state == "created";
        });
        ASSERT_TRUE(daemon.stop().has_value());
    }
    EXPECT_EQ(state, "created") << daemon.output();
    // Two invoices: the overdue one and its fee, which is not charged a fee of its own.
    EXPECT_EQ(qbo.count(realm, "Invoice"), 2u) << daemon.output();
    EXPECT_EQ(qbo.creates(), 1u);
    const auto fee = *qbo.get(realm, "Invoice", "2");
    EXPECT_EQ(fee.value("CustomerRef", json::object()).value("value", ""), customer);
    // 1.5 % of 1,200.00 = 18.00, quoted with the period in the line.
    EXPECT_NE(fee.dump().find("18"), std::string::npos) << fee.dump();
    EXPECT_NE(fee.dump().find("1043"), std::string::npos) << fee.dump();
}

}  // namespace
}  // namespace billsync
