#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon/tools.hpp"
#include "state/tables.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::daemon {
namespace {

using state::testing::at_s;

class inspect_audit_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = state::testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
        auto log = state::audit_log::open(*store_);
        ASSERT_TRUE(log.ok());
        // Many lines, one second apart, written in batches.
        for (int i = 0; i < lines; i += 5000) {
            state::batch b(*store_);
            for (int k = i; k < i + 5000; ++k) {
                log.value->append(b, at_s(k), nlohmann::json{{"n", k}}.dump());
            }
            ASSERT_TRUE(store_->write(b, false).ok);
        }
    }

    static constexpr int lines = 60'000;
    state::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
};

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

TEST_F(inspect_audit_test, the_last_lines_of_many) {
    std::ostringstream out;
    EXPECT_EQ(stream_audit(*store_, std::nullopt, 3, false, out), 3u);
    const auto got = split(out.str());
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[2], util::format_rfc3339(at_s(lines - 1)) + "  {\"n\":59999}");
    EXPECT_EQ(got[0], util::format_rfc3339(at_s(lines - 3)) + "  {\"n\":59997}");
}

TEST_F(inspect_audit_test, since_streams_every_line_from_then_on_as_json_lines) {
    std::ostringstream out;
    EXPECT_EQ(stream_audit(*store_, at_s(10'000), 0, true, out), 50'000u);
    const auto got = split(out.str());
    ASSERT_EQ(got.size(), 50'000u);
    const auto first = nlohmann::json::parse(got.front());
    EXPECT_EQ(first["n"], 10'000);
    EXPECT_EQ(first["at"], util::format_rfc3339(at_s(10'000)));
    EXPECT_EQ(nlohmann::json::parse(got.back())["n"], lines - 1);
}

TEST_F(inspect_audit_test, since_with_a_limit_stops_there) {
    std::ostringstream out;
    EXPECT_EQ(stream_audit(*store_, at_s(100), 2, true, out), 2u);
    const auto got = split(out.str());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(nlohmann::json::parse(got[1])["n"], 101);
}

}  // namespace
}  // namespace billsync::daemon
