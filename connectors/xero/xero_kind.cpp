#include "connectors/xero/xero_kind.hpp"

#include <nlohmann/json.hpp>

namespace billsync::connectors::xero {

namespace {
// GET /connections: [{"tenantId": "…", "tenantName": "…", "tenantType": "ORGANISATION"}, …]
std::vector<oauth2::tenant> parse_connections(std::string_view body) {
    std::vector<oauth2::tenant> out;
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_array()) {
        return out;
    }
    for (const auto& e : j) {
        if (e.is_object() && e.contains("tenantId") && e["tenantId"].is_string()) {
            out.push_back({e["tenantId"].get<std::string>(),
                           e.value("tenantName", std::string()),
                           e.value("tenantType", std::string())});
        }
    }
    return out;
}
}  // namespace

oauth2::vendor_rules oauth2_rules() {
    return {
        .vendor = "xero",
        .display_name = "Xero",
        .authorize_url = "https://login.xero.com/identity/connect/authorize",
        .token_url = "https://identity.xero.com/connect/token",
        .revoke_url = "https://identity.xero.com/connect/revocation",
        .connections_url = "https://api.xero.com/connections",
        .parse_connections = parse_connections,
        .scope =
            "offline_access accounting.contacts accounting.transactions "
            "accounting.settings.read",
        .pkce = true,
        .account_setting = "tenant_id",
        .account_label = "tenant",
        .old_refresh_valid = std::chrono::minutes(30),
    };
}

limit_spec rate_limits() {
    limit_spec s;
    s.windows = {per_window(60, std::chrono::minutes(1), "X-MinLimit-Remaining"),
                 per_window(5000, std::chrono::hours(24), "X-DayLimit-Remaining")};
    s.max_concurrent = 5;
    return s;
}

// The settings and the OAuth2 flow exist (`billsync connect xero` stores a grant); the connector
// itself is not in this build yet, so an enabled section fails validation.
connector_kind describe() {
    using enum field_type;
    return {
        .kind = "xero",
        .summary = "Xero: contacts, invoices, payments (not available in this build yet)",
        .base_url = "https://api.xero.com",
        .token_url = "https://identity.xero.com/connect/token",
        .fields = with_oauth2_keys({
            {.key = "webhook_key", .type = secret},
            {.key = "tenant_id"},  // found by `billsync connect xero`
            {.key = "connections_url", .type = url},
        }),
        .oauth2 = oauth2_rules(),
        .limits = rate_limits(),
    };
}

}  // namespace billsync::connectors::xero
