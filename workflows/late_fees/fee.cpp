#include "workflows/late_fees/fee.hpp"

#include <algorithm>

#include "mappings/money.hpp"

namespace billsync::workflows::late_fees {

date::year_month_day period_start(date::year_month_day due,
                                  std::int32_t grace_days,
                                  std::uint32_t k) {
    const date::year_month_day first{date::sys_days(due) + date::days(grace_days)};
    auto ym = date::year_month(first.year(), first.month()) + date::months(k - 1);
    const auto last = static_cast<unsigned>((ym / date::last).day());
    const auto day = std::min(static_cast<unsigned>(first.day()), last);
    return ym / date::day(day);
}

std::uint32_t first_period_from(date::year_month_day due,
                                std::int32_t grace_days,
                                date::year_month_day from) {
    std::uint32_t k = 1;
    // Months between the first period and `from`, then step to the exact one.
    const auto first = period_start(due, grace_days, 1);
    if (date::sys_days(first) < date::sys_days(from)) {
        const auto months = (int(from.year()) - int(first.year())) * 12 +
                            (int(unsigned(from.month())) - int(unsigned(first.month())));
        k = static_cast<std::uint32_t>(std::max(1, months));
        while (k > 1 &&
               date::sys_days(period_start(due, grace_days, k - 1)) >= date::sys_days(from)) {
            --k;
        }
        while (date::sys_days(period_start(due, grace_days, k)) < date::sys_days(from)) {
            ++k;
        }
    }
    return k;
}

assessment assess(const settings& s,
                  std::int64_t balance_minor,
                  std::int64_t charged_minor,
                  int digits) {
    assessment a;
    const auto money = [&](std::int64_t m) { return mappings::format_decimal(m, digits); };
    if (s.percent_e4) {
        // balance x percent / 100, the percent in ten-thousandths: / 1,000,000, half up. Split
        // so no product leaves 64 bits: balance = q x 10^6 + r.
        constexpr std::int64_t scale = 1'000'000;
        const auto q = balance_minor / scale;
        const auto r = balance_minor % scale;
        a.base_minor = q * *s.percent_e4 + (r * *s.percent_e4 + scale / 2) / scale;
        a.arithmetic = s.rate_text + " of " + money(balance_minor) + " = " + money(a.base_minor);
    } else {
        a.base_minor = s.flat_minor.value_or(0);
        a.arithmetic = "flat " + money(a.base_minor);
    }
    a.fee_minor = a.base_minor;
    if (a.fee_minor < s.minimum_minor) {
        a.fee_minor = s.minimum_minor;
        a.arithmetic += "; minimum " + money(s.minimum_minor);
    }
    if (s.cap_minor) {
        const auto room = std::max<std::int64_t>(0, *s.cap_minor - charged_minor);
        if (a.fee_minor > room) {
            a.fee_minor = room;
            a.arithmetic += "; cap " + money(*s.cap_minor) + " with " + money(charged_minor) +
                            " already charged";
        }
    }
    a.arithmetic += " -> " + money(a.fee_minor);
    return a;
}

}  // namespace billsync::workflows::late_fees
