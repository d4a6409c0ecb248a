// The webhook intake on its own: real state in a temp dir, a fake connector whose source
// authenticates with a secret in the URL (as an unsigned vendor route does). What the intake
// stores with an event, or with a dead letter, must not carry that secret.

#include "daemon/intake.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "state/dead_letters.hpp"
#include "state/group_commit.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/metrics.hpp"

namespace billsync::daemon {
namespace {

constexpr std::string_view url_secret = "url-secret-7f3a9c";

// Accepts a delivery whose ?token= is the secret; the body "bad" is malformed.
class url_token_connector final : public connectors::connector {
public:
    const std::string& name() const noexcept override { return name_; }
    std::string_view kind() const noexcept override { return "fake"; }
    bool accepts_route_kind(std::string_view kind) const noexcept override {
        return kind == "inbound";
    }
    connectors::verify_result verify(const http::request& req) const override {
        connectors::verify_result r;
        r.accepted = http::query_param(req.query, "token") == url_secret;
        r.dedup_key = "body:" + req.body;
        return r;
    }
    std::string check_payload(std::string_view body) const override {
        return body == "bad" ? "not a form" : "";
    }
    state::result<std::vector<mappings::change>> process(const state::inbox_event&,
                                                         const state::store&,
                                                         state::batch&) override {
        return {state::status::success(), {}};
    }
    net::awaitable<connectors::action_outcome> perform(state::action) override {
        co_return connectors::action_outcome{};
    }
    net::awaitable<connectors::reconcile_outcome> reconcile(state::action) override {
        co_return connectors::reconcile_outcome{};
    }

private:
    std::string name_ = "mail";
};

class intake_unit : public ::testing::Test {
protected:
    void SetUp() override {
        auto opened = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        store_ = std::move(opened.value);
        committer_ = std::make_unique<state::group_commit>(*store_);
        inbox_ = std::move(state::inbox::open(*store_, *committer_).value);
        intake_ = std::make_unique<intake>(
            intake::deps{{{"mail", &fake_}},
                         *store_,
                         *inbox_,
                         *committer_,
                         clock_,
                         metrics_,
                         std::make_shared<spdlog::logger>(
                             "intake", std::make_shared<spdlog::sinks::null_sink_mt>()),
                         [] {},
                         [](bool) {}});
    }

    http::response post(const std::string& target, std::string body) {
        http::request req;
        req.method = "POST";
        req.target = target;
        const auto q = target.find('?');
        req.path = target.substr(0, q);
        req.query = q == std::string::npos ? std::string() : target.substr(q + 1);
        req.body = std::move(body);
        req.remote = "127.0.0.1";
        auto f = net::co_spawn(ioc_, intake_->handle(std::move(req)), net::use_future);
        ioc_.run();
        ioc_.restart();
        return f.get();
    }

    testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    std::unique_ptr<state::group_commit> committer_;
    std::unique_ptr<state::inbox> inbox_;
    util::manual_clock clock_{util::instant(std::chrono::hours(24 * 20000))};
    util::metrics_registry metrics_;
    url_token_connector fake_;
    std::unique_ptr<intake> intake_;
    net::io_context ioc_;
};

TEST_F(intake_unit,
       a_secret_in_the_webhook_url_is_stored_with_neither_the_event_nor_a_dead_letter) {
    const std::string target =
        "/webhooks/mail/inbound?route=a%20b&token=" + std::string(url_secret) + "&Token=x&n=1";
    ASSERT_EQ(post(target, "good").status, 200u);
    ASSERT_EQ(post(target, "bad").status, 200u);  // malformed: a dead letter at once

    auto events = inbox_->peek("mail", 10);
    ASSERT_TRUE(events.ok()) << events.st.message;
    ASSERT_EQ(events.value.size(), 1u);
    const auto& stored = events.value[0].headers_json;
    EXPECT_EQ(stored.find(url_secret), std::string::npos) << stored;
    EXPECT_EQ(stored.find("token"), std::string::npos) << stored;
    // The rest of the target stays: some sources route by their query.
    EXPECT_NE(stored.find("/webhooks/mail/inbound?route=a%20b&n=1"), std::string::npos) << stored;

    std::vector<std::string> letters;
    auto st = store_->for_each(state::cf::dead_letters, "", [&](auto, std::string_view v) {
        letters.emplace_back(v);
        return true;
    });
    ASSERT_TRUE(st.ok) << st.message;
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(letters[0].find(url_secret), std::string::npos);
    state::dead_letter dl;
    ASSERT_TRUE(state::decode_dead_letter(letters[0], dl));
    EXPECT_EQ(dl.origin, "intake");
    EXPECT_NE(dl.record.find("route=a%20b&n=1"), std::string::npos);
}

TEST(without_query_params, removes_named_parameters_only) {
    EXPECT_EQ(http::without_query_params("/p?token=s", {"token"}), "/p");
    EXPECT_EQ(http::without_query_params("/p?a=1&token=s&b=2", {"token"}), "/p?a=1&b=2");
    EXPECT_EQ(http::without_query_params("/p?%74oken=s&TOKEN&b", {"token"}), "/p?b");
    EXPECT_EQ(http::without_query_params("/p?tokens=1", {"token"}), "/p?tokens=1");
    EXPECT_EQ(http::without_query_params("/p", {"token"}), "/p");
}

}  // namespace
}  // namespace billsync::daemon
