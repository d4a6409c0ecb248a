// A lost create answer followed by SIGKILL: a child process records the draft action, marks it in
// flight and POSTs it; Harvest (the simulator) creates the entry but holds the answer, and the
// child is killed with SIGKILL before it hears back. After the "restart" (the store reopened
// here), the action is in doubt; the look-up by external reference finds the entry and adopts it,
// and performing it again creates nothing: exactly one entry.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "connectors/harvest/harvest_connector.hpp"
#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
namespace ch = connectors::harvest;

using connectors::testing::run;

struct fixture {
    connectors::rate_limiter limiter{connectors::real_time()};
    util::system_clock clock;
    net::io_context ioc;

    std::unique_ptr<ch::harvest_connector> make(const std::string& base) {
        limiter.set_limits("harvest", ch::rate_limits());
        ch::settings s;
        s.name = "time";
        s.base_url = base + "/v2";
        s.account_id = "123456";
        s.access_token = "sim-harvest-token";
        s.contact = "it@example-cpa.com";
        connectors::runtime_deps rt;
        rt.executor = ioc.get_executor();
        rt.clock = &clock;
        rt.limiter = &limiter;
        rt.http.proxy = connectors::proxy_settings{};
        rt.http.total_timeout = std::chrono::seconds(60);
        rt.http.read_timeout = std::chrono::seconds(60);
        rt.time = connectors::real_time();
        return std::make_unique<ch::harvest_connector>(s, rt);
    }
};

state::action draft(std::int64_t client) {
    state::action a;
    a.id = "draft_time:karbon:work:W1:1";
    a.connector = "time";
    a.kind = "time_entry.create";
    a.payload = json{
        {"key", a.id},
        {"group_id", "karbon:work:W1"},
        {"client_ref", "123456/client/" + std::to_string(client)},
        {"project", "2025 Tax Return"},
        {"task", "Tax Preparation"},
        {"spent_date", "2026-01-05"},
        {"hours", "3.5"},
        {"notes", "drafted by billsync"},
        {"billable",
         true}}.dump();
    return a;
}

TEST(harvest_crash, a_lost_create_answer_then_sigkill_leaves_exactly_one_entry) {
    billsync::testing::temp_dir dir;
    simulators::harvest_simulator sim;
    simulators::sim_server server;
    sim.add_routes(server.routes());
    sim.configure(server);
    sim.add_user("Kim", "Allen", "kim@example-cpa.com");
    const auto client = sim.add_client("Acme Dental");
    const auto project = sim.add_project(client, "2025 Tax Return");
    sim.assign_task(project, sim.add_task("Tax Preparation"));
    ASSERT_EQ(server.start(), "");
    sim.hold_create_answers(std::chrono::seconds(120));  // the create's answer never comes

    const auto path = dir.path() / "state";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The daemon: record the action, mark it in flight, perform it (never answered).
        auto st = state::store::open(path);
        if (!st.ok()) {
            ::_exit(2);
        }
        auto ob = state::outbox::open(*st.value);
        if (!ob.ok()) {
            ::_exit(3);
        }
        state::batch b(*st.value);
        (void)ob.value->enqueue(b, draft(client));
        if (!st.value->write(b, true).ok || !ob.value->mark_in_flight(draft(client).id).ok) {
            ::_exit(4);
        }
        fixture f;
        auto c = f.make(server.base_url());
        (void)run(f.ioc, c->perform(draft(client)));
        ::_exit(5);
    }
    // The entry exists at Harvest once the POST took effect; then the process dies.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (sim.time_entry_creates() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
    }
    ASSERT_EQ(sim.time_entry_creates(), 1U);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
    sim.hold_create_answers(std::chrono::milliseconds(0));

    // The restart: the in-flight action is in doubt.
    auto st = state::store::open(path);
    ASSERT_TRUE(st.ok()) << st.st.message;
    auto ob = state::outbox::open(*st.value);
    ASSERT_TRUE(ob.ok());
    auto doubt = ob.value->unknown(10);
    ASSERT_TRUE(doubt.ok());
    ASSERT_EQ(doubt.value.size(), 1U);
    fixture f;
    auto c = f.make(server.base_url());
    const auto r = run(f.ioc, c->reconcile(doubt.value.front()));
    EXPECT_EQ(r.k, connectors::reconcile_outcome::kind::happened) << r.detail;
    // Even a blind resend adopts the entry instead of creating another.
    const auto again = run(f.ioc, c->perform(doubt.value.front()));
    EXPECT_EQ(again.k, connectors::action_outcome::kind::done) << again.detail;
    EXPECT_EQ(sim.time_entry_creates(), 1U);
    ASSERT_EQ(sim.time_entries().size(), 1U);
    EXPECT_EQ(sim.time_entries().front()["external_reference"]["id"], draft(client).id);
}

}  // namespace
}  // namespace billsync
