#include "mappings/money.hpp"

#include <array>
#include <limits>

namespace billsync::mappings {

int minor_digits(std::string_view currency) noexcept {
    static constexpr std::array<std::string_view, 16> zero = {"BIF",
                                                              "CLP",
                                                              "DJF",
                                                              "GNF",
                                                              "ISK",
                                                              "JPY",
                                                              "KMF",
                                                              "KRW",
                                                              "PYG",
                                                              "RWF",
                                                              "UGX",
                                                              "UYI",
                                                              "VND",
                                                              "VUV",
                                                              "XAF",
                                                              "XOF"};
    static constexpr std::array<std::string_view, 7> three = {
        "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};
    for (auto c : zero) {
        if (c == currency) {
            return 0;
        }
    }
    for (auto c : three) {
        if (c == currency) {
            return 3;
        }
    }
    return 2;
}

std::optional<std::int64_t> parse_decimal(std::string_view text, int digits, rounding mode) {
    if (text.empty() || digits < 0 || digits > 6) {
        return std::nullopt;
    }
    bool negative = false;
    std::size_t i = 0;
    if (text[0] == '-' || text[0] == '+') {
        negative = text[0] == '-';
        ++i;
    }
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    std::int64_t value = 0;
    bool any_digit = false;
    auto push = [&](int d) {
        if (value > (max - d) / 10) {
            return false;
        }
        value = value * 10 + d;
        return true;
    };
    for (; i < text.size() && text[i] != '.'; ++i) {
        const char c = text[i];
        if (c < '0' || c > '9' || !push(c - '0')) {
            return std::nullopt;
        }
        any_digit = true;
    }
    int frac = 0;
    // Digits beyond the exponent decide rounding: the first one, and whether any later is nonzero.
    int first_extra = -1;
    bool later_nonzero = false;
    if (i < text.size()) {
        ++i;  // '.'
        if (i == text.size() && !any_digit) {
            return std::nullopt;
        }
        for (; i < text.size(); ++i) {
            const char c = text[i];
            if (c < '0' || c > '9') {
                return std::nullopt;
            }
            any_digit = true;
            if (frac < digits) {
                if (!push(c - '0')) {
                    return std::nullopt;
                }
                ++frac;
            } else if (first_extra < 0) {
                first_extra = c - '0';
            } else if (c != '0') {
                later_nonzero = true;
            }
        }
    }
    if (!any_digit) {
        return std::nullopt;
    }
    for (; frac < digits; ++frac) {
        if (!push(0)) {
            return std::nullopt;
        }
    }
    if (first_extra > 0 || later_nonzero) {
        if (mode == rounding::reject) {
            return std::nullopt;
        }
        const bool up = first_extra > 5 || (first_extra == 5 && (later_nonzero || value % 2 == 1));
        if (up && !push(0)) {
            return std::nullopt;
        }
        if (up) {
            value = value / 10 + 1;
        }
    }
    return negative ? -value : value;
}

std::string format_decimal(std::int64_t minor, int digits) {
    const bool negative = minor < 0;
    // Work in unsigned so INT64_MIN formats correctly.
    std::uint64_t v =
        negative ? 0 - static_cast<std::uint64_t>(minor) : static_cast<std::uint64_t>(minor);
    std::string s = std::to_string(v);
    if (digits > 0) {
        const auto d = static_cast<std::size_t>(digits);
        if (s.size() <= d) {
            s.insert(0, d + 1 - s.size(), '0');
        }
        s.insert(s.size() - d, ".");
    }
    return negative ? "-" + s : s;
}

}  // namespace billsync::mappings
