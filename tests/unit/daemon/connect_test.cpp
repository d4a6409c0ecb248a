#include "daemon/connect.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "sim/harvest_simulator.hpp"
#include "tests/unit/connectors/runtime/oauth2_test_support.hpp"

namespace billsync::oauth2_test {
namespace {

using simulators::oauth2_mode;
using simulators::oauth2_server;

struct browser_result {
    unsigned authorize_status = 0;
    std::string location;
    unsigned callback_status = 0;
    std::string callback_body;
};

// Plays the browser: follows the authorize URL to the simulator, then its redirect to billsync.
browser_result browse(const std::string& authorize_url) {
    browser_result out;
    const auto a = http::parse_url(authorize_url);
    if (!a) {
        return out;
    }
    const auto r1 = http::fetch(a->host, a->port, "GET", a->target);
    out.authorize_status = r1.status;
    out.location = std::string(r1.header_value("Location"));
    const auto b = http::parse_url(out.location);
    if (!b) {
        return out;
    }
    const auto r2 = http::fetch(b->host, b->port, "GET", b->target);
    out.callback_status = r2.status;
    out.callback_body = r2.body;
    return out;
}

struct connect_fixture {
    explicit connect_fixture(oauth2_mode mode, std::string granted_scope = {})
        : f(mode, false, std::move(granted_scope)) {}

    daemon::connect_options options() {
        daemon::connect_options o;
        o.settings.name = f.vendor;
        o.settings.kind = f.vendor;
        o.settings.token_url = f.token_url();
        o.settings.values["client_id"] = "sim-client-id";
        o.settings.secrets.emplace("client_secret",
                                   config::secret("${env:X}", "sim-client-secret"));
        o.settings.values["authorize_url"] =
            f.sim->base_url() + std::string(oauth2_server::authorize_path);
        o.settings.values["connections_url"] =
            f.sim->base_url() + std::string(oauth2_server::connections_path);
        o.data_dir = f.dir / "data";
        o.key = test_key();
        o.redirect_port = 0;
        o.wait = std::chrono::seconds(20);
        o.http.proxy = connectors::proxy_settings{};
        o.clock = &f.clock;
        o.on_authorize_url = [this](const std::string& url) {
            authorize_url = url;
            browser = std::thread([this, url] { seen = browse(url); });
        };
        return o;
    }

    int run(daemon::connect_options o) {
        f.db.reset();  // connect opens the store itself
        const int rc = daemon::run_connect(std::move(o), out, err);
        if (browser.joinable()) {
            browser.join();
        }
        return rc;
    }

    fixture f;
    std::ostringstream out;
    std::ostringstream err;
    std::string authorize_url;
    std::thread browser;
    browser_result seen;
};

state::result<std::optional<oauth2::credential>> stored_in(const std::filesystem::path& data,
                                                           const std::string& id) {
    auto opened = state::store::open(data / "state");
    EXPECT_TRUE(opened.ok());
    connectors::token_store tokens(*opened.value, test_key());
    return oauth2::load_credential(tokens, id);
}

TEST(connect, qbo_flow_stores_sealed_tokens_under_the_realm) {
    connect_fixture c(oauth2_mode::qbo);
    auto o = c.options();
    const int rc = c.run(std::move(o));
    ASSERT_EQ(rc, 0) << c.err.str() << c.out.str();
    EXPECT_EQ(c.seen.authorize_status, 302u);
    EXPECT_EQ(c.seen.callback_status, 200u);
    EXPECT_NE(c.authorize_url.find("state="), std::string::npos);
    EXPECT_NE(c.authorize_url.find("scope=com.intuit.quickbooks.accounting"), std::string::npos);
    EXPECT_EQ(c.authorize_url.find("code_challenge"), std::string::npos);  // QBO: no PKCE
    EXPECT_NE(c.out.str().find(c.authorize_url), std::string::npos);
    EXPECT_NE(c.out.str().find("Connected qbo (realm 9130350000000001) as credential "
                               "qbo/9130350000000001; tokens stored sealed"),
              std::string::npos)
        << c.out.str();
    EXPECT_NE(c.out.str().find("Set realm_id = \"9130350000000001\""), std::string::npos);
    EXPECT_EQ(c.f.oauth->code_grants(), 1u);
    auto s = stored_in(c.f.dir / "data", "qbo/9130350000000001");
    ASSERT_TRUE(s.ok()) << s.st.message;
    ASSERT_TRUE(s.value);
    EXPECT_TRUE(c.f.oauth->access_token_valid(s.value->access_token));
    EXPECT_FALSE(s.value->refresh_token.empty());
    EXPECT_EQ(c.out.str().find(s.value->refresh_token), std::string::npos);
    EXPECT_EQ(c.out.str().find(s.value->access_token), std::string::npos);
}

TEST(connect, xero_flow_uses_pkce_and_reads_tenants) {
    connect_fixture c(oauth2_mode::xero);
    auto o = c.options();
    const int rc = c.run(std::move(o));
    ASSERT_EQ(rc, 0) << c.err.str() << c.out.str();
    EXPECT_NE(c.authorize_url.find("code_challenge="), std::string::npos);
    EXPECT_NE(c.authorize_url.find("code_challenge_method=S256"), std::string::npos);
    EXPECT_NE(c.authorize_url.find("offline_access"), std::string::npos);
    const std::string tenant = "b2c3d4e5-0000-4000-8000-000000000001";
    EXPECT_NE(c.out.str().find("as credential xero/" + tenant), std::string::npos) << c.out.str();
    EXPECT_NE(c.out.str().find("\"Demo Co\""), std::string::npos);
    EXPECT_EQ(c.f.sim->requests_to(oauth2_server::connections_path).size(), 1u);
    const auto token_calls = c.f.sim->requests_to(oauth2_server::token_path);
    ASSERT_EQ(token_calls.size(), 1u);
    EXPECT_NE(token_calls[0].body.find("code_verifier="), std::string::npos);
    auto s = stored_in(c.f.dir / "data", "xero/" + tenant);
    ASSERT_TRUE(s.ok() && s.value) << s.st.message;
    ASSERT_EQ(s.value->tenants.size(), 1u);
    EXPECT_EQ(s.value->tenants[0].name, "Demo Co");

    // The stored credential is what the daemon's token manager uses.
    auto opened = state::store::open(c.f.dir / "data" / "state");
    ASSERT_TRUE(opened.ok());
    connectors::token_store tokens(*opened.value, test_key());
    c.f.credential_id = "xero/" + tenant;
    oauth2::manager_deps d;
    d.http = c.f.http.get();
    d.tokens = &tokens;
    d.clock = &c.f.clock;
    d.time = c.f.steady.source();
    oauth2::token_manager m(c.f.settings(), d);
    c.f.clock.advance(std::chrono::hours(1));
    auto r = run(c.f.ioc, m.access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_TRUE(c.f.oauth->access_token_valid(r.token));
}

// The scopes granted are recorded with the tokens: the token answer's `scope` when it names
// them (a user may consent to less than asked), else the scopes asked for.
TEST(connect, the_granted_scopes_are_recorded_with_the_tokens) {
    const std::string tenant = "b2c3d4e5-0000-4000-8000-000000000001";
    {
        connect_fixture c(oauth2_mode::xero, "offline_access accounting.contacts");
        ASSERT_EQ(c.run(c.options()), 0) << c.err.str() << c.out.str();
        auto s = stored_in(c.f.dir / "data", "xero/" + tenant);
        ASSERT_TRUE(s.ok() && s.value) << s.st.message;
        EXPECT_EQ(s.value->scope, "offline_access accounting.contacts");
    }
    {
        connect_fixture c(oauth2_mode::xero);  // the answer names no scope
        auto o = c.options();
        o.settings.values["scope"] = "offline_access accounting.invoices";
        ASSERT_EQ(c.run(std::move(o)), 0) << c.err.str() << c.out.str();
        auto s = stored_in(c.f.dir / "data", "xero/" + tenant);
        ASSERT_TRUE(s.ok() && s.value) << s.st.message;
        EXPECT_EQ(s.value->scope, "offline_access accounting.invoices");
    }
}

TEST(connect, a_wrong_state_is_refused_and_the_flow_keeps_waiting) {
    connect_fixture c(oauth2_mode::qbo);
    auto o = c.options();
    o.on_authorize_url = [&c](const std::string& url) {
        c.authorize_url = url;
        c.browser = std::thread([&c, url] {
            // A forged callback first, then the real browser.
            const auto a = http::parse_url(url);
            const auto r1 = http::fetch(a->host, a->port, "GET", a->target);
            auto loc = std::string(r1.header_value("Location"));
            const auto b = http::parse_url(loc);
            const auto forged = http::fetch(b->host, b->port, "GET", "/callback?code=x&state=nope");
            c.seen.authorize_status = forged.status;
            const auto real = http::fetch(b->host, b->port, "GET", b->target);
            c.seen.callback_status = real.status;
        });
    };
    const int rc = c.run(std::move(o));
    ASSERT_EQ(rc, 0) << c.err.str();
    EXPECT_EQ(c.seen.authorize_status, 400u);
    EXPECT_EQ(c.seen.callback_status, 200u);
}

TEST(connect, denied_consent_and_bad_client_fail_clearly) {
    {
        connect_fixture c(oauth2_mode::xero);
        auto o = c.options();
        o.settings.secrets.erase("client_secret");
        o.settings.secrets.emplace("client_secret", config::secret("<inline>", "wrong"));
        const int rc = c.run(std::move(o));
        EXPECT_EQ(rc, 69);
        EXPECT_NE(c.err.str().find("exchanging the code failed"), std::string::npos) << c.err.str();
        EXPECT_EQ(c.err.str().find("wrong"), std::string::npos);
    }
    {
        connect_fixture c(oauth2_mode::xero);
        auto o = c.options();
        o.on_authorize_url = [&c](const std::string& url) {
            c.authorize_url = url;
            c.browser = std::thread([url] {
                const auto a = http::parse_url(url);
                const auto q = oauth2::parse_form(a->target.substr(a->target.find('?') + 1));
                const auto b = http::parse_url(q.at("redirect_uri"));
                (void)http::fetch(
                    b->host,
                    b->port,
                    "GET",
                    "/callback?error=access_denied&state=" + oauth2::url_encode(q.at("state")));
            });
        };
        const int rc = c.run(std::move(o));
        EXPECT_EQ(rc, 69);
        EXPECT_NE(c.err.str().find("access_denied"), std::string::npos) << c.err.str();
    }
}

// Harvest ID: no PKCE, no scope unless the section names one, the account from the accounts
// endpoint (only Harvest accounts; the configured one, else the only one).
struct harvest_connect {
    explicit harvest_connect(std::vector<simulators::harvest_account> accounts = {}) {
        simulators::harvest_options ho;
        ho.now = [this] { return f.clock.now(); };
        ho.accounts = std::move(accounts);
        hv = std::make_unique<simulators::harvest_simulator>(ho);
        hv->add_routes(sim.routes());
        if (auto e = sim.start(); !e.empty()) {
            throw std::runtime_error(e);
        }
    }

    daemon::connect_options options() {
        auto o = c.options();
        o.settings.name = "time";
        o.settings.kind = "harvest";
        o.settings.token_url = sim.base_url() + "/api/v2/oauth2/token";
        o.settings.values["client_id"] = "sim-harvest-client";
        o.settings.secrets.erase("client_secret");
        o.settings.secrets.emplace("client_secret",
                                   config::secret("${env:X}", "sim-harvest-secret"));
        o.settings.values["authorize_url"] = sim.base_url() + "/oauth2/authorize";
        o.settings.values["connections_url"] = sim.base_url() + "/api/v2/accounts";
        o.settings.values["contact"] = "it@example-cpa.com";
        return o;
    }

    connect_fixture c{oauth2_mode::qbo};  // the browser, the data dir and the clock
    fixture& f = c.f;
    simulators::sim_server sim;
    std::unique_ptr<simulators::harvest_simulator> hv;
};

TEST(connect, harvest_flow_stores_the_grant_under_the_one_harvest_account) {
    harvest_connect h({{123456, "Sim CPA", "harvest"}, {777, "Sim CPA", "forecast"}});
    const int rc = h.c.run(h.options());
    ASSERT_EQ(rc, 0) << h.c.err.str() << h.c.out.str();
    EXPECT_EQ(h.c.seen.authorize_status, 302u);
    EXPECT_EQ(h.c.seen.callback_status, 200u);
    EXPECT_EQ(h.c.authorize_url.find("scope="), std::string::npos) << h.c.authorize_url;
    EXPECT_EQ(h.c.authorize_url.find("code_challenge"), std::string::npos);
    EXPECT_NE(h.c.authorize_url.find("response_type=code"), std::string::npos);
    EXPECT_NE(h.c.out.str().find("Connected time (account 123456) as credential harvest/123456; "
                                 "tokens stored sealed"),
              std::string::npos)
        << h.c.out.str();
    EXPECT_NE(h.c.out.str().find("Set account_id = \"123456\" in [connectors.time]"),
              std::string::npos);
    EXPECT_EQ(h.c.out.str().find("777"), std::string::npos);  // a Forecast account is no choice
    EXPECT_EQ(h.hv->code_grants(), 1u);
    const auto token_calls = h.sim.requests_to("/api/v2/oauth2/token");
    ASSERT_EQ(token_calls.size(), 1u);
    EXPECT_NE(token_calls[0].body.find("grant_type=authorization_code"), std::string::npos);
    const auto accounts = h.sim.requests_to("/api/v2/accounts");
    ASSERT_EQ(accounts.size(), 1u);
    EXPECT_EQ(accounts[0].header_value("User-Agent"), "billsync (it@example-cpa.com)");
    EXPECT_TRUE(accounts[0].header_value("Authorization").starts_with("Bearer "));
    auto s = stored_in(h.f.dir / "data", "harvest/123456");
    ASSERT_TRUE(s.ok() && s.value) << s.st.message;
    EXPECT_EQ(s.value->vendor, "harvest");
    EXPECT_TRUE(h.hv->access_token_valid(s.value->access_token));
    EXPECT_FALSE(s.value->refresh_token.empty());
    EXPECT_EQ(h.c.out.str().find(s.value->access_token), std::string::npos);
    EXPECT_EQ(h.c.out.str().find(s.value->refresh_token), std::string::npos);
}

TEST(connect, harvest_with_several_accounts_needs_account_id) {
    const std::vector<simulators::harvest_account> two = {{111, "North Office", "harvest"},
                                                          {222, "South Office", "harvest"}};
    {
        harvest_connect h(two);
        EXPECT_EQ(h.c.run(h.options()), 69);
        EXPECT_NE(h.c.err.str().find("the grant reaches several Harvest accounts (111 \"North "
                                     "Office\", 222 \"South Office\"): set account_id in "
                                     "[connectors.time]"),
                  std::string::npos)
            << h.c.err.str();
    }
    {
        harvest_connect h(two);
        auto o = h.options();
        o.settings.values["account_id"] = "222";
        ASSERT_EQ(h.c.run(std::move(o)), 0) << h.c.err.str();
        EXPECT_NE(h.c.out.str().find("as credential harvest/222"), std::string::npos);
        EXPECT_EQ(h.c.out.str().find("Set account_id"), std::string::npos);  // already set
        auto s = stored_in(h.f.dir / "data", "harvest/222");
        ASSERT_TRUE(s.ok() && s.value) << s.st.message;
    }
    {
        harvest_connect h(two);
        auto o = h.options();
        o.settings.values["account_id"] = "999";
        EXPECT_EQ(h.c.run(std::move(o)), 69);
        EXPECT_NE(h.c.err.str().find("the grant does not reach Harvest account_id = \"999\""),
                  std::string::npos)
            << h.c.err.str();
    }
    {
        harvest_connect h({{777, "Forecast only", "forecast"}});
        EXPECT_EQ(h.c.run(h.options()), 69);
        EXPECT_NE(h.c.err.str().find("the grant reaches no Harvest account"), std::string::npos)
            << h.c.err.str();
    }
}

// The grant `billsync connect` stored is the one the connector refreshes.
TEST(connect, harvest_refresh_after_connect_rotates_the_stored_refresh_token) {
    harvest_connect h;
    ASSERT_EQ(h.c.run(h.options()), 0) << h.c.err.str();
    auto before = stored_in(h.f.dir / "data", "harvest/123456");
    ASSERT_TRUE(before.ok() && before.value);
    auto opened = state::store::open(h.f.dir / "data" / "state");
    ASSERT_TRUE(opened.ok());
    connectors::token_store tokens(*opened.value, test_key());
    oauth2::manager_settings ms;
    ms.connector = "time";
    ms.credential_id = "harvest/123456";
    ms.vendor = "harvest";
    ms.client = {h.sim.base_url() + "/api/v2/oauth2/token",
                 "sim-harvest-client",
                 "sim-harvest-secret",
                 /*secret_in_body=*/true};
    oauth2::manager_deps d;
    d.http = h.f.http.get();
    d.tokens = &tokens;
    d.clock = &h.f.clock;
    d.time = h.f.steady.source();
    oauth2::token_manager m(ms, d);
    h.f.clock.advance(std::chrono::hours(18));
    auto r = run(h.f.ioc, m.access_token());
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_TRUE(h.hv->access_token_valid(r.token));
    EXPECT_EQ(h.hv->refresh_grants(), 1u);
    auto after = oauth2::load_credential(tokens, "harvest/123456");
    ASSERT_TRUE(after.ok() && after.value);
    EXPECT_NE(after.value->refresh_token, before.value->refresh_token);
}

TEST(connect, cmd_connect_reports_a_missing_connector) {
    testing::temp_dir dir;
    testing::write_file(dir / "b.toml",
                        "[daemon]\ntime_zone = \"America/New_York\"\ndata_dir = \"" +
                            (dir / "data").string() + "\"\n");
    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(daemon::cmd_connect((dir / "b.toml").string(), "qbo", out, err), 78);
    EXPECT_NE(err.str().find("no connector of kind 'qbo'"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace billsync::oauth2_test
