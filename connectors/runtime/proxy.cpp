#include "connectors/runtime/proxy.hpp"

#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include "util/crypto.hpp"

namespace billsync::connectors {
namespace {

std::string env(const char* upper, const char* lower) {
    if (const char* v = std::getenv(upper); v != nullptr && *v != '\0') {
        return v;
    }
    if (const char* v = std::getenv(lower); v != nullptr && *v != '\0') {
        return v;
    }
    return {};
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

proxy_settings proxy_from_environment() {
    proxy_settings s;
    s.https_proxy = env("HTTPS_PROXY", "https_proxy");
    if (s.https_proxy.empty()) {
        s.https_proxy = env("ALL_PROXY", "all_proxy");
    }
    s.http_proxy = env("HTTP_PROXY", "http_proxy");
    s.no_proxy = env("NO_PROXY", "no_proxy");
    return s;
}

bool bypasses_proxy(std::string_view host, std::uint16_t port, std::string_view no_proxy) {
    std::string h = to_lower(host);
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
        h = h.substr(1, h.size() - 2);
    }
    while (!no_proxy.empty()) {
        const auto comma = no_proxy.find_first_of(", ");
        auto entry = trim(no_proxy.substr(0, comma));
        no_proxy =
            comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
        if (entry.empty()) {
            continue;
        }
        if (entry == "*") {
            return true;
        }
        std::string e = to_lower(entry);
        // An optional ":port" (not for bare IPv6 literals, which contain several colons).
        if (const auto colon = e.rfind(':');
            colon != std::string::npos && e.find(':') == colon && colon + 1 < e.size()) {
            unsigned p = 0;
            const auto* b = e.data() + colon + 1;
            const auto* end = e.data() + e.size();
            if (auto [ptr, ec] = std::from_chars(b, end, p); ec == std::errc{} && ptr == end) {
                if (p != port) {
                    continue;
                }
                e.resize(colon);
            }
        }
        if (e.size() > 2 && e.front() == '[' && e.back() == ']') {
            e = e.substr(1, e.size() - 2);
        }
        if (!e.empty() && e.front() == '.') {
            e.erase(0, 1);
        }
        if (e.starts_with("*.")) {
            e.erase(0, 2);
        }
        if (h == e) {
            return true;
        }
        if (h.size() > e.size() && h.ends_with(e) && h[h.size() - e.size() - 1] == '.') {
            return true;
        }
    }
    return false;
}

std::optional<proxy_endpoint> proxy_for(const proxy_settings& settings,
                                        std::string_view scheme,
                                        std::string_view host,
                                        std::uint16_t port,
                                        std::string* error) {
    const std::string& url = scheme == "https" ? settings.https_proxy : settings.http_proxy;
    if (url.empty() || bypasses_proxy(host, port, settings.no_proxy)) {
        return std::nullopt;
    }
    // "proxy:3128" without a scheme is common in environments; read it as http://.
    std::string full = url.find("://") == std::string::npos ? "http://" + url : url;
    auto parsed = boost::urls::parse_absolute_uri(full);
    if (!parsed || parsed->scheme() != "http" || parsed->encoded_host().empty()) {
        if (error != nullptr) {
            *error = "unsupported proxy URL (only http:// proxies are supported)";
        }
        return std::nullopt;
    }
    proxy_endpoint p;
    p.host = std::string(parsed->encoded_host());
    p.port = parsed->has_port() ? parsed->port_number() : std::uint16_t{80};
    if (parsed->has_userinfo()) {
        const std::string userinfo = parsed->userinfo();  // percent-decoded
        p.authorization = "Basic " + util::base64_encode(userinfo);
    }
    return p;
}

}  // namespace billsync::connectors
