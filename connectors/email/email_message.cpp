#include "connectors/email/email_message.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <nlohmann/json.hpp>

#include "util/crypto.hpp"

namespace billsync::connectors::email {

namespace {

constexpr std::size_t max_subject = 900;
constexpr std::size_t max_header_value = 900;
constexpr std::size_t max_delivery_id = 200;

bool printable_ascii(std::string_view s) noexcept {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e) {
            return false;
        }
    }
    return true;
}

bool has_control(std::string_view s) noexcept {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return true;
        }
    }
    return false;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

bool header_name_ok(std::string_view name) noexcept {
    if (name.empty() || name.size() > 76) {
        return false;
    }
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 33 || u > 126 || c == ':') {
            return false;
        }
    }
    return true;
}

// Headers the connectors write themselves (or that only a transport may write).
bool reserved_header(std::string_view name) {
    static constexpr std::array<std::string_view, 16> reserved = {"from",
                                                                  "to",
                                                                  "cc",
                                                                  "bcc",
                                                                  "subject",
                                                                  "date",
                                                                  "message-id",
                                                                  "reply-to",
                                                                  "sender",
                                                                  "mime-version",
                                                                  "content-type",
                                                                  "content-transfer-encoding",
                                                                  "received",
                                                                  "return-path",
                                                                  "dkim-signature",
                                                                  "x-sg-id"};
    const auto n = lower(name);
    for (const auto r : reserved) {
        if (n == r) {
            return true;
        }
    }
    return false;
}

// Optional string member: absent or null → "", wrong type → false.
bool optional_string(const nlohmann::json& j, const char* key, std::string& out) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return true;
    }
    if (!it->is_string()) {
        return false;
    }
    out = it->get<std::string>();
    return true;
}

// Byte length of the UTF-8 sequence starting with lead (1 for anything malformed).
std::size_t utf8_length(unsigned char lead) noexcept {
    if (lead >= 0xf0) {
        return 4;
    }
    if (lead >= 0xe0) {
        return 3;
    }
    if (lead >= 0xc0) {
        return 2;
    }
    return 1;
}

}  // namespace

std::optional<email_message> parse_email_message(std::string_view payload, std::string& error) {
    const auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        error = "email payload is not a JSON object";
        return std::nullopt;
    }
    email_message m;
    const auto bad = [&error](std::string why) {
        error = std::move(why);
        return std::nullopt;
    };
    if (!optional_string(j, "to", m.to) || !valid_address(m.to)) {
        return bad("\"to\" must be one valid email address");
    }
    if (!optional_string(j, "to_name", m.to_name) || has_control(m.to_name) ||
        m.to_name.size() > 200) {
        return bad("\"to_name\" must be a string without control characters (at most 200 bytes)");
    }
    if (!j.contains("subject") || !optional_string(j, "subject", m.subject) ||
        has_control(m.subject) || m.subject.size() > max_subject) {
        return bad("\"subject\" must be a string without line breaks (at most 900 bytes)");
    }
    if (!optional_string(j, "text", m.text) || m.text.empty()) {
        return bad("\"text\" must be a non-empty string");
    }
    if (!optional_string(j, "html", m.html)) {
        return bad("\"html\" must be a string");
    }
    if (!optional_string(j, "delivery_id", m.delivery_id) || m.delivery_id.empty() ||
        m.delivery_id.size() > max_delivery_id || has_control(m.delivery_id)) {
        return bad("\"delivery_id\" must be a non-empty string (at most 200 bytes)");
    }
    if (!optional_string(j, "reply_to", m.reply_to) ||
        (!m.reply_to.empty() && !valid_address(m.reply_to))) {
        return bad("\"reply_to\" must be a valid email address");
    }
    if (const auto it = j.find("headers"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) {
            return bad("\"headers\" must be an object of strings");
        }
        for (const auto& [name, value] : it->items()) {
            if (!header_name_ok(name) || reserved_header(name)) {
                return bad("header name not allowed: " + (header_name_ok(name) ? name : "?"));
            }
            if (!value.is_string() || !printable_ascii(value.get_ref<const std::string&>()) ||
                value.get_ref<const std::string&>().size() > max_header_value) {
                return bad("header " + name + " must be printable ASCII text (at most 900 bytes)");
            }
            m.headers.push_back({name, value.get<std::string>()});
        }
    }
    return m;
}

std::optional<email_message> parse_send_action(const state::action& a,
                                               std::string_view provider,
                                               std::string& error) {
    if (a.kind != send_action) {
        error = fmt::format("{} does not perform '{}'", provider, a.kind);
        return std::nullopt;
    }
    return parse_email_message(a.payload, error);
}

mappings::change accepted_change(std::string_view connector,
                                 std::string_view delivery_id,
                                 std::string_view message_id,
                                 std::string_view status) {
    mappings::message_status m;
    m.via = mappings::channel::email;
    m.delivery_id = std::string(delivery_id);
    m.status = std::string(status);
    m.progress = 1;
    m.provider_id = std::string(message_id);
    return mappings::make_change(
        std::move(m), 1, mappings::change::op::created, std::string(connector));
}

reconcile_outcome unknown_send_outcome(std::string_view provider, const state::action& a) {
    reconcile_outcome out;
    out.k = reconcile_outcome::kind::happened;
    out.detail = fmt::format(
        "outcome unknown: {} cannot be asked whether the message went out; not resent (a "
        "duplicate email is worse than a missing one)",
        provider);
    std::string error;
    if (const auto m = parse_email_message(a.payload, error)) {
        // No message id is known; the delivery id still links later events to this action.
        out.effects.push_back(accepted_change(a.connector, m->delivery_id, "", "unknown"));
    }
    return out;
}

action_outcome unknown_send_result(std::string_view provider,
                                   const state::action& a,
                                   std::string_view why) {
    action_outcome out;
    out.k = action_outcome::kind::done;
    out.detail = fmt::format(
        "outcome unknown ({}): the message may have been accepted and is not resent", why);
    out.effects = unknown_send_outcome(provider, a).effects;
    return out;
}

std::string stable_message_id(std::string_view delivery_id) {
    return "<" + util::hex_encode(util::sha256(delivery_id)).substr(0, 32) + "@billsync.local>";
}

std::string encode_header_text(std::string_view text) {
    if (printable_ascii(text)) {
        return std::string(text);
    }
    // Encoded-words of at most 75 characters: 45 bytes of whole UTF-8 characters each.
    constexpr std::size_t max_bytes = 45;
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t end = i;
        while (end < text.size()) {
            const auto n = utf8_length(static_cast<unsigned char>(text[end]));
            if (end + n - i > max_bytes) {
                break;
            }
            end = std::min(text.size(), end + n);
        }
        if (end == i) {
            end = std::min(text.size(), i + max_bytes);  // cannot happen with n <= 4; be safe
        }
        if (!out.empty()) {
            out += "\r\n ";
        }
        out += "=?UTF-8?B?" + util::base64_encode(text.substr(i, end - i)) + "?=";
        i = end;
    }
    return out;
}

std::string format_mailbox(std::string_view name, std::string_view address) {
    if (name.empty()) {
        return std::string(address);
    }
    std::string display;
    if (printable_ascii(name)) {
        display = "\"";
        for (const char c : name) {
            if (c == '"' || c == '\\') {
                display += '\\';
            }
            display += c;
        }
        display += "\"";
    } else {
        display = encode_header_text(name);
    }
    return display + " <" + std::string(address) + ">";
}

std::string format_rfc5322_date(util::instant t) {
    using namespace std::chrono;
    static constexpr std::array<std::string_view, 7> day_names = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<std::string_view, 12> month_names = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto day = floor<std::chrono::days>(t);
    const year_month_day ymd(day);
    const hh_mm_ss<seconds> hms(floor<seconds>(t - day));
    const weekday wd(day);
    return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
                       day_names[wd.c_encoding()],
                       static_cast<unsigned>(ymd.day()),
                       month_names[static_cast<unsigned>(ymd.month()) - 1],
                       static_cast<int>(ymd.year()),
                       hms.hours().count(),
                       hms.minutes().count(),
                       hms.seconds().count());
}

std::string quoted_printable(std::string_view text) {
    static constexpr std::string_view hex = "0123456789ABCDEF";
    std::string out;
    std::size_t line_len = 0;
    const auto emit = [&](std::string_view token) {
        if (line_len + token.size() > 75) {
            out += "=\r\n";
            line_len = 0;
        }
        out += token;
        line_len += token.size();
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
                ++i;
            }
            out += "\r\n";
            line_len = 0;
            continue;
        }
        const auto u = static_cast<unsigned char>(c);
        const bool at_eol = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
        const bool literal =
            (u >= 33 && u <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        if (literal) {
            const char one[1] = {c};
            emit(std::string_view(one, 1));
        } else {
            const char enc[3] = {'=',
                                 hex[static_cast<std::size_t>(u >> 4)],
                                 hex[static_cast<std::size_t>(u & 0x0f)]};
            emit(std::string_view(enc, 3));
        }
    }
    return out;
}

std::string render_rfc5322(const email_message& m,
                           const sender& from,
                           std::string_view message_id,
                           util::instant date) {
    std::string out;
    const auto header = [&out](std::string_view name, std::string_view value) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    };
    header("From", format_mailbox(from.name, from.email));
    header("To", format_mailbox(m.to_name, m.to));
    if (!m.reply_to.empty()) {
        header("Reply-To", m.reply_to);
    }
    header("Subject", encode_header_text(m.subject));
    header("Date", format_rfc5322_date(date));
    header("Message-ID", message_id);
    for (const auto& h : m.headers) {
        header(h.name, h.value);
    }
    header("MIME-Version", "1.0");
    const auto part = [](std::string_view type, std::string_view body) {
        return fmt::format(
            "Content-Type: {}; charset=utf-8\r\nContent-Transfer-Encoding: "
            "quoted-printable\r\n\r\n{}\r\n",
            type,
            quoted_printable(body));
    };
    if (m.html.empty()) {
        out += part("text/plain", m.text);
        return out;
    }
    // "=_" never occurs in quoted-printable output, so the boundary cannot collide.
    const auto boundary = "=_billsync_" + util::hex_encode(util::sha256(message_id)).substr(0, 24);
    header("Content-Type", "multipart/alternative; boundary=\"" + boundary + "\"");
    out += "\r\n";
    out += "--" + boundary + "\r\n" + part("text/plain", m.text);
    out += "--" + boundary + "\r\n" + part("text/html", m.html);
    out += "--" + boundary + "--\r\n";
    return out;
}

}  // namespace billsync::connectors::email
