#include "connectors/karbon/karbon_kind.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>

#include "connectors/karbon/karbon_connector.hpp"
#include "connectors/karbon/karbon_webhook.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors::karbon {

namespace {

void check(const connector_settings& s, config::reader& r) {
    if (const auto* key = s.find_secret("webhook_signing_key"); key != nullptr && key->resolved()) {
        if (const auto problem = signing_key_problem(key->reveal()); !problem.empty()) {
            r.error("webhook_signing_key", "Karbon's SigningKey " + problem);
        }
    }
    const auto parsed = from(s);
    for (const auto& t : parsed.webhook_types) {
        if (std::find(webhook_types.begin(), webhook_types.end(), t) == webhook_types.end()) {
            r.error("webhook_types",
                    "'" + t +
                        "' is not a Karbon WebhookType (Contact, Work, Note, User, Invoice, "
                        "EstimateSummary, CustomField, IntegrationTask)");
        }
    }
    if (parsed.webhook_types.empty()) {
        r.error("webhook_types", "name at least one WebhookType (e.g. \"Work, Contact\")");
    }
    if (const auto* zone = s.value("time_zone")) {
        try {
            (void)date::locate_zone(*zone);
        } catch (const std::exception&) {
            r.error("time_zone", "'" + *zone + "' is not an IANA time zone");
        }
    }
}

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    if (rt.clock == nullptr || rt.limiter == nullptr || !rt.executor) {
        return nullptr;
    }
    return std::make_unique<karbon_connector>(from(s), rt);
}

}  // namespace

limit_spec rate_limits() {
    limit_spec s;
    s.windows = {per_window(120, std::chrono::minutes(1))};
    s.throttle_pause = std::chrono::seconds(10);  // the 429 body says "Try again in 10 seconds"
    return s;
}

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "karbon",
        .summary =
            "Karbon practice management: work items and their stages, contacts, "
            "organizations, invoices as read-only facts (signed webhooks + polling safety net); "
            "task.create",
        .base_url = "https://api.karbonhq.com",
        .fields =
            {
                {.key = "bearer_token", .type = secret, .required = true},
                {.key = "access_key", .type = secret, .required = true},
                // billsync subscribes with it and refuses any delivery it did not sign.
                {.key = "webhook_signing_key", .type = secret, .required = true},
                // The base URL Karbon calls (TargetUrl = public_url + /webhooks/<name>).
                // Required; defaults to [daemon] public_url (daemon/app_config.cpp).
                {.key = "public_url", .type = url, .inbound = true},
                // Defaults to [daemon] time_zone (daemon/app_config.cpp).
                {.key = "time_zone"},
                {.key = "webhook_types", .fallback = "Work, Contact"},
                {.key = "replay_window_s",
                 .type = integer,
                 .fallback = "86400",
                 .min = 60,
                 .max = 30 * 86'400},
                {.key = "poll_interval_s",
                 .type = integer,
                 .fallback = "3600",
                 .min = 60,
                 .max = 7 * 86'400},
                {.key = "subscription_check_s",
                 .type = integer,
                 .fallback = "300",
                 .min = 30,
                 .max = 86'400},
                {.key = "page_size", .type = integer, .fallback = "100", .min = 1, .max = 100},
                {.key = "poll_reserve", .type = integer, .fallback = "30", .min = 0, .max = 110},
                {.key = "stages"},
                {.key = "task_assignee_email"},
                {.key = "task_work_type"},
                {.key = "task_due_days", .type = integer, .fallback = "3", .min = 0, .max = 365},
                // Whether its invoices drive the workflows; defaults to true for the connector
                // [sources] invoices names, false otherwise (daemon/app_config.cpp).
                {.key = "invoices_source", .type = boolean},
            },
        .check = check,
        .limits = rate_limits(),
        .actions = {"task.create"},
        // Deliveries are four short fields.
        .webhook_max_body = std::size_t{64} << 10,
        .make = make,
    };
}

}  // namespace billsync::connectors::karbon
