#pragma once

// The late-fee policy ([late_fees], docs/late-fees.md), already parsed and checked. The daemon
// reads configuration; the rule takes this struct.

#include <date/date.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace billsync::workflows::late_fees {

struct settings {
    bool enabled = false;
    // The ledger connector that creates the fee invoices; empty: the invoice's own ledger.
    std::string ledger;
    std::string currency = "USD";  // flat, minimum and cap are in it; other invoices get no fee
    // Exactly one of: a percentage of the overdue balance per month, in ten-thousandths of a
    // percent ("1.5" -> 15000), or a flat amount in minor units.
    std::optional<std::int64_t> percent_e4;
    std::optional<std::int64_t> flat_minor;
    std::string rate_text;  // as written ("1.5%", "25.00 USD"), quoted in the audit
    std::int32_t grace_days = 0;
    std::int64_t minimum_minor = 0;
    std::optional<std::int64_t> cap_minor;  // on the total of one invoice's fees
    bool auto_approve = false;              // false: a coordinator approves each fee
    std::string opt_out_tag = "no-late-fee";
    std::set<std::string, std::less<>> opt_out_clients;
    std::string item;  // the fee line's item, where the ledger bills by item; empty: default
    std::string account_code;  // the fee line's account code, where the ledger books by account
    std::string tax_code;
    std::int32_t terms_days = 0;  // the fee invoice is due this many days after it is issued
    std::int32_t run_hour = 6;    // local hour at which a period's fee is assessed
    std::string time_zone;        // empty: [daemon] time_zone
    // Periods that begin before this civil date are never charged; nullopt: the day the policy
    // first ran (stored), so turning the policy on never charges for months already past.
    std::optional<date::year_month_day> start;
};

}  // namespace billsync::workflows::late_fees
