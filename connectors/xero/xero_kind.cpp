#include "connectors/xero/xero_kind.hpp"

#include <nlohmann/json.hpp>

#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/xero/xero_connector.hpp"

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

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    if (rt.clock == nullptr || rt.limiter == nullptr || !rt.executor || rt.tokens == nullptr) {
        return nullptr;
    }
    return std::make_unique<xero_connector>(from(s), rt);
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
                 // No remaining header: the connector owns the daily budget (it defers polling
                 // when it runs low and parks on Xero's Retry-After once it is spent), so a
                 // spent day never blocks a lane inside the limiter for hours.
                 per_window(5000, std::chrono::hours(24))};
    s.max_concurrent = 5;
    return s;
}

limit_spec app_rate_limits() {
    limit_spec s;
    s.windows = {per_window(10'000, std::chrono::minutes(1), "X-AppMinLimit-Remaining")};
    return s;
}

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "xero",
        .summary = "Xero: contacts, invoices, payments (webhooks + If-Modified-Since polling)",
        .base_url = "https://api.xero.com",
        .token_url = "https://identity.xero.com/connect/token",
        .fields = with_oauth2_keys({
            {.key = "webhook_key", .type = secret},
            {.key = "tenant_id"},  // found by `billsync connect xero`
            {.key = "connections_url", .type = url},
            {.key = "home_currency", .fallback = "USD"},
            {.key = "poll_interval_s", .type = integer, .fallback = "300", .min = 5, .max = 86'400},
            {.key = "page_size", .type = integer, .fallback = "100", .min = 1, .max = 100},
            {.key = "poll_reserve", .type = integer, .fallback = "500", .min = 0, .max = 5000},
            // Poll the organisation's Items (their sales prices, for [invoicing]
            // check_item_prices).
            {.key = "sync_items", .type = boolean, .fallback = "false"},
        }),
        .oauth2 = oauth2_rules(),
        .limits = rate_limits(),
        .actions = {"invoice.create",  // vendor-neutral, from the invoicing workflow
                    "xero.create_invoice",
                    "xero.update_invoice",
                    "xero.send_invoice",
                    "invoice.send",
                    "xero.void_invoice"},
        .make = make,
    };
}

}  // namespace billsync::connectors::xero
