#include "connectors/qbo/qbo_kind.hpp"

#include "connectors/qbo/qbo_connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors::qbo {

namespace {
std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    if (rt.clock == nullptr || rt.limiter == nullptr || !rt.executor || rt.tokens == nullptr) {
        return nullptr;
    }
    return std::make_unique<qbo_connector>(from(s), rt);
}
}  // namespace

oauth2::vendor_rules oauth2_rules() {
    return {
        .vendor = "qbo",
        .display_name = "QuickBooks Online",
        .authorize_url = "https://appcenter.intuit.com/connect/oauth2",
        .token_url = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        .revoke_url = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        .scope = "com.intuit.quickbooks.accounting",
        .pkce = false,  // not in the fact sheet
        .account_redirect_param = "realmId",
        .account_setting = "realm_id",
        .account_label = "realm",
        .old_refresh_valid = std::chrono::hours(24),
    };
}

limit_spec rate_limits() {
    limit_spec s;
    s.windows = {per_window(500, std::chrono::minutes(1))};
    s.max_concurrent = 10;
    s.throttle_pause = std::chrono::seconds(5);  // 429/003001 carries no Retry-After
    return s;
}

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "qbo",
        .summary =
            "QuickBooks Online: customers, invoices, payments (webhooks + CDC polling), employees "
            "and time activities (polled); drafts time activities",
        .base_url = "https://quickbooks.api.intuit.com",
        .token_url = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        .fields = with_oauth2_keys({
            {.key = "webhook_verifier_token", .type = secret},
            {.key = "realm_id"},  // found by `billsync connect qbo`
            {.key = "minor_version", .type = integer, .fallback = "75", .min = 1, .max = 999},
            {.key = "home_currency", .fallback = "USD"},
            {.key = "poll_interval_s", .type = integer, .fallback = "300", .min = 5, .max = 86'400},
            {.key = "page_size", .type = integer, .fallback = "1000", .min = 1, .max = 1000},
            // Poll employees and time activities (no fallback: absent means on for the
            // connector [sources] time_entries names, off otherwise).
            {.key = "sync_time", .type = boolean},
            // Read the company's Items (their sales prices, for [invoicing] check_item_prices).
            {.key = "sync_items", .type = boolean, .fallback = "false"},
        }),
        .oauth2 = oauth2_rules(),
        .limits = rate_limits(),
        .actions = {"invoice.create",  // vendor-neutral, from the invoicing workflow
                    "qbo.create_invoice",
                    "qbo.create_customer",
                    "qbo.send_invoice",
                    "invoice.send",
                    "qbo.void_invoice",
                    "time_entry.create"},  // vendor-neutral, from the draft-time workflow
        // Intuit sets no size limit on notifications and asks to accept more than 2 MB.
        .webhook_max_body = std::size_t{8} << 20,
        .make = make,
    };
}

}  // namespace billsync::connectors::qbo
