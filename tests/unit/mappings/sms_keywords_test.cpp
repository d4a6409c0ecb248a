#include "mappings/sms_keywords.hpp"

#include <gtest/gtest.h>

namespace billsync::mappings {
namespace {

// Twilio's documented defaults (shared/vendors/twilio.md): the keyword alone, any case,
// surrounding whitespace ignored.
TEST(sms_keywords, twilio_defaults_alone_in_any_case) {
    for (const auto* k : {"STOP",
                          "stop",
                          " Stop ",
                          "  stop\n",
                          "STOPALL",
                          "UNSUBSCRIBE",
                          "Unsubscribe",
                          "CANCEL",
                          "END",
                          "QUIT",
                          "REVOKE",
                          "optout"}) {
        EXPECT_EQ(classify_sms_keyword(k), sms_keyword::opt_out) << k;
    }
    for (const auto* k : {"START", "yes", "Yes", "UNSTOP", "unstop"}) {
        EXPECT_EQ(classify_sms_keyword(k), sms_keyword::opt_in) << k;
    }
    EXPECT_EQ(classify_sms_keyword("HELP"), sms_keyword::help);
    EXPECT_EQ(classify_sms_keyword("info"), sms_keyword::help);
}

TEST(sms_keywords, anything_more_than_the_keyword_is_an_ordinary_message) {
    for (const auto* k : {"STOP PLEASE",
                          "stop please",
                          "Stop.",
                          "Yes!",
                          "I will pay tomorrow",
                          "Is invoice 42 right?",
                          "",
                          "   ",
                          "UNSUBSCRIBEME"}) {
        EXPECT_EQ(classify_sms_keyword(k), sms_keyword::none) << k;
    }
}

TEST(sms_keywords, names) {
    EXPECT_EQ(to_string(sms_keyword::opt_out), "stop");
    EXPECT_EQ(to_string(sms_keyword::opt_in), "start");
    EXPECT_EQ(to_string(sms_keyword::help), "help");
    EXPECT_EQ(to_string(sms_keyword::none), "");
}

}  // namespace
}  // namespace billsync::mappings
