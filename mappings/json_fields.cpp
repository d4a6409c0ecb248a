#include "mappings/json_fields.hpp"

namespace billsync::mappings::fields {

using nlohmann::json;

const json* member(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return nullptr;
    }
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}

std::string text(const json& j, std::string_view key) {
    const json* v = member(j, key);
    if (v == nullptr) {
        return {};
    }
    if (v->is_string()) {
        return v->get<std::string>();
    }
    if (v->is_number_integer()) {
        return v->dump();
    }
    return {};
}

std::string nested_text(const json& j, std::string_view a, std::string_view b) {
    const json* v = member(j, a);
    return v == nullptr ? std::string() : text(*v, b);
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace billsync::mappings::fields
