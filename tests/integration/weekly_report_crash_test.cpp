// The weekly report through the daemon, against the SendGrid simulator: the week's snapshot is
// taken at its end, the report goes to each partner on the firm's day and hour, and SIGKILL
// rounds before, during and after the send never make a partner get a week's report twice (nor
// change what the week's report says).

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;

// Tuesday 1 December 2026, 10:00 in New York.
constexpr const char* start_time = "2026-12-01T15:00:00Z";

std::string config_text(const simulators::sendgrid_simulator& mail, const std::string& base) {
    return testing::simulated_daemon_toml("America/New_York", start_time) +
           "[connectors.mail]\n"
           "kind = \"sendgrid\"\n"
           "base_url = \"" +
           base +
           "\"\n"
           "api_key = \"SG.simulated-key\"\n"
           "from_email = \"billing@smithlee.example\"\n"
           "event_webhook_public_key = \"" +
           mail.public_key_base64() +
           "\"\n"
           "inbound_secret = \"inbound-secret\"\n"
           "[report]\n"
           "week_end_day = \"sun\"\n"
           "send_day = \"mon\"\n"
           "send_hour = 8\n"
           "to = [\"ann@smithlee.example\", \"bob@smithlee.example\"]\n";
}

class weekly_report_crash : public ::testing::Test {
protected:
    void SetUp() override {
        mail_.add_routes(server_.routes());
        ASSERT_EQ(server_.start(), "");
        daemon_ = std::make_unique<testing::billsync_daemon>(
            dir_.path(), config_text(mail_, server_.base_url()));
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
    }

    void restart() {
        daemon_->kill();
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
    }

    // Reports received per (recipient, week).
    std::map<std::pair<std::string, std::string>, int> received() {
        std::map<std::pair<std::string, std::string>, int> out;
        for (const auto& m : mail_.messages()) {
            const auto w = m.subject.find("2026-W");
            out[{m.to, w == std::string::npos ? m.subject : m.subject.substr(w, 8)}] += 1;
        }
        return out;
    }

    json report(const std::string& week) {
        const auto r = daemon_->status_get("/reports/weekly?week=" + week);
        EXPECT_EQ(r.status, 200u) << r.body;
        auto j = json::parse(r.body, nullptr, false);
        EXPECT_TRUE(j.is_object()) << r.status << " " << r.body;
        return j.is_object() ? j : json::object();
    }

    testing::temp_dir dir_;
    simulators::sendgrid_simulator mail_;
    simulators::sim_server server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(weekly_report_crash, each_partner_gets_each_weeks_report_once_across_sigkill) {
    // Sunday 23:00: the week is not over, nothing is stored or sent.
    ASSERT_NE(daemon_->advance(5 * 86400 + 13 * 3600), "") << daemon_->output();
    EXPECT_EQ(report("2026-W49").value("final", true), false);
    EXPECT_TRUE(mail_.messages().empty());

    // Monday 02:00: the snapshot is taken; killed before the send.
    ASSERT_NE(daemon_->advance(3 * 3600), "") << daemon_->output();
    const auto snapshot = report("2026-W49");
    EXPECT_EQ(snapshot.value("source", ""), "snapshot") << snapshot.dump();
    restart();
    EXPECT_EQ(report("2026-W49"), snapshot);
    EXPECT_TRUE(mail_.messages().empty());

    // Monday 08:00: sent; killed as soon as the simulator has both, before the daemon may have
    // recorded the outcome.
    ASSERT_NE(daemon_->advance(6 * 3600), "") << daemon_->output();
    ASSERT_TRUE(testing::eventually([&] { return mail_.messages().size() == 2; }))
        << daemon_->output();
    for (int round = 0; round < 3; ++round) {
        restart();
        ASSERT_NE(daemon_->advance(3600), "") << daemon_->output();
    }
    ASSERT_TRUE(daemon_->advance(0) != "");
    auto got = received();
    EXPECT_EQ(got.size(), 2u);
    EXPECT_EQ((got[{"ann@smithlee.example", "2026-W49"}]), 1);
    EXPECT_EQ((got[{"bob@smithlee.example", "2026-W49"}]), 1);
    const auto m = mail_.messages().front();
    const auto body = json::parse(m.body, nullptr, false);
    std::set<std::string> types;
    for (const auto& c : body.value("content", json::array())) {
        types.insert(c.value("type", ""));
    }
    EXPECT_EQ(types, (std::set<std::string>{"text/plain", "text/html"})) << m.body;
    EXPECT_EQ(report("2026-W49"), snapshot);

    // The next week: killed right after the clock passed the send time; once more each.
    ASSERT_NE(daemon_->advance(7 * 86400), "") << daemon_->output();
    ASSERT_TRUE(testing::eventually([&] { return mail_.messages().size() == 4; }))
        << daemon_->output();
    restart();
    ASSERT_NE(daemon_->advance(3600), "") << daemon_->output();
    got = received();
    EXPECT_EQ((got[{"ann@smithlee.example", "2026-W50"}]), 1);
    EXPECT_EQ((got[{"bob@smithlee.example", "2026-W50"}]), 1);
    EXPECT_EQ(mail_.messages().size(), 4u);

    // The CLI reads the same week next to the running daemon.
    const auto [rc, out] = daemon_->cli({"report", "weekly", "--week", "2026-W49", "--json"});
    EXPECT_EQ(rc, 0) << out;
    const auto cli = json::parse(out, nullptr, false);
    EXPECT_EQ(cli, snapshot) << out;
    ASSERT_TRUE(daemon_->stop().has_value());
}

}  // namespace
}  // namespace billsync
