#include "mappings/harvest/harvest_mapping.hpp"

#include <charconv>

#include "mappings/entity.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/money.hpp"

namespace billsync::mappings::harvest {

namespace {

using json = nlohmann::json;

const json* member(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return nullptr;
    }
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string text(const json& j, std::string_view key) {
    const auto* v = member(j, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

bool flag(const json& j, std::string_view key, bool fallback = false) {
    const auto* v = member(j, key);
    return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
}

std::string resolve(const mapping_options& o, std::string_view type, const source_ref& ref) {
    return o.resolve ? o.resolve(type, ref) : mappings::default_canonical_id(type, ref);
}

source_ref ref_to(const mapping_options& o, std::string id) {
    source_ref r;
    r.system = o.system;
    r.account = o.account_id;
    r.id = std::move(id);
    return r;
}

// The object's own source: id, updated_at as version and update time.
template <typename T>
bool read_source(const json& j, const mapping_options& o, source_ref& out, mapped<T>& m) {
    if (!j.is_object()) {
        m.error = "not a JSON object";
        return false;
    }
    out = ref_to(o, id_text(member(j, "id") != nullptr ? j["id"] : json()));
    if (out.id.empty()) {
        m.error = "'id' is missing or not an integer";
        return false;
    }
    out.version = text(j, "updated_at");
    if (!out.version.empty()) {
        out.updated = parse_timestamp(out.version);
        if (!out.updated) {
            m.error = "'updated_at' is not a timestamp";
            return false;
        }
    }
    return true;
}

// The id of a nested reference ({"client": {"id": 5, "name": …}}); empty when absent.
std::string nested_id(const json& j, std::string_view key) {
    const auto* v = member(j, key);
    return v != nullptr && v->is_object() && v->contains("id") ? id_text((*v)["id"])
                                                               : std::string();
}

std::string nested_text(const json& j, std::string_view key, std::string_view field) {
    const auto* v = member(j, key);
    return v != nullptr ? text(*v, field) : std::string();
}

}  // namespace

std::string id_text(const json& v) {
    if (v.is_object() && v.contains("id")) {
        return id_text(v["id"]);
    }
    if (v.is_number_unsigned()) {
        return std::to_string(v.get<std::uint64_t>());
    }
    if (v.is_number_integer()) {
        const auto n = v.get<std::int64_t>();
        return n >= 0 ? std::to_string(n) : std::string();
    }
    if (v.is_string()) {
        const auto s = v.get<std::string>();
        std::uint64_t n = 0;
        const auto* end = s.data() + s.size();
        if (!s.empty() && std::from_chars(s.data(), end, n).ptr == end) {
            return s;
        }
    }
    return {};
}

std::optional<std::int64_t> minutes_of_hours(std::string_view hours) {
    // Micro-hours, exactly; a minute is 1/60 h, so minutes = micro * 60 / 1e6.
    constexpr int digits = 6;
    auto micro = parse_decimal(hours, digits, rounding::half_even);
    if (!micro || *micro < 0 || *micro > std::int64_t{1'000'000'000'000}) {
        return std::nullopt;
    }
    const std::int64_t num = *micro * 60;
    constexpr std::int64_t den = 1'000'000;
    std::int64_t q = num / den;
    const std::int64_t r = num % den;
    if (r * 2 > den || (r * 2 == den && q % 2 == 1)) {
        ++q;
    }
    return q;
}

std::string hours_of_minutes(std::int64_t minutes) {
    // micro-hours, rounded half up (minutes are never negative here)
    const std::int64_t micro = (minutes * 1'000'000 + 30) / 60;
    auto s = format_decimal(micro, 6);
    if (s.find('.') != std::string::npos) {
        while (s.back() == '0') {
            s.pop_back();
        }
        if (s.back() == '.') {
            s.pop_back();
        }
    }
    return s;
}

mapped<time_entry> map_time_entry(const json& j, const mapping_options& o) {
    mapped<time_entry> m;
    time_entry t;
    if (!read_source(j, o, t.source, m)) {
        return m;
    }
    t.id = resolve(o, "time_entry", t.source);
    const auto spent = text(j, "spent_date");
    t.date = parse_civil_date(spent);
    if (!t.date) {
        m.error = "'spent_date' is missing or not a YYYY-MM-DD date";
        return m;
    }
    if (const auto user = nested_id(j, "user"); !user.empty()) {
        t.staff_id = resolve(o, "staff", ref_to(o, user));
    } else {
        m.error = "'user.id' is missing";
        return m;
    }
    if (const auto c = nested_id(j, "client"); !c.empty()) {
        t.client_id = resolve(o, "client", ref_to(o, c));
    }
    if (const auto p = nested_id(j, "project"); !p.empty()) {
        t.engagement_id = resolve(o, "project", ref_to(o, p));
    }
    t.service = nested_text(j, "task", "name");
    const auto* hours = member(j, "hours");
    const auto hours_text = hours != nullptr ? mappings::decimal_text(*hours) : std::nullopt;
    const auto minutes = hours_text ? minutes_of_hours(*hours_text) : std::nullopt;
    if (!minutes) {
        m.error = "'hours' is missing or not a non-negative decimal";
        return m;
    }
    t.minutes = *minutes;
    t.billable = flag(j, "billable", true);
    if (const auto* rate = member(j, "billable_rate")) {
        const auto rate_text = mappings::decimal_text(*rate);
        const auto minor =
            rate_text ? parse_decimal(*rate_text, minor_digits(o.currency), rounding::half_even)
                      : std::nullopt;
        if (!minor) {
            m.error = "'billable_rate' is not a decimal";
            return m;
        }
        t.hourly_rate = money{*minor, o.currency};
    }
    t.notes = text(j, "notes");
    t.billed = flag(j, "is_billed");
    t.locked = flag(j, "is_locked") || flag(j, "is_closed") || t.billed;
    if (const auto* ext = member(j, "external_reference"); ext != nullptr && ext->is_object()) {
        t.external_reference = text(*ext, "id");
    }
    m.value = std::move(t);
    return m;
}

time_entry deleted_time_entry(std::string_view id, const mapping_options& o) {
    time_entry t;
    t.source = ref_to(o, std::string(id));
    t.id = resolve(o, "time_entry", t.source);
    t.deleted = true;
    return t;
}

mapped<staff> map_user(const json& j, const mapping_options& o) {
    mapped<staff> m;
    staff s;
    if (!read_source(j, o, s.source, m)) {
        return m;
    }
    s.id = resolve(o, "staff", s.source);
    const auto first = text(j, "first_name");
    const auto last = text(j, "last_name");
    s.name = first.empty() ? last : last.empty() ? first : first + " " + last;
    s.email = text(j, "email");
    for (auto& c : s.email) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (const auto* roles = member(j, "access_roles");
        roles != nullptr && roles->is_array() && !roles->empty() && (*roles)[0].is_string()) {
        s.role = (*roles)[0].get<std::string>();
    }
    s.active = flag(j, "is_active", true);
    m.value = std::move(s);
    return m;
}

mapped<client> map_client(const json& j, const mapping_options& o) {
    mapped<client> m;
    client c;
    if (!read_source(j, o, c.source, m)) {
        return m;
    }
    c.id = resolve(o, "client", c.source);
    c.display_name = text(j, "name");
    if (c.display_name.empty()) {
        m.error = "'name' is missing";
        return m;
    }
    c.active = flag(j, "is_active", true);
    c.currency = text(j, "currency");
    m.value = std::move(c);
    return m;
}

mapped<project_link> map_project(const json& j, const mapping_options& o) {
    mapped<project_link> m;
    project_link p;
    if (!read_source(j, o, p.source, m)) {
        return m;
    }
    p.engagement_id = resolve(o, "project", p.source);
    if (const auto c = nested_id(j, "client"); !c.empty()) {
        p.client_id = resolve(o, "client", ref_to(o, c));
    }
    p.name = text(j, "name");
    p.active = flag(j, "is_active", true);
    m.value = std::move(p);
    return m;
}

}  // namespace billsync::mappings::harvest
