#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <nlohmann/json.hpp>

#include "connectors/email/email_message.hpp"
#include "connectors/smtp/smtp_connector.hpp"
#include "sim/smtp_sink.hpp"
#include "sim/test_ca.hpp"
#include "tests/fakes/log_capture.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/email/email_test_support.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::smtp {
namespace {

using json = nlohmann::json;
using connectors::testing::run;

constexpr std::string_view password = "pw-Secret-123!";

state::action send_action(const std::string& delivery_id, json extra = json::object()) {
    return testing::send_action("mail", delivery_id, std::move(extra));
}

class smtp_test : public ::testing::Test {
protected:
    void SetUp() override { tls_ = ca_.issue_loopback(dir_.path()); }

    void start_sink(simulators::smtp_sink_options o = {}) {
        if (o.cert_file.empty()) {
            o.cert_file = tls_.cert;
            o.key_file = tls_.key;
        }
        if (o.username.empty()) {
            o.username = "billsync";
            o.password = std::string(password);
        }
        sink_ = std::make_unique<simulators::smtp_sink>(o);
        ASSERT_EQ(sink_->start(), "");
    }

    settings config() {
        settings s;
        s.name = "mail";
        s.client.host = "localhost";  // SNI and host-name verification against the leaf
        s.client.port = sink_->port();
        s.client.tls = tls_mode::starttls;
        s.client.username = "billsync";
        s.client.password = std::string(password);
        s.client.ca_file = tls_.ca_cert.string();
        s.client.connect_timeout = std::chrono::seconds(5);
        s.client.command_timeout = std::chrono::seconds(5);
        s.client.data_timeout = std::chrono::seconds(5);
        s.client.log = log_;
        s.from_email = "billing@firm.test";
        s.from_name = "Firm Billing";
        s.clock = &clock_;
        return s;
    }

    action_outcome perform(smtp_connector& c, state::action a) {
        return run(ioc_, c.perform(std::move(a)));
    }

    static std::shared_ptr<spdlog::logger> make_logger(const billsync::testing::log_capture& cap) {
        auto l = std::make_shared<spdlog::logger>("connector.mail", cap.sink());
        l->set_level(spdlog::level::trace);
        return l;
    }

    static util::instant start_time() {
        util::instant t;
        util::parse_rfc3339("2026-01-05T09:00:00Z", t);
        return t;
    }

    billsync::testing::temp_dir dir_;
    simulators::test_ca ca_;
    simulators::tls_files tls_;
    std::unique_ptr<simulators::smtp_sink> sink_;
    billsync::testing::log_capture capture_;
    std::shared_ptr<spdlog::logger> log_ = make_logger(capture_);
    util::manual_clock clock_{start_time()};
    net::io_context ioc_;
};

TEST_F(smtp_test, delivers_over_starttls_with_auth_plain) {
    start_sink();
    smtp_connector c(config());
    const auto out = perform(c,
                             send_action("d-1",
                                         {{"subject", "Facture n\xc2\xb0 1042"},
                                          {"text", "Line one\n.hidden line\n.\nlast"},
                                          {"headers", {{"In-Reply-To", "<m0@client.test>"}}}}));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_EQ(out.detail, email::stable_message_id("d-1"));
    ASSERT_EQ(out.effects.size(), 1u);
    EXPECT_EQ(out.effects[0].source, "mail");
    EXPECT_EQ(json::parse(out.effects[0].fields_json)["provider_id"], out.detail);

    const auto messages = sink_->messages();
    ASSERT_EQ(messages.size(), 1u);
    const auto& m = messages[0];
    EXPECT_TRUE(m.tls);
    EXPECT_EQ(m.auth_user, "billsync");
    EXPECT_EQ(m.mail_from, "billing@firm.test");
    EXPECT_EQ(m.rcpt_to, std::vector<std::string>{"client@example.com"});
    EXPECT_NE(m.data.find("Message-ID: " + email::stable_message_id("d-1") + "\r\n"),
              std::string::npos);
    EXPECT_NE(m.data.find("Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n"), std::string::npos);
    EXPECT_NE(m.data.find("Subject: =?UTF-8?B?" + util::base64_encode("Facture n\xc2\xb0 1042") +
                          "?=\r\n"),
              std::string::npos);
    EXPECT_NE(m.data.find("In-Reply-To: <m0@client.test>\r\n"), std::string::npos);
    EXPECT_NE(m.data.find("From: \"Firm Billing\" <billing@firm.test>\r\n"), std::string::npos);
    // Dot-stuffed on the wire, restored by the receiver; a lone "." did not end the message.
    EXPECT_NE(m.wire.find("\r\n..hidden line\r\n..\r\nlast"), std::string::npos) << m.wire;
    EXPECT_NE(m.data.find("\r\n.hidden line\r\n.\r\nlast"), std::string::npos) << m.data;
}

TEST_F(smtp_test, message_id_is_stable_per_delivery) {
    start_sink();
    smtp_connector c(config());
    ASSERT_EQ(perform(c, send_action("d-7")).k, action_outcome::kind::done);
    clock_.advance(std::chrono::hours(1));
    ASSERT_EQ(perform(c, send_action("d-7")).k, action_outcome::kind::done);
    ASSERT_EQ(perform(c, send_action("d-8")).k, action_outcome::kind::done);
    const auto messages = sink_->messages();
    ASSERT_EQ(messages.size(), 3u);
    const auto id_of = [](const std::string& data) {
        return email::raw_header_value(data, "Message-ID");
    };
    EXPECT_EQ(id_of(messages[0].data), id_of(messages[1].data));
    EXPECT_NE(id_of(messages[0].data), id_of(messages[2].data));
    EXPECT_NE(messages[0].data, messages[1].data);  // the Date moved
}

TEST_F(smtp_test, auth_login_when_plain_is_not_offered) {
    simulators::smtp_sink_options o;
    o.auth_mechanisms = {"LOGIN"};
    start_sink(o);
    smtp_connector c(config());
    const auto out = perform(c, send_action("d-1"));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_EQ(sink_->messages().at(0).auth_user, "billsync");
}

TEST_F(smtp_test, an_untrusted_certificate_is_a_clear_error_and_nothing_is_sent) {
    start_sink();
    billsync::testing::temp_dir other_dir;
    simulators::test_ca other("another CA");
    const auto other_files = other.issue_loopback(other_dir.path());
    auto s = config();
    s.client.ca_file = other_files.ca_cert.string();
    smtp_connector c(s);
    const auto out = perform(c, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::retry);
    EXPECT_NE(out.detail.find("certificate verify failed for localhost"), std::string::npos)
        << out.detail;
    EXPECT_TRUE(sink_->messages().empty());
    // Credentials never travelled.
    for (const auto& line : sink_->commands()) {
        EXPECT_FALSE(line.starts_with("AUTH")) << line;
    }
}

TEST_F(smtp_test, a_name_the_certificate_does_not_cover_is_refused) {
    simulators::smtp_sink_options o;
    o.host = "127.0.0.2";  // loopback, but not in the leaf (localhost, 127.0.0.1)
    o.cert_file = tls_.cert;
    o.key_file = tls_.key;
    o.username = "billsync";
    o.password = std::string(password);
    sink_ = std::make_unique<simulators::smtp_sink>(o);
    if (const auto err = sink_->start(); !err.empty()) {
        GTEST_SKIP() << "cannot bind 127.0.0.2: " << err;
    }
    auto s = config();
    s.client.host = "127.0.0.2";
    smtp_connector c(s);
    const auto out = perform(c, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::retry);
    EXPECT_NE(out.detail.find("host name mismatch"), std::string::npos) << out.detail;
    EXPECT_TRUE(sink_->messages().empty());
}

TEST_F(smtp_test, temporary_failures_are_retried) {
    start_sink();
    sink_->script({simulators::smtp_stage::rcpt, 451, "4.3.0 Mailbox busy"});
    smtp_connector c(config());
    const auto out = perform(c, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::retry);
    EXPECT_NE(out.detail.find("451 4.3.0 Mailbox busy"), std::string::npos) << out.detail;
    EXPECT_TRUE(out.effects.empty());
    EXPECT_TRUE(sink_->messages().empty());
    // The next attempt goes through.
    EXPECT_EQ(perform(c, send_action("d-1")).k, action_outcome::kind::done);
}

TEST_F(smtp_test, permanent_failures_are_not_retried) {
    start_sink();
    sink_->script({simulators::smtp_stage::message, 554, "5.7.1 Message rejected as spam"});
    smtp_connector c(config());
    const auto out = perform(c, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("554 5.7.1"), std::string::npos) << out.detail;

    auto s = config();
    s.client.password = "wrong";
    smtp_connector wrong(s);
    const auto auth = perform(wrong, send_action("d-2"));
    EXPECT_EQ(auth.k, action_outcome::kind::permanent);
    EXPECT_NE(auth.detail.find("535"), std::string::npos) << auth.detail;
    EXPECT_TRUE(sink_->messages().empty());
}

TEST_F(smtp_test, a_connection_lost_after_the_message_is_not_resent) {
    start_sink();
    sink_->script({simulators::smtp_stage::message, 0, "", true});
    smtp_connector c(config());
    const auto out = perform(c, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::done);
    EXPECT_NE(out.detail.find("outcome unknown"), std::string::npos) << out.detail;
    ASSERT_EQ(sink_->messages().size(), 1u);
    EXPECT_FALSE(sink_->messages()[0].answered);

    const auto r = run(ioc_, c.reconcile(send_action("d-1")));
    EXPECT_EQ(r.k, reconcile_outcome::kind::happened);
    EXPECT_NE(r.detail.find("not resent"), std::string::npos);
}

TEST_F(smtp_test, starttls_is_required_when_configured) {
    simulators::smtp_sink_options o;
    o.cert_file = "";
    o.key_file = "";
    o.username = "billsync";
    o.password = std::string(password);
    sink_ = std::make_unique<simulators::smtp_sink>(o);
    ASSERT_EQ(sink_->start(), "");
    smtp_connector c(config());
    const auto out = perform(c, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("does not offer STARTTLS"), std::string::npos) << out.detail;
}

TEST_F(smtp_test, implicit_tls) {
    simulators::smtp_sink_options o;
    o.implicit_tls = true;
    start_sink(o);
    auto s = config();
    s.client.tls = tls_mode::implicit;
    smtp_connector c(s);
    const auto out = perform(c, send_action("d-1"));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_TRUE(sink_->messages().at(0).tls);
}

TEST_F(smtp_test, the_password_never_reaches_the_logs) {
    start_sink();
    smtp_connector plain(config());
    ASSERT_EQ(perform(plain, send_action("d-1")).k, action_outcome::kind::done);
    simulators::smtp_sink_options o;
    o.auth_mechanisms = {"LOGIN"};
    start_sink(o);
    smtp_connector login(config());
    ASSERT_EQ(perform(login, send_action("d-2")).k, action_outcome::kind::done);
    auto s = config();
    s.client.password = std::string(password) + "x";  // a failing AUTH is logged too
    smtp_connector wrong(s);
    EXPECT_EQ(perform(wrong, send_action("d-3")).k, action_outcome::kind::permanent);

    const auto logs = capture_.joined();
    ASSERT_NE(logs.find("SMTP C: EHLO"), std::string::npos);  // the trace was captured
    ASSERT_NE(logs.find("AUTH PLAIN <credentials hidden>"), std::string::npos);
    EXPECT_EQ(logs.find(password), std::string::npos);
    EXPECT_EQ(logs.find(util::base64_encode(password)), std::string::npos);
    EXPECT_EQ(logs.find(util::base64_encode(std::string(1, '\0') + "billsync" +
                                            std::string(1, '\0') + std::string(password))),
              std::string::npos);
}

}  // namespace
}  // namespace billsync::connectors::smtp
