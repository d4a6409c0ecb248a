#include "workflows/templates.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "workflows/followup/settings.hpp"

namespace billsync::workflows {
namespace {

using ::testing::HasSubstr;

template_values sample() {
    template_values v;
    v.client_name = "Acme LLC";
    v.invoice_number = "1042";
    v.amount = {125000, "USD"};
    v.balance = {40000, "USD"};
    v.due_date = date::year(2026) / 6 / 1;
    v.days_overdue = 15;
    v.firm_name = "Smith & Lee CPA";
    v.firm_phone = "+1 212 555 0100";
    return v;
}

message_template compile(std::string_view text) {
    auto parsed = message_template::parse(text);
    EXPECT_TRUE(std::holds_alternative<message_template>(parsed)) << text;
    return std::get<message_template>(parsed);
}

TEST(Templates, RendersEveryPlaceholder) {
    auto v = sample();
    v.payment_link = "https://pay.example/1042";
    const auto t = compile(
        "{client_name}|{invoice_number}|{amount}|{balance}|{due_date}|{days_overdue}|"
        "{days_overdue_text}|{payment_link}|{firm_name}|{firm_phone}|{{literal}}");
    EXPECT_EQ(t.render(v),
              "Acme LLC|1042|$1,250.00|$400.00|June 1, 2026|15|15 days|https://pay.example/1042|"
              "Smith & Lee CPA|+1 212 555 0100|{literal}");
    EXPECT_TRUE(t.uses(placeholder::payment_link));
}

TEST(Templates, EmptyValueFailsInsteadOfLeavingABlank) {
    const auto t = compile("Pay at {payment_link}");
    std::optional<placeholder> missing;
    EXPECT_EQ(t.render(sample(), &missing), std::nullopt);
    EXPECT_EQ(missing, placeholder::payment_link);
}

TEST(Templates, ErrorsPointAtTheOffendingByte) {
    auto parsed = message_template::parse("Dear {client},");
    ASSERT_TRUE(std::holds_alternative<template_error>(parsed));
    const auto& e = std::get<template_error>(parsed);
    EXPECT_EQ(e.offset, 5U);
    EXPECT_THAT(e.message, HasSubstr("unknown placeholder '{client}'"));
    EXPECT_THAT(e.message, HasSubstr("did you mean '{client_name}'?"));

    auto unclosed = message_template::parse("abc {amount");
    ASSERT_TRUE(std::holds_alternative<template_error>(unclosed));
    EXPECT_EQ(std::get<template_error>(unclosed).offset, 4U);
    EXPECT_THAT(std::get<template_error>(unclosed).message, HasSubstr("unclosed '{'"));

    auto stray = message_template::parse("a } b");
    ASSERT_TRUE(std::holds_alternative<template_error>(stray));
    EXPECT_EQ(std::get<template_error>(stray).offset, 2U);

    auto far = message_template::parse("{zzzzzzzz}");
    ASSERT_TRUE(std::holds_alternative<template_error>(far));
    EXPECT_THAT(std::get<template_error>(far).message, ::testing::Not(HasSubstr("did you mean")));
}

TEST(Templates, MoneyFromMinorUnits) {
    EXPECT_EQ(format_money({0, "USD"}), "$0.00");
    EXPECT_EQ(format_money({5, "USD"}), "$0.05");
    EXPECT_EQ(format_money({-500, "USD"}), "-$5.00");
    EXPECT_EQ(format_money({123456789, "USD"}), "$1,234,567.89");
    EXPECT_EQ(format_money({1200, "EUR"}), "\u20ac12.00");
    EXPECT_EQ(format_money({310, "GBP"}), "\u00a33.10");
    EXPECT_EQ(format_money({1200, "JPY"}), "\u00a51,200");
    EXPECT_EQ(format_money({1234567, "KWD"}), "KWD 1,234.567");
    EXPECT_EQ(format_money({123450, "CHF"}), "CHF 1,234.50");
    EXPECT_EQ(format_money({INT64_MIN, "USD"}), "-$92,233,720,368,547,758.08");
}

TEST(Templates, Dates) {
    EXPECT_EQ(format_date(date::year(2026) / 3 / 5), "March 5, 2026");
    EXPECT_EQ(format_date(date::year(2026) / 12 / 31), "December 31, 2026");
    EXPECT_EQ(format_date(date::year(2026) / 2 / 30), "");
}

TEST(Templates, DefaultTextsParseAndRender) {
    const auto s = followup::default_settings();
    auto v = sample();
    for (const auto& [id, t] : s.touches) {
        for (const auto* part :
             {&t.email_subject, &t.email_body, &t.sms_body, &t.task_title, &t.task_body}) {
            if (!part->empty()) {
                EXPECT_TRUE(part->render(v).has_value()) << id;
            }
        }
    }
    EXPECT_EQ(s.dispute.task_title.render(v),
              "Billing dispute \u2014 Acme LLC \u2014 Invoice 1042");
    EXPECT_THAT(*s.partial_payment.email_body.render(v), HasSubstr("remaining balance is $400.00"));
    EXPECT_FALSE(s.touches.at("standard.touch1").email_body.empty());
}

// Issue 18 item 19: no client-facing default reads "1 days" (or "1 day" where 15 would be "15
// day").
TEST(Templates, DefaultTextsUseTheRightPluralForEveryCount) {
    const auto s = followup::default_settings();
    for (const std::int64_t days : {0, 1, 2, 15}) {
        auto v = sample();
        v.days_overdue = days;
        std::vector<const message_template*> parts = {&s.partial_payment.email_subject,
                                                      &s.partial_payment.email_body,
                                                      &s.partial_payment.sms_body,
                                                      &s.dispute.task_title,
                                                      &s.dispute.task_body};
        for (const auto& [id, t] : s.touches) {
            for (const auto* part :
                 {&t.email_subject, &t.email_body, &t.sms_body, &t.task_title, &t.task_body}) {
                parts.push_back(part);
            }
        }
        for (const auto* part : parts) {
            if (part->empty()) {
                continue;
            }
            const auto text = part->render(v).value_or("");
            EXPECT_THAT(text, ::testing::Not(HasSubstr(" 1 days"))) << part->source();
            if (days != 1) {
                EXPECT_THAT(text, ::testing::Not(HasSubstr(std::to_string(days) + " day ")))
                    << part->source();
            }
        }
    }
    auto v = sample();
    v.days_overdue = 1;
    EXPECT_THAT(*s.touches.at("standard.touch1").email_body.render(v),
                HasSubstr("is now 1 day past due"));
}

}  // namespace
}  // namespace billsync::workflows
