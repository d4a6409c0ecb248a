// Seeded chaos runs in CI (docs/chaos.md): a fixed set of seeds through `billsync sandbox --chaos`,
// each a short firm run with faulty vendors and daemon kills, every invariant checked. The long
// sweep is the documented command; this keeps every build honest in a few minutes.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/fakes/daemon_process.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

TEST(chaos, fixed_seeds_keep_every_invariant_through_faults_and_kills) {
    testing::temp_dir dir;
    testing::daemon_process p({testing::billsync_binary(),
                               "sandbox",
                               "--chaos",
                               "--seed",
                               "1",
                               "--runs",
                               "2",
                               "--days",
                               "2",
                               "--dir",
                               dir.path().string()},
                              {},
                              true);
    const auto rc = p.wait_exit(std::chrono::minutes(10));
    const auto out = p.output();
    ASSERT_TRUE(rc.has_value()) << out;
    EXPECT_EQ(*rc, 0) << out;
    // One line per run, then the figures as one JSON object on the last line.
    for (const char* seed : {"seed 1: ", "seed 2: "}) {
        EXPECT_NE(out.find(seed), std::string::npos) << seed << "\n" << out;
    }
    auto end = out.find_last_not_of('\n');
    ASSERT_NE(end, std::string::npos);
    const auto start = out.rfind('\n', end);
    const auto last = out.substr(start == std::string::npos ? 0 : start + 1, end + 1);
    const auto j = nlohmann::json::parse(last.substr(0, last.find('\n')), nullptr, false);
    ASSERT_TRUE(j.is_object()) << last;
    EXPECT_EQ(j.value("bench", ""), "chaos");
    EXPECT_EQ(j.value("runs", 0), 2);
    EXPECT_GT(j.value("faults", 0), 0) << "the vendors never misbehaved";
    EXPECT_GT(j.value("kills", 0), 0) << "the daemon was never killed";
    EXPECT_EQ(j.value("violations", -1), 0) << out;
}

}  // namespace
}  // namespace billsync
