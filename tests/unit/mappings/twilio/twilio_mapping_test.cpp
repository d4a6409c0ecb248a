// Twilio payloads to canonical entities, without a store (mappings/twilio).

#include "mappings/twilio/twilio_mapping.hpp"

#include <gtest/gtest.h>

namespace billsync::mappings::twilio {
namespace {

TEST(twilio_mapping, an_inbound_stop_is_a_message_and_an_opt_out) {
    std::string error;
    const auto out = map_inbound({{"MessageSid", "SM1"},
                                  {"From", "+1 (415) 555-0123"},
                                  {"To", "+15005550006"},
                                  {"Body", " Stop "}},
                                 "2026-01-05T09:30:00Z",
                                 error);
    ASSERT_TRUE(out) << error;
    ASSERT_EQ(out->size(), 2u);
    const auto& m = std::get<inbound_message>((*out)[0]);
    EXPECT_EQ(m.via, channel::sms);
    EXPECT_EQ(m.id, "SM1");
    EXPECT_EQ(m.from, "+14155550123");
    EXPECT_EQ(m.to, std::vector<std::string>{"+15005550006"});
    EXPECT_EQ(m.keyword, "stop");
    const auto& s = std::get<suppression>((*out)[1]);
    EXPECT_TRUE(s.opted_out);
    EXPECT_EQ(s.id(), "sms:+14155550123");
    EXPECT_EQ(s.reason, "STOP");
    EXPECT_EQ(s.at, "2026-01-05T09:30:00Z");
}

TEST(twilio_mapping, advanced_opt_out_names_the_keyword_class) {
    std::string error;
    const auto out = map_inbound({{"MessageSid", "SM2"},
                                  {"From", "+14155550123"},
                                  {"Body", "ARRET"},
                                  {"OptOutType", "stop"}},
                                 "2026-01-05T09:30:00Z",
                                 error);
    ASSERT_TRUE(out) << error;
    ASSERT_EQ(out->size(), 2u);
    EXPECT_TRUE(std::get<suppression>((*out)[1]).opted_out);
    // A reply that is not a keyword is a message alone.
    const auto reply =
        map_inbound({{"MessageSid", "SM3"}, {"From", "+14155550123"}, {"Body", "stop please"}},
                    "2026-01-05T09:30:00Z",
                    error);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->size(), 1u);
    EXPECT_EQ(std::get<inbound_message>((*reply)[0]).keyword, "");
    EXPECT_FALSE(map_inbound({{"Body", "hi"}}, "", error));
    EXPECT_NE(error.find("MessageSid"), std::string::npos);
}

TEST(twilio_mapping, status_callbacks_carry_progress_and_the_21610_opt_out) {
    std::string error;
    auto out =
        map_status({{"MessageSid", "SM9"}, {"MessageStatus", "sent"}, {"To", "+14155550123"}},
                   "inv-42/touch 2",
                   "2026-01-05T09:30:00Z",
                   error);
    ASSERT_TRUE(out) << error;
    ASSERT_EQ(out->size(), 1u);
    const auto& m = std::get<message_status>((*out)[0]);
    EXPECT_EQ(m.delivery_id, "inv-42/touch 2");
    EXPECT_EQ(m.provider_id, "SM9");
    EXPECT_EQ(m.progress, 3);
    EXPECT_FALSE(m.failed);

    out = map_status({{"MessageSid", "SM9"},
                      {"MessageStatus", "failed"},
                      {"ErrorCode", "21610"},
                      {"To", "+14155550123"}},
                     "d-1",
                     "2026-01-05T09:30:00Z",
                     error);
    ASSERT_TRUE(out) << error;
    ASSERT_EQ(out->size(), 2u);
    EXPECT_TRUE(std::get<message_status>((*out)[0]).failed);
    EXPECT_EQ(std::get<suppression>((*out)[1]).reason, "21610");
    EXPECT_FALSE(map_status({{"MessageSid", "SM9"}, {"MessageStatus", "sent"}}, "", "", error));
}

TEST(twilio_mapping, progress_orders_the_documented_statuses) {
    EXPECT_LT(progress_of("queued"), progress_of("sending"));
    EXPECT_LT(progress_of("sending"), progress_of("sent"));
    EXPECT_LT(progress_of("sent"), progress_of("delivered"));
    EXPECT_EQ(progress_of("delivered"), progress_of("undelivered"));
    EXPECT_EQ(progress_of("read"), 0);
    EXPECT_TRUE(failed_status("undelivered"));
    EXPECT_FALSE(failed_status("delivered"));
}

}  // namespace
}  // namespace billsync::mappings::twilio
