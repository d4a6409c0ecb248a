#include "util/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace billsync::util {
namespace {

constexpr std::string_view mask = "***";

struct secret_set {
    std::shared_mutex mutex;
    std::vector<std::string> fixed;                         // register_secret(value)
    std::map<std::string, std::string, std::less<>> slots;  // register_secret(slot, value)
    std::vector<std::string> values;  // both, longest first, so overlapping secrets mask fully

    void rebuild() {
        values = fixed;
        for (const auto& [slot, value] : slots) {
            values.push_back(value);
        }
        std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) {
            return a.size() > b.size();
        });
        values.erase(std::unique(values.begin(), values.end()), values.end());
    }
};

constexpr std::size_t min_maskable = 4;  // shorter values would mask ordinary text

secret_set& secrets() {
    static secret_set s;
    return s;
}

// Field names whose values are credentials.
constexpr std::array<std::string_view, 12> sensitive_fields = {
    "authorization",
    "proxy-authorization",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "api_key",
    "apikey",
    "x-api-key",
    "auth_token",
    "secret",
};

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool iequal_at(std::string_view text, std::size_t pos, std::string_view word) {
    if (pos + word.size() > text.size()) {
        return false;
    }
    for (std::size_t i = 0; i < word.size(); ++i) {
        if (lower(text[pos + i]) != word[i]) {
            return false;
        }
    }
    return true;
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

bool ends_value(char c, bool quoted) {
    if (quoted) {
        return c == '"';
    }
    return c == '&' || c == ',' || c == '"' || c == '}' || c == ';' || c == '\r' || c == '\n' ||
           std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Masks "field: value", "field=value" and "\"field\": \"value\"" occurrences in place.
std::string mask_fields(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        bool matched = false;
        if (i == 0 || !is_name_char(text[i - 1])) {
            for (auto field : sensitive_fields) {
                if (!iequal_at(text, i, field)) {
                    continue;
                }
                std::size_t j = i + field.size();
                if (j < text.size() && is_name_char(text[j])) {
                    continue;  // a longer name such as token_url
                }
                // Closing quote of a JSON key, then the separator.
                if (j < text.size() && text[j] == '"') {
                    ++j;
                }
                while (j < text.size() && text[j] == ' ') {
                    ++j;
                }
                if (j >= text.size() || (text[j] != ':' && text[j] != '=')) {
                    continue;
                }
                ++j;
                while (j < text.size() && text[j] == ' ') {
                    ++j;
                }
                bool quoted = false;
                if (j < text.size() && text[j] == '"') {
                    quoted = true;
                    ++j;
                }
                // Keep an auth scheme ("Bearer", "Basic") visible, mask what follows it.
                for (std::string_view scheme : {"bearer ", "basic ", "token "}) {
                    if (iequal_at(text, j, scheme)) {
                        j += scheme.size();
                        break;
                    }
                }
                std::size_t end = j;
                while (end < text.size() && !ends_value(text[end], quoted)) {
                    ++end;
                }
                if (end == j) {
                    continue;
                }
                out.append(text.substr(i, j - i));
                out.append(mask);
                i = end;
                matched = true;
                break;
            }
        }
        if (!matched) {
            out.push_back(text[i]);
            ++i;
        }
    }
    return out;
}

}  // namespace

void register_secret(std::string_view value) {
    if (value.size() < min_maskable) {
        return;
    }
    auto& s = secrets();
    std::unique_lock lock(s.mutex);
    if (std::find(s.fixed.begin(), s.fixed.end(), value) != s.fixed.end()) {
        return;
    }
    s.fixed.emplace_back(value);
    s.rebuild();
}

void register_secret(std::string_view slot, std::string_view value) {
    auto& s = secrets();
    std::unique_lock lock(s.mutex);
    const auto it = s.slots.find(slot);
    if (value.size() < min_maskable) {
        if (it != s.slots.end()) {
            s.slots.erase(it);
            s.rebuild();
        }
        return;
    }
    if (it != s.slots.end() && it->second == value) {
        return;
    }
    s.slots.insert_or_assign(std::string(slot), std::string(value));
    s.rebuild();
}

std::string redact(std::string_view text) {
    std::string out = mask_fields(text);
    auto& s = secrets();
    std::shared_lock lock(s.mutex);
    for (const auto& secret : s.values) {
        std::size_t pos = 0;
        while ((pos = out.find(secret, pos)) != std::string::npos) {
            out.replace(pos, secret.size(), mask);
            pos += mask.size();
        }
    }
    return out;
}

}  // namespace billsync::util
