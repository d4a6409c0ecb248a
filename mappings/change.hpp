#pragma once

#include <cstdint>
#include <string>

namespace billsync::mappings {

// What changed in one canonical entity, as the workflows see it. Vendor-neutral: the source
// system is named, never interpreted.
struct change {
    enum class op : std::uint8_t { created, updated, deleted };

    std::string entity_type;    // "record", "invoice", "client", ...
    std::string entity_id;      // canonical id
    std::uint64_t version = 0;  // 1 for the first version, +1 per change
    op what = op::created;
    std::string source;       // connector name that reported it
    std::string fields_json;  // canonical fields after the change (JSON object)

    std::string encode() const;  // JSON, for the change log and audit
};

std::string_view to_string(change::op o) noexcept;

}  // namespace billsync::mappings
