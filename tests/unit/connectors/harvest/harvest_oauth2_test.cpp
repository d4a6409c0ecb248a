// The Harvest connector with OAuth2 against the Harvest simulator's token endpoint: the stored
// grant in headers, a refresh ahead of expiry persisted before the new token is used, a 401 that
// refreshes once, a second 401 that means reconnect needed, invalid_grant, no stored grant, and
// the Personal Access Token path that has nothing to refresh.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/harvest/harvest_connector.hpp"
#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors::harvest {
namespace {

using json = nlohmann::json;
using connectors::testing::run;
using namespace std::chrono_literals;

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

sealing_key test_key() {
    std::array<unsigned char, sealing_key::size> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<unsigned char>(i * 7 + 1);
    }
    return sealing_key(bytes);
}

constexpr std::string_view credential = "harvest/123456";

class harvest_oauth2_test : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::harvest_options o;
        o.now = [this] { return clock_.now(); };
        sim_ = std::make_unique<simulators::harvest_simulator>(o);
        sim_->add_routes(server_.routes());
        sim_->configure(server_);
        ASSERT_EQ(server_.start(), "");
        auto st = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(st.ok());
        store_ = std::move(st.value);
        tokens_ = std::make_unique<token_store>(*store_, test_key());
        limiter_.set_limits("harvest", rate_limits());
        settings_.name = "time";
        settings_.base_url = server_.base_url() + "/v2";
        settings_.account_id = "123456";
        settings_.use_oauth2 = true;
        settings_.client = {server_.base_url() + "/api/v2/oauth2/token",
                            "sim-harvest-client",
                            "sim-harvest-secret",
                            oauth2_rules().client_secret_in_body};
        settings_.contact = "it@example-cpa.com";
        settings_.per_page = 100;
        kim_ = sim_->add_user("Kim", "Allen", "kim@example-cpa.com");
        client_ = sim_->add_client("Acme Dental");
    }

    // What `billsync connect time` would have stored.
    simulators::harvest_simulator::grant seed() {
        auto g = sim_->issue_grant();
        oauth2::credential c;
        c.id = std::string(credential);
        c.vendor = "harvest";
        c.account = "123456";
        c.tenants = {{"123456", "Sim CPA", "harvest"}};
        c.access_token = g.access_token;
        c.access_expires_at = clock_.now() + g.expires_in;
        c.refresh_token = g.refresh_token;
        c.connected_at = clock_.now();
        c.refreshed_at = clock_.now();
        EXPECT_TRUE(oauth2::store_credential(*tokens_, c).ok);
        return g;
    }

    oauth2::credential stored() const {
        auto r = oauth2::load_credential(*tokens_, credential);
        EXPECT_TRUE(r.ok() && r.value) << r.st.message;
        return r.value.value_or(oauth2::credential{});
    }

    harvest_connector& connector() {
        if (!connector_) {
            runtime_deps rt;
            rt.executor = ioc_.get_executor();
            rt.clock = &clock_;
            rt.limiter = &limiter_;
            rt.tokens = tokens_.get();
            rt.http = connectors::testing::test_settings();
            rt.time = steady_.source();
            connector_ = std::make_unique<harvest_connector>(settings_, rt);
        }
        return *connector_;
    }

    poll_outcome poll() {
        auto out = run(ioc_, connector().poll(*store_));
        if (out.error.empty()) {
            state::batch b(*store_);
            for (const auto& [k, v] : out.cursors) {
                state::put_cursor(b, k, v);
            }
            EXPECT_TRUE(store_->write(b, true).ok);
        }
        return out;
    }

    std::vector<simulators::recorded_request> api_requests() const {
        std::vector<simulators::recorded_request> out;
        for (const auto& r : server_.requests()) {
            if (r.path.starts_with("/v2/")) {
                out.push_back(r);
            }
        }
        return out;
    }

    state::action delete_action(std::int64_t id) {
        state::action a;
        a.id = "del-" + std::to_string(id);
        a.connector = "time";
        a.kind = "time_entry.delete";
        a.payload = json{{"id", id}}.dump();
        return a;
    }

    util::manual_clock clock_{at("2026-01-05T14:00:00Z")};
    manual_steady_time steady_;
    simulators::sim_server server_;
    std::unique_ptr<simulators::harvest_simulator> sim_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    std::unique_ptr<token_store> tokens_;
    rate_limiter limiter_{steady_.source()};
    settings settings_;
    net::io_context ioc_;
    std::unique_ptr<harvest_connector> connector_;
    std::int64_t kim_ = 0, client_ = 0;
};

TEST_F(harvest_oauth2_test, calls_carry_the_stored_access_token_in_headers_only) {
    const auto g = seed();
    const auto out = poll();
    EXPECT_EQ(out.error, "");
    const auto reqs = api_requests();
    ASSERT_FALSE(reqs.empty());
    for (const auto& r : reqs) {
        EXPECT_EQ(r.header_value("Authorization"), "Bearer " + g.access_token);
        EXPECT_EQ(r.header_value("Harvest-Account-Id"), "123456");
        EXPECT_EQ(r.header_value("User-Agent"), "billsync (it@example-cpa.com)");
        EXPECT_EQ(r.target.find(g.access_token), std::string::npos);
    }
    EXPECT_EQ(sim_->refresh_grants(), 0U);  // a token 18 hours from its end is not refreshed
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["auth"], "oauth2");
    EXPECT_EQ(status["credential"], "ok");
    EXPECT_FALSE(status.contains("action_needed"));
}

// Refreshed `refresh_margin` (15 min) ahead of the end Harvest announced; the rotated refresh
// token and the new access token are durably stored before any API call uses the new token.
TEST_F(harvest_oauth2_test, refresh_ahead_of_expiry_is_persisted_before_the_token_is_used) {
    const auto g = seed();
    clock_.advance(std::chrono::seconds(64799) - 10min);
    std::size_t api_calls_at_persist = 0;
    oauth2::credential at_persist;
    oauth2::manager_hooks hooks;
    hooks.after_persist = [&] {
        at_persist = stored();
        api_calls_at_persist = api_requests().size();
    };
    connector().tokens()->set_hooks(std::move(hooks));
    const auto out = poll();
    EXPECT_EQ(out.error, "");
    EXPECT_EQ(sim_->refresh_grants(), 1U);
    ASSERT_EQ(sim_->refresh_tokens_presented(), std::vector<std::string>{g.refresh_token});
    EXPECT_EQ(api_calls_at_persist, 0U);  // stored before the first use
    EXPECT_NE(at_persist.refresh_token, g.refresh_token);
    EXPECT_NE(at_persist.access_token, g.access_token);
    EXPECT_EQ(stored().refresh_token, at_persist.refresh_token);
    for (const auto& r : api_requests()) {
        EXPECT_EQ(r.header_value("Authorization"), "Bearer " + at_persist.access_token);
    }
    // The token endpoint got the client as form fields (as Harvest ID documents), no HTTP Basic,
    // and Harvest's User-Agent.
    const auto token_calls = server_.requests_to("/api/v2/oauth2/token");
    ASSERT_EQ(token_calls.size(), 1U);
    EXPECT_EQ(token_calls[0].header_value("Authorization"), "");
    EXPECT_NE(token_calls[0].body.find("client_id=sim-harvest-client"), std::string::npos);
    EXPECT_NE(token_calls[0].body.find("client_secret=sim-harvest-secret"), std::string::npos);
    EXPECT_EQ(token_calls[0].header_value("User-Agent"), "billsync (it@example-cpa.com)");
}

TEST_F(harvest_oauth2_test, a_401_refreshes_once_and_sends_again) {
    const auto g = seed();
    sim_->expire_access_tokens();  // Harvest ends the token early; billsync still trusts it
    const auto out = poll();
    EXPECT_EQ(out.error, "");
    EXPECT_EQ(sim_->refresh_grants(), 1U);
    const auto reqs = api_requests();
    ASSERT_EQ(reqs.size(), 2U);  // the refused call, then the same call with the new token
    EXPECT_EQ(reqs[0].header_value("Authorization"), "Bearer " + g.access_token);
    EXPECT_EQ(reqs[1].header_value("Authorization"), "Bearer " + stored().access_token);
    EXPECT_EQ(reqs[0].target, reqs[1].target);
    EXPECT_EQ(connector().tokens()->state(), oauth2::credential_state::ok);
}

TEST_F(harvest_oauth2_test, a_second_401_with_a_fresh_token_means_reconnect_needed) {
    seed();
    sim_->refuse_oauth_tokens(true);  // the user lost access to the account
    auto out = poll();
    EXPECT_NE(out.error.find("reconnect needed"), std::string::npos) << out.error;
    EXPECT_EQ(sim_->refresh_grants(), 1U);  // refreshed once, not again
    EXPECT_EQ(api_requests().size(), 2U);
    EXPECT_EQ(connector().tokens()->state(), oauth2::credential_state::reconnect_needed);
    EXPECT_TRUE(stored().reconnect_needed);  // survives a restart
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["credential"], "reconnect_needed");
    EXPECT_EQ(status["reconnect_needed"], true);
    EXPECT_EQ(status["action_needed"], "run `billsync connect time --config FILE`");
    // Polling pauses; a call now fails at once without reaching Harvest.
    EXPECT_GT(*connector().next_poll(), clock_.now());
    server_.clear_requests();
    out = poll();
    EXPECT_FALSE(out.error.empty());
    EXPECT_TRUE(server_.requests().empty());
    // Actions wait for the new grant instead of dying.
    const auto o = run(ioc_, connector().perform(delete_action(42)));
    EXPECT_EQ(o.k, action_outcome::kind::retry) << o.detail;

    // `billsync connect` stores a new grant; the reload picks it up.
    sim_->refuse_oauth_tokens(false);
    seed();
    connector().reload_credentials();
    EXPECT_EQ(connector().tokens()->state(), oauth2::credential_state::ok);
    EXPECT_EQ(poll().error, "");
}

TEST_F(harvest_oauth2_test, invalid_grant_on_refresh_means_reconnect_needed) {
    seed();
    sim_->revoke_grants();
    sim_->expire_access_tokens();
    const auto out = poll();
    EXPECT_FALSE(out.error.empty());
    EXPECT_EQ(sim_->invalid_grants(), 1U);
    EXPECT_EQ(connector().tokens()->state(), oauth2::credential_state::reconnect_needed);
    EXPECT_EQ(json::parse(connector().status_json())["credential"], "reconnect_needed");
}

TEST_F(harvest_oauth2_test, without_a_stored_grant_nothing_is_sent_and_status_says_connect) {
    const auto out = poll();
    EXPECT_FALSE(out.error.empty());
    EXPECT_TRUE(server_.requests().empty());
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["credential"], "not_connected");
    EXPECT_EQ(status["action_needed"], "run `billsync connect time --config FILE`");
}

// The Personal Access Token path is unchanged: no token endpoint, a 401 is permanent.
TEST_F(harvest_oauth2_test, a_personal_access_token_has_nothing_to_refresh) {
    settings_.use_oauth2 = false;
    settings_.access_token = "wrong-token";
    const auto entry = sim_->add_time_entry(
        kim_, sim_->add_project(client_, "P"), sim_->add_task("T"), "2026-01-05", "1");
    const auto o = run(ioc_, connector().perform(delete_action(entry)));
    EXPECT_EQ(o.k, action_outcome::kind::permanent) << o.detail;
    EXPECT_NE(o.detail.find("401"), std::string::npos) << o.detail;
    EXPECT_TRUE(server_.requests_to("/api/v2/oauth2/token").empty());
    EXPECT_EQ(connector().tokens(), nullptr);
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["auth"], "personal_access_token");
    EXPECT_FALSE(status.contains("credential"));
}

}  // namespace
}  // namespace billsync::connectors::harvest
