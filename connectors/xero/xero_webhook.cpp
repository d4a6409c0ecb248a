#include "connectors/xero/xero_webhook.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "mappings/json_depth.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::xero {

std::string_view to_string(signature_check c) noexcept {
    switch (c) {
        case signature_check::ok:
            return "ok";
        case signature_check::missing_signature:
            return "missing x-xero-signature";
        case signature_check::mismatch:
            return "signature mismatch";
        case signature_check::no_webhook_key:
            return "no webhook_key configured";
    }
    return "signature mismatch";
}

std::string sign(std::string_view webhook_key, std::string_view raw_body) {
    return util::base64_encode(util::hmac_sha256(webhook_key, raw_body));
}

signature_check verify_signature(std::string_view webhook_key,
                                 std::string_view raw_body,
                                 std::string_view header_value) {
    if (webhook_key.empty()) {
        return signature_check::no_webhook_key;
    }
    if (header_value.empty()) {
        return signature_check::missing_signature;
    }
    const auto expected = sign(webhook_key, raw_body);
    return util::constant_time_equal(expected, header_value) ? signature_check::ok
                                                             : signature_check::mismatch;
}

webhook_parse parse_webhook(std::string_view body,
                            const std::vector<std::string>& known_tenants,
                            const webhook_limits& limits) {
    webhook_parse out;
    if (body.size() > limits.max_body_bytes) {
        out.error = "body larger than " + std::to_string(limits.max_body_bytes) + " bytes";
        return out;
    }
    if (auto depth = mappings::json_depth_error(body, limits.max_depth); !depth.empty()) {
        out.error = std::move(depth);
        return out;
    }
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object()) {
        out.error = "body is not a JSON object";
        return out;
    }
    const auto events = j.find("events");
    if (events == j.end() || !events->is_array()) {
        out.error = "no 'events' array";
        return out;
    }
    if (events->size() > limits.max_events) {
        out.error = "more than " + std::to_string(limits.max_events) + " events";
        return out;
    }
    auto field = [&](const nlohmann::json& e, std::string_view key) -> std::string {
        const auto it = e.find(key);
        if (it == e.end() || !it->is_string()) {
            return {};
        }
        auto s = it->get<std::string>();
        return s.size() <= limits.max_field_bytes ? s : std::string();
    };
    std::size_t index = 0;
    for (const auto& e : *events) {
        const auto at = "event " + std::to_string(index++);
        if (!e.is_object()) {
            out.problems.push_back(at + ": not an object");
            continue;
        }
        xero_event ev;
        ev.category = field(e, "eventCategory");
        ev.type = field(e, "eventType");
        ev.resource_id = field(e, "resourceId");
        ev.tenant_id = field(e, "tenantId");
        ev.event_date = field(e, "eventDateUtc");
        if (ev.category.empty() || ev.resource_id.empty()) {
            out.problems.push_back(at + ": no eventCategory or resourceId");
            continue;
        }
        if (ev.tenant_id.empty() && ev.category != "SUBSCRIPTION") {
            out.problems.push_back(at + ": no tenantId");
            continue;
        }
        ev.tenant_known = known_tenants.empty() ||
                          std::find(known_tenants.begin(), known_tenants.end(), ev.tenant_id) !=
                              known_tenants.end();
        out.events.push_back(std::move(ev));
    }
    return out;
}

}  // namespace billsync::connectors::xero
