#include "workflows/followup/keywords.hpp"

#include <array>
#include <cstddef>

namespace billsync::workflows::followup {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool ascii_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool non_word_code_point(char32_t cp) {
    return (cp >= 0x80 && cp <= 0xBF) || (cp >= 0x2000 && cp <= 0x206F) ||
           (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
           (cp >= 0xFF00 && cp <= 0xFF0F);
}

// Decodes the code point that starts at i; 0 length on malformed input.
std::size_t decode_at(std::string_view s, std::size_t i, char32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        cp = b0 & 0x1Fu;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        cp = b0 & 0x0Fu;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        cp = b0 & 0x07u;
    } else {
        return 0;
    }
    if (i + len > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (b & 0x3Fu);
    }
    return len;
}

// Whether the code point that ends just before position `end` is a word character.
bool word_before(std::string_view s, std::size_t end) {
    if (end == 0) {
        return false;
    }
    const char c = s[end - 1];
    if (static_cast<unsigned char>(c) < 0x80) {
        return ascii_word(c);
    }
    // Walk back to the lead byte (at most 3 continuation bytes).
    std::size_t start = end - 1;
    for (int k = 0; k < 3 && start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80;
         ++k) {
        --start;
    }
    char32_t cp = 0;
    const auto len = decode_at(s, start, cp);
    return len != 0 && start + len == end && !non_word_code_point(cp);
}

bool word_at(std::string_view s, std::size_t i) {
    if (i >= s.size()) {
        return false;
    }
    if (static_cast<unsigned char>(s[i]) < 0x80) {
        return ascii_word(s[i]);
    }
    char32_t cp = 0;
    return decode_at(s, i, cp) != 0 && !non_word_code_point(cp);
}

// Matches keyword at text[i...]; returns the end of the match or npos.
std::size_t match_at(std::string_view text, std::size_t i, std::string_view keyword) {
    std::size_t k = 0;
    while (k < keyword.size()) {
        if (ascii_space(keyword[k])) {
            // A run of spaces in the keyword matches a non-empty run of whitespace.
            while (k < keyword.size() && ascii_space(keyword[k])) {
                ++k;
            }
            if (i >= text.size() || !ascii_space(text[i])) {
                return std::string_view::npos;
            }
            while (i < text.size() && ascii_space(text[i])) {
                ++i;
            }
            continue;
        }
        if (i >= text.size() || lower(text[i]) != lower(keyword[k])) {
            return std::string_view::npos;
        }
        ++i;
        ++k;
    }
    return i;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && ascii_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && ascii_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

bool contains_dispute_keyword(std::string_view text, const std::vector<std::string>& keywords) {
    for (const auto& raw : keywords) {
        const auto keyword = trim(raw);
        if (keyword.empty()) {
            continue;
        }
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (lower(text[i]) != lower(keyword.front())) {
                continue;
            }
            const auto end = match_at(text, i, keyword);
            if (end == std::string_view::npos) {
                continue;
            }
            if (!word_before(text, i) && !word_at(text, end)) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace billsync::workflows::followup
