#include "mappings/twilio/twilio_mapping.hpp"

#include <cctype>

#include "mappings/sms_keywords.hpp"

namespace billsync::mappings::twilio {

namespace {

std::string value_of(const form& f, std::string_view name) {
    for (const auto& [k, v] : f) {
        if (k == name) {
            return v;
        }
    }
    return {};
}

std::string upper_trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    std::string out(text.substr(first, last - first + 1));
    for (auto& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string e164_or_raw(const std::string& raw) { return normalize_e164(raw).value_or(raw); }

}  // namespace

std::uint8_t progress_of(std::string_view status) noexcept {
    if (status == "queued" || status == "accepted" || status == "scheduled") {
        return 1;
    }
    if (status == "sending") {
        return 2;
    }
    if (status == "sent") {
        return 3;
    }
    if (status == "delivered" || status == "undelivered" || status == "failed" ||
        status == "canceled") {
        return 4;
    }
    return 0;
}

bool failed_status(std::string_view status) noexcept {
    return status == "undelivered" || status == "failed";
}

message_status sent_status(std::string_view delivery_id,
                           std::string_view sid,
                           std::string_view to,
                           std::string_view status) {
    message_status m;
    m.via = channel::sms;
    m.delivery_id = std::string(delivery_id);
    m.status = std::string(status);
    m.progress = progress_of(status);
    m.failed = failed_status(status);
    m.provider_id = std::string(sid);
    m.address = std::string(to);
    return m;
}

suppression sms_suppression(std::string_view e164,
                            bool opted_out,
                            std::string_view reason,
                            std::string_view at) {
    return {.via = channel::sms,
            .address = std::string(e164),
            .opted_out = opted_out,
            .reason = std::string(reason),
            .at = std::string(at)};
}

std::optional<std::vector<entity>> map_inbound(const form& f,
                                               std::string_view received_at,
                                               std::string& error) {
    const auto sid = value_of(f, "MessageSid");
    const auto raw_from = value_of(f, "From");
    if (sid.empty() || raw_from.empty()) {
        error = "MessageSid and From are required";
        return std::nullopt;
    }
    inbound_message m;
    m.via = channel::sms;
    m.id = sid;
    m.from = e164_or_raw(raw_from);
    if (auto to = value_of(f, "To"); !to.empty()) {
        m.to.push_back(std::move(to));
    }
    m.text = value_of(f, "Body");
    m.keyword = std::string(to_string(classify_sms_keyword(m.text)));
    // Advanced Opt-Out names the keyword class itself, custom keywords included.
    if (const auto type = upper_trimmed(value_of(f, "OptOutType")); !type.empty()) {
        if (type == "STOP" || type == "START" || type == "HELP") {
            m.keyword = type == "STOP" ? "stop" : type == "START" ? "start" : "help";
        }
    }
    std::vector<entity> out;
    const bool stop = m.keyword == "stop";
    const bool start = m.keyword == "start";
    auto from = m.from;
    auto reason = upper_trimmed(m.text);
    out.emplace_back(std::move(m));
    if (stop || start) {
        out.emplace_back(sms_suppression(from, stop, reason, received_at));
    }
    return out;
}

std::optional<std::vector<entity>> map_status(const form& f,
                                              std::string_view delivery_id,
                                              std::string_view received_at,
                                              std::string& error) {
    const auto sid = value_of(f, "MessageSid");
    const auto status = value_of(f, "MessageStatus");
    if (sid.empty() || status.empty()) {
        error = "MessageSid and MessageStatus are required";
        return std::nullopt;
    }
    if (delivery_id.empty()) {
        error = "status callback without a delivery parameter";
        return std::nullopt;
    }
    const auto to = e164_or_raw(value_of(f, "To"));
    auto m = sent_status(delivery_id, sid, to, status);
    m.reason = value_of(f, "ErrorCode");
    std::vector<entity> out;
    const bool opted_out = m.reason == std::to_string(opted_out_code);
    auto reason = m.reason;
    out.emplace_back(std::move(m));
    if (opted_out && !to.empty()) {
        out.emplace_back(sms_suppression(to, true, reason, received_at));
    }
    return out;
}

}  // namespace billsync::mappings::twilio
