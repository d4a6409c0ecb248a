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
                               "4",
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
        const auto at = out.find(seed);
        ASSERT_NE(at, std::string::npos) << seed << "\n" << out;
        // Day 4: the partner approved the milestone drafts of both ledgers, so each run checked
        // an invoice created in QuickBooks and one created in Xero; and late fees the
        // coordinator approved each morning.
        const auto line = out.substr(at, out.find('\n', at) - at);
        EXPECT_NE(line.find(", 2 invoices and "), std::string::npos) << line;
        EXPECT_EQ(line.find(" and 0 late fees created"), std::string::npos) << line;
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

// A fault profile of one's own (--faults): Twilio refuses every message for good. The SMS touches
// end in dead letters, which the permanent fault explains, so the run passes; the same fault not
// marked permanent is a violation.
TEST(chaos, a_permanent_fault_from_a_profile_explains_its_dead_letters) {
    testing::temp_dir dir;
    const auto run = [&](const std::string& name, bool permanent) {
        const auto profile = dir.path() / (name + ".toml");
        testing::write_file(profile,
                            std::string("[twilio]\n[[twilio.request]]\nmethod = \"POST\"\n"
                                        "kind = \"server_error\"\nprobability = 1.0\n") +
                                (permanent ? "permanent = true\n" : "max_in_a_row = 0\n"));
        testing::daemon_process p({testing::billsync_binary(),
                                   "sandbox",
                                   "--chaos",
                                   "--seed",
                                   "3",
                                   "--days",
                                   "6",
                                   "--keep",
                                   "--faults",
                                   profile.string(),
                                   "--dir",
                                   (dir.path() / name).string()},
                                  {},
                                  true);
        const auto rc = p.wait_exit(std::chrono::minutes(10));
        return std::make_pair(rc.value_or(-1), p.output());
    };
    const auto [rc, out] = run("permanent", true);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("seed 3: "), std::string::npos) << out;
    testing::daemon_process counts({testing::billsync_binary(),
                                    "inspect",
                                    "counts",
                                    "--config",
                                    (dir.path() / "permanent/seed-3/billsync.toml").string()},
                                   {},
                                   true);
    ASSERT_EQ(counts.wait_exit(std::chrono::minutes(1)), 0) << counts.output();
    const auto text = counts.output();
    const auto j = nlohmann::json::parse(text.substr(text.find('{')), nullptr, false);
    ASSERT_TRUE(j.is_object()) << text;
    EXPECT_GT(j.value("dead_letters", 0), 0) << "no SMS was ever refused for good: " << text;

    const auto [rc2, out2] = run("not-permanent", false);
    EXPECT_EQ(rc2, 1) << out2;
    EXPECT_NE(out2.find("FAIL dead_letters_only_for_permanent_faults"), std::string::npos) << out2;
    EXPECT_NE(out2.find("--faults "), std::string::npos) << "the replay names the profile\n"
                                                         << out2;
}

// A profile with a mistake is refused with where it is, and nothing runs.
TEST(chaos, a_profile_with_a_mistake_is_refused_with_its_position) {
    testing::temp_dir dir;
    const auto profile = dir.path() / "faults.toml";
    testing::write_file(profile, "[qbo]\n[[qbo.request]]\nkind = \"explode\"\nprobability = 1\n");
    testing::daemon_process p({testing::billsync_binary(),
                               "sandbox",
                               "--chaos",
                               "--faults",
                               profile.string(),
                               "--dir",
                               (dir.path() / "runs").string()},
                              {},
                              true);
    const auto rc = p.wait_exit(std::chrono::minutes(1));
    ASSERT_TRUE(rc.has_value());
    EXPECT_EQ(*rc, 78) << p.output();
    EXPECT_NE(p.output().find(profile.string() + ":3:8: [[qbo.request]] #1: 'kind' must be one of"),
              std::string::npos)
        << p.output();
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "runs"));
}

}  // namespace
}  // namespace billsync
