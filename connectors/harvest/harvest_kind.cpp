#include "connectors/harvest/harvest_kind.hpp"

#include "connectors/harvest/harvest_connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors::harvest {

namespace {

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    if (rt.clock == nullptr || rt.limiter == nullptr || !rt.executor) {
        return nullptr;
    }
    return std::make_unique<harvest_connector>(from(s), rt);
}

// The contact goes into the User-Agent Harvest requires: "billsync (<contact>)".
void check(const connector_settings& s, config::reader& r) {
    const auto* contact = s.value("contact");
    if (contact == nullptr) {
        return;
    }
    const bool mail = contact->find('@') != std::string::npos;
    const bool url = contact->starts_with("https://") || contact->starts_with("http://");
    const bool clean = contact->find_first_of("()\r\n") == std::string::npos;
    if (!clean || (!mail && !url)) {
        r.error("contact",
                "must be an e-mail address or a URL without parentheses (Harvest requires a "
                "User-Agent \"App (contact)\")");
    }
}

}  // namespace

limit_spec rate_limits() {
    limit_spec s;
    s.windows = {per_window(100, std::chrono::seconds(15))};
    return s;
}

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "harvest",
        .summary =
            "Harvest time tracking: clients, users, projects, tasks and time entries "
            "(polling with updated_since); drafts time entries",
        .base_url = "https://api.harvestapp.com/v2",
        .fields =
            {
                {.key = "account_id", .required = true},
                {.key = "access_token", .type = secret, .required = true},
                {.key = "contact", .required = true},
                {.key = "currency", .fallback = "USD"},
                {.key = "poll_interval_s",
                 .type = integer,
                 .fallback = "300",
                 .min = 15,
                 .max = 86'400},
                {.key = "overlap_s", .type = integer, .fallback = "60", .min = 1, .max = 3'600},
                {.key = "page_size", .type = integer, .fallback = "2000", .min = 1, .max = 2000},
            },
        .check = check,
        .limits = rate_limits(),
        .actions = {"time_entry.create", "time_entry.update", "time_entry.delete"},
        .make = make,
    };
}

}  // namespace billsync::connectors::harvest
