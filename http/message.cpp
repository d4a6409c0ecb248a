#include "http/message.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

#include "util/crypto.hpp"

namespace billsync::http {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string percent_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4U];
            out += hex[c & 15U];
        }
    }
    return out;
}

namespace {

// The one decoder: strict → nullopt on a malformed escape; else it is kept literally.
std::optional<std::string> decode_escapes(std::string_view text, bool plus_is_space, bool strict) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '+' && plus_is_space) {
            out += ' ';
            continue;
        }
        if (c == '%') {
            const int hi = i + 2 < text.size() ? util::hex_digit(text[i + 1]) : -1;
            const int lo = i + 2 < text.size() ? util::hex_digit(text[i + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>((hi << 4) | lo);
                i += 2;
                continue;
            }
            if (strict) {
                return std::nullopt;
            }
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_is_space) {
    return *decode_escapes(text, plus_is_space, false);
}

std::optional<std::string> form_decode(std::string_view text) {
    return decode_escapes(text, true, true);
}

std::string query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            return eq == std::string_view::npos ? std::string()
                                                : percent_decode(pair.substr(eq + 1));
        }
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return {};
}

std::string without_query_params(std::string_view target, const std::vector<std::string>& names) {
    const auto q = target.find('?');
    if (q == std::string_view::npos || names.empty()) {
        return std::string(target);
    }
    std::string out(target.substr(0, q));
    std::string_view query = target.substr(q + 1);
    char sep = '?';
    while (true) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto name = percent_decode(pair.substr(0, pair.find('=')), true);
        bool secret = false;
        for (const auto& n : names) {
            secret = secret || iequals(name, n);
        }
        if (!secret && !pair.empty()) {
            out += sep;
            out += pair;
            sep = '&';
        }
        if (amp == std::string_view::npos) {
            break;
        }
        query = query.substr(amp + 1);
    }
    return out;
}

std::string_view request::header_value(std::string_view name) const {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

response response::text(unsigned status, std::string body) {
    response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

response response::json(unsigned status, std::string body) {
    response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
}

response response::error(unsigned status, std::string_view code, std::string_view message) {
    nlohmann::json j{{"error", code}, {"message", message}};
    return json(status, j.dump());
}

}  // namespace billsync::http
