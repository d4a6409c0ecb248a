#include "daemon/connector_changes.hpp"

#include <nlohmann/json.hpp>

#include "util/crypto.hpp"

namespace billsync::daemon {

std::string settings_fingerprint(const connectors::connector_settings& s) {
    // nlohmann's object keys are sorted: the text does not depend on the file's key order.
    nlohmann::json j{{"kind", s.kind},
                     {"enabled", s.enabled},
                     {"base_url", s.base_url},
                     {"token_url", s.token_url}};
    auto& values = j["values"] = nlohmann::json::object();
    for (const auto& [key, value] : s.values) {
        values[key] = value;
    }
    auto& secrets = j["secrets"] = nlohmann::json::object();
    for (const auto& [key, value] : s.secrets) {
        secrets[key] = util::hex_encode(util::sha256(value.reveal()));
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

connector_plan plan_connectors(const std::map<std::string, std::string, std::less<>>& running,
                               const std::vector<connectors::connector_settings>& next) {
    connector_plan out;
    std::map<std::string, std::string, std::less<>> wanted;
    for (const auto& s : next) {
        if (s.enabled) {
            wanted.emplace(s.name, settings_fingerprint(s));
        }
    }
    for (const auto& [name, print] : wanted) {
        const auto it = running.find(name);
        if (it == running.end()) {
            out.added.push_back(name);
        } else if (it->second == print) {
            out.unchanged.push_back(name);
        } else {
            out.changed.push_back(name);
        }
    }
    for (const auto& [name, print] : running) {
        if (!wanted.contains(name)) {
            out.removed.push_back(name);
        }
    }
    return out;
}

}  // namespace billsync::daemon
