#include "connectors/karbon/karbon_webhook.hpp"

#include <nlohmann/json.hpp>

#include "mappings/json_depth.hpp"
#include "mappings/model.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::karbon {

std::string sign(std::string_view signing_key, std::string_view body) {
    return util::hex_encode(util::hmac_sha256(signing_key, body));
}

std::string_view to_string(signature_check c) noexcept {
    switch (c) {
        case signature_check::ok:
            return "ok";
        case signature_check::no_key_configured:
            return "no signing key configured";
        case signature_check::missing:
            return "missing Signature header";
        case signature_check::mismatch:
            return "signature mismatch";
    }
    return "signature mismatch";
}

signature_check verify_signature(std::string_view signing_key,
                                 std::string_view body,
                                 std::string_view header) {
    if (signing_key.empty()) {
        return signature_check::no_key_configured;
    }
    const auto b = header.find_first_not_of(" \t");
    if (b == std::string_view::npos) {
        return signature_check::missing;
    }
    header = header.substr(b, header.find_last_not_of(" \t") - b + 1);
    std::string given(header);
    for (auto& c : given) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return util::constant_time_equal(given, sign(signing_key, body)) ? signature_check::ok
                                                                     : signature_check::mismatch;
}

std::string signing_key_problem(std::string_view key) {
    if (key.size() < 16) {
        return "must be at least 16 characters";
    }
    for (const char c : key) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) {
            return "may hold only letters, digits, '-' and '_'";
        }
    }
    return {};
}

parse_result parse_webhook(std::string_view body) {
    parse_result out;
    if (auto deep = mappings::json_depth_error(body); !deep.empty()) {
        out.error = deep;
        return out;
    }
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object()) {
        out.error = "body is not a JSON object";
        return out;
    }
    notification n;
    const auto field = [&](std::string_view name, std::string& into) {
        const auto it = j.find(name);
        if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
            out.error = "'" + std::string(name) + "' is missing or not a non-empty string";
            return false;
        }
        into = it->get<std::string>();
        return true;
    };
    std::string stamp;
    if (!field("ResourcePermaKey", n.key) || !field("ResourceType", n.resource_type) ||
        !field("ActionType", n.action_type) || !field("TimeStamp", stamp)) {
        return out;
    }
    const auto t = mappings::parse_timestamp(stamp);
    if (!t) {
        out.error = "'TimeStamp' is not an RFC 3339 instant";
        return out;
    }
    n.timestamp = *t;
    out.value = std::move(n);
    return out;
}

std::string_view webhook_type_of(std::string_view resource_type) noexcept {
    if (resource_type == "Work" || resource_type == "Contact" || resource_type == "Invoice" ||
        resource_type == "User" || resource_type == "IntegrationTask") {
        return resource_type;
    }
    if (resource_type == "Note" || resource_type == "NoteComment") {
        return "Note";
    }
    if (resource_type == "Estimate") {
        return "EstimateSummary";
    }
    if (resource_type == "CustomFieldValue") {
        return "CustomField";
    }
    return {};
}

}  // namespace billsync::connectors::karbon
