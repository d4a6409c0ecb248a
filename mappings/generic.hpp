#pragma once

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

// Maps a verified body. nullopt with `error` set when it is not a JSON object or has a bad "id".
std::optional<record> map_record(std::string_view connector,
                                 std::string_view dedup_key,
                                 std::string_view body,
                                 std::string& error);

}  // namespace billsync::mappings::generic
