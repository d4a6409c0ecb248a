#pragma once

// The arithmetic of an invoice draft, pure and exact: integer minor units, one rounding rule
// (half away from zero, to the minor unit, once per line), every step written down so a draft
// can show how it was computed.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "workflows/invoicing/settings.hpp"

namespace billsync::workflows::invoicing {

struct line {
    std::string kind;  // "milestone", "retainer", "overage", "time", "write_down"
    std::string description;
    std::string quantity;                     // exact decimal text; empty: 1
    std::optional<std::int64_t> unit_amount;  // minor units
    std::int64_t amount = 0;                  // minor units, authoritative
    std::optional<std::int64_t> share_of;     // a milestone: the fee it is a share of
    std::vector<std::string> entries;         // time entries billed on this line
};

// A share in basis points of an amount, rounded half away from zero.
std::int64_t share_of(std::int64_t amount, std::int64_t basis_points);
// minutes at an hourly rate, rounded half away from zero.
std::int64_t time_amount(std::int64_t minutes, std::int64_t rate_per_hour);
// Minutes as exact decimal hours ("1.5", "0.25"); empty when not exact in 4 decimals.
std::string hours_text(std::int64_t minutes);
// "2,400.00" style, with the currency's digits.
std::string money_text(std::int64_t minor, std::string_view currency);

// A milestone's amount: its share or amount of the fee, or (remainder) the fee less what the
// other milestones billed. nullopt: it cannot be billed (more than the fee already went out).
std::optional<std::int64_t> milestone_amount(const engagement& e,
                                             const milestone& m,
                                             std::int64_t billed_so_far);

// A time entry ready to price.
struct time_fact {
    std::string id;
    std::string staff;  // email, lower case; empty when unknown
    std::string role;
    std::string service;
    std::string date;  // civil date
    std::int64_t minutes = 0;
    std::string client;  // canonical client the entry is recorded for
};

// The rate for one entry under a card; nullopt: none applies.
std::optional<std::int64_t> rate_for(const rate_card& card, const time_fact& t);

struct time_lines {
    std::vector<line> lines;              // one per (staff, service, rate), in a stable order
    std::vector<std::string> no_rate;     // entries no rate applies to
    std::vector<std::string> arithmetic;  // one sentence per line
    std::int64_t total = 0;
};
time_lines price_time(const engagement& e, const std::vector<time_fact>& entries);

// A retainer period: the retainer line, and an overage line for the previous period's time
// above the included hours (when an overage rate is set).
struct retainer_lines {
    std::vector<line> lines;
    std::vector<std::string> arithmetic;
    std::int64_t overage = 0;  // minor units of the overage line
    std::int64_t total = 0;
};
retainer_lines price_retainer(const engagement& e,
                              const std::string& period,
                              std::int64_t previous_minutes,
                              const std::vector<std::string>& previous_entries);

}  // namespace billsync::workflows::invoicing
