#pragma once

// JSON parsing that never turns a decimal into a double. Vendors send money and quantities as
// JSON numbers (QBO's "TotalAmt": 123.45, Harvest's hours and rates, Karbon's fees);
// nlohmann's SAX interface hands us each number's source text, which is kept instead, so
// amounts reach mappings::parse_decimal exactly as the vendor wrote them. Shared by every
// vendor's mapping and simulator.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::mappings {

struct json_limits {
    std::size_t max_bytes = 64 * 1024 * 1024;
    std::size_t max_depth = 64;  // nesting of objects and arrays (mappings/json_depth.hpp)
};

// Parses text into a DOM in which every non-integer number (and every integer too large for 64
// bits) is a string holding its exact source text ("123.45", "1e2"). Integers stay integers.
// Never throws: nullopt with `error` set on malformed input, oversize text or excess depth.
std::optional<nlohmann::json> parse_exact(std::string_view text,
                                          std::string& error,
                                          const json_limits& limits = {});

// A plain decimal text ("-12.5", "100") from a JSON value that is an integer, a kept number or a
// string holding a number, with exponents expanded ("1.5E2" -> "150") and redundant zeros
// dropped. nullopt when the value is not a finite decimal number (or its exponent is absurd).
std::optional<std::string> decimal_text(const nlohmann::json& v);
std::optional<std::string> normalize_decimal(std::string_view text);

}  // namespace billsync::mappings
