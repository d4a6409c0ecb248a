// A fault profile of one's own (docs/chaos.md, "Your own fault profile"): what it gives each
// vendor, its defaults, and every mistake named with FILE:LINE:COL, with nothing used.

#include "sandbox/chaos_profile.hpp"

#include <gtest/gtest.h>

#include <string>

namespace billsync::sandbox {
namespace {

namespace sim = simulators;
using namespace std::chrono_literals;

std::optional<chaos_profile> parse(const std::string& text, std::string& error) {
    return parse_chaos_profile(text, "faults.toml", error);
}

TEST(chaos_profile, request_rules_and_webhooks_per_vendor_with_their_defaults) {
    std::string error;
    const auto p = parse(R"(
[qbo]
webhooks = { lose = 0.5, duplicate = 0.25 }

[[qbo.request]]
kind = "server_error"
probability = 0.1
status = 502

[[qbo.request]]
method = "POST"
path = "/oauth2/token"
kind = "reset_after_write"
probability = 1
max_in_a_row = 0

[twilio]
[[twilio.request]]
method = "POST"
kind = "slow"
hold_ms = 40
permanent = true

[karbon]

[xero]
webhooks = { reorder = 1 }
[[xero.request]]
kind = "timeout_after_read"
probability = 0.2

[taxdome]
webhooks = { lose = 0.3 }
)",
                         error);
    ASSERT_TRUE(p) << error;
    ASSERT_EQ(p->vendors.size(), 5u);

    const auto& qbo = p->vendors.at("qbo");
    ASSERT_EQ(qbo.requests.size(), 2u);
    EXPECT_EQ(qbo.requests[0].method, "*");
    EXPECT_EQ(qbo.requests[0].path_prefix, "/v3/");  // the vendor's API by default
    EXPECT_EQ(qbo.requests[0].kind, sim::fault_kind::server_error);
    EXPECT_EQ(qbo.requests[0].probability, 0.1);
    EXPECT_EQ(qbo.requests[0].status, 502u);
    EXPECT_EQ(qbo.requests[0].max_in_a_row, 2u);
    EXPECT_EQ(qbo.requests[1].method, "POST");
    EXPECT_EQ(qbo.requests[1].path_prefix, "/oauth2/token");
    EXPECT_EQ(qbo.requests[1].probability, 1.0);
    EXPECT_EQ(qbo.requests[1].max_in_a_row, 0u);
    EXPECT_EQ(qbo.requests[1].hold, 150ms);
    ASSERT_TRUE(qbo.webhooks);
    EXPECT_EQ(qbo.webhooks->source, "qbo");
    EXPECT_EQ(qbo.webhooks->lose, 0.5);
    EXPECT_EQ(qbo.webhooks->duplicate, 0.25);
    EXPECT_EQ(qbo.webhooks->reorder, 0.0);
    EXPECT_FALSE(qbo.permanent());

    const auto& twilio = p->vendors.at("twilio");
    ASSERT_EQ(twilio.requests.size(), 1u);
    EXPECT_EQ(twilio.requests[0].path_prefix, "/2010-04-01/");
    EXPECT_EQ(twilio.requests[0].hold, 40ms);
    EXPECT_TRUE(twilio.requests[0].permanent);
    EXPECT_EQ(twilio.requests[0].probability, 1.0);  // permanent: every matching request
    EXPECT_TRUE(twilio.permanent());

    // Named with nothing: that vendor gets no faults at all.
    EXPECT_TRUE(p->vendors.at("karbon").requests.empty());
    EXPECT_FALSE(p->vendors.at("karbon").webhooks);
    EXPECT_FALSE(p->vendors.contains("harvest"));  // not named: the runner's own profile

    const auto& xero = p->vendors.at("xero");
    ASSERT_EQ(xero.requests.size(), 1u);
    EXPECT_EQ(xero.requests[0].path_prefix, "/api.xro/2.0/");
    ASSERT_TRUE(xero.webhooks);
    EXPECT_EQ(xero.webhooks->source, "xero");
    EXPECT_EQ(xero.webhooks->reorder, 1.0);
    // TaxDome's changes come as Zapier relays: only what happens to them.
    const auto& taxdome = p->vendors.at("taxdome");
    EXPECT_TRUE(taxdome.requests.empty());
    ASSERT_TRUE(taxdome.webhooks);
    EXPECT_EQ(taxdome.webhooks->source, "taxdome");
    EXPECT_EQ(taxdome.webhooks->lose, 0.3);
}

TEST(chaos_profile, every_mistake_is_named_with_its_position) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[freshbooks]\n", "faults.toml:1:1: unknown vendor 'freshbooks'"},
        {"[taxdome]\n[[taxdome.request]]\nkind = \"slow\"\nprobability = 0.1\n",
         "faults.toml:2:1: [taxdome]: billsync calls no API of taxdome"},
        {"[qbo]\n[[qbo.request]]\nkind = \"explode\"\nprobability = 0.1\n",
         "faults.toml:3:8: [[qbo.request]] #1: 'kind' must be one of"},
        {"[qbo]\n[[qbo.request]]\nkind = \"slow\"\nprobability = 1.5\n",
         "faults.toml:4:15: [[qbo.request]] #1: 'probability' must be from 0 to 1"},
        {"[qbo]\n[[qbo.request]]\nkind = \"slow\"\n", "'probability' is required"},
        {"[qbo]\n[[qbo.request]]\nkind = \"slow\"\npermanent = \"yes\"\n",
         "faults.toml:4:13: [[qbo.request]] #1: 'permanent' must be true or false"},
        {"[qbo]\n[[qbo.request]]\nkind = \"slow\"\nprobability = 0.1\nstatus = 503\n",
         "faults.toml:5:10: [[qbo.request]] #1: 'status' applies to kind = \"server_error\" only"},
        {"[qbo]\n[[qbo.request]]\nkind = \"server_error\"\nprobability = 0.1\nwhen = 1\n",
         "faults.toml:5:8: [[qbo.request]] #1: unknown key 'when'"},
        {"[qbo]\n[[qbo.request]]\nkind = \"slow\"\nprobability = 0.1\npath = \"v3\"\n",
         "'path' must be a path prefix starting with '/'"},
        {"[qbo]\n[[qbo.request]]\nkind = \"slow\"\nprobability = 0.1\nmethod = \"FETCH\"\n",
         "'method' must be one of"},
        {"[karbon]\nwebhooks = { lose = 0.1 }\n", "delivers no webhooks of karbon"},
        {"[qbo]\nwebhooks = { lose = 0.1, drop = 0.2 }\n", "unknown key 'drop'"},
        {"[qbo]\nrequest = 3\n", "'request' must be an array of tables"},
        {"[qbo\n", "faults.toml:1:"},
    };
    for (const auto& [text, expected] : cases) {
        std::string error;
        EXPECT_FALSE(parse(text, error)) << text;
        EXPECT_NE(error.find(expected), std::string::npos) << text << "\ngot: " << error;
    }
}

TEST(chaos_profile, a_file_that_cannot_be_read_is_named) {
    std::string error;
    EXPECT_FALSE(read_chaos_profile("/nonexistent/faults.toml", error));
    EXPECT_EQ(error, "/nonexistent/faults.toml: cannot read the fault profile");
}

}  // namespace
}  // namespace billsync::sandbox
