#include "mappings/generic.hpp"

#include <nlohmann/json.hpp>

#include "mappings/json_depth.hpp"

namespace billsync::mappings::generic {

std::optional<record> map_record(std::string_view connector,
                                 std::string_view dedup_key,
                                 std::string_view body,
                                 std::string& error) {
    if (auto deep = json_depth_error(body); !deep.empty()) {
        error = "body: " + deep;
        return std::nullopt;
    }
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) {
        error = "body is not valid JSON";
        return std::nullopt;
    }
    if (!j.is_object()) {
        error = "body is not a JSON object";
        return std::nullopt;
    }
    record r;
    std::string id;
    if (auto it = j.find("id"); it != j.end()) {
        if (it->is_string() && !it->get_ref<const std::string&>().empty()) {
            id = it->get<std::string>();
        } else if (it->is_number_integer()) {
            id = std::to_string(it->get<std::int64_t>());
        } else {
            error = "\"id\" must be a non-empty string or an integer";
            return std::nullopt;
        }
    } else {
        id = std::string(dedup_key);
    }
    r.id = std::string(connector) + "/" + id;
    if (auto it = j.find("remind_after_s"); it != j.end()) {
        if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
            it->get<std::int64_t>() > max_remind_after_seconds) {
            error = "\"remind_after_s\" must be an integer from 0 to " +
                    std::to_string(max_remind_after_seconds);
            return std::nullopt;
        }
        r.remind_after_seconds = it->get<std::int64_t>();
    }
    r.fields_json = j.dump();
    return r;
}

}  // namespace billsync::mappings::generic
