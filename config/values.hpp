#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

// The syntax of configuration values, independent of TOML: durations, sizes, endpoints, URLs,
// and the "did you mean" helper.
namespace billsync::config {

// "250ms", "30s", "5m", "1h30m", "2d": one or more <digits><unit> groups, units ms s m h d, each
// at most once and from largest to smallest. nullopt when malformed or too large.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "1MiB", "512KiB", "64KB", "1024", "1024B": bytes with an optional unit B, KB/kB, MB, GB (powers
// of 1000) or KiB, MiB, GiB (powers of 1024). nullopt when malformed or too large.
std::optional<std::uint64_t> parse_size(std::string_view text);

// "host:port" where host is an IPv4 literal or "localhost", or "[ipv6]:port". Port 0..65535.
std::optional<endpoint> parse_endpoint(std::string_view text);

// An absolute http or https URL with a host, e.g. "https://api.xero.com".
bool is_http_url(std::string_view text);

// Damerau-Levenshtein (optimal string alignment) distance, case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to word when it is near enough to be a plausible typo: distance <= 2, or
// <= a third of the longer word's length, and less than the word's length; nullopt otherwise.
std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates);

}  // namespace billsync::config
