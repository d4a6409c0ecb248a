#include "connectors/email/email_message.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "connectors/smtp/smtp_client.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::email {
namespace {

using json = nlohmann::json;

json valid() {
    return {{"to", "client@example.com"},
            {"to_name", "Client Co"},
            {"subject", "Invoice 1042"},
            {"text", "Please pay."},
            {"delivery_id", "d-1"}};
}

std::optional<email_message> parse(const json& j, std::string& error) {
    return parse_email_message(j.dump(), error);
}

TEST(email_message, parses_a_full_payload) {
    auto j = valid();
    j["html"] = "<p>Please pay.</p>";
    j["reply_to"] = "ap@firm.test";
    j["headers"] = {{"In-Reply-To", "<abc@x>"}, {"X-Billsync", "1"}};
    std::string error;
    const auto m = parse(j, error);
    ASSERT_TRUE(m) << error;
    EXPECT_EQ(m->to, "client@example.com");
    EXPECT_EQ(m->to_name, "Client Co");
    EXPECT_EQ(m->html, "<p>Please pay.</p>");
    EXPECT_EQ(m->reply_to, "ap@firm.test");
    ASSERT_EQ(m->headers.size(), 2u);
    EXPECT_EQ(m->headers[0].name, "In-Reply-To");
}

TEST(email_message, rejects_bad_payloads_and_header_injection) {
    const auto rejects = [](json j, const std::string& expected) {
        std::string error;
        EXPECT_FALSE(parse(j, error)) << j.dump();
        EXPECT_NE(error.find(expected), std::string::npos) << error;
    };
    std::string error;
    EXPECT_FALSE(parse_email_message("not json", error));
    auto j = valid();
    j["to"] = "a@b.com\r\nBcc: victim@x.com";
    rejects(j, "\"to\"");
    j = valid();
    j["to"] = "two@a.com, three@b.com";
    rejects(j, "\"to\"");
    j = valid();
    j["subject"] = "Hi\r\nBcc: victim@x.com";
    rejects(j, "\"subject\"");
    j = valid();
    j.erase("subject");
    rejects(j, "\"subject\"");
    j = valid();
    j["text"] = "";
    rejects(j, "\"text\"");
    j = valid();
    j.erase("delivery_id");
    rejects(j, "\"delivery_id\"");
    j = valid();
    j["headers"] = {{"X-A", "ok\r\nBcc: victim@x.com"}};
    rejects(j, "header X-A");
    j = valid();
    j["headers"] = {{"Bcc", "victim@x.com"}};
    rejects(j, "header name not allowed");
    j = valid();
    j["reply_to"] = "nope";
    rejects(j, "\"reply_to\"");
}

TEST(email_message, addresses) {
    EXPECT_TRUE(valid_address("a.b+c@example.co.uk"));
    EXPECT_FALSE(valid_address("no-at-sign"));
    EXPECT_FALSE(valid_address("a@b@c"));
    EXPECT_FALSE(valid_address("a b@c.com"));
    EXPECT_FALSE(valid_address("a@c.com>"));
    EXPECT_EQ(bare_address("\"Ann, CPA\" <Ann@Example.COM>"), "ann@example.com");
    EXPECT_EQ(bare_address(" bob@x.org "), "bob@x.org");
    EXPECT_EQ(bare_address("Broken <bob@x.org"), "");
    EXPECT_EQ(address_list("\"Ann, CPA\" <ann@x.com>, bob@y.org,, Carl <C@Z.net>"),
              (std::vector<std::string>{"ann@x.com", "bob@y.org", "c@z.net"}));
}

TEST(email_message, raw_header_values_are_unfolded) {
    const std::string block =
        "Received: from x\r\n"
        "Message-ID: <m1@client.test>\r\n"
        "References: <a@x>\r\n"
        " <b@x>\r\n"
        "In-Reply-To: <b@x>\r\n"
        "\r\n"
        "Message-ID: <body@not-a-header>\r\n";
    EXPECT_EQ(raw_header_value(block, "message-id"), "<m1@client.test>");
    EXPECT_EQ(raw_header_value(block, "References"), "<a@x> <b@x>");
    EXPECT_EQ(raw_header_value(block, "In-Reply-To"), "<b@x>");
    EXPECT_EQ(raw_header_value(block, "Subject"), "");
}

TEST(email_message, stable_message_id_and_accepted_change) {
    EXPECT_EQ(stable_message_id("d-1"), stable_message_id("d-1"));
    EXPECT_NE(stable_message_id("d-1"), stable_message_id("d-2"));
    EXPECT_EQ(stable_message_id("d-1").size(), 1u + 32 + std::string("@billsync.local>").size());
    const auto c = accepted_change("mail", "d-1", "<m@x>");
    EXPECT_EQ(c.entity_type, "email_message");
    EXPECT_EQ(c.entity_id, "d-1");
    EXPECT_EQ(c.source, "mail");
    const auto* m = c.as<mappings::message_status>();
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->via, mappings::channel::email);
    EXPECT_EQ(m->delivery_id, "d-1");
    EXPECT_EQ(m->provider_id, "<m@x>");
    EXPECT_EQ(m->status, "accepted");
    EXPECT_EQ(json::parse(c.fields_json)["status"], "accepted");
}

TEST(email_message, unknown_outcome_is_happened_and_says_so) {
    state::action a;
    a.connector = "mail";
    a.kind = std::string(send_action);
    a.payload = valid().dump();
    const auto r = unknown_send_outcome("smtp", a);
    EXPECT_EQ(r.k, reconcile_outcome::kind::happened);
    EXPECT_NE(r.detail.find("outcome unknown"), std::string::npos);
    EXPECT_NE(r.detail.find("not resent"), std::string::npos);
    ASSERT_EQ(r.effects.size(), 1u);
    EXPECT_EQ(json::parse(r.effects[0].fields_json)["status"], "unknown");
}

TEST(email_message, header_encoding) {
    EXPECT_EQ(encode_header_text("Invoice 1042"), "Invoice 1042");
    const std::string utf8 = "Facture n\xc2\xb0 1042 \xe2\x80\x94 r\xc3\xa9sum\xc3\xa9";
    const auto encoded = encode_header_text(utf8);
    ASSERT_TRUE(encoded.starts_with("=?UTF-8?B?"));
    EXPECT_EQ(util::base64_decode(encoded.substr(10, encoded.size() - 12)), utf8);
    // Long text: several encoded-words of at most 75 characters, split on whole characters.
    std::string long_text;
    for (int i = 0; i < 40; ++i) {
        long_text += "\xc3\xa9";
    }
    const auto words = encode_header_text(long_text);
    std::string decoded;
    std::size_t start = 0;
    while (start < words.size()) {
        auto end = words.find("\r\n ", start);
        const auto word = words.substr(start, end == std::string::npos ? end : end - start);
        EXPECT_LE(word.size(), 75u);
        decoded += *util::base64_decode(word.substr(10, word.size() - 12));
        start = end == std::string::npos ? words.size() : end + 3;
    }
    EXPECT_EQ(decoded, long_text);
    EXPECT_EQ(format_mailbox("Ann \"The\" CPA", "a@x.com"), "\"Ann \\\"The\\\" CPA\" <a@x.com>");
    EXPECT_EQ(format_mailbox("", "a@x.com"), "a@x.com");
    EXPECT_TRUE(format_mailbox("Zo\xc3\xab", "z@x.com").starts_with("=?UTF-8?B?"));
}

TEST(email_message, date_and_quoted_printable) {
    util::instant t;
    ASSERT_TRUE(util::parse_rfc3339("2026-01-05T09:07:03Z", t));
    EXPECT_EQ(format_rfc5322_date(t), "Mon, 05 Jan 2026 09:07:03 +0000");
    EXPECT_EQ(quoted_printable("a=b \r\nc\td \nend "), "a=3Db=20\r\nc\td=20\r\nend=20");
    EXPECT_EQ(quoted_printable("caf\xc3\xa9"), "caf=C3=A9");
    const auto qp = quoted_printable(std::string(200, 'x'));
    std::size_t start = 0;
    while (start < qp.size()) {
        const auto end = qp.find("\r\n", start);
        EXPECT_LE((end == std::string::npos ? qp.size() : end) - start, 76u);
        start = end == std::string::npos ? qp.size() : end + 2;
    }
}

TEST(email_message, renders_rfc5322_with_alternative_parts) {
    std::string error;
    auto j = valid();
    j["html"] = "<p>Please pay.</p>";
    j["headers"] = {{"In-Reply-To", "<abc@x>"}};
    const auto m = parse(j, error);
    ASSERT_TRUE(m) << error;
    util::instant t;
    ASSERT_TRUE(util::parse_rfc3339("2026-01-05T09:00:00Z", t));
    const auto text = render_rfc5322(*m, {"billing@firm.test", "Firm"}, "<id@billsync.local>", t);
    EXPECT_TRUE(
        text.starts_with("From: \"Firm\" <billing@firm.test>\r\nTo: \"Client Co\" "
                         "<client@example.com>\r\nSubject: Invoice 1042\r\n"));
    EXPECT_NE(text.find("Message-ID: <id@billsync.local>\r\n"), std::string::npos);
    EXPECT_NE(text.find("In-Reply-To: <abc@x>\r\n"), std::string::npos);
    EXPECT_NE(text.find("Content-Type: multipart/alternative; boundary=\"=_billsync_"),
              std::string::npos);
    EXPECT_NE(text.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
    // Bare LFs never appear.
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n') {
            ASSERT_GT(i, 0u);
            EXPECT_EQ(text[i - 1], '\r');
        }
    }
}

TEST(smtp_wire, dot_stuffing_and_crlf_normalisation) {
    EXPECT_EQ(smtp::dot_stuff("a\n.b\r\n..c\rd"), "a\r\n..b\r\n...c\r\nd\r\n.\r\n");
    EXPECT_EQ(smtp::dot_stuff(".\r\n"), "..\r\n.\r\n");
    EXPECT_EQ(smtp::dot_stuff(""), ".\r\n");
}

TEST(smtp_wire, reply_lines) {
    bool last = false;
    std::string text;
    EXPECT_EQ(smtp::parse_reply_line("250-STARTTLS", last, text), 250u);
    EXPECT_FALSE(last);
    EXPECT_EQ(text, "STARTTLS");
    EXPECT_EQ(smtp::parse_reply_line("451 4.3.0 later", last, text), 451u);
    EXPECT_TRUE(last);
    EXPECT_EQ(smtp::parse_reply_line("250", last, text), 250u);
    EXPECT_TRUE(last);
    EXPECT_EQ(smtp::parse_reply_line("25", last, text), std::nullopt);
    EXPECT_EQ(smtp::parse_reply_line("abc def", last, text), std::nullopt);
    EXPECT_EQ(smtp::parse_reply_line("250xfoo", last, text), std::nullopt);
    EXPECT_EQ(smtp::parse_reply_line("999 no", last, text), std::nullopt);
}

}  // namespace
}  // namespace billsync::connectors::email
