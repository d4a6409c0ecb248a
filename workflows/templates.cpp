#include "workflows/templates.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace billsync::workflows {

namespace {

constexpr std::array<std::pair<placeholder, std::string_view>, 12> names = {{
    {placeholder::client_name, "client_name"},
    {placeholder::invoice_number, "invoice_number"},
    {placeholder::amount, "amount"},
    {placeholder::balance, "balance"},
    {placeholder::due_date, "due_date"},
    {placeholder::days_overdue, "days_overdue"},
    {placeholder::days_overdue_text, "days_overdue_text"},
    {placeholder::payment_link, "payment_link"},
    {placeholder::firm_name, "firm_name"},
    {placeholder::firm_phone, "firm_phone"},
    {placeholder::days_until_due, "days_until_due"},
    {placeholder::autopay_link, "autopay_link"},
}};

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string suggestion(std::string_view name) {
    std::string_view best;
    std::size_t best_distance = 4;  // suggest only close names
    for (const auto& [p, candidate] : names) {
        std::size_t d = edit_distance(name, candidate);
        // "client" -> "client_name": a prefix of a known name is a likely abbreviation.
        if (!name.empty() && candidate.starts_with(name)) {
            d = std::min<std::size_t>(d, 1);
        }
        if (d < best_distance) {
            best_distance = d;
            best = candidate;
        }
    }
    if (best.empty()) {
        return {};
    }
    return " (did you mean '{" + std::string(best) + "}'?)";
}

std::string known_list() {
    std::string out;
    for (const auto& [p, name] : names) {
        if (!out.empty()) {
            out += ' ';
        }
        out += '{';
        out += name;
        out += '}';
    }
    return out;
}

std::string group_thousands(std::string digits) {
    std::string out;
    const std::size_t n = digits.size();
    for (std::size_t i = 0; i < n; ++i) {
        if (i > 0 && (n - i) % 3 == 0) {
            out += ',';
        }
        out += digits[i];
    }
    return out;
}

}  // namespace

std::string_view to_string(placeholder p) noexcept {
    for (const auto& [candidate, name] : names) {
        if (candidate == p) {
            return name;
        }
    }
    return "?";
}

std::optional<placeholder> placeholder_from_name(std::string_view name) noexcept {
    for (const auto& [p, candidate] : names) {
        if (candidate == name) {
            return p;
        }
    }
    return std::nullopt;
}

std::variant<message_template, template_error> message_template::parse(std::string_view text) {
    message_template out;
    out.source_ = std::string(text);
    std::string literal;
    auto flush = [&] {
        if (!literal.empty()) {
            out.segments_.push_back({std::move(literal), std::nullopt});
            literal.clear();
        }
    };
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
            literal += '{';
            i += 2;
            continue;
        }
        if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
            literal += '}';
            i += 2;
            continue;
        }
        if (c == '}') {
            return template_error{i, "unmatched '}' (write '}}' for a literal brace)"};
        }
        if (c != '{') {
            literal += c;
            ++i;
            continue;
        }
        const auto close = text.find_first_of("{}\n", i + 1);
        if (close == std::string_view::npos || text[close] != '}') {
            return template_error{i, "unclosed '{' (write '{{' for a literal brace)"};
        }
        const auto name = text.substr(i + 1, close - i - 1);
        const auto p = placeholder_from_name(name);
        if (!p) {
            return template_error{i,
                                  "unknown placeholder '{" + std::string(name) + "}'" +
                                      suggestion(name) + "; known: " + known_list()};
        }
        flush();
        out.segments_.push_back({{}, p});
        i = close + 1;
    }
    flush();
    return out;
}

bool message_template::uses(placeholder p) const noexcept {
    return std::any_of(
        segments_.begin(), segments_.end(), [p](const segment& s) { return s.slot == p; });
}

std::optional<std::string> message_template::render(const template_values& v,
                                                    std::optional<placeholder>* missing) const {
    std::string out;
    for (const auto& s : segments_) {
        if (!s.slot) {
            out += s.literal;
            continue;
        }
        std::string value;
        switch (*s.slot) {
            case placeholder::client_name:
                value = v.client_name;
                break;
            case placeholder::invoice_number:
                value = v.invoice_number;
                break;
            case placeholder::amount:
                value = v.amount.currency.empty() ? std::string() : format_money(v.amount);
                break;
            case placeholder::balance:
                value = v.balance.currency.empty() ? std::string() : format_money(v.balance);
                break;
            case placeholder::due_date:
                value = v.due_date.ok() ? format_date(v.due_date) : std::string();
                break;
            case placeholder::days_overdue:
                value = std::to_string(v.days_overdue);
                break;
            case placeholder::days_overdue_text:
                value = std::to_string(v.days_overdue) + (v.days_overdue == 1 ? " day" : " days");
                break;
            case placeholder::payment_link:
                value = v.payment_link;
                break;
            case placeholder::firm_name:
                value = v.firm_name;
                break;
            case placeholder::firm_phone:
                value = v.firm_phone;
                break;
            case placeholder::days_until_due:
                value = std::to_string(v.days_until_due);
                break;
            case placeholder::autopay_link:
                value = v.autopay_link;
                break;
        }
        if (value.empty()) {
            if (missing != nullptr) {
                *missing = s.slot;
            }
            return std::nullopt;
        }
        out += value;
    }
    return out;
}

std::string format_money(const mappings::money& m) {
    const int digits = mappings::minor_digits(m.currency);
    const bool negative = m.minor < 0;
    // format_decimal handles the sign and INT64_MIN; strip the sign and regroup the integer part.
    std::string plain = mappings::format_decimal(m.minor, digits);
    if (!plain.empty() && plain.front() == '-') {
        plain.erase(0, 1);
    }
    const auto dot = plain.find('.');
    std::string integer = plain.substr(0, dot);
    const std::string fraction = dot == std::string::npos ? std::string() : plain.substr(dot);
    std::string number = group_thousands(std::move(integer)) + fraction;

    std::string symbol;
    if (m.currency == "USD") {
        symbol = "$";
    } else if (m.currency == "EUR") {
        symbol = "\u20ac";
    } else if (m.currency == "GBP") {
        symbol = "\u00a3";
    } else if (m.currency == "JPY") {
        symbol = "\u00a5";
    } else {
        symbol = m.currency + " ";
    }
    return (negative ? "-" : "") + symbol + number;
}

std::string format_date(date::year_month_day d) {
    static constexpr std::array<std::string_view, 12> months = {"January",
                                                                "February",
                                                                "March",
                                                                "April",
                                                                "May",
                                                                "June",
                                                                "July",
                                                                "August",
                                                                "September",
                                                                "October",
                                                                "November",
                                                                "December"};
    const auto month_index = static_cast<unsigned>(d.month());
    if (!d.ok() || month_index < 1 || month_index > 12) {
        return {};
    }
    return std::string(months[month_index - 1]) + " " +
           std::to_string(static_cast<unsigned>(d.day())) + ", " +
           std::to_string(static_cast<int>(d.year()));
}

}  // namespace billsync::workflows
