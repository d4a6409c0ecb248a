#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mappings/entity.hpp"

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
    std::string fields_json;  // canonical fields after the change (JSON object), for the audit
    // The entity after the change, typed: rules read it through as<T>() rather than re-parsing
    // fields_json. Shared, since one change reaches every rule.
    std::shared_ptr<const entity> typed;

    // The typed entity when it is a T; nullptr otherwise (or when the change carries none).
    template <class T>
    const T* as() const noexcept {
        return typed ? std::get_if<T>(typed.get()) : nullptr;
    }

    std::string encode() const;  // JSON, for the change log and audit
};

std::string_view to_string(change::op o) noexcept;

// A change that carries `e` (type and id from the entity, fields_json its canonical JSON).
change make_change(entity e, std::uint64_t version, change::op what, std::string source);

}  // namespace billsync::mappings
