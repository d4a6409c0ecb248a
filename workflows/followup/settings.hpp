#pragma once

// Plain settings of the overdue follow-up workflow. Only daemon/workflows/followup_settings.cpp
// reads configuration; everything else takes this struct. default_settings() gives the documented
// defaults.

#include <date/date.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "workflows/templates.hpp"

namespace billsync::workflows::followup {

enum class client_class : std::uint8_t { standard, retainer };
std::string_view to_string(client_class c) noexcept;

// One touch of a cadence. Days count from the sequence's anchor (the due date, or the day a
// partial payment restarted the sequence): day 1 is the day after.
struct touch_spec {
    std::int32_t day = 1;
    bool email = false;  // email to the client
    bool sms = false;    // SMS to the client, when a mobile number with consent is on file
    bool task = false;   // internal task for the billing coordinator
    bool hold = false;   // the email is the account-hold notice (informational; for audit/metrics)
};

// The texts of one touch; a part is needed only when the touch uses its channel.
struct touch_templates {
    message_template email_subject;
    message_template email_body;
    // The default touch email for an invoice with an online payment link: it adds "Pay online:
    // {payment_link}". Empty when email_body is configured (the firm's text is used as written)
    // and for parts without such a variant; then email_body is used whether or not a link exists.
    message_template email_body_with_link;
    message_template sms_body;
    message_template task_title;
    message_template task_body;
};

// A courtesy reminder before the due date (days_before > 0) or on it (days_before = 0).
struct reminder_spec {
    std::int32_t days_before = 0;
    bool email = true;  // email to the client (the default channel)
    bool sms = false;   // SMS, when a mobile number with consent is on file

    bool operator==(const reminder_spec&) const = default;
};

// One installment of a payment plan: due on a civil date, an amount in minor units.
struct installment {
    date::year_month_day due{};
    std::int64_t amount = 0;

    bool operator==(const installment&) const = default;
};

// A client's installment schedule ([followup.payment_plans."<client id>"]). Installment k counts
// as paid once the client's open balance (the sum of the balances of its open invoices) has
// dropped, since the plan was first seen, by at least the sum of installments 1..k.
struct payment_plan {
    std::string currency = "USD";
    std::vector<installment> installments;  // due dates strictly increasing

    bool operator==(const payment_plan&) const = default;
};

struct sending_window {
    std::chrono::minutes start{9 * 60};  // local time of day, inclusive
    std::chrono::minutes end{17 * 60};   // exclusive
    // Index by date::weekday::c_encoding(): 0 = Sunday .. 6 = Saturday.
    std::array<bool, 7> days{false, true, true, true, true, true, false};
    std::set<date::sys_days> holidays;  // civil dates in the firm's time zone
};

struct settings {
    bool enabled = true;
    std::string time_zone;  // IANA; empty means "use [daemon] time_zone"
    std::string firm_name;
    std::string firm_phone;
    std::string email_connector;    // connector name; empty: the first one carrying email
    std::string sms_connector;      // connector name; empty: the first one carrying SMS
    std::string reply_to;           // per-invoice reply addresses are made from this
    std::string coordinator_email;  // internal tasks are emailed here too when set
    // A connector performing "task.create" (a practice-management system): every task is also
    // created there, for the client's counterpart in that system. Empty: tasks stay internal.
    std::string task_connector;
    std::map<client_class, std::vector<touch_spec>> cadences;
    // Courtesy reminders per class, in the order they go out (days_before strictly decreasing).
    // None unless configured.
    std::map<client_class, std::vector<reminder_spec>> reminders;
    // Key: "<class>.touch<N>" (e.g. "standard.touch2"), and "<class>.reminder" for the courtesy
    // reminders of a class.
    std::map<std::string, touch_templates, std::less<>> touches;
    touch_templates partial_payment;  // email_subject + email_body: the acknowledgement
    touch_templates dispute;          // task_title + task_body
    sending_window window;
    std::vector<std::string> dispute_keywords;
    std::set<std::string, std::less<>> payment_plan_clients;  // client ids
    // Clients on auto-pay get no courtesy reminders: those tagged `autopay_tag` (compared as the
    // ledger mappings normalise tags: lower case, without spaces, '-' or '_'; empty: no tag) and
    // those listed by canonical id.
    std::string autopay_tag = "autopay";
    std::set<std::string, std::less<>> autopay_clients;
    // The auto-pay enrollment page: {autopay_link} in templates. Empty: templates may not use it.
    std::string autopay_link;
    // Installment schedules by canonical client id; such clients are on a payment plan (excluded
    // from the overdue sequence) and get the plan's own reminders and missed-installment notices.
    std::map<std::string, payment_plan, std::less<>> payment_plans;
    std::int32_t installment_reminder_days = 3;  // the reminder goes out this many days before
    touch_templates plan_reminder;  // "payment_plan.reminder": email_subject, email_body
    // "payment_plan.missed": email_subject, email_body (to the client), task_title, task_body
    touch_templates plan_missed;
};

std::string template_id(client_class c, std::size_t touch);  // "standard.touch2"
std::string reminder_template_id(client_class c);            // "standard.reminder"

// The documented defaults: standard day 1 email, day 15 email + SMS, day 30 hold email + task;
// retainer day 5 email, day 20 email + SMS, day 35 task; 09:00-17:00 on weekdays; dispute
// keywords dispute/incorrect/question; default texts for every part.
settings default_settings();

// The default text of a template part, for daemon/workflows/followup_settings.cpp
// ("standard.touch1", "email_subject"); empty when there is none.
std::string_view default_template_text(std::string_view id, std::string_view part);
// The same, but with [followup] autopay_link set the parts that carry the auto-pay enrollment
// offer (retainer touch 1's email body) have their own default text, which uses {autopay_link}.
std::string_view default_template_text(std::string_view id,
                                       std::string_view part,
                                       bool with_autopay_link);
// The default text of a part for an invoice that has an online payment link (touch email bodies:
// they add "Pay online: {payment_link}"); empty when the part has no such variant.
std::string_view default_link_text(std::string_view id, std::string_view part);

}  // namespace billsync::workflows::followup
