#pragma once

// One nesting cap for every JSON body from outside (vendor webhooks, generic records), checked on
// the raw text before any parse: nlohmann's dump(), comparison and copies recurse once per level,
// so a body of a few thousand '[' would overflow the stack far from where it came in.

#include <cstddef>
#include <string>
#include <string_view>

namespace billsync::mappings {

inline constexpr std::size_t default_max_json_depth = 64;

// Empty when objects and arrays in `text` nest at most `max_depth` levels (brackets inside
// strings do not count), else "JSON nested deeper than <max_depth> levels". Linear, allocates
// nothing on success, and does not validate the JSON otherwise.
std::string json_depth_error(std::string_view text, std::size_t max_depth = default_max_json_depth);

}  // namespace billsync::mappings
