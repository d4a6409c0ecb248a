#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace billsync::util {

// Raw digest bytes.
std::string sha256(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha1(std::string_view key, std::string_view data);

std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view text);
// The value of one hex digit (either case); -1 for any other character.
int hex_digit(char c) noexcept;
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// Compares in time that depends only on the lengths, never on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace billsync::util
