#include "mappings/sms_keywords.hpp"

#include <algorithm>
#include <array>

namespace billsync::mappings {

namespace {

constexpr std::array<std::string_view, 8> opt_out = {
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"};
constexpr std::array<std::string_view, 3> opt_in = {"START", "YES", "UNSTOP"};
constexpr std::array<std::string_view, 2> help = {"HELP", "INFO"};
constexpr std::size_t longest = 11;  // UNSUBSCRIBE

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

sms_keyword classify_sms_keyword(std::string_view body) noexcept {
    while (!body.empty() && is_space(body.front())) {
        body.remove_prefix(1);
    }
    while (!body.empty() && is_space(body.back())) {
        body.remove_suffix(1);
    }
    if (body.empty() || body.size() > longest) {
        return sms_keyword::none;
    }
    std::array<char, longest> buf{};
    std::transform(body.begin(), body.end(), buf.begin(), [](char c) {
        return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    });
    const std::string_view word(buf.data(), body.size());
    const auto in = [word](const auto& list) {
        return std::find(list.begin(), list.end(), word) != list.end();
    };
    if (in(opt_out)) {
        return sms_keyword::opt_out;
    }
    if (in(opt_in)) {
        return sms_keyword::opt_in;
    }
    if (in(help)) {
        return sms_keyword::help;
    }
    return sms_keyword::none;
}

std::string_view to_string(sms_keyword k) noexcept {
    switch (k) {
        case sms_keyword::opt_out:
            return "stop";
        case sms_keyword::opt_in:
            return "start";
        case sms_keyword::help:
            return "help";
        case sms_keyword::none:
            break;
    }
    return "";
}

}  // namespace billsync::mappings
