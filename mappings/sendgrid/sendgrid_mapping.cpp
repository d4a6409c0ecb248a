#include "mappings/sendgrid/sendgrid_mapping.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

#include "mappings/email_address.hpp"
#include "mappings/json_depth.hpp"
#include "util/clock.hpp"
#include "util/crypto.hpp"

namespace billsync::mappings::sendgrid {

namespace {

using nlohmann::json;

std::string sha256_hex(std::string_view body) { return util::hex_encode(util::sha256(body)); }

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string string_of(const json& ev, const char* key) {
    const auto it = ev.find(key);
    if (it == ev.end()) {
        return {};
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_number_integer()) {
        return std::to_string(it->get<std::int64_t>());
    }
    return {};
}

// The delivery id a message carried in custom_args: top level on events (SendGrid copies custom
// args into each event), or nested under custom_args / unique_args (sendgrid.md: placement
// UNCONFIRMED).
std::string delivery_id_of(const json& ev) {
    constexpr const char* key = "billsync_delivery_id";
    if (ev.contains(key) && ev[key].is_string()) {
        return ev[key].get<std::string>();
    }
    for (const char* nest : {"custom_args", "unique_args"}) {
        if (ev.contains(nest) && ev[nest].is_object() && ev[nest].contains(key) &&
            ev[nest][key].is_string()) {
            return ev[nest][key].get<std::string>();
        }
    }
    return {};
}

bool suppresses(std::string_view event) noexcept {
    return event == "bounce" || event == "dropped" || event == "spamreport" ||
           event == "unsubscribe";
}

bool known_event(std::string_view event) noexcept {
    return delivery_rank(event) > 0 || event == "open" || event == "click" ||
           event == "spamreport" || event == "unsubscribe";
}

// The event's time as RFC 3339 (events carry Unix seconds); empty when absent.
std::string event_time(const json& ev) {
    if (!ev.contains("timestamp") || !ev["timestamp"].is_number_integer()) {
        return {};
    }
    const auto secs = ev["timestamp"].get<std::int64_t>();
    return util::format_rfc3339(util::instant(std::chrono::seconds(secs)));
}

}  // namespace

std::uint8_t delivery_rank(std::string_view event) noexcept {
    if (event == "processed") {
        return 1;
    }
    if (event == "deferred") {
        return 2;
    }
    if (event == "delivered") {
        return 3;
    }
    if (event == "bounce" || event == "dropped") {
        return 4;
    }
    return 0;
}

std::optional<std::vector<event>> map_events(std::string_view body, std::string& error) {
    if (auto deep = json_depth_error(body); !deep.empty()) {
        error = std::move(deep);
        return std::nullopt;
    }
    const auto events = json::parse(body, nullptr, false);
    if (!events.is_array()) {
        error = "event body is not a JSON array";
        return std::nullopt;
    }
    std::vector<event> out;
    out.reserve(events.size());
    for (const auto& ev : events) {
        if (!ev.is_object()) {
            continue;
        }
        event e;
        e.name = string_of(ev, "event");
        e.at = event_time(ev);
        if (const auto id = string_of(ev, "sg_event_id"); !id.empty()) {
            e.dedup_keys.push_back(id);
        }
        if (const auto mid = string_of(ev, "sg_message_id"); !mid.empty()) {
            e.dedup_keys.push_back("msg:" + mid + ":" + e.name + ":" + string_of(ev, "timestamp"));
        }
        if (e.dedup_keys.empty()) {
            e.dedup_keys.push_back("sha256:" + sha256_hex(ev.dump()));
        }
        if (known_event(e.name)) {
            const auto address = lower(string_of(ev, "email"));
            const auto reason = string_of(ev, "reason");
            if (auto delivery = delivery_id_of(ev); !delivery.empty()) {
                message_status m;
                m.via = channel::email;
                m.delivery_id = std::move(delivery);
                m.status = e.name;
                m.progress = delivery_rank(e.name);
                m.failed = e.name == "bounce" || e.name == "dropped";
                m.provider_id = string_of(ev, "sg_event_id");
                m.reason = reason;
                m.address = address;
                e.entities.emplace_back(std::move(m));
            }
            if (suppresses(e.name) && email::valid_address(address)) {
                e.entities.emplace_back(suppression{.via = channel::email,
                                                    .address = address,
                                                    .opted_out = true,
                                                    .reason = reason.empty() ? e.name : reason,
                                                    .at = e.at});
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

namespace {

std::string lowered(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

bool sender_verified(std::string_view spf, std::string_view dkim, std::string_view from_address) {
    const auto spf_result = lowered(trimmed(spf));
    if (spf_result != "pass" && !spf_result.starts_with("pass ")) {
        return false;
    }
    const auto at = from_address.rfind('@');
    if (at == std::string_view::npos || at + 1 == from_address.size()) {
        return false;
    }
    const auto from_domain = lowered(from_address.substr(at + 1));
    // "{@a.example : pass, @b.example : fail}": one result per signing domain.
    std::string_view rest = trimmed(dkim);
    if (rest.starts_with('{') && rest.ends_with('}')) {
        rest = rest.substr(1, rest.size() - 2);
    }
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const auto item = trimmed(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        const auto colon = item.rfind(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        auto domain = lowered(trimmed(item.substr(0, colon)));
        if (domain.starts_with('@')) {
            domain.erase(0, 1);
        }
        const auto result = lowered(trimmed(item.substr(colon + 1)));
        const bool aligned =
            !domain.empty() && (from_domain == domain || from_domain.ends_with("." + domain));
        if (aligned && result == "pass") {
            return true;
        }
    }
    return false;
}

inbound_message map_inbound(const inbound_parts& p, std::string_view post_body) {
    std::string header_block = p.headers;
    std::string text = p.text;
    if (!p.email.empty()) {
        auto split = p.email.find("\r\n\r\n");
        std::size_t skip = 4;
        if (split == std::string::npos) {
            split = p.email.find("\n\n");
            skip = 2;
        }
        header_block = p.email.substr(0, split);
        if (text.empty() && split != std::string::npos) {
            text = p.email.substr(split + skip);
        }
    }
    const auto header_or = [&header_block](const std::string& field, std::string_view name) {
        return field.empty() ? email::raw_header_value(header_block, name) : field;
    };
    inbound_message m;
    m.via = channel::email;
    const auto message_id = email::raw_header_value(header_block, "Message-ID");
    m.id = message_id.empty() ? "sha256:" + sha256_hex(post_body) : message_id;
    m.from = email::bare_address(header_or(p.from, "From"));
    m.to = email::address_list(header_or(p.to, "To"));
    m.subject = header_or(p.subject, "Subject");
    m.text = std::move(text);
    m.in_reply_to = email::raw_header_value(header_block, "In-Reply-To");
    m.references = email::raw_header_value(header_block, "References");
    m.sender_verified = sender_verified(p.spf, p.dkim, m.from);
    return m;
}

}  // namespace billsync::mappings::sendgrid
