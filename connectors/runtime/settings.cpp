#include "connectors/runtime/settings.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "config/values.hpp"

namespace billsync::connectors {

namespace {

enum class field_type { string, secret, url, integer, boolean, choice };

struct field {
    std::string_view key;
    field_type type = field_type::string;
    bool required = false;
    std::optional<std::string_view> fallback = std::nullopt;  // default, as text
    std::int64_t min = std::numeric_limits<std::int64_t>::min();
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::vector<std::string_view> choices = {};
};

// The OAuth2 authorization-code keys QBO and Xero share (billsync connect), around the vendor's
// own.
std::vector<field> with_oauth2(std::vector<field> vendor) {
    std::vector<field> out{
        {.key = "client_id", .required = true},
        {.key = "client_secret", .type = field_type::secret, .required = true},
    };
    out.insert(out.end(), vendor.begin(), vendor.end());
    out.push_back({.key = "authorize_url", .type = field_type::url});
    out.push_back({.key = "revoke_url", .type = field_type::url});
    out.push_back({.key = "scope"});
    out.push_back({.key = "redirect_port",
                   .type = field_type::integer,
                   .fallback = "8765",
                   .min = 1,
                   .max = 65535});
    return out;
}

using cross_check = void (*)(const connector_settings&, config::reader&);

struct kind_schema {
    std::string_view kind;
    std::string_view base_url;   // default; empty: none (base_url optional)
    std::string_view token_url;  // default; empty: no OAuth2, token_url is not a key
    std::vector<field> fields;
    cross_check check = nullptr;
};

void check_twilio(const connector_settings& s, config::reader& r) {
    if (s.value("from") == nullptr && s.value("messaging_service_sid") == nullptr) {
        r.error("from", "set 'from' (a sender number) or 'messaging_service_sid'");
    }
}

void check_smtp(const connector_settings& s, config::reader& r) {
    const bool user = s.value("username") != nullptr;
    const bool password = r.has("password");
    if (user && !password) {
        r.error("username", "'username' is set but 'password' is not");
    } else if (password && !user) {
        r.error("password", "'password' is set but 'username' is not");
    }
    // A password never crosses the network in the clear.
    if (password && s.value("tls") != nullptr && *s.value("tls") == "none") {
        r.error("tls", "tls = \"none\" cannot be used with a password");
    }
}

// Keys per kind, from the vendor fact sheets (shared/vendors/*.md, auth sections).
const std::vector<kind_schema>& schemas() {
    using enum field_type;
    static const std::vector<kind_schema> all = {
        {.kind = "generic",
         .base_url = "",
         .token_url = "",
         .fields =
             {
                 {.key = "secret", .type = secret, .required = true},
                 {.key = "signature_header", .fallback = "X-Signature"},
                 {.key = "signature_encoding",
                  .type = choice,
                  .fallback = "hex",
                  .choices = {"hex", "base64"}},
                 {.key = "signature_prefix", .fallback = ""},
                 {.key = "event_id_header"},
                 {.key = "action_url", .type = url},
             }},
        {.kind = "harvest",
         .base_url = "https://api.harvestapp.com/v2",
         .token_url = "https://id.getharvest.com/api/v2/oauth2/token",
         .fields =
             {
                 {.key = "account_id", .required = true},
                 {.key = "access_token", .type = secret, .required = true},
                 {.key = "user_agent", .required = true},
             }},
        {.kind = "karbon",
         .base_url = "https://api.karbonhq.com",
         .token_url = "",
         .fields =
             {
                 {.key = "bearer_token", .type = secret, .required = true},
                 {.key = "access_key", .type = secret, .required = true},
                 {.key = "webhook_signing_key", .type = secret},
             }},
        {.kind = "qbo",
         .base_url = "https://quickbooks.api.intuit.com",
         .token_url = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
         .fields = with_oauth2({
             {.key = "webhook_verifier_token", .type = secret},
             {.key = "realm_id"},  // found by `billsync connect qbo`
             {.key = "minor_version", .type = integer, .fallback = "75", .min = 1, .max = 999},
             {.key = "home_currency", .fallback = "USD"},
             {.key = "poll_interval_s",
              .type = integer,
              .fallback = "300",
              .min = 5,
              .max = 86'400},
             {.key = "page_size", .type = integer, .fallback = "1000", .min = 1, .max = 1000},
         })},
        {.kind = "sendgrid",
         .base_url = "https://api.sendgrid.com",
         .token_url = "",
         .fields =
             {
                 {.key = "api_key", .type = secret, .required = true},
                 {.key = "event_webhook_public_key"},
                 {.key = "event_max_age_s",
                  .type = integer,
                  .fallback = "259200",
                  .min = 300,
                  .max = 2'592'000},
                 {.key = "from_email", .required = true},
                 {.key = "from_name"},
                 {.key = "inbound_secret", .type = secret},
             }},
        {.kind = "smtp",
         .base_url = "",
         .token_url = "",
         .fields =
             {
                 {.key = "host", .required = true},
                 {.key = "port", .type = integer, .fallback = "587", .min = 1, .max = 65535},
                 {.key = "username"},
                 {.key = "password", .type = secret},
                 {.key = "tls",
                  .type = choice,
                  .fallback = "starttls",
                  .choices = {"starttls", "implicit", "none"}},
                 {.key = "ca_file"},
                 {.key = "from_email", .required = true},
                 {.key = "from_name"},
             },
         .check = check_smtp},
        {.kind = "taxdome",
         .base_url = "",
         .token_url = "",
         .fields =
             {
                 {.key = "relay_secret", .type = secret, .required = true},
             }},
        {.kind = "twilio",
         .base_url = "https://api.twilio.com",
         .token_url = "",
         .fields =
             {
                 {.key = "account_sid", .required = true},
                 {.key = "auth_token", .type = secret, .required = true},
                 {.key = "from"},
                 {.key = "messaging_service_sid"},
                 // The base URL Twilio calls: signatures cover it, StatusCallback is built on it.
                 {.key = "public_url", .type = url, .required = true},
             },
         .check = check_twilio},
        {.kind = "xero",
         .base_url = "https://api.xero.com",
         .token_url = "https://identity.xero.com/connect/token",
         .fields = with_oauth2({
             {.key = "webhook_key", .type = secret},
             {.key = "tenant_id"},  // found by `billsync connect xero`
             {.key = "connections_url", .type = url},
         })},
    };
    return all;
}

const kind_schema* find_schema(std::string_view kind) {
    for (const auto& s : schemas()) {
        if (s.kind == kind) {
            return &s;
        }
    }
    return nullptr;
}

std::string kind_list() {
    std::string out;
    for (const auto kind : known_connector_kinds()) {
        out += out.empty() ? "" : ", ";
        out += kind;
    }
    return out;
}

void read_field(const field& f, config::reader& r, connector_settings& out) {
    const auto req = f.required ? config::required : config::requirement::optional;
    std::optional<std::string> text;
    switch (f.type) {
        case field_type::string:
            text = r.get_string(f.key, req);
            if (text && text->empty() && f.required) {
                r.error(f.key, "'" + std::string(f.key) + "' must not be empty");
            }
            break;
        case field_type::url:
            text = r.get_url(f.key, req);
            break;
        case field_type::choice:
            text = r.get_enum(f.key, f.choices, req);
            break;
        case field_type::integer:
            if (auto v = r.get_int(f.key, f.min, f.max, req)) {
                text = std::to_string(*v);
            }
            break;
        case field_type::boolean:
            if (auto v = r.get_bool(f.key, req)) {
                text = *v ? "true" : "false";
            }
            break;
        case field_type::secret:
            if (auto v = r.get_secret(f.key, req)) {
                out.secrets.emplace(std::string(f.key), std::move(*v));
            }
            return;
    }
    if (!text && f.fallback && !r.has(f.key)) {
        text = std::string(*f.fallback);
    }
    if (text) {
        out.values.emplace(std::string(f.key), std::move(*text));
    }
}

}  // namespace

const std::string* connector_settings::value(std::string_view key) const {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
}

const config::secret* connector_settings::find_secret(std::string_view key) const {
    const auto it = secrets.find(key);
    return it == secrets.end() ? nullptr : &it->second;
}

std::vector<std::string_view> known_connector_kinds() {
    std::vector<std::string_view> kinds;
    for (const auto& s : schemas()) {
        kinds.push_back(s.kind);
    }
    std::sort(kinds.begin(), kinds.end());
    return kinds;
}

std::optional<connector_settings> parse_connector_settings(const config::connector_section& section,
                                                           config::reader& r,
                                                           config::diagnostics& diags) {
    const std::size_t errors_before = diags.error_count();
    const kind_schema* schema = find_schema(section.kind);
    if (schema == nullptr) {
        std::string message = "unknown connector kind '" + section.kind + "'";
        if (auto best = config::closest_match(section.kind, known_connector_kinds())) {
            message += " (did you mean '" + std::string(*best) + "'?)";
        } else if (!r.has("kind")) {
            message +=
                " (without 'kind' the section name is used; known kinds: " + kind_list() + ")";
        } else {
            message += " (known kinds: " + kind_list() + ")";
        }
        r.error("kind", message);
        r.accept_rest();  // the keys of an unknown kind cannot be judged
        return std::nullopt;
    }

    connector_settings out;
    out.name = section.name;
    out.kind = section.kind;
    out.enabled = section.enabled;
    out.base_url = r.get_url("base_url").value_or(std::string(schema->base_url));
    if (!schema->token_url.empty()) {
        out.token_url = r.get_url("token_url").value_or(std::string(schema->token_url));
    }
    for (const auto& f : schema->fields) {
        read_field(f, r, out);
    }
    if (schema->check != nullptr) {
        schema->check(out, r);
    }
    if (diags.error_count() > errors_before) {
        return std::nullopt;
    }
    return out;
}

}  // namespace billsync::connectors
