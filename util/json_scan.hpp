#pragma once

// A fast read of one stored JSON row: its top-level members as text spans, in one pass, without
// building a DOM (strings and nesting are skipped exactly). For scans over many rows that need a
// few members each; anything else should parse with nlohmann::json.

#include <cstddef>
#include <string_view>

namespace billsync::util::json_scan {

inline std::size_t skip_ws(std::string_view s, std::size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) {
        ++i;
    }
    return i;
}

inline std::size_t skip_string(std::string_view s, std::size_t i) {  // s[i] == '"'
    for (++i; i < s.size(); ++i) {
        if (s[i] == '\\') {
            ++i;
        } else if (s[i] == '"') {
            return i + 1;
        }
    }
    return std::string_view::npos;
}

inline std::size_t skip_value(std::string_view s, std::size_t i) {
    i = skip_ws(s, i);
    if (i >= s.size()) {
        return std::string_view::npos;
    }
    if (s[i] == '"') {
        return skip_string(s, i);
    }
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < s.size()) {
            const char c = s[i];
            if (c == '"') {
                i = skip_string(s, i);
                if (i == std::string_view::npos) {
                    return i;
                }
                continue;
            }
            if (c == '{' || c == '[') {
                ++depth;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    return i + 1;
                }
            }
            ++i;
        }
        return std::string_view::npos;
    }
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
           s[i] != '\n' && s[i] != '\r' && s[i] != '\t') {
        ++i;
    }
    return i;
}

// fn(key, value) for each member of the object (or each element of the array, key empty);
// false when the text is not one well-formed object or array at this level.
template <class Fn>
bool members(std::string_view s, Fn&& fn) {
    auto i = skip_ws(s, 0);
    if (i >= s.size() || (s[i] != '{' && s[i] != '[')) {
        return false;
    }
    const bool object = s[i] == '{';
    const char close = object ? '}' : ']';
    i = skip_ws(s, i + 1);
    if (i < s.size() && s[i] == close) {
        return true;
    }
    while (i < s.size()) {
        std::string_view key;
        if (object) {
            if (s[i] != '"') {
                return false;
            }
            const auto end = skip_string(s, i);
            if (end == std::string_view::npos) {
                return false;
            }
            key = s.substr(i + 1, end - i - 2);
            i = skip_ws(s, end);
            if (i >= s.size() || s[i] != ':') {
                return false;
            }
            ++i;
        }
        const auto start = skip_ws(s, i);
        const auto end = skip_value(s, start);
        if (end == std::string_view::npos) {
            return false;
        }
        fn(key, s.substr(start, end - start));
        i = skip_ws(s, end);
        if (i < s.size() && s[i] == ',') {
            i = skip_ws(s, i + 1);
            continue;
        }
        return i < s.size() && s[i] == close;
    }
    return false;
}

}  // namespace billsync::util::json_scan
