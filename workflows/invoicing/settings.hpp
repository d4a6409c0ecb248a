#pragma once

// Settings of the invoicing rule: the [invoicing] table (policy) and the engagement book it
// names (billing terms per engagement). Parsed by daemon/workflows/invoicing_settings.cpp; every
// amount is already in integer minor units of its engagement's currency.

#include <date/date.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace billsync::workflows::invoicing {

enum class model : std::uint8_t { fixed_fee, retainer, time_and_materials, hybrid };
std::string_view to_string(model m) noexcept;

// One billing milestone of a fixed fee: the stage (a work item's secondary status) that bills
// it, and how much: a share of the fee, an amount, or what remains of the fee.
struct milestone {
    std::string stage;
    std::int64_t percent_bp = 0;         // basis points of the fee (50 % = 5000)
    std::optional<std::int64_t> amount;  // minor units
    bool remainder = false;
};

// Hourly rates in minor units; keys folded to lower case. The most specific applies: staff
// member, then role, then service, then the default. No rate: the time waits (an exception).
struct rate_card {
    std::optional<std::int64_t> default_rate;
    std::map<std::string, std::int64_t, std::less<>> by_staff;    // email
    std::map<std::string, std::int64_t, std::less<>> by_role;     // staff role
    std::map<std::string, std::int64_t, std::less<>> by_service;  // task / service name
};

enum class schedule : std::uint8_t { monthly, weekly, on_completion };
std::string_view to_string(schedule s) noexcept;

struct engagement {
    std::string id;
    std::string client;  // canonical client id or "<connector>:<vendor id>"
    std::string work_type;
    model billing = model::fixed_fee;
    std::string currency;
    std::string ledger;  // the ledger connector that invoices it
    std::string item;    // the ledger's item (service) for its lines; empty: the ledger default
    std::string account_code;
    std::string tax_code;
    std::string partner;   // the engagement partner: its approver
    std::string terms_by;  // who last changed these terms (may not approve what they produce)
    std::string billing_contact;
    std::int64_t terms_days = 30;
    std::string po_number;
    bool po_required = false;
    std::optional<std::int64_t> po_limit;
    bool send_to_client = false;
    std::vector<std::string> work_items;  // explicit work item keys; empty: client + work type
    std::vector<std::string> projects;    // time system projects in scope; empty: all
    // fixed_fee
    std::int64_t fee = 0;
    std::vector<milestone> milestones;
    // retainer, hybrid
    std::int64_t retainer = 0;
    std::int64_t included_minutes = 0;
    std::optional<std::int64_t> overage_rate;
    std::int64_t tolerance = 0;                      // overage above this needs approval
    std::vector<std::string> out_of_scope_services;  // hybrid: billed as T&M on top
    // time_and_materials, hybrid
    rate_card rates;
    std::optional<std::int64_t> cap;  // the most T&M ever billed on this engagement
    schedule every = schedule::monthly;
};

struct approval_policy {
    std::int64_t auto_approve_below = 0;  // minor units; 0: every draft needs a person
    std::optional<std::int64_t> second_approver_from;
    std::vector<std::string> approvers;    // when the engagement names no partner
    std::vector<std::string> escalate_to;  // after the SLA passes twice
    // "new_client", "first_invoice", "write_down", "overage_above_tolerance", "unusual_amount"
    std::set<std::string, std::less<>> always_review;
    std::int64_t unusual_percent = 50;
    int sla_business_days = 2;
    std::vector<std::string> reasons;  // the write-down / rejection taxonomy
};

struct settings {
    bool enabled = false;
    std::string ledger;            // default ledger connector
    std::string currency = "USD";  // default currency
    std::string email_connector;   // approvers' emails; empty: the first email connector
    std::string time_zone;         // empty: [daemon] time_zone
    int retainer_day = 1;          // day of month the retainer period starts
    int run_hour = 6;              // local hour scheduled runs happen
    int weekly_day = 1;            // T&M weekly runs: 0 = Sunday … 6 = Saturday
    std::int64_t po_warning_percent = 90;
    bool require_tax_code = false;      // a draft of an engagement without tax_code waits
    bool milestone_needs_time = false;  // a milestone with no time recorded for the client waits
    // Every line of a draft must be priced as the ledger item it names sells (pricing_mismatch).
    bool check_item_prices = false;
    std::set<date::sys_days> holidays;  // the firm calendar, for the approval SLA
    approval_policy approval;
    std::vector<engagement> engagements;
    std::string book;  // the engagement book's path, for messages
};

}  // namespace billsync::workflows::invoicing
