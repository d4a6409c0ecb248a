#include "connectors/runtime/retry.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors {
namespace {

using namespace std::chrono_literals;
using simulators::scripted_response;
using simulators::sim_server;
using testing::get;
using testing::run;
using testing::start_sim;
using testing::test_settings;

call_error err(condition c, std::optional<std::chrono::milliseconds> ra = std::nullopt) {
    call_error e;
    e.cond = c;
    e.retry_after = ra;
    return e;
}

TEST(retry_delay, full_jitter_exponential_with_cap) {
    retry_policy p;
    p.max_attempts = 10;
    p.base = 100ms;
    p.cap = 1s;
    const auto r = get("https://x/");
    EXPECT_EQ(retry_delay(p, r, err(condition::retryable), 1, {}, 0.999), 99900us);
    EXPECT_EQ(retry_delay(p, r, err(condition::retryable), 3, {}, 0.5), 200ms);
    EXPECT_EQ(retry_delay(p, r, err(condition::retryable), 9, {}, 0.5), 500ms);
    EXPECT_EQ(retry_delay(p, r, err(condition::retryable), 1, {}, 0.0), 0ms);
}

TEST(retry_delay, honours_retry_after_and_limits) {
    retry_policy p;
    p.max_attempts = 3;
    p.max_total = 60s;
    p.max_retry_after = 30s;
    const auto r = get("https://x/");
    EXPECT_EQ(retry_delay(p, r, err(condition::rate_limited, 7s), 1, {}, 0.1), 7s);
    // Longer than a call may wait: handed back to the caller to park.
    EXPECT_EQ(retry_delay(p, r, err(condition::rate_limited, 3600s), 1, {}, 0.1), std::nullopt);
    // Attempts and total time are capped.
    EXPECT_EQ(retry_delay(p, r, err(condition::retryable), 3, {}, 0.1), std::nullopt);
    EXPECT_EQ(retry_delay(p, r, err(condition::rate_limited, 7s), 1, 55s, 0.1), std::nullopt);
    // Conditions that another attempt will not fix.
    for (auto c : {condition::auth_expired,
                   condition::auth_revoked,
                   condition::not_found,
                   condition::conflict,
                   condition::invalid_request,
                   condition::permanent}) {
        EXPECT_EQ(retry_delay(p, r, err(c), 1, {}, 0.1), std::nullopt);
    }
}

TEST(retry_delay, non_idempotent_requests_need_a_key_or_reconciliation) {
    retry_policy p;
    http_request post;
    post.method = "POST";
    EXPECT_FALSE(may_retry(post));
    EXPECT_EQ(retry_delay(p, post, err(condition::retryable), 1, {}, 0.5), std::nullopt);
    post.idempotency_key = "act-1";
    EXPECT_TRUE(may_retry(post));
    EXPECT_TRUE(retry_delay(p, post, err(condition::retryable), 1, {}, 0.5));
    http_request patch;
    patch.method = "PATCH";
    EXPECT_FALSE(may_retry(patch));
    patch.reconcilable = true;
    EXPECT_TRUE(may_retry(patch));
    for (auto m : {"GET", "PUT", "DELETE", "HEAD"}) {
        http_request r;
        r.method = m;
        EXPECT_TRUE(may_retry(r)) << m;
    }
}

// The client and the retry loop against scripted faults, with time on a manual clock.
class retry_against_sim : public ::testing::Test {
protected:
    void SetUp() override {
        sim_ = start_sim([](sim_server& s) {
            s.routes().add("GET", "/items", testing::text_ok);
            s.routes().add("POST", "/items", testing::text_ok);
        });
        auto settings = test_settings();
        settings.read_timeout = 300ms;
        client_ = std::make_unique<https_client>(ioc_.get_executor(), settings);
        policy_.max_attempts = 4;
        policy_.base = 1s;
        policy_.cap = 8s;
    }

    call_outcome call(http_request req, classify_fn classify = {}) {
        waits_.clear();
        retry_deps deps;
        deps.send = sender(*client_);
        deps.time = time_.source();
        deps.classify = std::move(classify);
        deps.random = [] { return 0.5; };
        deps.on_retry = [this](std::uint32_t, const call_error&, steady_duration d) {
            waits_.push_back(d);
        };
        return run(ioc_, send_with_retry(std::move(req), policy_, std::move(deps)));
    }

    std::string url() const { return sim_->base_url() + "/items"; }

    net::io_context ioc_;
    std::unique_ptr<sim_server> sim_;
    std::unique_ptr<https_client> client_;
    manual_steady_time time_;
    retry_policy policy_;
    std::vector<steady_duration> waits_;
};

TEST_F(retry_against_sim, rate_limited_then_ok_waits_retry_after) {
    sim_->script("GET", "/items", {scripted_response::rate_limited(7s)});
    const auto before = time_.now();
    auto out = call(get(url()));
    ASSERT_TRUE(out.ok()) << out.error->message;
    EXPECT_EQ(out.attempts, 2u);
    ASSERT_EQ(waits_.size(), 1u);
    EXPECT_EQ(waits_[0], 7s);
    EXPECT_EQ(time_.now() - before, 7s);
    EXPECT_EQ(sim_->request_count(), 2u);
}

TEST_F(retry_against_sim, server_errors_then_ok_back_off_exponentially) {
    sim_->script("GET",
                 "/items",
                 {scripted_response::server_error(503), scripted_response::server_error(500)});
    auto out = call(get(url()));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out.attempts, 3u);
    ASSERT_EQ(waits_.size(), 2u);
    EXPECT_EQ(waits_[0], 500ms);  // 0.5 × 1 s
    EXPECT_EQ(waits_[1], 1s);     // 0.5 × 2 s
}

TEST_F(retry_against_sim, gives_up_after_max_attempts) {
    sim_->script(
        "GET", "/items", std::vector<scripted_response>(6, scripted_response::server_error(502)));
    auto out = call(get(url()));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.attempts, 4u);
    EXPECT_EQ(out.error->cond, condition::retryable);
    EXPECT_EQ(out.error->status, 502u);
}

TEST_F(retry_against_sim, timeout_then_ok) {
    sim_->script("GET", "/items", {scripted_response::stall(10s)});
    auto out = call(get(url()));
    ASSERT_TRUE(out.ok()) << out.error->message;
    EXPECT_EQ(out.attempts, 2u);
}

TEST_F(retry_against_sim, dropped_connection_then_ok) {
    sim_->script("GET", "/items", {scripted_response::drop()});
    auto out = call(get(url()));
    ASSERT_TRUE(out.ok()) << out.error->message;
    EXPECT_EQ(out.attempts, 2u);
}

TEST_F(retry_against_sim, malformed_body_is_refined_by_the_vendor_classifier) {
    sim_->script("GET", "/items", {scripted_response::malformed_body()});
    // A vendor classifier: a 200 whose body is not JSON is a transient failure.
    classify_fn vendor = [](const http_result& r) -> std::optional<call_error> {
        if (auto e = classify(r)) {
            return e;
        }
        if (nlohmann::json::parse(r.response.body, nullptr, false).is_discarded()) {
            call_error e;
            e.cond = condition::retryable;
            e.message = "malformed JSON body";
            return e;
        }
        return std::nullopt;
    };
    auto out = call(get(url()), vendor);
    ASSERT_TRUE(out.ok()) << out.error->message;
    EXPECT_EQ(out.attempts, 2u);
    EXPECT_EQ(out.last.response.body, R"({"ok":true,"path":"/items"})");
}

TEST_F(retry_against_sim, expired_token_is_auth_expired_and_not_retried_here) {
    sim_->script("GET", "/items", {scripted_response::expired_token()});
    auto out = call(get(url()));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error->cond, condition::auth_expired);
    EXPECT_EQ(out.attempts, 1u);
}

TEST_F(retry_against_sim, post_without_key_is_never_retried) {
    sim_->script("POST", "/items", {scripted_response::server_error(503)});
    http_request post;
    post.method = "POST";
    post.url = url();
    post.body = "{}";
    auto out = call(post);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.attempts, 1u);
    EXPECT_EQ(sim_->request_count(), 1u);
}

TEST_F(retry_against_sim, post_with_idempotency_key_is_retried) {
    sim_->script("POST", "/items", {scripted_response::drop()});
    http_request post;
    post.method = "POST";
    post.url = url();
    post.headers = {{"Idempotency-Key", "act-42"}};
    post.idempotency_key = "act-42";
    post.body = "{}";
    auto out = call(post);
    ASSERT_TRUE(out.ok()) << out.error->message;
    EXPECT_EQ(out.attempts, 2u);
    for (const auto& r : sim_->requests()) {
        EXPECT_EQ(r.header_value("Idempotency-Key"), "act-42");
    }
}

TEST_F(retry_against_sim, long_retry_after_is_returned_to_the_caller) {
    sim_->script("GET", "/items", {scripted_response::rate_limited(86400s)});
    auto out = call(get(url()));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error->cond, condition::rate_limited);
    EXPECT_EQ(out.error->retry_after, std::chrono::milliseconds(86'400'000));
    EXPECT_EQ(out.attempts, 1u);
}

}  // namespace
}  // namespace billsync::connectors
