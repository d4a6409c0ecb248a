#include "connectors/runtime/settings.hpp"

namespace billsync::connectors {

const std::string* connector_settings::value(std::string_view key) const {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
}

const config::secret* connector_settings::find_secret(std::string_view key) const {
    const auto it = secrets.find(key);
    return it == secrets.end() ? nullptr : &it->second;
}

}  // namespace billsync::connectors
