#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::mappings {

// An amount in integer minor units (cents) of an ISO 4217 currency. Never a float.
struct money {
    std::int64_t minor = 0;
    std::string currency;  // "USD"

    friend bool operator==(const money&, const money&) = default;
};

// ISO 4217 minor-unit exponent: 2 for most, 0 for JPY/KRW/…, 3 for BHD/KWD/….
int minor_digits(std::string_view currency) noexcept;

enum class rounding { reject, half_even };

// Converts a vendor decimal string ("1234.5", "-0.005", "1e2" is rejected) to minor units
// exactly. Digits beyond the currency's exponent are rejected or rounded half-to-even.
// nullopt on malformed text or overflow.
std::optional<std::int64_t> parse_decimal(std::string_view text,
                                          int digits,
                                          rounding mode = rounding::reject);

// "1234.50" for 123450 with 2 digits; "-0.05"; "1000" with 0 digits.
std::string format_decimal(std::int64_t minor, int digits);

}  // namespace billsync::mappings
