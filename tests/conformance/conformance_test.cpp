// The connector conformance suite: one typed test suite every connector kind must pass, each
// against its vendor simulator on loopback through the real registry (make_connector) and the
// real settings parser. See harnesses.hpp for the hooks each kind provides.
//
//   outcomes        healthy → done; 5xx → retry; permanent 4xx → permanent; an authentication
//                   failure → what the connector documents
//   throttling      the vendor's wait is passed on (or, for QBO, waited out), never hammered
//   cancellation    perform() stops promptly when its cancellation slot fires mid-call
//   secrets         no secret (nor its wire encoding, nor its base64) in any log line
//   webhooks        a forged delivery is rejected with a reason free of the secret and the body
//   OAuth2          the rotated refresh token is stored before the new access token is used; a
//                   refresh lost mid-flight (answer lost, or the process died after the token
//                   response) does not lock the connector out after a restart

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>

#include "connectors/qbo/qbo_connector.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "sim/oauth2_server.hpp"
#include "sim/sim_server.hpp"
#include "tests/conformance/harnesses.hpp"
#include "util/crypto.hpp"

namespace billsync::conformance {
namespace {

using namespace std::chrono_literals;
using kind = action_outcome::kind;

std::string_view name_of(kind k) {
    switch (k) {
        case kind::done:
            return "done";
        case kind::retry:
            return "retry";
        case kind::permanent:
            return "permanent";
    }
    return "?";
}

// Starts perform() with `signal` bound as its cancellation slot; the result fills in on completion.
std::shared_ptr<completion<action_outcome>> spawn_cancellable(net::io_context& ioc,
                                                              net::awaitable<action_outcome> op,
                                                              net::cancellation_signal& signal) {
    auto result = std::make_shared<completion<action_outcome>>();
    net::co_spawn(ioc,
                  std::move(op),
                  net::bind_cancellation_slot(signal.slot(),
                                              [result](std::exception_ptr e, action_outcome o) {
                                                  result->done = true;
                                                  result->error = e;
                                                  if (!e) {
                                                      result->value = std::move(o);
                                                  }
                                              }));
    return result;
}

template <class H>
class conformance : public ::testing::Test {
protected:
    H harness_;
};

using harnesses = ::testing::Types<generic_harness,
                                   qbo_harness,
                                   twilio_harness,
                                   sendgrid_harness,
                                   smtp_harness,
                                   karbon_harness,
                                   xero_harness,
                                   harvest_harness,
                                   taxdome_harness>;

struct harness_names {
    template <class H>
    static std::string GetName(int) {
        return std::string(H::kind);
    }
};

TYPED_TEST_SUITE(conformance, harnesses, harness_names);

// A relay with no vendor API (TaxDome) performs nothing: the cases about vendor calls skip.
#define SKIP_WITHOUT_ACTIONS(h)                                                          \
    if constexpr (!TypeParam::takes_actions) {                                           \
        const auto refused = (h).perform((h).sample_action());                           \
        EXPECT_EQ(refused.k, kind::permanent) << refused.detail;                         \
        EXPECT_EQ((h).vendor_calls(), 0u);                                               \
        GTEST_SKIP() << TypeParam::kind << " calls no vendor: every action is refused (" \
                     << refused.detail << ")";                                           \
    }

// ---- 1. outcomes -------------------------------------------------------------------------------

TYPED_TEST(conformance, a_healthy_vendor_means_done) {
    SKIP_WITHOUT_ACTIONS(this->harness_)
    const auto out = this->harness_.perform(this->harness_.sample_action());
    EXPECT_EQ(out.k, kind::done) << name_of(out.k) << ": " << out.detail;
    EXPECT_GE(this->harness_.vendor_calls(), 1u);
}

TYPED_TEST(conformance, a_server_error_maps_as_documented) {
    SKIP_WITHOUT_ACTIONS(this->harness_)
    this->harness_.script_failure(failure::server_error);
    const auto out = this->harness_.perform(this->harness_.sample_action());
    EXPECT_EQ(out.k, TypeParam::lost_answer_outcome) << name_of(out.k) << ": " << out.detail;
    EXPECT_FALSE(out.detail.empty());
}

TYPED_TEST(conformance, a_permanent_refusal_means_permanent) {
    SKIP_WITHOUT_ACTIONS(this->harness_)
    this->harness_.script_failure(failure::permanent);
    const auto out = this->harness_.perform(this->harness_.sample_action());
    EXPECT_EQ(out.k, kind::permanent) << name_of(out.k) << ": " << out.detail;
    EXPECT_EQ(this->harness_.vendor_calls(), 1u) << "a permanent refusal must not be retried";
}

TYPED_TEST(conformance, an_auth_failure_maps_as_documented) {
    SKIP_WITHOUT_ACTIONS(this->harness_)
    this->harness_.script_failure(failure::auth);
    const auto out = this->harness_.perform(this->harness_.sample_action());
    EXPECT_EQ(out.k, TypeParam::auth_failure_outcome)
        << name_of(out.k) << " instead of " << name_of(TypeParam::auth_failure_outcome) << ": "
        << out.detail;
}

// ---- 2. throttling -----------------------------------------------------------------------------

TYPED_TEST(conformance, the_vendors_wait_is_honoured) {
    SKIP_WITHOUT_ACTIONS(this->harness_)
    auto& h = this->harness_;
    constexpr auto wait = 7s;
    const auto started = h.steady().now();
    h.script_rate_limited(wait);
    const auto out = h.perform(h.sample_action());
    ASSERT_EQ(out.k, kind::retry) << name_of(out.k) << ": " << out.detail;
    if constexpr (TypeParam::throttle == throttle_style::retry_after) {
        ASSERT_TRUE(out.retry_after.has_value()) << out.detail;
        EXPECT_GE(*out.retry_after, wait);
        EXPECT_LE(*out.retry_after, wait + 2s);
        EXPECT_EQ(h.vendor_calls(), 1u) << "the connector hammered a throttled vendor";
    } else if constexpr (TypeParam::throttle == throttle_style::pause_no_hint) {
        // No Retry-After: each attempt waited for the realm's pause (presets::qbo, 5 s) first.
        const auto calls = h.vendor_calls();
        EXPECT_EQ(calls, TypeParam::attempts_per_call);
        const auto pause = connectors::qbo::rate_limits().throttle_pause;
        EXPECT_GE(h.steady().now() - started,
                  pause * static_cast<std::int64_t>(calls > 0 ? calls - 1 : 0))
            << "attempts were not spaced by the throttle pause";
        const auto stats = h.limiter().stats("qbo", "9130350000000001");
        ASSERT_TRUE(stats.paused_until.has_value()) << "the 429 did not pause the realm";
        EXPECT_GE(*stats.paused_until, h.steady().now());
    } else {
        // SMTP: a 4xx reply is a transient refusal; there is no wait to pass on.
        EXPECT_EQ(h.vendor_calls(), 1u) << "the connector reconnected to a refusing server";
    }
}

// ---- 3. cancellation ---------------------------------------------------------------------------

TYPED_TEST(conformance, cancellation_stops_a_stalled_call_promptly) {
    SKIP_WITHOUT_ACTIONS(this->harness_)
    auto& h = this->harness_;
    h.script_stall();
    auto& c = h.connector();
    net::cancellation_signal signal;
    auto result = spawn_cancellable(h.ioc(), c.perform(h.sample_action()), signal);
    ASSERT_TRUE(run_until(
        h.ioc(), [&] { return h.stalled() || result->done; }, 5s))
        << "the call never reached the vendor";
    // Let the client settle into waiting for the vendor's answer (no handler left to run).
    while (h.ioc().poll() > 0) {
    }
    ASSERT_FALSE(result->done) << "the call finished although the vendor stalls";
    const auto cancelled_at = std::chrono::steady_clock::now();
    signal.emit(net::cancellation_type::terminal);
    // The stall lasts 20 s and every client timeout is 10 s or more: finishing within 3 s means
    // the cancellation itself stopped the call.
    ASSERT_TRUE(run_until(
        h.ioc(), [&] { return result->done; }, 3s))
        << "perform() ignored the cancellation";
    EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 3s);
    if (result->error) {
        try {
            std::rethrow_exception(result->error);
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), net::error::operation_aborted) << e.what();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "perform() threw " << e.what();
        }
    } else {
        EXPECT_EQ(result->value->k, TypeParam::lost_answer_outcome)
            << name_of(result->value->k) << ": " << result->value->detail;
    }
    if constexpr (TypeParam::throttle != throttle_style::transient_reply) {
        EXPECT_EQ(h.vendor_calls(), 1u);  // SMTP's stall is a server of its own
    }
}

// ---- 4. secrets never reach the logs
// -------------------------------------------------------------

TYPED_TEST(conformance, no_secret_reaches_the_logs) {
    auto& h = this->harness_;
    const auto ok = h.perform(h.sample_action());
    EXPECT_EQ(ok.k, TypeParam::takes_actions ? kind::done : kind::permanent) << ok.detail;
    const auto forged = h.connector().verify(h.forged_webhook());
    EXPECT_FALSE(forged.accepted);
    if constexpr (TypeParam::receives_webhooks) {
        EXPECT_TRUE(h.connector().verify(h.signed_webhook()).accepted);
    }
    h.script_failure(failure::auth);
    const auto failed = h.perform(h.sample_action());
    EXPECT_NE(failed.k, kind::done);
    h.script_failure(failure::server_error);
    (void)h.perform(h.sample_action());

    const auto lines = h.capture().lines();
    if constexpr (TypeParam::logs) {
        EXPECT_FALSE(lines.empty()) << "nothing was logged: the capture is not attached";
    }
    std::vector<std::string> forbidden;
    for (const auto& s : h.secrets()) {
        ASSERT_GE(s.size(), 8u) << "a secret too short to search for";
        forbidden.push_back(s);
        forbidden.push_back(util::base64_encode(s));
    }
    for (const auto& s : h.credential_encodings()) {
        forbidden.push_back(s);
    }
    for (const auto& line : lines) {
        for (const auto& s : forbidden) {
            EXPECT_EQ(line.find(s), std::string::npos) << "secret in the log: " << line;
        }
    }
    for (const auto& s : forbidden) {
        EXPECT_EQ(ok.detail.find(s), std::string::npos);
        EXPECT_EQ(failed.detail.find(s), std::string::npos);
        EXPECT_EQ(forged.reason.find(s), std::string::npos);
    }
}

// ---- 5. forged webhooks ------------------------------------------------------------------------

TYPED_TEST(conformance, a_forged_webhook_is_rejected_without_leaking) {
    auto& h = this->harness_;
    if constexpr (!TypeParam::receives_webhooks) {
        EXPECT_FALSE(h.connector().verify(h.signed_webhook()).accepted);
        GTEST_SKIP() << TypeParam::kind << " takes no webhooks: every delivery is rejected";
    } else {
        const auto good = h.signed_webhook();
        const auto accepted = h.connector().verify(good);
        ASSERT_TRUE(accepted.accepted)
            << "a correctly signed delivery was rejected: " << accepted.reason;
        const auto forged = h.forged_webhook();
        const auto r = h.connector().verify(forged);
        EXPECT_FALSE(r.accepted);
        EXPECT_FALSE(r.reason.empty());
        EXPECT_EQ(r.reason.find(forged.body), std::string::npos) << r.reason;
        EXPECT_EQ(r.reason.find("conformance-body"), std::string::npos) << r.reason;
        for (const auto& s : h.secrets()) {
            EXPECT_EQ(r.reason.find(s), std::string::npos) << r.reason;
        }
        // A missing signature is rejected too.
        auto unsigned_req = good;
        unsigned_req.headers.clear();
        EXPECT_FALSE(h.connector().verify(unsigned_req).accepted);
    }
}

// ---- 6. OAuth2 ---------------------------------------------------------------------------------

TYPED_TEST(conformance, a_rotated_refresh_token_is_stored_before_its_access_token_is_used) {
    auto& h = this->harness_;
    if constexpr (!TypeParam::oauth2) {
        EXPECT_FALSE(h.supports_oauth2());
        GTEST_SKIP() << TypeParam::kind << " has no OAuth2";
    } else {
        h.seed_credential(/*expired=*/true);
        struct seen {
            int persisted = 0;
            std::string refresh;
            std::string access;
            std::size_t calls_with_new_access = 0;
            std::size_t token_requests = 0;
        } at_persist;
        connectors::oauth2::manager_hooks hooks;
        hooks.after_persist = [&h, &at_persist] {
            ++at_persist.persisted;
            auto c = connectors::oauth2::load_credential(h.tokens(), h.credential_id());
            if (c.ok() && c.value) {
                at_persist.refresh = c.value->refresh_token;
                at_persist.access = c.value->access_token;
                at_persist.calls_with_new_access = h.calls_with(c.value->access_token);
            }
            at_persist.token_requests = h.server().requests_to("/oauth2/token").size();
        };
        h.manager().set_hooks(hooks);

        const auto out = h.perform(h.sample_action());
        ASSERT_EQ(out.k, kind::done) << out.detail;
        ASSERT_EQ(at_persist.persisted, 1);
        EXPECT_EQ(at_persist.token_requests, 1u);
        EXPECT_NE(at_persist.refresh, h.seeded_refresh_token())
            << "the refresh token did not rotate";
        EXPECT_NE(at_persist.access, h.seeded_access_token());
        EXPECT_EQ(at_persist.calls_with_new_access, 0u)
            << "the new access token was used before the rotated refresh token was stored";
        // And then it was used, and what was stored is what stays stored.
        EXPECT_EQ(h.calls_with(at_persist.access), 1u);
        EXPECT_EQ(h.calls_with(h.seeded_access_token()), 0u);
        auto stored = connectors::oauth2::load_credential(h.tokens(), h.credential_id());
        ASSERT_TRUE(stored.ok() && stored.value);
        EXPECT_EQ(stored.value->refresh_token, at_persist.refresh);
        EXPECT_EQ(h.oauth().refresh_tokens_presented(),
                  std::vector<std::string>{h.seeded_refresh_token()});
    }
}

TYPED_TEST(conformance, a_restart_after_a_lost_refresh_answer_is_not_locked_out) {
    auto& h = this->harness_;
    if constexpr (!TypeParam::oauth2) {
        GTEST_SKIP() << TypeParam::kind << " has no OAuth2";
    } else {
        h.seed_credential(/*expired=*/true);
        // The vendor rotates the token, but its answer never comes back; the process dies while
        // waiting for it (the call is cancelled and the connector destroyed).
        h.oauth().lose_next_refresh_answers(1, 20s);
        net::cancellation_signal signal;
        auto result = spawn_cancellable(h.ioc(), h.connector().perform(h.sample_action()), signal);
        ASSERT_TRUE(run_until(h.ioc(), [&] { return h.oauth().refresh_grants() == 1; }, 5s));
        signal.emit(net::cancellation_type::terminal);
        ASSERT_TRUE(run_until(h.ioc(), [&] { return result->done; }, 3s));
        EXPECT_TRUE(result->error || result->value->k != kind::done);
        EXPECT_EQ(h.vendor_calls(), 0u);

        h.restart();
        const auto out = h.perform(h.sample_action());
        EXPECT_EQ(out.k, kind::done) << out.detail;
        EXPECT_EQ(h.oauth().invalid_grants(), 0u);
        EXPECT_EQ(h.oauth().refresh_grants(), 2u);
        // The old refresh token, still inside QBO's overlap, was presented again.
        EXPECT_EQ(h.oauth().refresh_tokens_presented(),
                  (std::vector<std::string>{h.seeded_refresh_token(), h.seeded_refresh_token()}));
        EXPECT_EQ(h.manager().state(), connectors::oauth2::credential_state::ok);
    }
}

TYPED_TEST(conformance, a_restart_after_dying_before_the_store_is_not_locked_out) {
    auto& h = this->harness_;
    if constexpr (!TypeParam::oauth2) {
        GTEST_SKIP() << TypeParam::kind << " has no OAuth2";
    } else {
        h.seed_credential(/*expired=*/true);
        connectors::oauth2::manager_hooks hooks;
        hooks.after_token_response = [] { return false; };  // dies before the write
        h.manager().set_hooks(hooks);
        const auto first = h.perform(h.sample_action());
        EXPECT_NE(first.k, kind::done) << first.detail;
        EXPECT_EQ(h.oauth().refresh_grants(), 1u);
        EXPECT_EQ(h.vendor_calls(), 0u);
        auto stored = connectors::oauth2::load_credential(h.tokens(), h.credential_id());
        ASSERT_TRUE(stored.ok() && stored.value);
        EXPECT_EQ(stored.value->refresh_token, h.seeded_refresh_token());

        h.restart();
        const auto out = h.perform(h.sample_action());
        EXPECT_EQ(out.k, kind::done) << out.detail;
        EXPECT_EQ(h.oauth().invalid_grants(), 0u);
        EXPECT_EQ(h.vendor_calls(), 1u);
        stored = connectors::oauth2::load_credential(h.tokens(), h.credential_id());
        ASSERT_TRUE(stored.ok() && stored.value);
        EXPECT_NE(stored.value->refresh_token, h.seeded_refresh_token());
    }
}

}  // namespace
}  // namespace billsync::conformance
