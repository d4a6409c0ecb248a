#include "workflows/invoicing/pricing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <tuple>

#include "mappings/money.hpp"

namespace billsync::workflows::invoicing {

namespace {

// n / d rounded half away from zero; d > 0.
std::int64_t divide_rounded(std::int64_t n, std::int64_t d) {
    if (n < 0) {
        return -((-n + d / 2) / d);
    }
    return (n + d / 2) / d;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string duration_text(std::int64_t minutes) {
    return minutes % 60 == 0 ? fmt::format("{}h", minutes / 60)
                             : fmt::format("{}h{:02}m", minutes / 60, minutes % 60);
}

}  // namespace

std::string_view to_string(model m) noexcept {
    switch (m) {
        case model::fixed_fee:
            return "fixed_fee";
        case model::retainer:
            return "retainer";
        case model::time_and_materials:
            return "time_and_materials";
        case model::hybrid:
            return "hybrid";
    }
    return "fixed_fee";
}

std::string_view to_string(schedule s) noexcept {
    switch (s) {
        case schedule::monthly:
            return "monthly";
        case schedule::weekly:
            return "weekly";
        case schedule::on_completion:
            return "on_completion";
    }
    return "monthly";
}

std::int64_t share_of(std::int64_t amount, std::int64_t basis_points) {
    return divide_rounded(amount * basis_points, 10000);
}

std::int64_t time_amount(std::int64_t minutes, std::int64_t rate_per_hour) {
    return divide_rounded(minutes * rate_per_hour, 60);
}

std::string hours_text(std::int64_t minutes) {
    // minutes/60 has a finite decimal form within 4 places when minutes*10000 is a multiple of 60.
    if (minutes < 0 || (minutes * 10000) % 60 != 0) {
        return {};
    }
    auto s = mappings::format_decimal(minutes * 10000 / 60, 4);
    if (s.find('.') != std::string::npos) {
        while (s.back() == '0') {
            s.pop_back();
        }
        if (s.back() == '.') {
            s.pop_back();
        }
    }
    return s;
}

std::string money_text(std::int64_t minor, std::string_view currency) {
    const int digits = mappings::minor_digits(currency);
    auto plain = mappings::format_decimal(minor < 0 ? -minor : minor, digits);
    const auto dot = plain.find('.');
    auto whole = plain.substr(0, dot);
    std::string grouped;
    for (std::size_t i = 0; i < whole.size(); ++i) {
        if (i > 0 && (whole.size() - i) % 3 == 0) {
            grouped += ',';
        }
        grouped += whole[i];
    }
    return (minor < 0 ? "-" : "") + grouped +
           (dot == std::string::npos ? std::string() : plain.substr(dot));
}

std::optional<std::int64_t> milestone_amount(const engagement& e,
                                             const milestone& m,
                                             std::int64_t billed_so_far) {
    if (m.remainder) {
        const auto rest = e.fee - billed_so_far;
        return rest > 0 ? std::optional<std::int64_t>(rest) : std::nullopt;
    }
    const auto amount = m.amount ? *m.amount : share_of(e.fee, m.percent_bp);
    if (amount <= 0 || billed_so_far + amount > e.fee) {
        return std::nullopt;
    }
    return amount;
}

std::optional<std::int64_t> rate_for(const rate_card& card, const time_fact& t) {
    if (auto it = card.by_staff.find(lower(t.staff));
        !t.staff.empty() && it != card.by_staff.end()) {
        return it->second;
    }
    if (auto it = card.by_role.find(lower(t.role)); !t.role.empty() && it != card.by_role.end()) {
        return it->second;
    }
    if (auto it = card.by_service.find(lower(t.service));
        !t.service.empty() && it != card.by_service.end()) {
        return it->second;
    }
    return card.default_rate;
}

time_lines price_time(const engagement& e, const std::vector<time_fact>& entries) {
    time_lines out;
    // Grouped by (staff, service, rate): one line each, its minutes summed before rounding.
    struct group {
        std::int64_t minutes = 0;
        std::vector<std::string> ids;
        std::string first, last;
    };
    std::map<std::tuple<std::string, std::string, std::int64_t>, group> groups;
    for (const auto& t : entries) {
        const auto rate = rate_for(e.rates, t);
        if (!rate) {
            out.no_rate.push_back(t.id);
            continue;
        }
        auto& g = groups[{t.staff, t.service, *rate}];
        g.minutes += t.minutes;
        g.ids.push_back(t.id);
        if (g.first.empty() || t.date < g.first) {
            g.first = t.date;
        }
        if (t.date > g.last) {
            g.last = t.date;
        }
    }
    for (auto& [k, g] : groups) {
        const auto& [staff, service, rate] = k;
        line l;
        l.kind = "time";
        l.amount = time_amount(g.minutes, rate);
        const auto hours = hours_text(g.minutes);
        if (!hours.empty()) {
            l.quantity = hours;
            l.unit_amount = rate;
        }
        std::sort(g.ids.begin(), g.ids.end());
        l.entries = g.ids;
        l.description =
            fmt::format("{} - {} - {} at {}/h ({} to {}, {} entries)",
                        service.empty() ? std::string("Professional services") : service,
                        staff.empty() ? std::string("staff") : staff,
                        duration_text(g.minutes),
                        money_text(rate, e.currency),
                        g.first,
                        g.last,
                        g.ids.size());
        out.arithmetic.push_back(fmt::format("{} min x {}/h / 60 = {} (rounded half up)",
                                             g.minutes,
                                             money_text(rate, e.currency),
                                             money_text(l.amount, e.currency)));
        out.total += l.amount;
        out.lines.push_back(std::move(l));
    }
    return out;
}

retainer_lines price_retainer(const engagement& e,
                              const std::string& period,
                              std::int64_t previous_minutes,
                              const std::vector<std::string>& previous_entries) {
    retainer_lines out;
    line r;
    r.kind = "retainer";
    r.description =
        fmt::format("Monthly retainer {} ({} included)", period, duration_text(e.included_minutes));
    r.amount = e.retainer;
    r.unit_amount = e.retainer;
    r.quantity = "1";
    out.arithmetic.push_back(
        fmt::format("retainer {} = {}", period, money_text(e.retainer, e.currency)));
    out.total = r.amount;
    out.lines.push_back(std::move(r));
    const auto over = previous_minutes - e.included_minutes;
    if (e.overage_rate && over > 0) {
        line o;
        o.kind = "overage";
        o.amount = time_amount(over, *e.overage_rate);
        const auto hours = hours_text(over);
        if (!hours.empty()) {
            o.quantity = hours;
            o.unit_amount = *e.overage_rate;
        }
        o.entries = previous_entries;
        std::sort(o.entries.begin(), o.entries.end());
        o.description = fmt::format("Overage previous period: {} above the {} included at {}/h",
                                    duration_text(over),
                                    duration_text(e.included_minutes),
                                    money_text(*e.overage_rate, e.currency));
        out.arithmetic.push_back(fmt::format("({} min recorded - {} min included) x {}/h / 60 = {}",
                                             previous_minutes,
                                             e.included_minutes,
                                             money_text(*e.overage_rate, e.currency),
                                             money_text(o.amount, e.currency)));
        out.overage = o.amount;
        out.total += o.amount;
        out.lines.push_back(std::move(o));
    } else {
        out.arithmetic.push_back(
            fmt::format("previous period {} min of {} min included: no overage",
                        previous_minutes,
                        e.included_minutes));
    }
    return out;
}

}  // namespace billsync::workflows::invoicing
