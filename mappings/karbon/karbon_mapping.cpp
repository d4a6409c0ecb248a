#include "mappings/karbon/karbon_mapping.hpp"

#include <date/tz.h>

#include <array>
#include <utility>

namespace billsync::mappings::karbon {

namespace {

using nlohmann::json;

struct map_error {
    std::string message;
};

std::string text(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string required_text(const json& j, std::string_view key) {
    auto s = text(j, key);
    if (s.empty()) {
        throw map_error{"missing or empty '" + std::string(key) + "'"};
    }
    return s;
}

std::optional<civil_date> date_field(const json& j,
                                     std::string_view key,
                                     const mapping_options& o) {
    if (!j.is_object()) {
        return std::nullopt;
    }
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_string()) {
        throw map_error{"'" + std::string(key) + "' is not a date: " + it->dump()};
    }
    const auto s = it->get<std::string>();
    if (s.empty()) {
        return std::nullopt;
    }
    auto d = civil_date_of(s, o.time_zone);
    if (!d) {
        throw map_error{"'" + std::string(key) + "' is not a date: " + it->dump()};
    }
    return d;
}

std::string resolve(const mapping_options& o, std::string_view type, const source_ref& ref) {
    return o.resolve ? o.resolve(type, ref) : default_canonical_id(type, ref);
}

source_ref ref_to(const mapping_options& o, std::string id) {
    source_ref r;
    r.system = o.system;
    r.id = std::move(id);
    return r;
}

source_ref source_of(const json& j, std::string_view key_field, const mapping_options& o) {
    auto s = ref_to(o, required_text(j, key_field));
    const auto updated = text(j, "LastModifiedDateTime");
    if (!updated.empty()) {
        s.updated = parse_timestamp(updated);
        if (!s.updated) {
            throw map_error{"'LastModifiedDateTime' is not a timestamp: " + updated};
        }
        s.version = updated;
    }
    return s;
}

std::string trimmed(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) {
        return {};
    }
    return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

template <class F>
auto guarded(F&& fn) -> mapped<typename std::invoke_result_t<F>::value_type> {
    using T = typename std::invoke_result_t<F>::value_type;
    mapped<T> out;
    try {
        out.value = fn();
    } catch (const map_error& e) {
        out.error = e.message;
    }
    return out;
}

client client_of(const json& j, std::string_view key_field, const mapping_options& o) {
    if (!j.is_object()) {
        throw map_error{"not a JSON object"};
    }
    client c;
    c.source = source_of(j, key_field, o);
    c.id = resolve(o, client_type, c.source);
    c.display_name = text(j, "FullName");
    if (c.display_name.empty()) {
        c.display_name = text(j, "PreferredName");
    }
    c.contact.billing_email = trimmed(text(j, "EmailAddress"));
    const auto phone = text(j, "PhoneNumber");
    if (!phone.empty()) {
        if (auto e164 = normalize_e164(phone, o.default_calling_code)) {
            c.contact.mobile = *e164;
        } else {
            c.contact.mobile_raw = phone;
        }
    }
    return c;
}

}  // namespace

std::optional<std::string> primary_status(std::string_view s) {
    static constexpr std::array<std::array<std::string_view, 3>, 5> table = {{
        {"Planned", "Planned", "planned"},
        {"Ready To Start", "ReadyToStart", "ready_to_start"},
        {"In Progress", "InProgress", "in_progress"},
        {"Waiting", "Waiting", "waiting"},
        {"Completed", "Completed", "completed"},
    }};
    for (const auto& row : table) {
        if (s == row[0] || s == row[1]) {
            return std::string(row[2]);
        }
    }
    return std::nullopt;
}

std::optional<std::string> filter_spelling(std::string_view s) {
    static constexpr std::array<std::array<std::string_view, 2>, 5> table = {{
        {"planned", "Planned"},
        {"ready_to_start", "Ready To Start"},
        {"in_progress", "In Progress"},
        {"waiting", "Waiting"},
        {"completed", "Completed"},
    }};
    const auto canonical = primary_status(s);
    for (const auto& row : table) {
        if (canonical && *canonical == row[0]) {
            return std::string(row[1]);
        }
    }
    return std::nullopt;
}

std::optional<civil_date> civil_date_of(std::string_view text, std::string_view time_zone) {
    if (text.size() == 10) {
        return parse_civil_date(text);
    }
    const auto t = parse_timestamp(text);
    if (!t) {
        return std::nullopt;
    }
    const auto day = std::chrono::floor<std::chrono::days>(*t);
    if (*t == day) {
        return civil_date{day};  // a calendar date written as midnight UTC
    }
    try {
        const auto* zone = date::locate_zone(std::string(time_zone));
        const auto local = zone->to_local(*t);
        return civil_date{std::chrono::floor<std::chrono::days>(std::chrono::sys_days{} +
                                                                (local.time_since_epoch()))};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

mapped<work_item> map_work_item(const json& j, const mapping_options& o) {
    return guarded([&] {
        if (!j.is_object()) {
            throw map_error{"not a JSON object"};
        }
        work_item w;
        w.source = ref_to(o, required_text(j, "WorkItemKey"));
        w.id = resolve(o, work_item_type, w.source);
        w.title = text(j, "Title");
        const auto client_key = text(j, "ClientKey");
        if (!client_key.empty()) {
            w.client_id = resolve(o, client_type, ref_to(o, client_key));
        }
        w.work_type = text(j, "WorkType");
        const auto primary = text(j, "PrimaryStatus");
        if (!primary.empty()) {
            auto s = primary_status(primary);
            if (!s) {
                throw map_error{"'PrimaryStatus' is not a Karbon primary status: " + primary};
            }
            w.status = *s;
        }
        w.stage = text(j, "SecondaryStatus");
        if (auto a = assignee_of(j, o)) {
            w.assignee_id = a->id;
        }
        w.start_date = date_field(j, "StartDate", o);
        w.due_date = date_field(j, "DueDate", o);
        w.completed_date = date_field(j, "CompletedDate", o);
        return std::optional<work_item>(std::move(w));
    });
}

std::optional<staff> assignee_of(const json& j, const mapping_options& o) {
    const auto key = text(j, "AssigneeKey");
    if (key.empty()) {
        return std::nullopt;
    }
    staff s;
    s.source = ref_to(o, key);
    s.id = resolve(o, staff_type, s.source);
    s.name = text(j, "AssigneeName");
    s.email = trimmed(text(j, "AssigneeEmailAddress"));
    return s;
}

mapped<client> map_contact(const json& j, const mapping_options& o) {
    return guarded([&] { return std::optional<client>(client_of(j, "ContactKey", o)); });
}

mapped<client> map_organization(const json& j, const mapping_options& o) {
    return guarded([&] { return std::optional<client>(client_of(j, "OrganizationKey", o)); });
}

work_item deleted_work_item(std::string key, const mapping_options& o) {
    work_item w;
    w.source = ref_to(o, std::move(key));
    w.id = resolve(o, work_item_type, w.source);
    w.deleted = true;
    return w;
}

client deleted_client(std::string key, const mapping_options& o) {
    client c;
    c.source = ref_to(o, std::move(key));
    c.id = resolve(o, client_type, c.source);
    c.deleted = true;
    return c;
}

}  // namespace billsync::mappings::karbon
