#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>

#include "tests/unit/connectors/runtime/oauth2_test_support.hpp"
#include "util/redact.hpp"

namespace billsync::oauth2_test {
namespace {

using namespace std::chrono_literals;
using simulators::oauth2_mode;
using simulators::oauth2_server;

TEST(token_manager, returns_the_stored_token_without_a_refresh_while_it_is_fresh) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_EQ(r.token, g.access_token);
    EXPECT_EQ(m->refresh_requests(), 0u);
    EXPECT_EQ(m->state(), oauth2::credential_state::ok);
    EXPECT_EQ(f.sim->requests_to(oauth2_server::token_path).size(), 0u);
}

TEST(token_manager, refreshes_ahead_of_expiry_and_persists_the_rotation) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    f.clock.advance(std::chrono::minutes(26));  // 4 minutes left, margin is 5
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_NE(r.token, g.access_token);
    EXPECT_TRUE(f.oauth->access_token_valid(r.token));
    EXPECT_EQ(f.oauth->refresh_grants(), 1u);
    const auto stored = f.stored();
    EXPECT_EQ(stored.access_token, r.token);
    EXPECT_NE(stored.refresh_token, g.refresh_token);
    EXPECT_EQ(stored.previous_refresh_token, g.refresh_token);
    EXPECT_EQ(stored.previous_valid_until, f.clock.now() + std::chrono::minutes(30));
    // Fresh again: no second refresh.
    auto again = run(f.ioc, m->access_token());
    EXPECT_EQ(again.token, r.token);
    EXPECT_EQ(f.oauth->refresh_grants(), 1u);
}

// Issue 18 item 14: tokens learned at run time (loaded or refreshed) are masked in every log
// line, and a rotation replaces the old registration rather than adding to it.
TEST(token_manager, loaded_and_refreshed_tokens_are_registered_with_the_redactor) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    auto first = run(f.ioc, m->access_token());
    ASSERT_TRUE(first.ok()) << first.error->message;
    EXPECT_EQ(util::redact("Bearer " + g.access_token), "Bearer ***");
    EXPECT_EQ(util::redact("rt " + g.refresh_token), "rt ***");
    f.clock.advance(std::chrono::minutes(26));
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    ASSERT_NE(r.token, g.access_token);
    EXPECT_EQ(util::redact("token " + r.token + " used"), "token *** used");
    const auto stored = f.stored();
    EXPECT_EQ(util::redact(stored.refresh_token), "***");
    EXPECT_EQ(util::redact(stored.previous_refresh_token), "***");
}

TEST(token_manager, concurrent_callers_share_one_refresh) {
    fixture f(oauth2_mode::xero, /*strict_reuse=*/true);
    f.seed();
    auto m = f.manager();
    f.clock.advance(std::chrono::minutes(31));  // expired
    constexpr int callers = 25;
    std::vector<oauth2::access_result> results(callers);
    for (int i = 0; i < callers; ++i) {
        net::co_spawn(
            f.ioc,
            [](oauth2::token_manager* mgr, oauth2::access_result* out) -> net::awaitable<void> {
                *out = co_await mgr->access_token();
            }(m.get(), &results[static_cast<std::size_t>(i)]),
            net::detached);
    }
    f.ioc.restart();
    f.ioc.run();
    for (const auto& r : results) {
        ASSERT_TRUE(r.ok()) << r.error->message;
        EXPECT_EQ(r.token, results[0].token);
    }
    EXPECT_TRUE(f.oauth->access_token_valid(results[0].token));
    EXPECT_EQ(f.sim->requests_to(oauth2_server::token_path).size(), 1u);
    EXPECT_EQ(f.oauth->refresh_grants(), 1u);
    EXPECT_EQ(f.oauth->invalid_grants(), 0u);
    EXPECT_EQ(m->refresh_requests(), 1u);
}

TEST(token_manager, the_rotated_refresh_token_is_stored_synced_before_the_access_token_is_used) {
    fixture f(oauth2_mode::qbo);
    f.seed();
    auto m = f.manager();
    f.clock.advance(std::chrono::hours(2));
    const auto synced_before = f.db->synced_writes();
    std::vector<std::string> events;
    std::string stored_at_persist;
    m->set_hooks({.after_token_response =
                      [&] {
                          events.emplace_back("answered");
                          EXPECT_EQ(f.db->synced_writes(), synced_before);
                          return true;
                      },
                  .after_persist =
                      [&] {
                          events.emplace_back("persisted");
                          stored_at_persist = f.stored().access_token;
                      }});
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    events.emplace_back("returned");
    EXPECT_EQ(events, (std::vector<std::string>{"answered", "persisted", "returned"}));
    EXPECT_EQ(f.db->synced_writes(), synced_before + 1);  // one synced write: both tokens
    EXPECT_EQ(stored_at_persist, r.token);
    const auto s = f.stored();
    EXPECT_EQ(s.access_token, r.token);
    EXPECT_EQ(f.oauth->refresh_tokens_presented().size(), 1u);
    EXPECT_TRUE(s.refresh_expires_at.has_value());  // QBO x_refresh_token_expires_in
}

TEST(token_manager, qbo_keeps_the_refresh_token_when_it_does_not_rotate) {
    fixture f(oauth2_mode::qbo);
    simulators::oauth2_server_options o;
    o.mode = oauth2_mode::qbo;
    o.qbo_rotate = false;
    o.now = [c = &f.clock] { return c->now(); };
    // Swap in a non-rotating server on the same port is not possible; use a second one.
    oauth2_server nonrotating(o);
    simulators::sim_server sim2;
    nonrotating.add_routes(sim2.routes());
    ASSERT_EQ(sim2.start(), "");
    auto g = nonrotating.issue_grant();
    oauth2::credential c;
    c.id = "qbo/realm-2";
    c.vendor = "qbo";
    c.account = "realm-2";
    c.access_token = g.access_token;
    c.access_expires_at = f.clock.now() + g.expires_in;
    c.refresh_token = g.refresh_token;
    ASSERT_TRUE(oauth2::store_credential(*f.tokens, c));
    f.credential_id = c.id;
    auto s = f.settings();
    s.client.token_url = sim2.base_url() + std::string(oauth2_server::token_path);
    auto m = f.manager(s);
    f.clock.advance(std::chrono::hours(1));
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    const auto stored = f.stored();
    EXPECT_EQ(stored.refresh_token, g.refresh_token);
    EXPECT_EQ(stored.previous_refresh_token, "");
    EXPECT_EQ(stored.access_token, r.token);
}

TEST(token_manager, invalid_grant_flips_to_reconnect_needed_and_fails_fast) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    f.oauth->revoke_all();
    f.clock.advance(std::chrono::hours(1));
    auto r = run(f.ioc, m->access_token());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->cond, connectors::condition::auth_revoked);
    EXPECT_NE(r.error->message.find("billsync connect xero"), std::string::npos);
    EXPECT_EQ(m->state(), oauth2::credential_state::reconnect_needed);
    const auto token_calls = f.sim->requests_to(oauth2_server::token_path).size();
    EXPECT_EQ(token_calls, 1u);

    for (int i = 0; i < 3; ++i) {
        auto again = run(f.ioc, m->access_token());
        ASSERT_FALSE(again.ok());
        EXPECT_EQ(again.error->cond, connectors::condition::auth_revoked);
    }
    EXPECT_EQ(f.sim->requests_to(oauth2_server::token_path).size(), token_calls);

    const auto metrics = f.metrics.render();
    EXPECT_NE(metrics.find("billsync_connector_reconnect_needed{connector=\"xero\"} 1"),
              std::string::npos)
        << metrics;
    const auto logs = f.capture.joined();
    EXPECT_NE(logs.find("error [oauth2] Reconnect needed connector=xero"), std::string::npos)
        << logs;
    EXPECT_NE(logs.find("billsync connect xero"), std::string::npos);

    // The flag survives a restart: no vendor call from a new manager either.
    EXPECT_TRUE(f.stored().reconnect_needed);
    auto m2 = f.manager();
    auto r2 = run(f.ioc, m2->access_token());
    EXPECT_FALSE(r2.ok());
    EXPECT_EQ(f.sim->requests_to(oauth2_server::token_path).size(), token_calls);
    (void)g;
}

TEST(token_manager, not_connected_fails_fast_with_a_hint) {
    fixture f(oauth2_mode::qbo);
    f.credential_id = "qbo/never-connected";
    auto m = f.manager();
    auto r = run(f.ioc, m->access_token());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->cond, connectors::condition::auth_revoked);
    EXPECT_EQ(m->state(), oauth2::credential_state::not_connected);
    EXPECT_EQ(f.sim->request_count(), 0u);
    EXPECT_NE(f.metrics.render().find("billsync_connector_reconnect_needed{connector=\"qbo\"} 1"),
              std::string::npos);
}

TEST(token_manager, xero_lost_refresh_answer_is_retried_with_the_old_token_within_grace) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    f.oauth->lose_next_refresh_answers(1, std::chrono::milliseconds(2000));
    f.clock.advance(std::chrono::minutes(29));
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    const auto presented = f.oauth->refresh_tokens_presented();
    ASSERT_EQ(presented.size(), 2u);
    EXPECT_EQ(presented[0], g.refresh_token);
    EXPECT_EQ(presented[1], g.refresh_token);  // the old one, inside the grace
    EXPECT_EQ(f.oauth->invalid_grants(), 0u);
    EXPECT_TRUE(f.oauth->access_token_valid(r.token));
    EXPECT_EQ(f.stored().access_token, r.token);
    EXPECT_NE(f.capture.joined().find("Refresh answer lost"), std::string::npos);
}

// Answers lost again and again (the vendor rotates each time, billsync never hears of it): the
// old refresh token still works inside the grace, so the refresh goes on past max_attempts
// rather than leaving the next try to the next need for a token, past the grace.
TEST(token_manager, xero_refresh_in_doubt_keeps_trying_past_max_attempts_within_the_grace) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto s = f.settings();
    ASSERT_EQ(s.max_attempts, 4u);
    auto m = f.manager(s);
    f.oauth->lose_next_refresh_answers(5, std::chrono::milliseconds(600));
    f.clock.advance(std::chrono::minutes(29));
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    const auto presented = f.oauth->refresh_tokens_presented();
    ASSERT_EQ(presented.size(), 6u);
    for (const auto& t : presented) {
        EXPECT_EQ(t, g.refresh_token);  // the old one each time, inside the grace
    }
    EXPECT_EQ(f.oauth->invalid_grants(), 0u);
    EXPECT_TRUE(f.oauth->access_token_valid(r.token));
    EXPECT_EQ(m->state(), oauth2::credential_state::ok);
}

TEST(token_manager, restart_between_the_vendor_answer_and_the_write_keeps_the_credential) {
    for (const auto mode : {oauth2_mode::xero, oauth2_mode::qbo}) {
        fixture f(mode);
        const auto g = f.seed();
        f.clock.advance(std::chrono::hours(1));
        {
            auto m = f.manager();
            m->set_hooks(
                {.after_token_response = [] { return false; }, .after_persist = {}});  // "crash"
            auto r = run(f.ioc, m->access_token());
            EXPECT_FALSE(r.ok());
        }  // the process is gone; the vendor has rotated, the store still holds the old token
        EXPECT_EQ(f.stored().refresh_token, g.refresh_token);
        f.clock.advance(std::chrono::minutes(10));  // restart within the overlap window
        auto m = f.manager();
        auto r = run(f.ioc, m->access_token());
        ASSERT_TRUE(r.ok()) << r.error->message;
        EXPECT_TRUE(f.oauth->access_token_valid(r.token));
        EXPECT_EQ(f.oauth->invalid_grants(), 0u);
        EXPECT_NE(f.stored().refresh_token, g.refresh_token);
        EXPECT_EQ(m->state(), oauth2::credential_state::ok);
    }
}

TEST(token_manager, restart_after_the_xero_grace_needs_a_reconnect) {
    fixture f(oauth2_mode::xero);
    f.seed();
    f.clock.advance(std::chrono::hours(1));
    {
        auto m = f.manager();
        m->set_hooks({.after_token_response = [] { return false; }, .after_persist = {}});
        (void)run(f.ioc, m->access_token());
    }
    f.clock.advance(std::chrono::minutes(31));
    auto m = f.manager();
    auto r = run(f.ioc, m->access_token());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(m->state(), oauth2::credential_state::reconnect_needed);
}

TEST(token_manager, falls_back_to_the_previous_refresh_token_when_the_newest_is_refused) {
    fixture f(oauth2_mode::qbo);
    const auto g = f.seed();
    // Simulate a stored record whose newest token the vendor never committed.
    auto c = f.stored();
    c.previous_refresh_token = g.refresh_token;
    c.previous_valid_until = f.clock.now() + std::chrono::hours(24);
    c.refresh_token = "rt-never-issued";
    c.access_expires_at = f.clock.now();
    ASSERT_TRUE(oauth2::store_credential(*f.tokens, c));
    auto m = f.manager();
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    const auto presented = f.oauth->refresh_tokens_presented();
    ASSERT_EQ(presented.size(), 2u);
    EXPECT_EQ(presented[0], "rt-never-issued");
    EXPECT_EQ(presented[1], g.refresh_token);
    EXPECT_EQ(m->state(), oauth2::credential_state::ok);
}

TEST(token_manager, transient_failures_are_retried_and_a_still_valid_token_is_kept) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    f.sim->script("POST",
                  std::string(oauth2_server::token_path),
                  {simulators::scripted_response::server_error(503),
                   simulators::scripted_response::rate_limited(std::chrono::seconds(2))});
    f.clock.advance(std::chrono::minutes(27));
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_NE(r.token, g.access_token);
    EXPECT_EQ(f.sim->requests_to(oauth2_server::token_path).size(), 3u);

    // All attempts fail but the current token has not ended: it is still handed out.
    f.sim->script("POST",
                  std::string(oauth2_server::token_path),
                  std::vector<simulators::scripted_response>(
                      4, simulators::scripted_response::server_error(503)));
    f.clock.advance(std::chrono::minutes(27));
    auto kept = run(f.ioc, m->access_token());
    ASSERT_TRUE(kept.ok());
    EXPECT_EQ(kept.token, r.token);
    f.sim->script("POST",
                  std::string(oauth2_server::token_path),
                  std::vector<simulators::scripted_response>(
                      4, simulators::scripted_response::server_error(503)));
    f.clock.advance(std::chrono::minutes(4));  // now ended
    auto failed = run(f.ioc, m->access_token());
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error->cond, connectors::condition::retryable);
    EXPECT_EQ(m->state(), oauth2::credential_state::ok);
}

TEST(token_manager, invalidate_forces_a_refresh_after_a_401) {
    fixture f(oauth2_mode::qbo);
    const auto g = f.seed();
    auto m = f.manager();
    auto r = run(f.ioc, m->access_token());
    EXPECT_EQ(r.token, g.access_token);
    m->invalidate("some-other-token");
    EXPECT_EQ(run(f.ioc, m->access_token()).token, g.access_token);
    m->invalidate(g.access_token);
    auto r2 = run(f.ioc, m->access_token());
    ASSERT_TRUE(r2.ok());
    EXPECT_NE(r2.token, g.access_token);
    EXPECT_EQ(f.oauth->refresh_grants(), 1u);
}

TEST(token_manager, a_wrong_client_secret_is_not_a_reconnect) {
    fixture f(oauth2_mode::xero);
    f.seed();
    auto s = f.settings();
    s.client.client_secret = "wrong";
    auto m = f.manager(s);
    f.clock.advance(std::chrono::hours(1));
    auto r = run(f.ioc, m->access_token());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->cond, connectors::condition::permanent);
    EXPECT_EQ(m->state(), oauth2::credential_state::ok);
    EXPECT_NE(f.capture.joined().find("check client_id and client_secret"), std::string::npos);
}

TEST(token_manager, tokens_never_reach_the_log_at_debug) {
    fixture f(oauth2_mode::xero);
    const auto g = f.seed();
    auto m = f.manager();
    f.oauth->lose_next_refresh_answers(1, std::chrono::milliseconds(2000));
    f.clock.advance(std::chrono::hours(1));
    auto r = run(f.ioc, m->access_token());
    ASSERT_TRUE(r.ok());
    f.oauth->revoke_all();
    f.clock.advance(std::chrono::hours(1));
    (void)run(f.ioc, m->access_token());
    const auto logs = f.capture.joined();
    ASSERT_FALSE(logs.empty());
    for (const auto& secret : {g.access_token,
                               g.refresh_token,
                               r.token,
                               f.stored().refresh_token,
                               std::string("sim-client-secret")}) {
        EXPECT_EQ(logs.find(secret), std::string::npos) << secret << " in " << logs;
    }
    EXPECT_EQ(logs.find("sim-at-"), std::string::npos) << logs;
    EXPECT_EQ(logs.find("sim-rt-"), std::string::npos) << logs;
}

// ---- scopes granted vs needed (re-consent) ----

TEST(oauth2_scopes, missing_scopes_are_the_needed_ones_the_grant_lacks) {
    using oauth2::missing_scopes;
    const std::string needed = "offline_access accounting.contacts accounting.transactions";
    EXPECT_EQ(missing_scopes("offline_access accounting.contacts", needed),
              std::vector<std::string>{"accounting.transactions"});
    EXPECT_EQ(missing_scopes("accounting.contacts accounting.transactions", needed),
              std::vector<std::string>{"offline_access"});
    EXPECT_TRUE(missing_scopes(needed, needed).empty());
    EXPECT_TRUE(
        missing_scopes("accounting.transactions offline_access accounting.contacts x", needed)
            .empty());
    // Unknown (an old record without a scope list): nothing is missing.
    EXPECT_TRUE(missing_scopes("", needed).empty());
    EXPECT_TRUE(missing_scopes("   ", needed).empty());
    // A read scope is covered by the full one, not the other way round.
    EXPECT_TRUE(missing_scopes("accounting.contacts", "accounting.contacts.read").empty());
    EXPECT_EQ(missing_scopes("accounting.contacts.read", "accounting.contacts"),
              std::vector<std::string>{"accounting.contacts"});
    EXPECT_TRUE(missing_scopes("a b", "").empty());
}

namespace {
void store_scope(fixture& f, const std::string& scope) {
    auto c = f.stored();
    c.scope = scope;
    ASSERT_TRUE(oauth2::store_credential(*f.tokens, c).ok);
}

std::size_t count_of(const std::string& text, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}
}  // namespace

TEST(token_manager, a_stored_grant_lacking_a_needed_scope_is_reported_and_logged_once) {
    fixture f(oauth2_mode::xero);
    f.seed();
    store_scope(f, "offline_access accounting.contacts");
    auto s = f.settings();
    s.required_scope = "offline_access accounting.contacts accounting.transactions";
    auto m = f.manager(s);
    EXPECT_TRUE(m->missing_scopes().empty());  // not loaded yet
    ASSERT_TRUE(run(f.ioc, m->access_token()).ok());
    EXPECT_EQ(m->missing_scopes(), std::vector<std::string>{"accounting.transactions"});
    ASSERT_TRUE(run(f.ioc, m->access_token()).ok());
    m->reload();  // same record again: no second line
    const auto logs = f.capture.joined();
    EXPECT_EQ(count_of(logs, "Reconsent needed"), 1u) << logs;
    EXPECT_NE(logs.find("missing_scopes=\"accounting.transactions\""), std::string::npos);
    EXPECT_NE(logs.find("billsync connect xero"), std::string::npos);
    // The grant is usable meanwhile: a warning, not an outage.
    EXPECT_EQ(m->state(), oauth2::credential_state::ok);
    // `billsync connect` again stored a grant with everything: the warning clears.
    store_scope(f, "offline_access accounting.contacts accounting.transactions");
    m->reload();
    EXPECT_TRUE(m->missing_scopes().empty());
}

TEST(token_manager, a_record_without_a_scope_list_is_unknown_and_not_reported) {
    fixture f(oauth2_mode::xero);
    f.seed();  // no scope recorded, as records written before scopes were kept
    auto s = f.settings();
    s.required_scope = "offline_access accounting.transactions";
    auto m = f.manager(s);
    ASSERT_TRUE(run(f.ioc, m->access_token()).ok());
    EXPECT_TRUE(m->missing_scopes().empty());
    EXPECT_EQ(f.capture.joined().find("Reconsent needed"), std::string::npos);
}

TEST(token_manager, a_refresh_records_the_scopes_the_vendor_granted) {
    // The simulator grants less than asked, as a user who unticked a permission.
    fixture f(oauth2_mode::xero, false, "offline_access accounting.contacts");
    f.seed();
    auto s = f.settings();
    s.required_scope = "offline_access accounting.contacts accounting.transactions";
    auto m = f.manager(s);
    f.clock.advance(std::chrono::minutes(31));
    ASSERT_TRUE(run(f.ioc, m->access_token()).ok());
    EXPECT_EQ(f.stored().scope, "offline_access accounting.contacts");
    EXPECT_EQ(m->missing_scopes(), std::vector<std::string>{"accounting.transactions"});
    EXPECT_EQ(count_of(f.capture.joined(), "Reconsent needed"), 1u);
}

}  // namespace
}  // namespace billsync::oauth2_test
