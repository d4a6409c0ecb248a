#include "config/sources.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <utility>

namespace billsync::config {

namespace {

struct known_connector {
    std::string name;
    bool enabled = true;
};

std::vector<known_connector> connectors_in(const toml::table& doc) {
    std::vector<known_connector> out;
    const auto* tables = doc.get_as<toml::table>("connectors");
    if (tables == nullptr) {
        return out;
    }
    for (const auto& [key, node] : *tables) {
        const auto* t = node.as_table();
        if (t == nullptr) {
            continue;
        }
        known_connector c{std::string(key.str())};
        if (const auto* enabled = t->get_as<bool>("enabled")) {
            c.enabled = enabled->get();
        }
        out.push_back(std::move(c));
    }
    return out;
}

sources_settings read(reader& r, const std::vector<known_connector>& connectors) {
    sources_settings out;
    std::vector<std::string_view> names;
    for (const auto& c : connectors) {
        names.push_back(c.name);
    }
    std::sort(names.begin(), names.end());
    // Canonical names first, then the alias, so a clash names the alias.
    std::vector<std::string_view> keys(source_data_types.begin(), source_data_types.end());
    keys.push_back("customers");
    for (const auto key : keys) {
        if (!r.has(key)) {
            r.ignore(key);  // known, so a misspelling of it gets a suggestion
            continue;
        }
        std::optional<std::string> value;
        if (names.empty()) {
            value = r.get_string(key);
            if (value) {
                r.error(key,
                        "'" + std::string(key) + "' names connector '" + *value +
                            "', but no [connectors.*] section is configured");
                continue;
            }
        } else {
            value = r.get_enum(key, names);  // "must be one of ... (did you mean ...?)"
        }
        if (!value) {
            continue;
        }
        const auto type = std::string(canonical_data_type(key));
        if (out.owners.contains(type)) {
            r.error(key,
                    "'" + std::string(key) + "' and '" + type +
                        "' are the same data type; set only one");
            continue;
        }
        const auto it = std::find_if(connectors.begin(),
                                     connectors.end(),
                                     [&](const known_connector& c) { return c.name == *value; });
        if (it != connectors.end() && !it->enabled) {
            r.warning(key,
                      "'" + std::string(key) + "' names connector '" + *value +
                          "', which is disabled; nothing will update " + type);
        }
        out.owners.emplace(type, std::move(*value));
        out.where.emplace(type, r.position_of(key));
    }
    return out;
}

}  // namespace

std::string_view canonical_data_type(std::string_view data_type) noexcept {
    return data_type == "customers" ? std::string_view("clients") : data_type;
}

std::string sources_settings::owner(std::string_view data_type) const {
    const auto it = owners.find(canonical_data_type(data_type));
    return it == owners.end() ? std::string() : it->second;
}

sources_settings parse_sources(reader& r) {
    const auto doc = r.document();
    return read(r, doc ? connectors_in(*doc) : std::vector<known_connector>{});
}

sources_settings parse_sources(reader& r, const std::vector<std::string>& connector_names) {
    std::vector<known_connector> connectors;
    for (const auto& n : connector_names) {
        connectors.push_back({n, true});
    }
    return read(r, connectors);
}

}  // namespace billsync::config
