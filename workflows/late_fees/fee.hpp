#pragma once

// The late-fee arithmetic, pure: when each period of an overdue invoice begins, and what it
// costs. Integer minor units throughout; a percentage is rounded half up to the minor unit.

#include <date/date.h>

#include <cstdint>
#include <optional>
#include <string>

#include "workflows/late_fees/settings.hpp"

namespace billsync::workflows::late_fees {

// Period k (1, 2, ...) begins on due + grace_days + (k - 1) months; a day past the end of a
// shorter month is the month's last day (Jan 31 + 1 month = Feb 28/29).
date::year_month_day period_start(date::year_month_day due,
                                  std::int32_t grace_days,
                                  std::uint32_t k);

// The first period that begins on or after `from`.
std::uint32_t first_period_from(date::year_month_day due,
                                std::int32_t grace_days,
                                date::year_month_day from);

struct assessment {
    std::int64_t fee_minor = 0;   // 0: nothing to charge (cap reached)
    std::int64_t base_minor = 0;  // before minimum and cap
    std::string arithmetic;       // "1.5% of 1200.00 = 18.00; minimum 25.00 -> 25.00"
};

// The fee of one period on `balance_minor` (> 0), given what the invoice's earlier fees came to.
assessment assess(const settings& s,
                  std::int64_t balance_minor,
                  std::int64_t charged_minor,
                  int digits);

}  // namespace billsync::workflows::late_fees
