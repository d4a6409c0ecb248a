#include "mappings/change.hpp"

#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

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

change make_change(entity e, std::uint64_t version, change::op what, std::string source) {
    change c;
    c.entity_type = std::string(entity_type_of(e));
    c.entity_id = entity_id_of(e);
    c.version = version;
    c.what = what;
    c.source = std::move(source);
    if (const auto* r = std::get_if<generic::record>(&e)) {
        c.fields_json = r->fields_json;
    } else {
        c.fields_json = std::visit(
            [](const auto& x) {
                if constexpr (std::is_same_v<std::decay_t<decltype(x)>, generic::record>) {
                    return std::string();
                } else {
                    return to_json(x).dump(
                        -1, ' ', false, nlohmann::json::error_handler_t::replace);
                }
            },
            e);
    }
    c.typed = std::make_shared<const entity>(std::move(e));
    return c;
}

}  // namespace billsync::mappings
