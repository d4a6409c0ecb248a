#pragma once

// The [followup] section: cadences per client class, sending window, dispute keywords,
// payment-plan clients and message templates. The daemon's thin adapter between config/ and the
// rule: config/ knows no workflow and workflows/ reads no configuration, so the TOML of a rule's
// section is parsed here into the rule's plain settings struct.
//
//   [followup]
//   enabled = true                      # default true when the table exists
//   time_zone = "America/New_York"      # default: [daemon] time_zone
//   firm_name = "Smith & Lee CPA"       # needed by templates that use {firm_name}
//   firm_phone = "+1 555 0100"          # needed by templates that use {firm_phone}
//   email_connector = "sendgrid"        # default: the first sendgrid or smtp connector
//   sms_connector = "twilio"            # default: the first twilio connector
//   reply_to = "billing@firm.example"   # replies come back to billing+inv-<token>@firm.example
//   coordinator_email = "coord@firm.example"  # internal tasks are emailed here too
//   dispute_keywords = ["dispute", "incorrect", "question"]
//   payment_plan_clients = ["client-17"]
//   autopay_tag = "autopay"             # tagged clients get no courtesy reminders
//   autopay_clients = ["client-9"]      # nor these
//   autopay_link = "https://pay.firm.example/autopay"   # {autopay_link}
//
//   [followup.window]
//   start = "09:00"                     # firm time, inclusive
//   end = "17:00"                       # exclusive; "24:00" allowed
//   days = ["mon", "tue", "wed", "thu", "fri"]
//   holidays = ["2026-12-25", 2027-01-01]   # strings or TOML local dates
//
//   [followup.cadence.standard]         # replaces the default cadence of the class
//   touch1 = { day = 1, channels = ["email"] }
//   touch2 = { day = 15, channels = ["email", "sms"] }
//   touch3 = { day = 30, channels = ["email", "task"], hold = true }
//
//   [followup.reminders.standard]       # courtesy reminders, none unless configured
//   days_before = [7, 0]                # 0: on the due date
//   channels = ["email"]                # the default
//
//   [followup.payment_plans."client-17"]    # installment schedule; the client is on a plan
//   installments = [{ due = "2026-12-15", amount = "500.00" }]   # currency = "USD"
//   (and installment_reminder_days = 3 in [followup])
//
//   [followup.templates.standard.touch1]    # parts: email_subject email_body sms_body
//   email_subject = "Invoice {invoice_number} is past due"   #        task_title task_body
//   [followup.templates.partial_payment]    # email_subject email_body sms_body
//   [followup.templates.dispute]            # task_title task_body
//   [followup.templates.standard.reminder]  # email_subject email_body sms_body
//
// A part left out keeps its default text; the default touch email bodies add "Pay online:
// {payment_link}" for an invoice that has a payment link. Placeholders: {client_name}
// {invoice_number} {amount} {balance} {due_date} {days_overdue} {days_overdue_text} ("1 day", "15
// days") {payment_link} {firm_name} {firm_phone} {days_until_due} {autopay_link} (only with
// autopay_link set); an unknown one is an error at the placeholder's own line and column.

#include <date/date.h>

#include <array>
#include <optional>
#include <set>

#include "config/reader.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::config {

// Reads [followup] from r (the loader's section reader). Problems go to r.diags(); nullopt when
// this section reported any error. An absent table yields settings with enabled = false.
std::optional<workflows::followup::settings> parse_followup(reader& r);

// 'holidays' of the table: TOML dates or "YYYY-MM-DD" strings, each error at its element (shared
// by the workflows that keep a firm calendar).
void read_holidays(reader& w, std::set<date::sys_days>& out);
void read_weekdays(reader& w, std::string_view key, std::array<bool, 7>& days);

}  // namespace billsync::config
