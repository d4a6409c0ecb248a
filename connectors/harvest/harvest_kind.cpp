#include "connectors/harvest/harvest_kind.hpp"

#include <nlohmann/json.hpp>

#include "connectors/harvest/harvest_connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors::harvest {

namespace {

// GET https://id.getharvest.com/api/v2/accounts: {"user": {…}, "accounts": [{"id": 123456,
// "name": "…", "product": "harvest" | "forecast"}, …]}. Only Harvest accounts: a Forecast account
// id is no Harvest-Account-Id.
std::vector<oauth2::tenant> parse_accounts(std::string_view body) {
    std::vector<oauth2::tenant> out;
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("accounts") || !j["accounts"].is_array()) {
        return out;
    }
    for (const auto& a : j["accounts"]) {
        if (!a.is_object() || a.value("product", std::string()) != "harvest") {
            continue;
        }
        std::string id;
        if (const auto it = a.find("id"); it != a.end() && it->is_number_integer()) {
            id = std::to_string(it->get<std::int64_t>());
        } else if (it != a.end() && it->is_string()) {
            id = it->get<std::string>();
        }
        if (!id.empty()) {
            const auto name = a.contains("name") && a["name"].is_string()
                                  ? a["name"].get<std::string>()
                                  : std::string();
            out.push_back({id, name, "harvest"});
        }
    }
    return out;
}

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    if (rt.clock == nullptr || rt.limiter == nullptr || !rt.executor) {
        return nullptr;
    }
    if (uses_oauth2(s) && rt.tokens == nullptr) {
        return nullptr;  // the grant lives in the token store
    }
    return std::make_unique<harvest_connector>(from(s), rt);
}

// The contact goes into the User-Agent Harvest requires: "billsync (<contact>)". Exactly one way
// to authenticate: a Personal Access Token, or an OAuth2 client (then `billsync connect`).
void check(const connector_settings& s, config::reader& r) {
    if (const auto* contact = s.value("contact")) {
        const bool mail = contact->find('@') != std::string::npos;
        const bool url = contact->starts_with("https://") || contact->starts_with("http://");
        const bool clean = contact->find_first_of("()\r\n") == std::string::npos;
        if (!clean || (!mail && !url)) {
            r.error("contact",
                    "must be an e-mail address or a URL without parentheses (Harvest requires a "
                    "User-Agent \"App (contact)\")");
        }
    }
    const bool pat = r.has("access_token");
    const bool id = r.has("client_id");
    const bool secret = r.has("client_secret");
    if (pat && (id || secret)) {
        r.error("",
                "give either access_token (a Personal Access Token) or client_id and "
                "client_secret (OAuth2, then `billsync connect " +
                    s.name + "`), not both");
        return;
    }
    if (!pat && !id && !secret) {
        r.error("",
                "needs access_token (a Personal Access Token) or client_id and client_secret "
                "(OAuth2, then `billsync connect " +
                    s.name + "`)");
        return;
    }
    if (id != secret) {
        r.error(id ? "client_id" : "client_secret",
                std::string("OAuth2 needs both client_id and client_secret; '") +
                    (id ? "client_secret" : "client_id") + "' is missing");
        return;
    }
    if (pat && !r.has("account_id")) {
        r.error("", "missing required key 'account_id'");
    }
    if (pat) {
        // OAuth2-only keys mean nothing next to a Personal Access Token.
        for (const std::string_view key :
             {"token_url", "authorize_url", "connections_url", "scope", "redirect_port"}) {
            if (r.has(key)) {
                r.error(key,
                        "'" + std::string(key) +
                            "' applies to OAuth2 (client_id and client_secret) only; this "
                            "section uses a Personal Access Token (access_token)");
            }
        }
    }
}

}  // namespace

bool uses_oauth2(const connector_settings& s) {
    return s.find_secret("access_token") == nullptr && s.value("client_id") != nullptr;
}

oauth2::vendor_rules oauth2_rules() {
    return {
        .vendor = "harvest",
        .display_name = "Harvest",
        .authorize_url = "https://id.getharvest.com/oauth2/authorize",
        .token_url = "https://id.getharvest.com/api/v2/oauth2/token",
        .connections_url = "https://id.getharvest.com/api/v2/accounts",
        .parse_connections = parse_accounts,
        // None by default: Harvest's authorize URL needs only client_id and response_type, and
        // the grant then reaches what the OAuth2 application's "Products" setting allows.
        .scope = "",
        .pkce = false,                  // not in the fact sheet
        .client_secret_in_body = true,  // as Harvest ID documents its token requests
        .account_setting = "account_id",
        .account_label = "account",
        // Whether a rotated-away refresh token still works is not documented: assume it does not.
        .old_refresh_valid = std::chrono::seconds(0),
    };
}

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
        .token_url = "https://id.getharvest.com/api/v2/oauth2/token",
        .fields =
            {
                // Required with access_token; with OAuth2 `billsync connect` finds it.
                {.key = "account_id"},
                // A Personal Access Token, or OAuth2 (client_id + client_secret): check().
                {.key = "access_token", .type = secret},
                {.key = "client_id"},
                {.key = "client_secret", .type = secret},
                {.key = "authorize_url", .type = url},
                {.key = "connections_url", .type = url},
                {.key = "scope"},
                {.key = "redirect_port", .type = integer, .min = 1, .max = 65535},
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
        .oauth2 = oauth2_rules(),
        .limits = rate_limits(),
        .actions = {"time_entry.create", "time_entry.update", "time_entry.delete"},
        .make = make,
    };
}

}  // namespace billsync::connectors::harvest
