#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "daemon/workflows/followup_settings.hpp"

namespace billsync::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fu = workflows::followup;

constexpr std::string_view daemon_table = R"([daemon]
data_dir = "/srv/billsync"
time_zone = "America/New_York"
)";

struct parsed {
    diagnostics diags;
    std::optional<fu::settings> settings;
    bool loaded = false;
};

// Loads daemon_table + text as billsync.toml with the [followup] parser installed.
parsed load(std::string_view text) {
    parsed out;
    section_parsers sections;
    sections["followup"] = [&out](reader& r) { out.settings = parse_followup(r); };
    const auto cfg = load_string(
        std::string(daemon_table) + std::string(text), "billsync.toml", out.diags, {}, sections);
    out.loaded = cfg.has_value();
    return out;
}

TEST(FollowupSettings, AbsentSectionIsDisabled) {
    auto p = load("");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    ASSERT_TRUE(p.settings);
    EXPECT_FALSE(p.settings->enabled);
}

TEST(FollowupSettings, Defaults) {
    auto p = load(R"(
[followup]
firm_name = "Smith & Lee CPA"
firm_phone = "+1 212 555 0100"
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& s = *p.settings;
    EXPECT_TRUE(s.enabled);
    ASSERT_EQ(s.cadences.at(fu::client_class::standard).size(), 3U);
    EXPECT_EQ(s.cadences.at(fu::client_class::standard)[1].day, 15);
    EXPECT_TRUE(s.cadences.at(fu::client_class::standard)[1].sms);
    EXPECT_TRUE(s.cadences.at(fu::client_class::standard)[2].hold);
    EXPECT_EQ(s.cadences.at(fu::client_class::retainer)[2].day, 35);
    EXPECT_FALSE(s.cadences.at(fu::client_class::retainer)[2].email);
    EXPECT_TRUE(s.cadences.at(fu::client_class::retainer)[2].task);
    EXPECT_EQ(s.window.start, std::chrono::hours(9));
    EXPECT_EQ(s.window.end, std::chrono::hours(17));
    EXPECT_EQ(s.dispute_keywords, (std::vector<std::string>{"dispute", "incorrect", "question"}));
    EXPECT_EQ(s.touches.size(), 6U);
}

TEST(FollowupSettings, EverythingConfigured) {
    auto p = load(R"(
[followup]
time_zone = "America/Chicago"
firm_name = "Smith & Lee CPA"
firm_phone = "+1 212 555 0100"
dispute_keywords = ["dispute", "wrong amount"]
payment_plan_clients = ["client-17", "client-18"]

[followup.window]
start = "08:30"
end = "18:00"
days = ["mon", "tuesday", "wed", "thu", "fri", "sat"]
holidays = ["2026-12-25", 2027-01-01]

[followup.cadence.standard]
touch1 = { day = 3, channels = ["email"] }
touch2 = { day = 10, channels = ["email", "sms"] }
touch3 = { day = 20, channels = ["email"] }
touch4 = { day = 45, channels = ["email", "task"], hold = true }

[followup.templates.standard.touch1]
email_subject = "Invoice {invoice_number}"
email_body = """
Dear {client_name},
please pay {balance}.
"""

[followup.templates.standard.touch4]
email_subject = "Hold"
email_body = "Hold for {client_name}"
task_title = "Hold {client_name}"
task_body = "Call them"

[followup.templates.dispute]
task_title = "Dispute: {client_name} / {invoice_number}"
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& s = *p.settings;
    EXPECT_EQ(s.time_zone, "America/Chicago");
    EXPECT_EQ(s.window.start, std::chrono::minutes(8 * 60 + 30));
    EXPECT_TRUE(s.window.days[6]);
    EXPECT_FALSE(s.window.days[0]);
    EXPECT_EQ(s.window.holidays.size(), 2U);
    EXPECT_TRUE(s.window.holidays.contains(date::sys_days(date::year(2027) / 1 / 1)));
    EXPECT_TRUE(s.payment_plan_clients.contains("client-18"));
    ASSERT_EQ(s.cadences.at(fu::client_class::standard).size(), 4U);
    EXPECT_EQ(s.cadences.at(fu::client_class::standard)[3].day, 45);
    EXPECT_EQ(s.touches.at("standard.touch1").email_body.source(),
              "Dear {client_name},\nplease pay {balance}.\n");
    // touch2's SMS keeps the default text.
    EXPECT_FALSE(s.touches.at("standard.touch2").sms_body.empty());
    EXPECT_EQ(s.dispute.task_title.source(), "Dispute: {client_name} / {invoice_number}");
}

TEST(FollowupSettings, UnknownPlaceholderAtItsLineAndColumn) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"

[followup.templates.standard.touch1]
email_subject = "Invoice {invoice_number} for {client}"
email_body = """
Dear {client_name},
you owe {balanse}.
"""
sms_body = 'Hi {client_name}{oops}'
)");
    EXPECT_FALSE(p.loaded);
    EXPECT_FALSE(p.settings);
    const auto text = p.diags.render();
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:10:47: error: [followup.templates.standard.touch1] "
                          "'email_subject': unknown placeholder '{client}' (did you mean "
                          "'{client_name}'?)"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:13:9: error: [followup.templates.standard.touch1] "
                          "'email_body': unknown placeholder '{balanse}' (did you mean "
                          "'{balance}'?)"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:15:29: error: [followup.templates.standard.touch1] "
                          "'sms_body': unknown placeholder '{oops}'"));
}

TEST(FollowupSettings, MissingFirmDetailsAndParts) {
    auto p = load(R"(
[followup]

[followup.cadence.retainer]
touch1 = { day = 5, channels = ["email"] }
touch2 = { day = 9, channels = ["fax"] }
touch4 = { day = 2, channels = ["sms"] }

[followup.templates.standard.touch1]
email_subject = "From {firm_name}"
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:13:23: error: [followup.templates.standard.touch1] "
                          "'email_subject' uses {firm_name} but [followup] firm_name is "
                          "not set"));
    EXPECT_THAT(text, HasSubstr("missing 'firm_phone': the default templates use {firm_phone}"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:9:21: error: [followup.cadence.retainer.touch2] "
                          "'channels': unknown channel 'fax'"));
    EXPECT_THAT(text, HasSubstr("touch3 is missing"));
}

TEST(FollowupSettings, ChannelWithoutTextIsReportedAtTheTouch) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"

[followup.cadence.standard]
touch1 = { day = 1, channels = ["email"] }
touch2 = { day = 15, channels = ["email", "sms"] }
touch3 = { day = 30, channels = ["sms"] }
)");
    EXPECT_FALSE(p.loaded);
    EXPECT_THAT(p.diags.render(),
                HasSubstr("billsync.toml:12:1: error: [followup.templates.standard.touch3] "
                          "missing 'sms_body': standard.touch3 sends SMS"));
}

TEST(FollowupSettings, WindowAndKeywordErrors) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
dispute_keywords = ["d\u00e9saccord"]
colour = "blue"

[followup.window]
start = "9am"
end = "08:00"
days = ["funday"]
holidays = ["2026-02-30", 7]
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    EXPECT_THAT(text, HasSubstr("billsync.toml:8:1: error: [followup] 'dispute_keywords'"));
    EXPECT_THAT(text, HasSubstr("billsync.toml:9:1: error: [followup] unknown key 'colour'"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:12:1: error: [followup.window] 'start' must be a "
                          "time of day \"HH:MM\", not '9am'"));
    EXPECT_THAT(text, HasSubstr("unknown day 'funday'"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:15:13: error: [followup.window] 'holidays': "
                          "'2026-02-30' is not a date"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:15:27: error: [followup.window] 'holidays' must be"));
}

TEST(FollowupSettings, CourtesyRemindersPerCadenceAndAutoPay) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
autopay_tag = "Auto Pay"
autopay_clients = ["c-9"]

[followup.reminders.standard]
days_before = [7, 0]

[followup.reminders.retainer]
days_before = [3]
channels = ["email", "sms"]

[followup.templates.retainer.reminder]
email_subject = "Retainer {invoice_number} due in {days_until_due} days"
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& s = *p.settings;
    const auto& standard = s.reminders.at(fu::client_class::standard);
    ASSERT_EQ(standard.size(), 2U);
    EXPECT_EQ(standard[0], (fu::reminder_spec{.days_before = 7, .email = true, .sms = false}));
    EXPECT_EQ(standard[1].days_before, 0);
    const auto& retainer = s.reminders.at(fu::client_class::retainer);
    ASSERT_EQ(retainer.size(), 1U);
    EXPECT_TRUE(retainer[0].email);
    EXPECT_TRUE(retainer[0].sms);
    EXPECT_EQ(s.autopay_tag, "Auto Pay");
    EXPECT_TRUE(s.autopay_clients.contains("c-9"));
    EXPECT_EQ(s.touches.at("retainer.reminder").email_subject.source(),
              "Retainer {invoice_number} due in {days_until_due} days");
    EXPECT_FALSE(s.touches.at("standard.reminder").email_body.empty());  // the default text
}

TEST(FollowupSettings, NoRemindersUnlessConfigured) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    EXPECT_TRUE(p.settings->reminders.empty());
    EXPECT_EQ(p.settings->autopay_tag, "autopay");
    EXPECT_TRUE(p.settings->autopay_link.empty());
}

TEST(FollowupSettings, ReminderErrorsAtTheirElement) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"

[followup.reminders.standard]
days_before = [0, 7, -1]
channels = ["email", "fax"]

[followup.reminders.retainer]
channels = ["sms"]
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:10:19: error: [followup.reminders.standard] "
                          "'days_before': 7 must be fewer days than the previous 0"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:10:22: error: [followup.reminders.standard] "
                          "'days_before': each element must be a whole number of days"));
    EXPECT_THAT(text, HasSubstr("'channels': unknown channel 'fax' (use email, sms)"));
    EXPECT_THAT(text,
                HasSubstr("[followup.reminders.retainer] missing 'days_before' (e.g. "
                          "days_before = [7, 0])"));
}

TEST(FollowupSettings, AutopayLinkPlaceholderNeedsTheLink) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"

[followup.templates.retainer.touch1]
email_body = "Enroll in auto-pay: {autopay_link}"
)");
    EXPECT_FALSE(p.loaded);
    EXPECT_THAT(p.diags.render(),
                HasSubstr("billsync.toml:10:35: error: [followup.templates.retainer.touch1] "
                          "'email_body' uses {autopay_link} but [followup] autopay_link is not "
                          "set"));
    auto ok = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
autopay_link = "https://pay.firm.example/autopay"

[followup.templates.retainer.touch1]
email_body = "Enroll in auto-pay: {autopay_link}"
)");
    ASSERT_TRUE(ok.loaded) << ok.diags.render();
    EXPECT_EQ(ok.settings->autopay_link, "https://pay.firm.example/autopay");
}

TEST(FollowupSettings, RetainerTouchOneCarriesTheAutopayOfferOnlyWithALink) {
    auto with = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
autopay_link = "https://pay.firm.example/autopay"
)");
    ASSERT_TRUE(with.loaded) << with.diags.render();
    const auto& t = with.settings->touches;
    EXPECT_TRUE(t.at("retainer.touch1").email_body.uses(workflows::placeholder::autopay_link));
    EXPECT_FALSE(t.at("retainer.touch2").email_body.uses(workflows::placeholder::autopay_link));
    EXPECT_FALSE(t.at("standard.touch1").email_body.uses(workflows::placeholder::autopay_link));

    auto without = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
)");
    ASSERT_TRUE(without.loaded) << without.diags.render();
    for (const auto& [id, parts] : without.settings->touches) {
        EXPECT_FALSE(parts.email_body.uses(workflows::placeholder::autopay_link)) << id;
    }
    EXPECT_THAT(without.diags.render(), Not(HasSubstr("autopay")));

    auto bad = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
autopay_link = "pay.firm.example"
)");
    EXPECT_FALSE(bad.loaded);
    EXPECT_THAT(bad.diags.render(), HasSubstr("autopay_link"));
}

// The default touch emails have a variant with "Pay online: {payment_link}" for invoices that
// carry a link; a configured email_body replaces both and is used as written.
TEST(FollowupSettings, DefaultTouchEmailsHaveAPaymentLinkVariantUnlessConfigured) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"

[followup.templates.standard.touch2]
email_body = "Invoice {invoice_number} is overdue."
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& t = p.settings->touches;
    using workflows::placeholder;
    for (const auto* id : {"standard.touch1", "standard.touch3", "retainer.touch1"}) {
        EXPECT_TRUE(t.at(id).email_body_with_link.uses(placeholder::payment_link)) << id;
        EXPECT_FALSE(t.at(id).email_body.uses(placeholder::payment_link)) << id;
    }
    EXPECT_TRUE(t.at("standard.touch2").email_body_with_link.empty());
    EXPECT_EQ(t.at("standard.touch2").email_body.source(), "Invoice {invoice_number} is overdue.");

    // With the auto-pay offer, retainer touch 1 keeps its offer text and has no link variant.
    auto offer = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
autopay_link = "https://pay.firm.example/autopay"
)");
    ASSERT_TRUE(offer.loaded) << offer.diags.render();
    EXPECT_TRUE(offer.settings->touches.at("retainer.touch1").email_body_with_link.empty());
    EXPECT_FALSE(offer.settings->touches.at("retainer.touch2").email_body_with_link.empty());
}

TEST(FollowupSettings, PaymentPlansFromATomlTable) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"
installment_reminder_days = 5

[followup.payment_plans."c-17"]
installments = [
  { due = "2026-12-15", amount = "500.00" },
  { due = 2027-01-15, amount = "250.5" },
]
)");
    ASSERT_TRUE(p.loaded) << p.diags.render();
    const auto& s = *p.settings;
    EXPECT_EQ(s.installment_reminder_days, 5);
    const auto& plan = s.payment_plans.at("c-17");
    EXPECT_EQ(plan.currency, "USD");
    ASSERT_EQ(plan.installments.size(), 2U);
    EXPECT_EQ(plan.installments[0].amount, 50000);
    EXPECT_EQ(plan.installments[1].amount, 25050);
    EXPECT_EQ(plan.installments[1].due, date::year(2027) / date::January / date::day(15));
    EXPECT_FALSE(s.plan_missed.task_title.empty());
}

TEST(FollowupSettings, PaymentPlanErrorsAtFileLineColumn) {
    auto p = load(R"(
[followup]
firm_name = "F"
firm_phone = "P"

[followup.payment_plans."c-17"]
installments = [
  { due = "2026-12-15", amount = "500.001" },
  { due = "2026-12-01", amount = "10.00", note = "x" },
  { amount = "1.00" },
]
[followup.payment_plans."c-18"]
currency = "USD"
)");
    EXPECT_FALSE(p.loaded);
    const auto text = p.diags.render();
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:11:34: error: [followup.payment_plans.c-17] "
                          "'installments': 'amount' must be a positive decimal string in USD"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:12:11: error: [followup.payment_plans.c-17] "
                          "'installments': due dates must increase"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:12:50: error: [followup.payment_plans.c-17] "
                          "'installments': unknown key 'note'"));
    EXPECT_THAT(text,
                HasSubstr("billsync.toml:13:3: error: [followup.payment_plans.c-17] "
                          "'installments': missing 'due'"));
    EXPECT_THAT(text, HasSubstr("[followup.payment_plans.c-18] missing 'installments'"));
}

}  // namespace
}  // namespace billsync::config
