#include "tests/fakes/html_check.hpp"

#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace billsync::testing {

namespace {

constexpr std::array<std::string_view, 14> void_elements{"area",
                                                         "base",
                                                         "br",
                                                         "col",
                                                         "embed",
                                                         "hr",
                                                         "img",
                                                         "input",
                                                         "link",
                                                         "meta",
                                                         "param",
                                                         "source",
                                                         "track",
                                                         "wbr"};

bool is_void(std::string_view name) {
    for (const auto v : void_elements) {
        if (v == name) {
            return true;
        }
    }
    return false;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == ':' || c == '_' || c == '.';
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

class checker {
public:
    explicit checker(std::string_view h) : h_(h) {}

    std::string run() {
        skip_space();
        if (starts("<!DOCTYPE") || starts("<!doctype")) {
            const auto end = h_.find('>', i_);
            if (end == std::string_view::npos) {
                return fail("unterminated DOCTYPE");
            }
            i_ = end + 1;
        }
        bool root_seen = false;
        while (i_ < h_.size()) {
            if (stack_.empty() && root_seen) {
                skip_space();
                if (i_ < h_.size()) {
                    return fail("content after the root element");
                }
                break;
            }
            if (h_[i_] == '<') {
                if (starts("<!--")) {
                    const auto end = h_.find("-->", i_ + 4);
                    if (end == std::string_view::npos) {
                        return fail("unterminated comment");
                    }
                    i_ = end + 3;
                    continue;
                }
                if (starts("</")) {
                    if (auto e = end_tag(); !e.empty()) {
                        return e;
                    }
                    continue;
                }
                if (stack_.empty() && root_seen) {
                    return fail("a second root element");
                }
                root_seen = true;
                if (auto e = start_tag(); !e.empty()) {
                    return e;
                }
                continue;
            }
            if (stack_.empty()) {
                if (!is_space(h_[i_])) {
                    return fail("text outside the root element");
                }
                ++i_;
                continue;
            }
            if (auto e = text_char(); !e.empty()) {
                return e;
            }
        }
        if (!stack_.empty()) {
            return fail("<" + stack_.back() + "> is never closed");
        }
        if (!root_seen) {
            return fail("no root element");
        }
        return {};
    }

private:
    bool starts(std::string_view s) const { return h_.substr(i_).starts_with(s); }

    std::string fail(const std::string& what) const {
        return what + " at offset " + std::to_string(i_) + " near \"" +
               std::string(h_.substr(i_ > 20 ? i_ - 20 : 0, 60)) + "\"";
    }

    void skip_space() {
        while (i_ < h_.size() && is_space(h_[i_])) {
            ++i_;
        }
    }

    std::string name() {
        const auto start = i_;
        while (i_ < h_.size() && is_name_char(h_[i_])) {
            ++i_;
        }
        return std::string(h_.substr(start, i_ - start));
    }

    // After '&': a named, decimal or hex character reference ending in ';'.
    std::string reference() {
        const auto start = i_;
        ++i_;
        std::size_t n = 0;
        if (i_ < h_.size() && h_[i_] == '#') {
            ++i_;
            const bool hex = i_ < h_.size() && (h_[i_] == 'x' || h_[i_] == 'X');
            i_ += hex ? 1 : 0;
            while (i_ < h_.size() &&
                   (std::isdigit(static_cast<unsigned char>(h_[i_])) != 0 ||
                    (hex && std::isxdigit(static_cast<unsigned char>(h_[i_])) != 0))) {
                ++i_;
                ++n;
            }
        } else {
            while (i_ < h_.size() && std::isalnum(static_cast<unsigned char>(h_[i_])) != 0) {
                ++i_;
                ++n;
            }
        }
        if (n == 0 || i_ >= h_.size() || h_[i_] != ';') {
            i_ = start;
            return fail("a bare '&' (not a character reference)");
        }
        ++i_;
        return {};
    }

    std::string text_char() {
        const char c = h_[i_];
        if (c == '&') {
            return reference();
        }
        if (c == '>') {
            return fail("a bare '>' in text");
        }
        ++i_;
        return {};
    }

    std::string start_tag() {
        ++i_;  // '<'
        const auto tag = name();
        if (tag.empty()) {
            return fail("a '<' that starts no tag (escape it as &lt;)");
        }
        std::vector<std::string> seen;
        for (;;) {
            const auto before = i_;
            skip_space();
            if (i_ >= h_.size()) {
                return fail("unterminated <" + tag + ">");
            }
            if (h_[i_] == '>') {
                ++i_;
                break;
            }
            if (starts("/>")) {
                i_ += 2;
                return {};  // closes itself
            }
            if (i_ == before) {
                return fail("attributes of <" + tag + "> must be separated by white space");
            }
            const auto attr = name();
            if (attr.empty()) {
                return fail("a malformed attribute in <" + tag + ">");
            }
            for (const auto& s : seen) {
                if (s == attr) {
                    return fail("attribute " + attr + " repeated in <" + tag + ">");
                }
            }
            seen.push_back(attr);
            if (i_ < h_.size() && h_[i_] == '=') {
                ++i_;
                if (i_ >= h_.size() || (h_[i_] != '"' && h_[i_] != '\'')) {
                    return fail("the value of " + attr + " in <" + tag + "> is not quoted");
                }
                const char quote = h_[i_++];
                while (i_ < h_.size() && h_[i_] != quote) {
                    if (h_[i_] == '<') {
                        return fail("a raw '<' in the value of " + attr);
                    }
                    if (h_[i_] == '&') {
                        if (auto e = reference(); !e.empty()) {
                            return e;
                        }
                        continue;
                    }
                    ++i_;
                }
                if (i_ >= h_.size()) {
                    return fail("unterminated value of " + attr);
                }
                ++i_;
            }
        }
        if (is_void(tag)) {
            return {};
        }
        if (tag == "style" || tag == "script") {
            const auto close = "</" + tag + ">";
            const auto end = h_.find(close, i_);
            if (end == std::string_view::npos) {
                return fail("<" + tag + "> is never closed");
            }
            i_ = end + close.size();
            return {};
        }
        stack_.push_back(tag);
        return {};
    }

    std::string end_tag() {
        i_ += 2;
        const auto tag = name();
        skip_space();
        if (tag.empty() || i_ >= h_.size() || h_[i_] != '>') {
            return fail("a malformed end tag");
        }
        if (is_void(tag)) {
            return fail("an end tag for the void element " + tag);
        }
        if (stack_.empty()) {
            return fail("</" + tag + "> closes nothing");
        }
        if (stack_.back() != tag) {
            return fail("</" + tag + "> closes <" + stack_.back() + ">");
        }
        stack_.pop_back();
        ++i_;
        return {};
    }

    std::string_view h_;
    std::size_t i_ = 0;
    std::vector<std::string> stack_;
};

}  // namespace

std::string html_problem(std::string_view html) { return checker(html).run(); }

}  // namespace billsync::testing
