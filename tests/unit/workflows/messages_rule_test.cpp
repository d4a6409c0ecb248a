// Channel outcomes counted from canonical changes: opt-outs and undelivered messages.

#include "workflows/messages/messages_rule.hpp"

#include <gtest/gtest.h>

#include "tests/unit/workflows/workflows_test_support.hpp"
#include "util/metrics.hpp"

namespace billsync::workflows::messages {
namespace {

class messages_rule_test : public testing_support::state_fixture {
protected:
    void see(std::string type, std::string fields) {
        mappings::change c;
        c.entity_type = std::move(type);
        c.entity_id = "x";
        c.fields_json = std::move(fields);
        ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }).ok);
    }

    util::metrics_registry metrics_;
    messages_rule rule_{&metrics_};
};

TEST_F(messages_rule_test, counts_opt_outs_and_failed_deliveries_by_channel) {
    see("suppression", R"({"channel":"sms","address":"+1","opted_out":true})");
    see("suppression", R"({"channel":"sms","address":"+1","opted_out":false})");
    see("sms_message", R"({"status":"undelivered"})");
    see("sms_message", R"({"status":"delivered"})");
    see("email_message", R"({"status":"bounce"})");
    see("invoice", R"({"status":"failed"})");
    const auto text = metrics_.render();
    EXPECT_NE(text.find(R"(billsync_opt_outs_total{channel="sms"} 1)"), std::string::npos) << text;
    EXPECT_NE(
        text.find(R"(billsync_delivery_failures_total{channel="sms",status="undelivered"} 1)"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find(R"(billsync_delivery_failures_total{channel="email",status="bounce"} 1)"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find(R"(status="delivered")"), std::string::npos) << text;
}

TEST_F(messages_rule_test, without_metrics_it_does_nothing) {
    messages_rule quiet(nullptr);
    mappings::change c;
    c.entity_type = "suppression";
    c.fields_json = R"({"opted_out":true})";
    EXPECT_TRUE(step([&](context& ctx) { return quiet.on_change(c, ctx); }).ok);
}

}  // namespace
}  // namespace billsync::workflows::messages
