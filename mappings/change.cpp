#include "mappings/change.hpp"

#include <nlohmann/json.hpp>

namespace billsync::mappings {

std::string_view to_string(change::op o) noexcept {
    switch (o) {
        case change::op::created:
            return "created";
        case change::op::updated:
            return "updated";
        case change::op::deleted:
            return "deleted";
    }
    return "unknown";
}

std::string change::encode() const {
    nlohmann::json j{{"type", entity_type},
                     {"id", entity_id},
                     {"version", version},
                     {"op", to_string(what)},
                     {"source", source}};
    j["fields"] = nlohmann::json::parse(fields_json, nullptr, false);
    if (j["fields"].is_discarded()) {
        j["fields"] = nullptr;
    }
    return j.dump();
}

}  // namespace billsync::mappings
