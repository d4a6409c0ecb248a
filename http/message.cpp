#include "http/message.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

namespace billsync::http {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string_view request::header_value(std::string_view name) const {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

response response::text(unsigned status, std::string body) {
    response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

response response::json(unsigned status, std::string body) {
    response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
}

response response::error(unsigned status, std::string_view code, std::string_view message) {
    nlohmann::json j{{"error", code}, {"message", message}};
    return json(status, j.dump());
}

}  // namespace billsync::http
