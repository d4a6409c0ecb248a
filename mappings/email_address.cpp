#include "mappings/email_address.hpp"

#include <cctype>

namespace billsync::mappings::email {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

}  // namespace

bool valid_address(std::string_view a) noexcept {
    if (a.empty() || a.size() > 254) {
        return false;
    }
    const auto at = a.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size() || at > 64 ||
        a.find('@', at + 1) != std::string_view::npos) {
        return false;
    }
    for (const char c : a) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f ||
            std::string_view("<>()[],;:\\\"").find(c) != std::string_view::npos) {
            return false;
        }
    }
    const auto domain = a.substr(at + 1);
    return !domain.starts_with('.') && !domain.ends_with('.') &&
           domain.find("..") == std::string_view::npos;
}

std::string bare_address(std::string_view mailbox) {
    std::string_view a = mailbox;
    const auto open = mailbox.rfind('<');
    if (open != std::string_view::npos) {
        const auto close = mailbox.find('>', open);
        if (close == std::string_view::npos) {
            return {};
        }
        a = mailbox.substr(open + 1, close - open - 1);
    }
    while (!a.empty() && (a.front() == ' ' || a.front() == '\t')) {
        a.remove_prefix(1);
    }
    while (!a.empty() &&
           (a.back() == ' ' || a.back() == '\t' || a.back() == '\r' || a.back() == '\n')) {
        a.remove_suffix(1);
    }
    if (!valid_address(a)) {
        return {};
    }
    return lower(a);
}

std::vector<std::string> address_list(std::string_view list) {
    std::vector<std::string> out;
    bool quoted = false;
    bool angle = false;
    std::size_t start = 0;
    const auto take = [&](std::size_t end) {
        auto a = bare_address(list.substr(start, end - start));
        if (!a.empty()) {
            out.push_back(std::move(a));
        }
    };
    for (std::size_t i = 0; i < list.size(); ++i) {
        const char c = list[i];
        if (c == '\\' && quoted) {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == '<') {
            angle = true;
        } else if (!quoted && c == '>') {
            angle = false;
        } else if (!quoted && !angle && c == ',') {
            take(i);
            start = i + 1;
        }
    }
    take(list.size());
    return out;
}

std::string raw_header_value(std::string_view block, std::string_view name) {
    const auto target = lower(name);
    std::string value;
    bool in_match = false;
    while (!block.empty()) {
        auto eol = block.find('\n');
        auto line = block.substr(0, eol);
        block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 1);
        if (line.ends_with('\r')) {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            break;  // end of the header block
        }
        if (line.front() == ' ' || line.front() == '\t') {
            if (in_match) {
                value += ' ';
                auto rest = line;
                while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
                    rest.remove_prefix(1);
                }
                value += rest;
            }
            continue;
        }
        if (in_match) {
            break;
        }
        const auto colon = line.find(':');
        if (colon != std::string_view::npos && lower(line.substr(0, colon)) == target) {
            in_match = true;
            auto rest = line.substr(colon + 1);
            while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
                rest.remove_prefix(1);
            }
            value = std::string(rest);
        }
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.pop_back();
    }
    return value;
}

}  // namespace billsync::mappings::email
