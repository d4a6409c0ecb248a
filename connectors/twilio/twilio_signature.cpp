#include "connectors/twilio/twilio_signature.hpp"

#include <algorithm>

#include "http/message.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::twilio {

namespace {

using http::form_decode;

struct url_parts {
    std::string_view scheme;     // "https"
    std::string_view authority;  // "user:pass@host:443"
    std::string_view rest;       // "/path?query"
};

std::optional<url_parts> split_url(std::string_view url) {
    const auto colon = url.find("://");
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    url_parts p;
    p.scheme = url.substr(0, colon);
    const auto after = url.substr(colon + 3);
    const auto end = after.find_first_of("/?#");
    p.authority = after.substr(0, end);
    p.rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
    return p;
}

// The port part of an authority ("443" for "host:443", "" when none; IPv6 literals respected).
std::size_t port_colon(std::string_view authority) {
    const auto at = authority.rfind('@');
    const auto host_start = at == std::string_view::npos ? 0 : at + 1;
    const auto bracket = authority.rfind(']');
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos || colon < host_start ||
        (bracket != std::string_view::npos && colon < bracket)) {
        return std::string_view::npos;
    }
    return colon;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    std::size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
        s.replace(pos, from.size(), to);
        pos += to.size();
    }
    return s;
}

std::optional<std::string> query_param(std::string_view url, std::string_view name) {
    auto q = url.find('?');
    if (q == std::string_view::npos) {
        return std::nullopt;
    }
    auto query = url.substr(q + 1);
    if (const auto hash = query.find('#'); hash != std::string_view::npos) {
        query = query.substr(0, hash);
    }
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (auto key = form_decode(pair.substr(0, eq)); key && *key == name) {
            return form_decode(eq == std::string_view::npos ? std::string_view()
                                                            : pair.substr(eq + 1));
        }
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
    return std::nullopt;
}

bool any_variant_matches(std::string_view auth_token,
                         std::string_view url,
                         const form_params& params,
                         std::string_view signature_header) {
    bool match = false;
    // Every variant is checked (no early exit), so timing does not reveal which one matched.
    for (const auto& variant : url_variants(url)) {
        const auto expected = compute_signature(auth_token, variant, params);
        match = util::constant_time_equal(expected, signature_header) || match;
    }
    return match;
}

}  // namespace

std::optional<form_params> parse_form(std::string_view body) {
    form_params out;
    while (!body.empty()) {
        const auto amp = body.find('&');
        const auto pair = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const auto eq = pair.find('=');
        auto name = form_decode(pair.substr(0, eq));
        auto value =
            form_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
        if (!name || !value) {
            return std::nullopt;
        }
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

std::string signature_base(std::string_view url, const form_params& params) {
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(params.size());
    for (const auto& p : params) {
        sorted.push_back(&p);
    }
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
    std::string out(url);
    for (const auto* p : sorted) {
        out += p->first;
        out += p->second;
    }
    return out;
}

std::string compute_signature(std::string_view auth_token,
                              std::string_view url,
                              const form_params& params) {
    return util::base64_encode(util::hmac_sha1(auth_token, signature_base(url, params)));
}

std::vector<std::string> url_variants(std::string_view url) {
    std::vector<std::string> base{std::string(url)};
    if (const auto parts = split_url(url)) {
        const auto colon = port_colon(parts->authority);
        const auto prefix = std::string(parts->scheme) + "://";
        if (colon != std::string_view::npos) {
            base.push_back(prefix + std::string(parts->authority.substr(0, colon)) +
                           std::string(parts->rest));
        } else if (parts->scheme == "https" || parts->scheme == "http") {
            base.push_back(prefix + std::string(parts->authority) +
                           (parts->scheme == "https" ? ":443" : ":80") + std::string(parts->rest));
        }
    }
    std::vector<std::string> out;
    const auto add = [&out](std::string v) {
        if (std::find(out.begin(), out.end(), v) == out.end()) {
            out.push_back(std::move(v));
        }
    };
    for (const auto& b : base) {
        add(b);
        add(replace_all(b, "'", "%27"));
        add(replace_all(b, "%27", "'"));
    }
    return out;
}

bool validate_form(std::string_view auth_token,
                   std::string_view url,
                   const form_params& params,
                   std::string_view signature_header) {
    if (signature_header.empty()) {
        return false;
    }
    return any_variant_matches(auth_token, url, params, signature_header);
}

bool validate_json(std::string_view auth_token,
                   std::string_view url,
                   std::string_view body,
                   std::string_view signature_header) {
    if (signature_header.empty()) {
        return false;
    }
    auto claimed = query_param(url, "bodySHA256");
    if (!claimed) {
        return false;
    }
    std::transform(claimed->begin(), claimed->end(), claimed->begin(), [](char c) {
        return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    const bool body_ok = util::constant_time_equal(util::hex_encode(util::sha256(body)), *claimed);
    const bool signature_ok = any_variant_matches(auth_token, url, {}, signature_header);
    return body_ok && signature_ok;
}

std::string request_url(std::string_view public_base_url, std::string_view target) {
    std::string base(public_base_url);
    while (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    if (target.empty() || target.front() != '/') {
        base += '/';
    }
    base += target;
    return base;
}

}  // namespace billsync::connectors::twilio
