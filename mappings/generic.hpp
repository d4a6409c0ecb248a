#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::mappings::generic {

// A record delivered by a generic signed webhook: a JSON object with an optional "id" (string or
// integer). Canonical id: "<connector>/<id>", or "<connector>/<dedup key>" without one.
struct record {
    std::string id;           // canonical id
    std::string fields_json;  // the object, re-serialised canonically (sorted keys)
    std::optional<std::int64_t> remind_after_seconds;  // "remind_after_s", when present
};

// The longest "remind_after_s" accepted: ten years, so the timer's instant cannot overflow.
inline constexpr std::int64_t max_remind_after_seconds = 10LL * 366 * 24 * 3600;

// Maps a verified body. nullopt with `error` set when it is not a JSON object, nests deeper than
// mappings::default_max_json_depth, or has a bad "id" or "remind_after_s".
std::optional<record> map_record(std::string_view connector,
                                 std::string_view dedup_key,
                                 std::string_view body,
                                 std::string& error);

}  // namespace billsync::mappings::generic
