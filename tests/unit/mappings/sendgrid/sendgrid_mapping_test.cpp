// SendGrid payloads to canonical entities, without a store (mappings/sendgrid).

#include "mappings/sendgrid/sendgrid_mapping.hpp"

#include <gtest/gtest.h>

namespace billsync::mappings::sendgrid {
namespace {

TEST(sendgrid_mapping, events_map_to_statuses_and_suppressions_with_their_dedup_keys) {
    std::string error;
    const auto out = map_events(
        R"([{"email":"Client@Example.COM","event":"bounce","reason":"550 no such user","sg_event_id":"b1","sg_message_id":"m.1","timestamp":1767600000,"billsync_delivery_id":"d-9"},)"
        R"({"email":"a@b.com","event":"open","sg_event_id":"o1","custom_args":{"billsync_delivery_id":"d-1"}},)"
        R"({"email":"a@b.com","event":"group_resubscribe"},)"
        R"(7])",
        error);
    ASSERT_TRUE(out) << error;
    ASSERT_EQ(out->size(), 3u);
    const auto& bounce = (*out)[0];
    EXPECT_EQ(bounce.dedup_keys, (std::vector<std::string>{"b1", "msg:m.1:bounce:1767600000"}));
    EXPECT_EQ(bounce.at, "2026-01-05T08:00:00Z");
    ASSERT_EQ(bounce.entities.size(), 2u);
    const auto& m = std::get<message_status>(bounce.entities[0]);
    EXPECT_EQ(m.delivery_id, "d-9");
    EXPECT_EQ(m.progress, 4);
    EXPECT_TRUE(m.failed);
    EXPECT_EQ(m.address, "client@example.com");
    const auto& s = std::get<suppression>(bounce.entities[1]);
    EXPECT_EQ(s.id(), "email:client@example.com");
    EXPECT_EQ(s.reason, "550 no such user");

    const auto& open = (*out)[1];
    ASSERT_EQ(open.entities.size(), 1u);
    EXPECT_EQ(std::get<message_status>(open.entities[0]).progress, 0);  // engagement
    // An event billsync does not follow is still de-duplicated, and maps to nothing.
    EXPECT_TRUE((*out)[2].entities.empty());
    EXPECT_EQ((*out)[2].dedup_keys.size(), 1u);
    EXPECT_TRUE((*out)[2].dedup_keys[0].starts_with("sha256:"));

    EXPECT_FALSE(map_events(R"({"event":"open"})", error));
    EXPECT_FALSE(map_events(std::string(300, '[') + std::string(300, ']'), error));
}

TEST(sendgrid_mapping, inbound_mail_reads_parsed_and_raw_modes_alike) {
    const auto parsed = map_inbound({.from = "Ann <Ann@Client.test>",
                                     .to = "billing@firm.test, \"Ops, team\" <ops@firm.test>",
                                     .subject = "Re: Invoice 1042",
                                     .text = "I dispute this charge.",
                                     .headers = "Message-ID: <r1@client.test>\r\nIn-Reply-To: "
                                                "<abc@billsync.local>\r\n",
                                     .email = "",
                                     .spf = "",
                                     .dkim = ""},
                                    "post");
    EXPECT_EQ(parsed.id, "<r1@client.test>");
    EXPECT_EQ(parsed.from, "ann@client.test");
    EXPECT_EQ(parsed.to, (std::vector<std::string>{"billing@firm.test", "ops@firm.test"}));
    EXPECT_EQ(parsed.in_reply_to, "<abc@billsync.local>");

    const auto raw = map_inbound({.from = "",
                                  .to = "",
                                  .subject = "",
                                  .text = "",
                                  .headers = "",
                                  .email = "From: ann@client.test\r\nTo: billing@firm.test\r\n"
                                           "Subject: Paid\r\n\r\nPaid by cheque.",
                                  .spf = "",
                                  .dkim = ""},
                                 "post");
    EXPECT_EQ(raw.from, "ann@client.test");
    EXPECT_EQ(raw.subject, "Paid");
    EXPECT_EQ(raw.text, "Paid by cheque.");
    EXPECT_TRUE(raw.id.starts_with("sha256:"));  // no Message-ID
}

TEST(sendgrid_mapping, the_sender_is_verified_only_when_spf_and_an_aligned_dkim_pass) {
    EXPECT_TRUE(sender_verified("pass", "{@acme.example : pass}", "ap@acme.example"));
    EXPECT_TRUE(sender_verified("Pass", "{@acme.example : pass}", "ap@mail.acme.example"));
    EXPECT_TRUE(sender_verified(
        "pass", "{@relay.example : fail, @acme.example : pass}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("fail", "{@acme.example : pass}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("softfail", "{@acme.example : pass}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("", "{@acme.example : pass}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("pass", "{@acme.example : fail}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("pass", "{@attacker.example : pass}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("pass", "{@cme.example : pass}", "ap@acme.example"));
    EXPECT_FALSE(sender_verified("pass", "none", "ap@acme.example"));

    const auto mail = map_inbound({.from = "Ann <ann@client.test>",
                                   .to = "billing@firm.test",
                                   .subject = "Re: 1042",
                                   .text = "dispute",
                                   .headers = "Message-ID: <a@client.test>\r\n",
                                   .email = "",
                                   .spf = "pass",
                                   .dkim = "{@client.test : pass}"},
                                  "post");
    EXPECT_TRUE(mail.sender_verified);
    const auto unsigned_mail = map_inbound({.from = "Ann <ann@client.test>",
                                            .to = "billing@firm.test",
                                            .subject = "Re: 1042",
                                            .text = "dispute",
                                            .headers = "",
                                            .email = "",
                                            .spf = "none",
                                            .dkim = "none"},
                                           "post");
    EXPECT_FALSE(unsigned_mail.sender_verified);
}

}  // namespace
}  // namespace billsync::mappings::sendgrid
