#include "mappings/qbo/qbo_time_activity.hpp"

#include "mappings/invoice_draft.hpp"
#include "mappings/json_fields.hpp"
#include "mappings/money.hpp"

namespace billsync::mappings::qbo {

namespace {

using nlohmann::json;

constexpr std::string_view marker_open = "[billsync-ref:";

std::string last_segment(std::string_view ref) {
    const auto slash = ref.rfind('/');
    return std::string(slash == std::string_view::npos ? ref : ref.substr(slash + 1));
}

// At most `max` bytes of s, cut at a UTF-8 character boundary.
std::string utf8_prefix(std::string_view s, std::size_t max) {
    if (s.size() <= max) {
        return std::string(s);
    }
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0U) == 0x80U) {
        --n;
    }
    return std::string(s.substr(0, n));
}

}  // namespace

std::string time_ref_marker(std::string_view key) {
    return std::string(marker_open) + std::string(key) + "]";
}

std::string key_in_description(std::string_view description) {
    const auto open = description.rfind(marker_open);
    if (open == std::string_view::npos) {
        return {};
    }
    const auto rest = description.substr(open + marker_open.size());
    const auto close = rest.rfind(']');
    return close == std::string_view::npos || close == 0 ? std::string()
                                                         : std::string(rest.substr(0, close));
}

parsed_time_draft parse_time_draft(std::string_view payload, std::string_view action_id) {
    parsed_time_draft out;
    const auto p = json::parse(payload, nullptr, false);
    if (!p.is_object()) {
        out.error = "payload is not a JSON object";
        return out;
    }
    time_draft d;
    d.key = fields::text(p, "key");
    if (d.key.empty()) {
        out.error = "\"key\" is missing";
        return out;
    }
    if (d.key != action_id) {
        out.error = "\"key\" differs from the action id";
        return out;
    }
    d.employee_ref = last_segment(fields::text(p, "user_ref"));
    if (d.employee_ref.empty()) {
        out.error = "\"user_ref\" (the QBO Employee) is missing";
        return out;
    }
    d.customer_ref = last_segment(fields::text(p, "client_ref"));
    if (d.customer_ref.empty()) {
        out.error = "\"client_ref\" (the QBO Customer) is missing";
        return out;
    }
    d.task = fields::trim(fields::text(p, "task"));
    if (d.task.empty()) {
        out.error = "\"task\" (the QBO service item) is missing";
        return out;
    }
    const auto date = parse_civil_date(fields::text(p, "spent_date"));
    if (!date) {
        out.error = "\"spent_date\" is not a YYYY-MM-DD date";
        return out;
    }
    d.date = *date;
    // Hours as exact decimal text: micro-hours, which must make whole minutes.
    const auto micro = parse_decimal(fields::text(p, "hours"), 6, rounding::reject);
    constexpr std::int64_t per_hour = 1'000'000;
    if (!micro || *micro <= 0 || *micro > 24 * per_hour || (*micro * 60) % per_hour != 0) {
        out.error = "\"hours\" is not decimal text above 0 and at most 24 of whole minutes";
        return out;
    }
    d.minutes = *micro * 60 / per_hour;
    d.notes = fields::text(p, "notes");
    const auto* billable = fields::member(p, "billable");
    d.billable = billable == nullptr || !billable->is_boolean() || billable->get<bool>();
    out.value = std::move(d);
    return out;
}

json time_activity_json(const time_draft& d, const service_item& item) {
    const auto marker = time_ref_marker(d.key);
    auto notes = utf8_prefix(d.notes, max_description - marker.size() - 1);
    json j{{"NameOf", "Employee"},
           {"EmployeeRef", {{"value", d.employee_ref}}},
           {"CustomerRef", {{"value", d.customer_ref}}},
           {"ItemRef", {{"value", item.id}, {"name", item.name}}},
           {"TxnDate", format_civil_date(d.date)},
           {"Hours", d.minutes / 60},
           {"Minutes", d.minutes % 60},
           {"BillableStatus", d.billable ? "Billable" : "NotBillable"},
           {"Description", notes.empty() ? marker : notes + " " + marker}};
    if (d.billable && item.unit_price) {
        j["HourlyRate"] = *item.unit_price;
    }
    return j;
}

std::string time_activity_body(const time_draft& d, const service_item& item) {
    return dump_exact(time_activity_json(d, item), {"HourlyRate"});
}

}  // namespace billsync::mappings::qbo
