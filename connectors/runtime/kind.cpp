#include "connectors/runtime/kind.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

#include "config/values.hpp"
#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"

namespace billsync::connectors {

namespace {

// Plain http:// puts credentials on the wire; it is only for loopback (simulators, a local proxy).
bool cleartext_off_loopback(std::string_view url) {
    constexpr std::string_view scheme = "http://";
    if (url.size() < scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), url.begin(), [](char a, char b) {
            return a == static_cast<char>(std::tolower(static_cast<unsigned char>(b)));
        })) {
        return false;
    }
    auto host = url.substr(scheme.size());
    host = host.substr(0, host.find_first_of("/?#"));
    if (const auto at = host.rfind('@'); at != std::string_view::npos) {
        host = host.substr(at + 1);
    }
    if (host.starts_with("[")) {
        return host.substr(0, host.find(']') + 1) != "[::1]";
    }
    host = host.substr(0, host.find(':'));
    return !(host == "localhost" || host.starts_with("127."));
}

void refuse_cleartext(config::reader& r, std::string_view key, const std::string& url) {
    if (cleartext_off_loopback(url)) {
        r.error(key,
                "'" + std::string(key) +
                    "' uses http:// to a host that is not loopback: credentials would cross the "
                    "network in the clear; use https:// (http:// is for 127.0.0.1 and localhost)");
    }
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
            if (text && !f.inbound) {
                refuse_cleartext(r, f.key, *text);
            }
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

std::vector<field> with_oauth2_keys(std::vector<field> vendor) {
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

void kind_registry::add(connector_kind k) {
    if (find(k.kind) != nullptr) {
        throw std::logic_error("connector kind '" + std::string(k.kind) + "' registered twice");
    }
    kinds_.push_back(std::move(k));
}

const connector_kind* kind_registry::find(std::string_view kind) const {
    for (const auto& k : kinds_) {
        if (k.kind == kind) {
            return &k;
        }
    }
    return nullptr;
}

std::vector<std::string_view> kind_registry::kinds() const {
    std::vector<std::string_view> out;
    out.reserve(kinds_.size());
    for (const auto& k : kinds_) {
        out.push_back(k.kind);
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool kind_registry::available(std::string_view kind) const {
    const auto* k = find(kind);
    return k != nullptr && k->make != nullptr;
}

bool kind_registry::uses_oauth2(std::string_view kind) const {
    const auto* k = find(kind);
    return k != nullptr && k->oauth2.has_value();
}

bool kind_registry::performs(std::string_view kind, std::string_view action) const {
    const auto* k = find(kind);
    return k != nullptr &&
           std::find(k->actions.begin(), k->actions.end(), action) != k->actions.end();
}

std::optional<connector_settings> kind_registry::parse(const config::connector_section& section,
                                                       config::reader& r,
                                                       config::diagnostics& diags) const {
    const std::size_t errors_before = diags.error_count();
    const connector_kind* schema = find(section.kind);
    if (schema == nullptr) {
        const auto known = kinds();
        std::string list;
        for (const auto kind : known) {
            list += list.empty() ? "" : ", ";
            list += kind;
        }
        std::string message = "unknown connector kind '" + section.kind + "'";
        if (auto best = config::closest_match(section.kind, known)) {
            message += " (did you mean '" + std::string(*best) + "'?)";
        } else if (!r.has("kind")) {
            message += " (without 'kind' the section name is used; known kinds: " + list + ")";
        } else {
            message += " (known kinds: " + list + ")";
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
    refuse_cleartext(r, "base_url", out.base_url);
    if (!schema->token_url.empty()) {
        out.token_url = r.get_url("token_url").value_or(std::string(schema->token_url));
        refuse_cleartext(r, "token_url", out.token_url);
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

std::unique_ptr<connector> kind_registry::make(const connector_settings& s,
                                               const runtime_deps& rt) const {
    const auto* k = find(s.kind);
    if (k == nullptr || k->make == nullptr) {
        return nullptr;
    }
    return k->make(s, rt);
}

void kind_registry::register_limits(rate_limiter& limiter) const {
    for (const auto& k : kinds_) {
        if (k.limits) {
            limiter.set_limits(std::string(k.kind), *k.limits);
        }
    }
}

}  // namespace billsync::connectors
