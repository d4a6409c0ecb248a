// Karbon end to end through the daemon. Karbon has no idempotency key. A task.create whose work
// item was made while the daemon died (SIGKILL between Karbon's effect and the stored outcome) is
// looked up by its keyed title after the restart and adopted: one work item, one POST, the action
// done.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/karbon/karbon_connector.hpp"
#include "http/client.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* action_id = "followup.t3.task/inv-1042/1";

std::string config_text(const std::string& base_url) {
    return "[daemon]\n"
           "data_dir = \"data\"\n"
           "time_zone = \"America/Chicago\"\n"
           "public_url = \"https://billsync.smithlee.example\"\n"
           "log_level = \"info\"\n"
           "[daemon.webhook_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.status_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.clock]\n"
           "mode = \"simulated\"\n"
           "start = \"2026-01-05T15:00:00Z\"\n"
           "[connectors.practice]\n"
           "kind = \"karbon\"\n"
           "base_url = \"" +
           base_url +
           "\"\n"
           "bearer_token = \"${env:KARBON_BEARER}\"\n"
           "access_key = \"${env:KARBON_ACCESS}\"\n"
           "webhook_signing_key = \"${env:KARBON_SIGNING}\"\n"
           "task_assignee_email = \"coordinator@smithlee.example\"\n";
}

// Puts one task.create action into the daemon's outbox before it first starts (no rule of this
// build emits it yet).
void seed_action(const std::filesystem::path& data_dir) {
    std::filesystem::create_directories(data_dir);
    auto st = state::store::open(data_dir / "state");
    ASSERT_TRUE(st.ok()) << st.st.message;
    auto ob = state::outbox::open(*st.value);
    ASSERT_TRUE(ob.ok()) << ob.st.message;
    state::action a;
    a.id = action_id;
    a.connector = "practice";
    a.kind = "task.create";
    a.payload = json{{"title", "Account hold: Acme Holdings"},
                     {"client_key", "3Org5Acme7Key"},
                     {"client_type", "Organization"},
                     {"description", "Invoice 1042 is 30 days overdue."}}
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

// A Karbon simulator on loopback and a daemon configured against it.
struct karbon_firm {
    explicit karbon_firm(const std::string& signing_key) {
        sim.add_routes(server.routes());
        sim.configure(server);
        started = server.start();
        daemon = std::make_unique<testing::billsync_daemon>(
            dir.path(),
            config_text(server.base_url()),
            std::vector<std::string>{"KARBON_BEARER=" + options.bearer_token,
                                     "KARBON_ACCESS=" + options.access_key,
                                     "KARBON_SIGNING=" + signing_key});
    }
    testing::temp_dir dir;
    simulators::karbon_options options;
    simulators::karbon_simulator sim{options};
    simulators::sim_server server;
    std::string started;
    std::unique_ptr<testing::billsync_daemon> daemon;
};

TEST(karbon_crash, a_task_created_before_a_sigkill_is_adopted_not_created_again) {
    karbon_firm firm("crash-test-karbon-signing-key");
    ASSERT_EQ(firm.started, "");
    auto& sim = firm.sim;
    auto& server = firm.server;
    auto& daemon = *firm.daemon;
    const auto& dir = firm.dir;
    seed_action(dir.path() / "data");

    // The work item is made, but its answer never reaches the daemon before it dies.
    sim.hold_create_answers(120s);
    ASSERT_TRUE(daemon.start()) << daemon.output();
    ASSERT_TRUE(testing::eventually([&] { return sim.work_item_count() == 1; })) << daemon.output();
    daemon.kill();

    sim.hold_create_answers(0ms);
    const auto title = connectors::karbon::keyed_title("Account hold: Acme Holdings", action_id);
    const auto lookups = [&] {
        std::size_t n = 0;
        for (const auto& r : server.requests_to("/v3/WorkItems")) {
            n += r.method == "GET" && r.query.find("Title") != std::string::npos ? 1 : 0;
        }
        return n;
    };
    std::optional<state::action> after;
    for (int round = 0; round < 5; ++round) {
        const auto before = lookups();
        ASSERT_TRUE(daemon.start()) << daemon.output();
        ASSERT_TRUE(testing::eventually([&] { return lookups() > before; })) << daemon.output();
        ASSERT_TRUE(daemon.stop().has_value());
        after = stored_action(dir.path() / "data");
        if (after && after->state == state::action_state::done) {
            break;
        }
    }
    ASSERT_TRUE(after);
    EXPECT_EQ(after->state, state::action_state::done) << daemon.output();
    EXPECT_NE(after->result.find("(existing)"), std::string::npos) << after->result;
    EXPECT_EQ(sim.creates_received(), 1u);
    ASSERT_EQ(sim.work_item_count(), 1u);
    EXPECT_EQ(sim.work_items().front()["Title"], title);
}

// The daemon owns its subscriptions and answers 401 to anything it did not sign, replays included.
TEST(karbon_daemon, subscribes_at_start_and_refuses_unsigned_forged_and_replayed_deliveries) {
    const std::string signing = "daemon-test-karbon-signing-key";
    karbon_firm firm(signing);
    ASSERT_EQ(firm.started, "");
    auto& sim = firm.sim;
    auto& daemon = *firm.daemon;
    ASSERT_TRUE(daemon.start()) << daemon.output();
    ASSERT_TRUE(testing::eventually([&] { return sim.subscriptions().size() == 2; }))
        << daemon.output();
    for (const auto& [type, sub] : sim.subscriptions()) {
        EXPECT_EQ(sub["TargetUrl"], "https://billsync.smithlee.example/webhooks/practice") << type;
        EXPECT_EQ(sub["SigningKey"], signing) << type;
    }
    const auto post = [&](const std::string& body, const std::string& signature) {
        std::vector<http::header> h = {{"Content-Type", "application/json"}};
        if (!signature.empty()) {
            h.push_back({"Signature", signature});
        }
        return http::fetch(
                   "127.0.0.1", daemon.webhook_port(), "POST", "/webhooks/practice", h, body)
            .status;
    };
    const auto fresh = json{{"ResourcePermaKey", "4ndQ2tSh7yPk"},
                            {"ResourceType", "Work"},
                            {"ActionType", "Updated"},
                            {"TimeStamp", "2026-01-05T14:59:00Z"}}
                           .dump();
    auto stale = json::parse(fresh);
    stale["TimeStamp"] = "2026-01-03T09:00:00Z";  // two days before the daemon's clock
    EXPECT_EQ(post(fresh, simulators::karbon_simulator::sign(signing, fresh)), 200u);
    EXPECT_EQ(post(fresh, ""), 401u);
    EXPECT_EQ(post(fresh, simulators::karbon_simulator::sign("not-the-signing-key-0", fresh)),
              401u);
    EXPECT_EQ(post(stale.dump(), simulators::karbon_simulator::sign(signing, stale.dump())), 401u);
    const auto status = json::parse(daemon.status_get("/status").body, nullptr, false);
    ASSERT_TRUE(status.is_object()) << daemon.status_get("/status").body;
    const auto text = status.dump();
    EXPECT_NE(text.find("\"rejected_replay\":1"), std::string::npos) << text;
    EXPECT_NE(text.find("\"rejected_signature\":2"), std::string::npos) << text;
    EXPECT_TRUE(daemon.stop().has_value());
}

}  // namespace
}  // namespace billsync
