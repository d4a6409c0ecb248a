// Channel outcomes counted from canonical changes: opt-outs and undelivered messages.

#include "workflows/messages/messages_rule.hpp"

#include <gtest/gtest.h>

#include "tests/unit/workflows/workflows_test_support.hpp"
#include "util/metrics.hpp"

namespace billsync::workflows::messages {
namespace {

class messages_rule_test : public testing_support::state_fixture {
protected:
    void see(mappings::entity e) {
        const auto c = mappings::make_change(std::move(e), 1, mappings::change::op::created, "x");
        ASSERT_TRUE(step([&](context& ctx) { return rule_.on_change(c, ctx); }).ok);
    }
    static mappings::message_status message(mappings::channel via,
                                            std::string status,
                                            bool failed) {
        mappings::message_status m;
        m.via = via;
        m.delivery_id = "d-1";
        m.status = std::move(status);
        m.progress = 4;
        m.failed = failed;
        return m;
    }

    util::metrics_registry metrics_;
    messages_rule rule_{&metrics_};
};

TEST_F(messages_rule_test, counts_opt_outs_and_failed_deliveries_by_channel) {
    using mappings::channel;
    see(mappings::suppression{
        .via = channel::sms, .address = "+1", .opted_out = true, .reason = "STOP", .at = ""});
    see(mappings::suppression{
        .via = channel::sms, .address = "+1", .opted_out = false, .reason = "START", .at = ""});
    see(message(channel::sms, "undelivered", true));
    see(message(channel::sms, "delivered", false));
    see(message(channel::email, "bounce", true));
    mappings::invoice inv;
    inv.id = "inv-1";
    inv.status = mappings::invoice_status::voided;
    see(inv);
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
    const auto c = mappings::make_change(mappings::suppression{.via = mappings::channel::sms,
                                                               .address = "+1",
                                                               .opted_out = true,
                                                               .reason = "",
                                                               .at = ""},
                                         1,
                                         mappings::change::op::created,
                                         "x");
    EXPECT_TRUE(step([&](context& ctx) { return quiet.on_change(c, ctx); }).ok);
}

}  // namespace
}  // namespace billsync::workflows::messages
