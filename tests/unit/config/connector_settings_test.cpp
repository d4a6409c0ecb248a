#include <gtest/gtest.h>

#include "connectors/builtin.hpp"
#include "tests/unit/config/test_support.hpp"

namespace billsync::connectors {
namespace {

using config::testing::lines_of;
using config::testing::load_text;
using config::testing::scoped_env;

constexpr std::string_view head =
    "[daemon]\n"
    "data_dir = \"/d\"\n"
    "time_zone = \"UTC\"\n";  // connector sections start on line 4

struct one {
    config::testing::load_result result;
    const connector_settings* settings = nullptr;
};

one parse_one(std::string_view section) {
    one o{load_text(std::string(head) + std::string(section))};
    if (o.result.connectors.size() == 1) {
        o.settings = &o.result.connectors[0];
    }
    return o;
}

class connector_settings_test : public ::testing::Test {
protected:
    scoped_env secret_{"BILLSYNC_TEST_CONNECTOR_SECRET", "connector-secret-value"};
};

TEST_F(connector_settings_test, qbo) {
    auto o = parse_one(
        "[connectors.qbo]\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "webhook_verifier_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "realm_id = \"9130\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_TRUE(o.result.diags.empty()) << o.result.rendered();
    const auto& s = *o.settings;
    EXPECT_EQ(s.name, "qbo");
    EXPECT_EQ(s.kind, "qbo");
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.base_url, "https://quickbooks.api.intuit.com");
    EXPECT_EQ(s.token_url, "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer");
    EXPECT_EQ(*s.value("client_id"), "abc");
    EXPECT_EQ(*s.value("realm_id"), "9130");
    EXPECT_EQ(*s.value("minor_version"), "75");
    EXPECT_EQ(s.find_secret("client_secret")->reveal(), "connector-secret-value");
    EXPECT_EQ(s.find_secret("client_secret")->reference(), "${env:BILLSYNC_TEST_CONNECTOR_SECRET}");
    EXPECT_NE(s.find_secret("webhook_verifier_token"), nullptr);
}

TEST_F(connector_settings_test, qbo_missing_keys_and_typos) {
    auto o = parse_one(
        "[connectors.qbo]\n"
        "client_id = \"abc\"\n"
        "  clinet_id = \"abc\"\n"
        "minor_version = 0\n");
    EXPECT_EQ(o.settings, nullptr);
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:4:1: error: [connectors.qbo] missing required key "
                  "'client_secret'",
                  "billsync.toml:6:3: error: [connectors.qbo] unknown key 'clinet_id' (did you "
                  "mean 'client_id'?)",
                  "billsync.toml:7:1: error: [connectors.qbo] 'minor_version' must be between 1 "
                  "and 999, not 0",
              }));
}

TEST_F(connector_settings_test, base_url_and_token_url_can_be_redirected) {
    auto o = parse_one(
        "[connectors.books]\n"
        "kind = \"xero\"\n"
        "base_url = \"http://127.0.0.1:19001\"\n"
        "token_url = \"http://127.0.0.1:19001/connect/token\"\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "tenant_id = \"t-1\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->name, "books");
    EXPECT_EQ(o.settings->kind, "xero");
    EXPECT_EQ(o.settings->base_url, "http://127.0.0.1:19001");
    EXPECT_EQ(o.settings->token_url, "http://127.0.0.1:19001/connect/token");
    EXPECT_EQ(o.settings->find_secret("webhook_key"), nullptr);
}

TEST_F(connector_settings_test, xero_defaults) {
    auto o = parse_one(
        "[connectors.xero]\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "webhook_key = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "tenant_id = \"t-1\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->base_url, "https://api.xero.com");
    EXPECT_EQ(o.settings->token_url, "https://identity.xero.com/connect/token");
    EXPECT_EQ(*o.settings->value("tenant_id"), "t-1");
    EXPECT_NE(o.settings->find_secret("webhook_key"), nullptr);
}

TEST_F(connector_settings_test, bad_urls) {
    auto o = parse_one(
        "[connectors.xero]\n"
        "base_url = \"api.xero.com\"\n"
        "token_url = \"ftp://identity.xero.com\"\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "tenant_id = \"t-1\"\n");
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:5:1: error: [connectors.xero] 'base_url' must be an absolute "
                  "http or https URL, not 'api.xero.com'",
                  "billsync.toml:6:1: error: [connectors.xero] 'token_url' must be an absolute "
                  "http or https URL, not 'ftp://identity.xero.com'",
              }));
}

TEST_F(connector_settings_test, twilio) {
    auto o = parse_one(
        "[connectors.twilio]\n"
        "account_sid = \"AC123\"\n"
        "auth_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "messaging_service_sid = \"MG123\"\n"
        "public_url = \"https://billsync.example.com\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->base_url, "https://api.twilio.com");
    EXPECT_EQ(*o.settings->value("public_url"), "https://billsync.example.com");
    EXPECT_EQ(o.settings->token_url, "");
    EXPECT_EQ(*o.settings->value("messaging_service_sid"), "MG123");
    EXPECT_EQ(o.settings->value("from"), nullptr);
}

TEST_F(connector_settings_test, twilio_needs_a_sender_and_has_no_token_url) {
    auto o = parse_one(
        "[connectors.twilio]\n"
        "account_sid = \"AC123\"\n"
        "auth_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "public_url = \"https://billsync.example.com\"\n"
        "token_url = \"https://example.com/token\"\n");
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:4:1: error: [connectors.twilio] set 'from' (a sender number) or "
                  "'messaging_service_sid'",
                  "billsync.toml:8:1: error: [connectors.twilio] unknown key 'token_url'",
              }));
}

// Issue 18 item 13: plain http:// carries secrets in the clear; only loopback may use it.
TEST_F(connector_settings_test, cleartext_urls_are_refused_off_loopback) {
    auto o = parse_one(
        "[connectors.qbo]\n"
        "client_id = \"id\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "base_url = \"http://quickbooks.example.com\"\n"
        "token_url = \"http://user@10.0.0.5:8080/token\"\n"
        "authorize_url = \"HTTP://login.example.com/authorize\"\n");
    EXPECT_EQ(o.settings, nullptr);
    const auto text = o.result.rendered();
    for (const auto* key :
         {"'base_url' uses http://", "'token_url' uses http://", "'authorize_url' uses http://"}) {
        EXPECT_NE(text.find(key), std::string::npos) << key << "\n" << text;
    }
    for (const auto* url : {"http://127.0.0.1:8080",
                            "http://localhost:9000/v3",
                            "http://[::1]:81",
                            "https://quickbooks.example.com"}) {
        auto ok =
            parse_one(std::string("[connectors.qbo]\nclient_id = \"id\"\n"
                                  "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
                                  "base_url = \"") +
                      url + "\"\n");
        EXPECT_NE(ok.settings, nullptr) << url << "\n" << ok.result.rendered();
    }
}

TEST_F(connector_settings_test, sendgrid) {
    auto o = parse_one(
        "[connectors.email]\n"
        "kind = \"sendgrid\"\n"
        "api_key = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "from_email = \"billing@example.com\"\n"
        "from_name = \"Example Billing\"\n"
        "inbound_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "event_webhook_public_key = \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->base_url, "https://api.sendgrid.com");
    EXPECT_EQ(*o.settings->value("from_email"), "billing@example.com");
    EXPECT_EQ(*o.settings->value("from_name"), "Example Billing");
    EXPECT_EQ(o.settings->find_secret("inbound_secret")->reveal(), "connector-secret-value");
    EXPECT_EQ(*o.settings->value("event_webhook_public_key"),
              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE");
}

TEST_F(connector_settings_test, smtp) {
    auto o = parse_one(
        "[connectors.mail]\n"
        "kind = \"smtp\"\n"
        "host = \"smtp.example.com\"\n"
        "username = \"billsync\"\n"
        "password = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "from_email = \"billing@example.com\"\n"
        "from_name = \"Example Billing\"\n"
        "ca_file = \"/etc/billsync/smtp-ca.pem\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(*o.settings->value("host"), "smtp.example.com");
    EXPECT_EQ(*o.settings->value("port"), "587");
    EXPECT_EQ(*o.settings->value("tls"), "starttls");
    EXPECT_EQ(*o.settings->value("from_email"), "billing@example.com");
    EXPECT_EQ(*o.settings->value("from_name"), "Example Billing");
    EXPECT_EQ(*o.settings->value("ca_file"), "/etc/billsync/smtp-ca.pem");
    EXPECT_EQ(o.settings->base_url, "");

    auto bad = parse_one(
        "[connectors.mail]\n"
        "kind = \"smtp\"\n"
        "host = \"smtp.example.com\"\n"
        "port = 70000\n"
        "tls = \"yes\"\n"
        "username = \"billsync\"\n"
        "starttls = true\n");
    const auto lines = lines_of(bad.result.rendered());
    ASSERT_EQ(lines.size(), 5u) << bad.result.rendered();
    EXPECT_EQ(lines[0],
              "billsync.toml:4:1: error: [connectors.mail] missing required key 'from_email'");
    EXPECT_EQ(lines[1],
              "billsync.toml:7:1: error: [connectors.mail] 'port' must be between 1 and "
              "65535, not 70000");
    EXPECT_TRUE(lines[2].starts_with("billsync.toml:8:1: error: [connectors.mail] 'tls' "))
        << lines[2];
    EXPECT_EQ(lines[3],
              "billsync.toml:9:1: error: [connectors.mail] 'username' is set but 'password' "
              "is not");
    EXPECT_TRUE(
        lines[4].starts_with("billsync.toml:10:1: error: [connectors.mail] unknown key 'starttls'"))
        << lines[4];

    auto clear = parse_one(
        "[connectors.mail]\n"
        "kind = \"smtp\"\n"
        "host = \"smtp.example.com\"\n"
        "tls = \"none\"\n"
        "username = \"billsync\"\n"
        "password = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "from_email = \"billing@example.com\"\n");
    EXPECT_EQ(lines_of(clear.result.rendered()),
              (std::vector<std::string>{"billsync.toml:7:1: error: [connectors.mail] tls = "
                                        "\"none\" cannot be used with a password"}));
}

TEST_F(connector_settings_test, karbon) {
    auto o = parse_one(
        "[connectors.karbon]\n"
        "bearer_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "access_key = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "webhook_signing_key = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->base_url, "https://api.karbonhq.com");
    EXPECT_EQ(o.settings->secrets.size(), 3U);
}

TEST_F(connector_settings_test, harvest) {
    auto o = parse_one(
        "[connectors.harvest]\n"
        "account_id = \"123\"\n"
        "access_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "contact = \"it@example.com\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->base_url, "https://api.harvestapp.com/v2");
    EXPECT_EQ(*o.settings->value("contact"), "it@example.com");
    EXPECT_EQ(*o.settings->value("page_size"), "2000");
}

// OAuth2 instead of a Personal Access Token: client_id + client_secret, account_id optional
// (`billsync connect` finds it), Harvest ID's token endpoint by default.
TEST_F(connector_settings_test, harvest_oauth2) {
    auto o = parse_one(
        "[connectors.time]\n"
        "kind = \"harvest\"\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "contact = \"it@example.com\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_TRUE(o.result.diags.empty()) << o.result.rendered();
    EXPECT_EQ(o.settings->token_url, "https://id.getharvest.com/api/v2/oauth2/token");
    EXPECT_EQ(o.settings->find_secret("access_token"), nullptr);
    EXPECT_EQ(o.settings->value("account_id"), nullptr);
    EXPECT_TRUE(builtin_kinds().uses_oauth2("harvest"));

    o = parse_one(
        "[connectors.time]\n"
        "kind = \"harvest\"\n"
        "account_id = \"123\"\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "token_url = \"http://127.0.0.1:9/api/v2/oauth2/token\"\n"
        "authorize_url = \"http://127.0.0.1:9/oauth2/authorize\"\n"
        "connections_url = \"http://127.0.0.1:9/api/v2/accounts\"\n"
        "scope = \"harvest:123\"\n"
        "redirect_port = 8766\n"
        "contact = \"it@example.com\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->token_url, "http://127.0.0.1:9/api/v2/oauth2/token");
    EXPECT_EQ(*o.settings->value("redirect_port"), "8766");
}

TEST_F(connector_settings_test, harvest_needs_exactly_one_way_to_authenticate) {
    // Both: at the table.
    auto o = parse_one(
        "[connectors.time]\n"
        "kind = \"harvest\"\n"
        "account_id = \"123\"\n"
        "access_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "client_id = \"abc\"\n"
        "client_secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "contact = \"it@example.com\"\n");
    EXPECT_EQ(o.settings, nullptr);
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:4:1: error: [connectors.time] give either access_token (a "
                  "Personal Access Token) or client_id and client_secret (OAuth2, then "
                  "`billsync connect time`), not both",
              }));
    // Neither: at the table.
    o = parse_one(
        "[connectors.time]\n"
        "kind = \"harvest\"\n"
        "account_id = \"123\"\n"
        "contact = \"it@example.com\"\n");
    EXPECT_EQ(o.settings, nullptr);
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:4:1: error: [connectors.time] needs access_token (a Personal "
                  "Access Token) or client_id and client_secret (OAuth2, then `billsync connect "
                  "time`)",
              }));
    // Half an OAuth2 client: at the key given.
    o = parse_one(
        "[connectors.time]\n"
        "kind = \"harvest\"\n"
        "client_id = \"abc\"\n"
        "contact = \"it@example.com\"\n");
    EXPECT_EQ(o.settings, nullptr);
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:6:1: error: [connectors.time] OAuth2 needs both client_id and "
                  "client_secret; 'client_secret' is missing",
              }));
    // A Personal Access Token needs the account id, and takes no OAuth2 keys.
    o = parse_one(
        "[connectors.time]\n"
        "kind = \"harvest\"\n"
        "access_token = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "token_url = \"https://id.getharvest.com/api/v2/oauth2/token\"\n"
        "contact = \"it@example.com\"\n");
    EXPECT_EQ(o.settings, nullptr);
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:4:1: error: [connectors.time] missing required key 'account_id'",
                  "billsync.toml:7:1: error: [connectors.time] 'token_url' applies to OAuth2 "
                  "(client_id and client_secret) only; this section uses a Personal Access "
                  "Token (access_token)",
              }));
}

TEST_F(connector_settings_test, taxdome) {
    auto o = parse_one(
        "[connectors.taxdome]\n"
        "relay_secret = \"connector-relay-secret-of-40-characters!\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    EXPECT_EQ(o.settings->base_url, "");
    EXPECT_EQ(o.settings->find_secret("relay_secret")->reveal(),
              "connector-relay-secret-of-40-characters!");
    EXPECT_EQ(*o.settings->value("relay_max_age_s"), "86400");
}

TEST_F(connector_settings_test, generic_defaults) {
    auto o = parse_one(
        "[connectors.crm]\n"
        "kind = \"generic\"\n"
        "secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    const auto& s = *o.settings;
    EXPECT_EQ(*s.value("signature_header"), "X-Signature");
    EXPECT_EQ(*s.value("signature_encoding"), "hex");
    EXPECT_EQ(*s.value("signature_prefix"), "");
    EXPECT_EQ(s.value("event_id_header"), nullptr);
    EXPECT_EQ(s.value("action_url"), nullptr);
    EXPECT_EQ(s.base_url, "");
}

TEST_F(connector_settings_test, generic_every_key) {
    auto o = parse_one(
        "[connectors.crm]\n"
        "kind = \"generic\"\n"
        "base_url = \"https://crm.example.com\"\n"
        "secret = \"${env:BILLSYNC_TEST_CONNECTOR_SECRET}\"\n"
        "signature_header = \"X-Hub-Signature-256\"\n"
        "signature_encoding = \"base64\"\n"
        "signature_prefix = \"sha256=\"\n"
        "event_id_header = \"X-Event-Id\"\n"
        "action_url = \"https://crm.example.com/actions\"\n");
    ASSERT_NE(o.settings, nullptr) << o.result.rendered();
    const auto& s = *o.settings;
    EXPECT_EQ(s.base_url, "https://crm.example.com");
    EXPECT_EQ(*s.value("signature_header"), "X-Hub-Signature-256");
    EXPECT_EQ(*s.value("signature_encoding"), "base64");
    EXPECT_EQ(*s.value("signature_prefix"), "sha256=");
    EXPECT_EQ(*s.value("event_id_header"), "X-Event-Id");
    EXPECT_EQ(*s.value("action_url"), "https://crm.example.com/actions");
}

TEST_F(connector_settings_test, generic_errors) {
    auto o = parse_one(
        "[connectors.crm]\n"
        "kind = \"generic\"\n"
        "signature_encoding = \"hexa\"\n"
        "action_url = \"/actions\"\n");
    EXPECT_EQ(o.settings, nullptr);
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:4:1: error: [connectors.crm] missing required key 'secret'",
                  "billsync.toml:6:1: error: [connectors.crm] 'signature_encoding' must be one of "
                  "'hex', 'base64', not 'hexa' (did you mean 'hex'?)",
                  "billsync.toml:7:1: error: [connectors.crm] 'action_url' must be an absolute "
                  "http or https URL, not '/actions'",
              }));
}

TEST_F(connector_settings_test, unknown_kind_suggests_and_does_not_flood) {
    auto o = parse_one(
        "[connectors.books]\n"
        "kind = \"qbo2\"\n"
        "client_id = \"x\"\n"
        "[connectors.crm]\n"
        "secret = \"x\"\n");
    EXPECT_EQ(lines_of(o.result.rendered()),
              (std::vector<std::string>{
                  "billsync.toml:5:1: error: [connectors.books] unknown connector kind 'qbo2' "
                  "(did you mean 'qbo'?)",
                  "billsync.toml:7:1: error: [connectors.crm] unknown connector kind 'crm' "
                  "(without 'kind' the section name is used; known kinds: generic, harvest, "
                  "karbon, qbo, sendgrid, smtp, taxdome, twilio, xero)",
              }));
}

TEST_F(connector_settings_test, known_kinds) {
    EXPECT_EQ(known_connector_kinds(),
              (std::vector<std::string_view>{"generic",
                                             "harvest",
                                             "karbon",
                                             "qbo",
                                             "sendgrid",
                                             "smtp",
                                             "taxdome",
                                             "twilio",
                                             "xero"}));
}

}  // namespace
}  // namespace billsync::connectors
