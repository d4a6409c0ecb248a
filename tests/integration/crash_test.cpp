// Crash test: signed deliveries (with duplicates) are posted while the daemon is killed with
// SIGKILL at random moments and restarted, several rounds. Afterwards every delivery that got a
// 200 was processed exactly once and every outbox action ran exactly once against the recorder.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "tests/fakes/action_recorder.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

constexpr const char* secret = "crash-test-secret";

std::string config_text(const std::string& action_url) {
    return "[daemon]\n"
           "data_dir = \"data\"\n"
           "time_zone = \"UTC\"\n"
           "log_level = \"info\"\n"
           "[daemon.webhook_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.status_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.clock]\n"
           "mode = \"simulated\"\n"
           "start = \"2026-01-05T14:00:00Z\"\n"
           "[connectors.demo]\n"
           "kind = \"generic\"\n"
           "secret = \"${env:CRASH_SECRET}\"\n"
           "event_id_header = \"X-Event-Id\"\n"
           "action_url = \"" +
           action_url + "\"\n";
}

// Deliveries waiting to be acknowledged, shared by the poster threads of one round.
struct work_queue {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<int> todo;
    std::set<int> acked;
    int acked_this_round = 0;
    std::uint64_t posts = 0;
    std::uint64_t duplicates_posted = 0;
    std::uint64_t failed_posts = 0;
};

std::string body_of(int id) {
    return nlohmann::json{{"id", "d" + std::to_string(id)}, {"amount", 1000 + id}}.dump();
}

TEST(crash, acknowledged_deliveries_are_processed_once_and_actions_run_once_across_kills) {
    constexpr int deliveries = 600;
    constexpr int rounds = 8;
    constexpr int posters = 4;
    testing::temp_dir dir;
    testing::action_recorder recorder;
    testing::billsync_daemon daemon(
        dir.path(), config_text(recorder.url()), {std::string("CRASH_SECRET=") + secret});
    std::mt19937 rng(20261123);
    recorder.set_delay(std::chrono::milliseconds(2));
    std::uint64_t reconciled_at_start = 0;

    work_queue q;
    for (int i = 0; i < deliveries; ++i) {
        q.todo.push_back(i);
    }
    int kills = 0;
    for (int round = 0; round <= rounds; ++round) {
        ASSERT_TRUE(daemon.start()) << daemon.output();
        // How many actions the previous kill left in flight (to be reconciled, not re-sent).
        const auto log = daemon.output();
        if (auto pos = log.find("will be reconciled count="); pos != std::string::npos) {
            reconciled_at_start += std::strtoull(log.c_str() + pos + 25, nullptr, 10);
        }
        const bool last = round == rounds;
        const int kill_after = std::uniform_int_distribution<int>(10, 90)(rng);
        {
            std::lock_guard lock(q.mutex);
            q.acked_this_round = 0;
        }
        std::atomic<bool> down{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < posters; ++t) {
            threads.emplace_back([&, t] {
                std::mt19937 local(static_cast<unsigned>(round * 100 + t));
                for (;;) {
                    int id;
                    {
                        std::lock_guard lock(q.mutex);
                        if (q.todo.empty() || down) {
                            return;
                        }
                        id = q.todo.front();
                        q.todo.pop_front();
                        ++q.posts;
                    }
                    const auto r = testing::post_signed(daemon.webhook_port(),
                                                        "demo",
                                                        secret,
                                                        body_of(id),
                                                        "d" + std::to_string(id));
                    std::lock_guard lock(q.mutex);
                    if (r.status != 200) {
                        // Refused or cut off by the kill: the vendor delivers again later.
                        ++q.failed_posts;
                        q.todo.push_back(id);
                        if (r.status == 0) {
                            down = true;
                            return;
                        }
                        continue;
                    }
                    q.acked.insert(id);
                    ++q.acked_this_round;
                    q.cv.notify_all();
                    // A quarter of the deliveries arrive twice, as vendors do.
                    if (std::uniform_int_distribution<int>(0, 3)(local) == 0) {
                        q.todo.push_back(id);
                        ++q.duplicates_posted;
                    }
                }
            });
        }
        if (!last) {
            std::unique_lock lock(q.mutex);
            q.cv.wait_for(lock, std::chrono::seconds(30), [&] {
                return q.acked_this_round >= kill_after || q.todo.empty();
            });
            lock.unlock();
            daemon.kill();
            ++kills;
            down = true;
        }
        for (auto& th : threads) {
            th.join();
        }
        if (last) {
            break;
        }
    }
    // The last round ran without a kill until every delivery was acknowledged.
    ASSERT_TRUE(q.todo.empty());
    ASSERT_EQ(q.acked.size(), static_cast<std::size_t>(deliveries));

    // Let the daemon finish whatever the kills interrupted (reconciling unknown actions first),
    // then look at everything it did.
    ASSERT_NE(daemon.advance(0), "");
    ASSERT_NE(daemon.advance(3600), "");
    const auto counts = recorder.counts();
    int executed_twice = 0;
    for (const auto& [key, n] : counts) {
        executed_twice += n > 1 ? 1 : 0;
    }
    std::set<std::string> expected;
    for (int id : q.acked) {
        expected.insert("notify:demo/d" + std::to_string(id) + ":1");
    }
    std::set<std::string> seen;
    for (const auto& [key, n] : counts) {
        seen.insert(key);
    }
    const auto [rc, out] = daemon.cli({"inspect", "counts"});
    ASSERT_EQ(rc, 0) << out;
    const auto rows = nlohmann::json::parse(out.substr(out.find('{')));
    const auto metrics = daemon.status_get("/metrics").body;
    std::printf(
        "crash test: deliveries=%d posts=%llu duplicates_posted=%llu failed_posts=%llu "
        "kills=%d acknowledged=%zu entities=%d changes=%d actions_recorded=%zu "
        "action_posts=%llu in_flight_at_kill=%llu executed_twice=%d inbox_left=%d "
        "dead_letters=%d\n",
        deliveries,
        static_cast<unsigned long long>(q.posts),
        static_cast<unsigned long long>(q.duplicates_posted),
        static_cast<unsigned long long>(q.failed_posts),
        kills,
        q.acked.size(),
        rows["entities"].get<int>(),
        rows["changes"].get<int>(),
        counts.size(),
        static_cast<unsigned long long>(recorder.posts()),
        static_cast<unsigned long long>(reconciled_at_start),
        executed_twice,
        rows["inbox"].get<int>(),
        rows["dead_letters"].get<int>());
    EXPECT_EQ(kills, rounds);
    EXPECT_EQ(seen, expected);
    EXPECT_EQ(executed_twice, 0);
    EXPECT_EQ(rows["entities"], deliveries);
    EXPECT_EQ(rows["changes"], deliveries);
    EXPECT_EQ(rows["inbox"], 0);
    EXPECT_EQ(rows["dead_letters"], 0);
    EXPECT_EQ(daemon.stop(), 0) << daemon.output();
}

}  // namespace
}  // namespace billsync
