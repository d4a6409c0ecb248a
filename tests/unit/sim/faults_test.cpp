// The simulator kit's seeded faults (sim/faults.hpp): each kind as a client sees it, whether the
// vendor's side effect happened, and that one seed gives one schedule.

#include "sim/faults.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "http/client.hpp"
#include "sim/sim_server.hpp"

namespace billsync::simulators {
namespace {

using namespace std::chrono_literals;

// A vendor with one route that counts its side effects.
struct counting_vendor {
    sim_server server;
    std::atomic<int> effects{0};

    explicit counting_vendor(sim_options options = {}) : server(std::move(options)) {
        server.routes().add(
            "POST", "/v1/things", [this](http::request) -> net::awaitable<http::response> {
                ++effects;
                co_return http::response::json(201, R"({"id":"t1"})");
            });
        EXPECT_EQ(server.start(), "");
    }

    http::simple_response post() {
        return http::fetch("127.0.0.1", server.port(), "POST", "/v1/things", {}, "{}", 5s);
    }
};

std::shared_ptr<fault_plan> always(fault_kind kind, std::chrono::milliseconds hold = 50ms) {
    auto plan = std::make_shared<fault_plan>(1, "vendor");
    fault_rule r;
    r.kind = kind;
    r.probability = 1.0;
    r.hold = hold;
    r.max_in_a_row = 1;  // every other request gets through
    plan->add(r);
    return plan;
}

TEST(sim_faults, server_error_answers_5xx_without_the_side_effect) {
    counting_vendor v;
    v.server.set_faults(always(fault_kind::server_error));
    EXPECT_EQ(v.post().status, 503u);
    EXPECT_EQ(v.effects.load(), 0);
    EXPECT_EQ(v.post().status, 201u);  // max_in_a_row lets the retry through
    EXPECT_EQ(v.effects.load(), 1);
    ASSERT_EQ(v.server.requests().size(), 2u);
    EXPECT_EQ(v.server.requests()[0].fault, "server_error");
    EXPECT_EQ(v.server.requests()[1].fault, "");
}

TEST(sim_faults, rate_limited_with_and_without_retry_after) {
    counting_vendor v;
    v.server.set_faults(always(fault_kind::rate_limited));
    auto r = v.post();
    EXPECT_EQ(r.status, 429u);
    EXPECT_EQ(r.header_value("Retry-After"), "1");
    v.post();
    v.server.set_faults(always(fault_kind::rate_limited_bare));
    r = v.post();
    EXPECT_EQ(r.status, 429u);
    EXPECT_EQ(r.header_value("Retry-After"), "");
    EXPECT_EQ(v.effects.load(), 1);
}

TEST(sim_faults, timeout_unread_gives_no_answer_and_no_side_effect) {
    counting_vendor v;
    v.server.set_faults(always(fault_kind::timeout_unread));
    const auto r = v.post();
    EXPECT_EQ(r.status, 0u);
    EXPECT_EQ(v.effects.load(), 0);
}

TEST(sim_faults, timeout_after_read_does_the_side_effect_and_gives_no_answer) {
    counting_vendor v;
    v.server.set_faults(always(fault_kind::timeout_after_read));
    const auto r = v.post();
    EXPECT_EQ(r.status, 0u);
    EXPECT_EQ(v.effects.load(), 1);
}

TEST(sim_faults, reset_after_write_does_the_side_effect_and_loses_the_answer) {
    counting_vendor v;
    v.server.set_faults(always(fault_kind::reset_after_write));
    const auto r = v.post();
    EXPECT_EQ(r.status, 0u);
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(v.effects.load(), 1);
}

TEST(sim_faults, slow_answers_late_but_answers) {
    counting_vendor v;
    v.server.set_faults(always(fault_kind::slow, 300ms));
    const auto before = std::chrono::steady_clock::now();
    const auto r = v.post();
    EXPECT_EQ(r.status, 201u);
    EXPECT_GE(std::chrono::steady_clock::now() - before, 300ms);
    EXPECT_EQ(v.effects.load(), 1);
    EXPECT_EQ(v.server.held(), 0ms);  // real holds are not skipped ones
}

// Skipped holds (the chaos runner, on the simulated clock): an hour's hold costs no real time,
// and the client sees what it would at the hold's end. Were the hour spent, the client's own
// 5 s timeout would end each request without an answer.
sim_options skipping(std::chrono::milliseconds client_deadline = 0ms) {
    sim_options o;
    o.holds.skip = true;
    o.holds.client_deadline = client_deadline;
    return o;
}

TEST(sim_faults, a_skipped_slow_hold_answers_at_once) {
    counting_vendor v(skipping());
    v.server.set_faults(always(fault_kind::slow, 1h));
    const auto r = v.post();
    EXPECT_EQ(r.status, 201u);
    EXPECT_EQ(r.body, R"({"id":"t1"})");
    EXPECT_EQ(v.effects.load(), 1);
    EXPECT_EQ(v.server.held(), 1h);
    ASSERT_EQ(v.server.requests().size(), 1u);
    EXPECT_EQ(v.server.requests()[0].fault, "slow");
}

TEST(sim_faults, skipped_timeout_holds_still_end_without_an_answer) {
    counting_vendor v(skipping());
    v.server.set_faults(always(fault_kind::timeout_unread, 1h));
    auto r = v.post();
    EXPECT_EQ(r.status, 0u);
    EXPECT_EQ(v.effects.load(), 0);  // not read: no side effect
    EXPECT_EQ(v.post().status, 201u);
    v.server.set_faults(always(fault_kind::timeout_after_read, 1h));
    r = v.post();
    EXPECT_EQ(r.status, 0u);
    EXPECT_EQ(v.effects.load(), 2);  // read and done, the answer never comes
    EXPECT_EQ(v.server.held(), 2h);
}

TEST(sim_faults, a_skipped_slow_hold_past_the_client_deadline_loses_the_answer) {
    counting_vendor v(skipping(30s));
    v.server.set_faults(always(fault_kind::slow, 30s));
    EXPECT_EQ(v.post().status, 0u);  // the client gave up before the answer came
    EXPECT_EQ(v.effects.load(), 1);
    EXPECT_EQ(v.post().status, 201u);
    v.server.set_faults(always(fault_kind::slow, 29s));
    EXPECT_EQ(v.post().status, 201u);  // inside the deadline: merely slow
    EXPECT_EQ(v.effects.load(), 3);
    EXPECT_EQ(v.server.held(), 59s);
}

TEST(sim_faults, scripted_delays_are_not_fault_holds) {
    counting_vendor v(skipping());
    v.server.script("POST", "/v1/things", {scripted_response::stall(50ms)});
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(v.post().status, 0u);
    EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);  // held in real time
    EXPECT_EQ(v.server.held(), 0ms);
}

TEST(sim_faults, rules_match_method_and_path_prefix_only) {
    counting_vendor v;
    auto plan = std::make_shared<fault_plan>(1, "vendor");
    fault_rule r;
    r.method = "GET";
    r.path_prefix = "/v1/";
    r.probability = 1.0;
    plan->add(r);
    v.server.set_faults(plan);
    EXPECT_EQ(v.post().status, 201u);  // POST: not this rule
    EXPECT_EQ(plan->injected_count(), 0u);
}

TEST(sim_faults, a_permanent_fault_never_lifts) {
    counting_vendor v;
    auto plan = std::make_shared<fault_plan>(1, "vendor");
    fault_rule r;
    r.permanent = true;
    r.status = 500;
    plan->add(r);
    v.server.set_faults(plan);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(v.post().status, 500u);
    }
    EXPECT_EQ(v.effects.load(), 0);
    const auto injected = plan->injected();
    ASSERT_EQ(injected.size(), 4u);
    EXPECT_TRUE(injected[3].permanent);
    plan->set_enabled(false);  // the runner's settling phase
    EXPECT_EQ(v.post().status, 201u);
}

TEST(sim_faults, token_endpoint_rotates_and_the_answer_is_lost) {
    // "Rotates mid-refresh": the token endpoint issues (and stores) the new pair, then the
    // connection resets, so the client never learns the rotated refresh token.
    sim_server server;
    std::string current = "refresh-1";
    server.routes().add(
        "POST", "/oauth2/token", [&](http::request) -> net::awaitable<http::response> {
            current = current == "refresh-1" ? "refresh-2" : "refresh-3";
            co_return http::response::json(200, R"({"refresh_token":")" + current + "\"}");
        });
    ASSERT_EQ(server.start(), "");
    auto plan = std::make_shared<fault_plan>(9, "qbo");
    fault_rule r;
    r.path_prefix = "/oauth2/token";
    r.kind = fault_kind::reset_after_write;
    r.probability = 1.0;
    r.max_in_a_row = 1;
    plan->add(r);
    server.set_faults(plan);
    EXPECT_EQ(http::fetch("127.0.0.1", server.port(), "POST", "/oauth2/token").status, 0u);
    const auto again = http::fetch("127.0.0.1", server.port(), "POST", "/oauth2/token");
    EXPECT_EQ(again.status, 200u);
    EXPECT_NE(again.body.find("refresh-3"), std::string::npos);
}

TEST(sim_faults, one_seed_gives_one_schedule_and_another_seed_another) {
    const auto schedule = [](std::uint64_t seed) {
        fault_plan plan(seed, "qbo");
        fault_rule r;
        r.probability = 0.3;
        r.max_in_a_row = 0;
        plan.add(r);
        std::string out;
        // Two routes interleaved differently must not change each route's own schedule.
        for (int i = 0; i < 64; ++i) {
            if (seed % 2 == 0 || i % 3 != 0) {
                plan.decide("GET", "/other");
            }
            out += plan.decide("POST", "/v3/invoice") ? '1' : '0';
        }
        return out;
    };
    EXPECT_EQ(schedule(42), schedule(42));
    EXPECT_NE(schedule(42), schedule(43));
    fault_plan a(42, "qbo");
    fault_plan b(42, "qbo");
    fault_rule r;
    r.probability = 0.3;
    r.max_in_a_row = 0;
    a.add(r);
    b.add(r);
    std::string sa, sb;
    for (int i = 0; i < 64; ++i) {
        sa += a.decide("POST", "/v3/invoice") ? '1' : '0';
        b.decide("GET", "/unrelated");
        sb += b.decide("POST", "/v3/invoice") ? '1' : '0';
    }
    EXPECT_EQ(sa, sb);
    EXPECT_NE(sa.find('1'), std::string::npos);
    EXPECT_NE(sa.find('0'), std::string::npos);
}

TEST(sim_faults, max_in_a_row_caps_consecutive_faults_on_a_route) {
    fault_plan plan(5, "vendor");
    fault_rule r;
    r.probability = 1.0;
    r.max_in_a_row = 2;
    plan.add(r);
    std::string s;
    for (int i = 0; i < 6; ++i) {
        s += plan.decide("POST", "/x") ? '1' : '0';
    }
    EXPECT_EQ(s, "110110");
}

TEST(sim_faults, webhook_deliveries_are_lost_duplicated_and_reordered_reproducibly) {
    const auto run = [](std::uint64_t seed) {
        fault_plan plan(seed, "qbo");
        plan.add(webhook_fault_rule{"qbo", 0.2, 0.2, 1.0});
        std::vector<std::vector<std::size_t>> batches;
        for (int b = 0; b < 5; ++b) {
            batches.push_back(plan.delivery_order("qbo", 20));
        }
        return std::make_pair(batches, plan.counts());
    };
    const auto [batches, counts] = run(7);
    EXPECT_EQ(run(7).first, batches);
    EXPECT_NE(run(8).first, batches);
    EXPECT_GT(counts.at("webhook_lost"), 0u);
    EXPECT_GT(counts.at("webhook_duplicated"), 0u);
    EXPECT_EQ(counts.at("webhook_reordered"), 5u);
    std::size_t total = 0;
    for (const auto& b : batches) {
        total += b.size();
        EXPECT_FALSE(std::is_sorted(b.begin(), b.end()));
    }
    EXPECT_EQ(total, 100 - counts.at("webhook_lost") + counts.at("webhook_duplicated"));
}

TEST(sim_faults, webhooks_of_an_unconfigured_source_or_a_disabled_plan_pass_unchanged) {
    fault_plan plan(7, "qbo");
    plan.add(webhook_fault_rule{"qbo", 1.0, 0.0, 0.0});
    EXPECT_EQ(plan.delivery_order("sendgrid/events", 3), (std::vector<std::size_t>{0, 1, 2}));
    EXPECT_TRUE(plan.delivery_order("qbo", 3).empty());
    plan.set_enabled(false);
    EXPECT_EQ(plan.delivery_order("qbo", 3), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(sim_faults, kind_names_round_trip) {
    for (const auto k : {fault_kind::server_error,
                         fault_kind::rate_limited,
                         fault_kind::rate_limited_bare,
                         fault_kind::timeout_unread,
                         fault_kind::timeout_after_read,
                         fault_kind::reset_after_write,
                         fault_kind::slow}) {
        EXPECT_EQ(fault_kind_from(to_string(k)), k);
    }
    EXPECT_FALSE(fault_kind_from("nope").has_value());
}

}  // namespace
}  // namespace billsync::simulators
