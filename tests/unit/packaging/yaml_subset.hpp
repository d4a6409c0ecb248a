#pragma once

// A reader for the subset of YAML the Kubernetes manifest in packaging/kubernetes uses: documents
// separated by "---", block mappings and sequences by indentation, literal block scalars ("|"),
// flow sequences of scalars ("[a, "b"]"), "{}", plain and quoted scalars, comments. Anything
// outside the subset (tabs, anchors, multi-line flow collections, bad indentation) is an error,
// so the manifest cannot drift into YAML this check does not understand. No YAML library is
// among billsync's dependencies, and none is needed for this.
#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace billsync::packaging::testing {

struct yaml_entry;

struct yaml_node {
    enum class kind { scalar, map, seq } type = kind::scalar;
    std::string value;            // scalar
    std::vector<yaml_entry> map;  // in document order
    std::vector<yaml_node> seq;

    const yaml_node& at(const std::string& key) const;
    bool has(const std::string& key) const;
    // Follows "a.b.c" through mappings.
    const yaml_node& path(const std::string& dotted) const;
};

// One key of a mapping. A named struct rather than std::pair: a pair of an incomplete yaml_node
// cannot be checked for default constructibility while yaml_node is being defined (clang).
struct yaml_entry {
    std::string key;
    yaml_node value;
};

inline const yaml_node& yaml_node::at(const std::string& key) const {
    if (type != kind::map) {
        throw std::runtime_error("not a mapping, looking up '" + key + "'");
    }
    for (const auto& [k, v] : map) {
        if (k == key) {
            return v;
        }
    }
    throw std::runtime_error("no key '" + key + "'");
}
inline bool yaml_node::has(const std::string& key) const {
    if (type != kind::map) {
        return false;
    }
    for (const auto& [k, v] : map) {
        if (k == key) {
            return true;
        }
    }
    return false;
}
inline const yaml_node& yaml_node::path(const std::string& dotted) const {
    const yaml_node* n = this;
    std::size_t start = 0;
    while (start <= dotted.size()) {
        const auto dot = dotted.find('.', start);
        n = &n->at(dotted.substr(start, dot - start));
        if (dot == std::string::npos) {
            break;
        }
        start = dot + 1;
    }
    return *n;
}

class yaml_subset_parser {
public:
    static std::vector<yaml_node> parse(const std::string& text) {
        yaml_subset_parser p(text);
        return p.documents();
    }

private:
    struct line {
        int indent;
        std::string text;  // without indentation; comments kept only inside block scalars
        std::size_t number;
        std::string raw;
    };

    explicit yaml_subset_parser(const std::string& text) {
        std::size_t start = 0;
        std::size_t number = 1;
        while (start <= text.size()) {
            auto end = text.find('\n', start);
            if (end == std::string::npos) {
                end = text.size();
            }
            std::string raw = text.substr(start, end - start);
            if (raw.find('\t') != std::string::npos) {
                fail(number, "tab character");
            }
            const auto first = raw.find_first_not_of(' ');
            line l{first == std::string::npos ? 0 : static_cast<int>(first),
                   first == std::string::npos ? std::string() : raw.substr(first),
                   number,
                   raw};
            lines_.push_back(std::move(l));
            start = end + 1;
            ++number;
        }
    }

    [[noreturn]] static void fail(std::size_t number, const std::string& what) {
        throw std::runtime_error("line " + std::to_string(number) + ": " + what);
    }

    static bool is_blank_or_comment(const line& l) { return l.text.empty() || l.text[0] == '#'; }

    // Strips a trailing " # comment" outside quotes.
    static std::string strip_comment(const std::string& s) {
        char quote = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
            const char c = s[i];
            if (quote != 0) {
                if (c == quote) {
                    quote = 0;
                }
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '#' && (i == 0 || s[i - 1] == ' ')) {
                auto out = s.substr(0, i);
                while (!out.empty() && out.back() == ' ') {
                    out.pop_back();
                }
                return out;
            }
        }
        if (quote != 0) {
            throw std::runtime_error("unclosed quote in: " + s);
        }
        return s;
    }

    static std::string unquote(const std::string& s) {
        if (s.size() >= 2 &&
            ((s.front() == '"' && s.back() == '"') || (s.front() == '\'' && s.back() == '\''))) {
            return s.substr(1, s.size() - 2);
        }
        return s;
    }

    static yaml_node scalar_or_flow(const std::string& value, std::size_t number) {
        yaml_node n;
        if (value == "{}") {
            n.type = yaml_node::kind::map;
            return n;
        }
        if (!value.empty() && value.front() == '[') {
            if (value.back() != ']') {
                fail(number, "flow sequence not closed on its line");
            }
            n.type = yaml_node::kind::seq;
            const auto inner = value.substr(1, value.size() - 2);
            std::size_t start = 0;
            while (start < inner.size()) {
                auto comma = inner.find(',', start);
                if (comma == std::string::npos) {
                    comma = inner.size();
                }
                auto item = inner.substr(start, comma - start);
                item.erase(0, item.find_first_not_of(' '));
                item.erase(item.find_last_not_of(' ') + 1);
                if (!item.empty()) {
                    yaml_node s;
                    s.value = unquote(item);
                    n.seq.push_back(std::move(s));
                }
                start = comma + 1;
            }
            return n;
        }
        if (!value.empty() &&
            (value.front() == '{' || value.front() == '&' || value.front() == '*' ||
             value.front() == '!' || value.front() == '>')) {
            fail(number, "outside the YAML subset: " + value);
        }
        n.value = unquote(value);
        return n;
    }

    std::size_t next_content(std::size_t i) const {
        while (i < lines_.size() && is_blank_or_comment(lines_[i])) {
            ++i;
        }
        return i;
    }

    bool at_document_end(std::size_t i) const {
        return i >= lines_.size() || (lines_[i].indent == 0 && lines_[i].text == "---");
    }

    std::vector<yaml_node> documents() {
        std::vector<yaml_node> docs;
        std::size_t i = next_content(0);
        while (i < lines_.size()) {
            if (lines_[i].text == "---") {
                i = next_content(i + 1);
                continue;
            }
            if (lines_[i].indent != 0) {
                fail(lines_[i].number, "a document starts at column 1");
            }
            docs.push_back(block(i, 0));
            i = next_content(i);
        }
        return docs;
    }

    // The block starting at content line i, whose lines are indented exactly `indent`.
    yaml_node block(std::size_t& i, int indent) {
        i = next_content(i);
        if (lines_[i].text.starts_with("- ") || lines_[i].text == "-") {
            return sequence(i, indent);
        }
        return mapping(i, indent);
    }

    yaml_node sequence(std::size_t& i, int indent) {
        yaml_node n;
        n.type = yaml_node::kind::seq;
        while (!at_document_end(i) && lines_[i].indent == indent &&
               (lines_[i].text.starts_with("- ") || lines_[i].text == "-")) {
            auto& l = lines_[i];
            if (l.text == "-") {
                ++i;
                i = next_content(i);
                if (at_document_end(i) || lines_[i].indent <= indent) {
                    fail(l.number, "empty sequence item");
                }
                n.seq.push_back(block(i, lines_[i].indent));
            } else {
                const auto rest = l.text.substr(2);
                if (split_key(rest).has_key) {
                    // "- key: value" opens a mapping indented two more.
                    l.text = rest;
                    l.indent = indent + 2;
                    n.seq.push_back(mapping(i, indent + 2));
                } else {
                    n.seq.push_back(scalar_or_flow(strip_comment(rest), l.number));
                    ++i;
                }
            }
            i = next_content(i);
        }
        if (!at_document_end(i) && lines_[i].indent > indent) {
            fail(lines_[i].number, "unexpected indentation");
        }
        return n;
    }

    struct key_value {
        bool has_key = false;
        std::string key;
        std::string value;
    };

    static key_value split_key(const std::string& text) {
        char quote = 0;
        for (std::size_t i = 0; i < text.size(); ++i) {
            const char c = text[i];
            if (quote != 0) {
                if (c == quote) {
                    quote = 0;
                }
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == ':' && (i + 1 == text.size() || text[i + 1] == ' ')) {
                auto value = i + 1 < text.size() ? text.substr(i + 2) : std::string();
                value.erase(0, value.find_first_not_of(' '));
                return {true, unquote(text.substr(0, i)), value};
            } else if (c == '#' && i > 0 && text[i - 1] == ' ') {
                break;
            }
        }
        return {};
    }

    yaml_node mapping(std::size_t& i, int indent) {
        yaml_node n;
        n.type = yaml_node::kind::map;
        while (!at_document_end(i) && lines_[i].indent == indent &&
               !lines_[i].text.starts_with("- ")) {
            const auto& l = lines_[i];
            const auto kv = split_key(l.text);
            if (!kv.has_key) {
                fail(l.number, "expected 'key: value'");
            }
            for (const auto& [k, v] : n.map) {
                if (k == kv.key) {
                    fail(l.number, "duplicate key '" + kv.key + "'");
                }
            }
            const auto value = strip_comment(kv.value);
            const auto number = l.number;
            ++i;
            if (value == "|") {
                n.map.push_back(yaml_entry{kv.key, literal(i, indent, number)});
            } else if (!value.empty()) {
                n.map.push_back(yaml_entry{kv.key, scalar_or_flow(value, number)});
            } else {
                i = next_content(i);
                if (at_document_end(i) || lines_[i].indent < indent ||
                    (lines_[i].indent == indent && !lines_[i].text.starts_with("- "))) {
                    fail(number, "key '" + kv.key + "' has no value");
                }
                n.map.push_back(yaml_entry{kv.key, block(i, lines_[i].indent)});
            }
            i = next_content(i);
        }
        if (!at_document_end(i) && lines_[i].indent > indent) {
            fail(lines_[i].number, "unexpected indentation");
        }
        return n;
    }

    // A literal block scalar: the following lines indented more than the key, kept verbatim
    // (less the block's indentation), blank lines included.
    yaml_node literal(std::size_t& i, int key_indent, std::size_t number) {
        std::size_t j = i;
        while (j < lines_.size() && lines_[j].text.empty()) {
            ++j;
        }
        if (j >= lines_.size() || lines_[j].indent <= key_indent) {
            fail(number, "empty block scalar");
        }
        const int block_indent = lines_[j].indent;
        yaml_node n;
        while (i < lines_.size() && (lines_[i].text.empty() || lines_[i].indent >= block_indent)) {
            if (lines_[i].text.empty()) {
                n.value += "\n";
            } else {
                n.value += lines_[i].raw.substr(static_cast<std::size_t>(block_indent)) + "\n";
            }
            ++i;
        }
        while (n.value.size() >= 2 && n.value.ends_with("\n\n")) {
            n.value.pop_back();  // "|" clips trailing blank lines
        }
        return n;
    }

    std::vector<line> lines_;
};

}  // namespace billsync::packaging::testing
