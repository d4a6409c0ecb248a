#include "http/multipart.hpp"

#include <cctype>

namespace billsync::http {

namespace {

constexpr std::string_view crlf = "\r\n";

bool boundary_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0) {
        return true;
    }
    return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

bool valid_boundary(std::string_view b, std::size_t max) noexcept {
    if (b.empty() || b.size() > max || b.back() == ' ') {
        return false;
    }
    for (const char c : b) {
        if (!boundary_char(c)) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

struct parameters {
    std::string value;  // the part before the first ';', lower-cased
    std::vector<std::pair<std::string, std::string>> params;  // names lower-cased
    bool ok = true;
    const std::string* get(std::string_view name) const {
        for (const auto& [k, v] : params) {
            if (k == name) {
                return &v;
            }
        }
        return nullptr;
    }
};

// `value; a=b; c="quoted \" text"` as in Content-Type and Content-Disposition.
parameters parse_parameters(std::string_view text) {
    parameters out;
    std::size_t i = text.find(';');
    out.value = lower(trim(text.substr(0, i)));
    while (i != std::string_view::npos && i < text.size()) {
        ++i;  // past ';'
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
            ++i;
        }
        if (i == text.size()) {
            break;  // a trailing ';' is tolerated
        }
        const auto eq = text.find('=', i);
        if (eq == std::string_view::npos) {
            out.ok = false;
            return out;
        }
        std::string name = lower(trim(text.substr(i, eq - i)));
        i = eq + 1;
        std::string value;
        if (i < text.size() && text[i] == '"') {
            ++i;
            bool closed = false;
            while (i < text.size()) {
                const char c = text[i++];
                if (c == '\\' && i < text.size()) {
                    value += text[i++];
                } else if (c == '"') {
                    closed = true;
                    break;
                } else {
                    value += c;
                }
            }
            if (!closed) {
                out.ok = false;
                return out;
            }
            while (i < text.size() && text[i] != ';') {
                if (text[i] != ' ' && text[i] != '\t') {
                    out.ok = false;
                    return out;
                }
                ++i;
            }
        } else {
            const auto end = text.find(';', i);
            value =
                std::string(trim(text.substr(i, end == std::string_view::npos ? end : end - i)));
            i = end;
        }
        if (name.empty()) {
            out.ok = false;
            return out;
        }
        out.params.emplace_back(std::move(name), std::move(value));
        if (i == std::string_view::npos) {
            break;
        }
    }
    return out;
}

// After a delimiter: "--" closes the body; otherwise optional padding and CRLF open a part.
// Returns the offset just past the line, or npos on a malformed line; sets `closing`.
std::size_t after_delimiter(std::string_view body, std::size_t pos, bool& closing) {
    closing = false;
    if (body.substr(pos, 2) == "--") {
        closing = true;
        return pos + 2;
    }
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) {
        ++pos;
    }
    if (body.substr(pos, 2) != crlf) {
        return std::string_view::npos;
    }
    return pos + 2;
}

}  // namespace

const form_part* multipart_result::find(std::string_view name) const {
    for (const auto& p : parts) {
        if (p.name == name) {
            return &p;
        }
    }
    return nullptr;
}

std::optional<std::string> multipart_boundary(std::string_view content_type) {
    const auto p = parse_parameters(content_type);
    if (!p.ok || !p.value.starts_with("multipart/")) {
        return std::nullopt;
    }
    const auto* b = p.get("boundary");
    if (b == nullptr || !valid_boundary(*b, multipart_limits{}.max_boundary)) {
        return std::nullopt;
    }
    return *b;
}

std::optional<std::string> leading_boundary(std::string_view body, const multipart_limits& l) {
    if (!body.starts_with("--")) {
        return std::nullopt;
    }
    const auto eol = body.find(crlf);
    if (eol == std::string_view::npos) {
        return std::nullopt;
    }
    auto b = body.substr(2, eol - 2);
    while (!b.empty() && (b.back() == ' ' || b.back() == '\t')) {
        b.remove_suffix(1);  // transport padding
    }
    if (!valid_boundary(b, l.max_boundary)) {
        return std::nullopt;
    }
    return std::string(b);
}

multipart_result parse_multipart(std::string_view body,
                                 std::string_view boundary,
                                 const multipart_limits& limits) {
    multipart_result out;
    const auto fail = [&out](std::string why) {
        out.parts.clear();
        out.error = std::move(why);
        return std::move(out);
    };
    if (!valid_boundary(boundary, limits.max_boundary)) {
        return fail("invalid multipart boundary");
    }
    const std::string delimiter = "--" + std::string(boundary);
    const std::string inner = "\r\n" + delimiter;

    // The first delimiter opens the body or a line of its own after the preamble.
    std::size_t pos = 0;
    if (!body.starts_with(delimiter)) {
        pos = body.find(inner);
        if (pos == std::string_view::npos) {
            return fail("no multipart delimiter");
        }
        pos += 2;
    }
    pos += delimiter.size();
    bool closing = false;
    pos = after_delimiter(body, pos, closing);
    if (pos == std::string_view::npos) {
        return fail("malformed multipart delimiter line");
    }
    while (!closing) {
        if (out.parts.size() == limits.max_parts) {
            return fail("too many multipart parts");
        }
        // Part headers: lines up to an empty line.
        const auto headers_end = body.find("\r\n\r\n", pos);
        const bool no_headers = body.substr(pos, 2) == crlf;
        std::string_view headers;
        std::size_t content_start = 0;
        if (no_headers) {
            content_start = pos + 2;
        } else {
            if (headers_end == std::string_view::npos) {
                return fail("unterminated part headers");
            }
            headers = body.substr(pos, headers_end - pos);
            content_start = headers_end + 4;
        }
        if (headers.size() > limits.max_part_header_bytes) {
            return fail("part headers too large");
        }
        form_part part;
        bool disposition = false;
        while (!headers.empty()) {
            const auto eol = headers.find(crlf);
            const auto line = headers.substr(0, eol);
            headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
            if (line.empty() || line.front() == ' ' || line.front() == '\t') {
                return fail("folded or empty part header line");
            }
            const auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) {
                return fail("malformed part header line");
            }
            const auto name = lower(trim(line.substr(0, colon)));
            const auto value = trim(line.substr(colon + 1));
            if (name == "content-disposition") {
                const auto p = parse_parameters(value);
                const auto* n = p.get("name");
                if (!p.ok || p.value != "form-data" || n == nullptr) {
                    return fail("malformed Content-Disposition");
                }
                part.name = *n;
                if (const auto* f = p.get("filename")) {
                    part.filename = *f;
                }
                disposition = true;
            } else if (name == "content-type") {
                part.content_type = std::string(value);
            }
        }
        if (!disposition) {
            return fail("part without Content-Disposition");
        }
        // The content runs to the next CRLF-delimiter.
        const auto end = body.find(inner, content_start);
        if (end == std::string_view::npos) {
            return fail("missing closing multipart delimiter");
        }
        part.data = std::string(body.substr(content_start, end - content_start));
        out.parts.push_back(std::move(part));
        pos = after_delimiter(body, end + inner.size(), closing);
        if (pos == std::string_view::npos) {
            return fail("malformed multipart delimiter line");
        }
    }
    return out;
}

}  // namespace billsync::http
