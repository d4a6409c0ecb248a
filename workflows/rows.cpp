#include "workflows/rows.hpp"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <cctype>

#include "state/tables.hpp"

namespace billsync::workflows {

using json = nlohmann::json;

std::string text_of(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t int_of(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return 0;
    }
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

state::result<std::optional<json>> read_row(const state::store& s,
                                            state::batch* b,
                                            std::string_view type,
                                            std::string_view id) {
    auto r = b != nullptr ? state::get_entity(s, *b, type, id) : state::get_entity(s, type, id);
    if (!r.ok()) {
        return state::result<std::optional<json>>::failure(r.st);
    }
    if (!r.value) {
        return {state::status::success(), std::nullopt};
    }
    auto j = json::parse(*r.value, nullptr, false);
    if (!j.is_object()) {
        return {state::status::success(), std::nullopt};
    }
    return {state::status::success(), std::move(j)};
}

void audit(context& ctx, std::string_view rule, std::string_view decision, json extra) {
    json line{{"rule", rule}, {"decision", decision}};
    if (extra.is_object()) {
        line.update(extra);
    }
    ctx.audit.append(ctx.b, ctx.now, line.dump());
}

std::string short_id(std::string_view prefix, std::string_view text) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
    std::string out(prefix);
    for (int i = 0; i < 5; ++i) {
        out += fmt::format("{:02x}", md[i]);
    }
    return out;
}

const date::time_zone* zone_of(const std::string& name) {
    try {
        return name.empty() ? date::locate_zone("UTC") : date::locate_zone(name);
    } catch (const std::exception&) {
        return date::locate_zone("UTC");
    }
}

date::local_days local_day(const date::time_zone* tz, util::instant t) {
    return date::floor<date::days>(tz->to_local(date::floor<std::chrono::seconds>(t)));
}

util::instant at_local(const date::time_zone* tz, date::local_days day, int hour) {
    const auto local = date::local_seconds(day) + std::chrono::hours(hour);
    return std::chrono::time_point_cast<util::instant::duration>(
        tz->to_sys(local, date::choose::earliest));
}

namespace {
std::string squash(std::string_view t) {
    std::string out;
    for (const char c : t) {
        if (c != ' ' && c != '-' && c != '_') {
            out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        }
    }
    return out;
}
}  // namespace

bool same_tag(std::string_view a, std::string_view b) { return squash(a) == squash(b); }

std::optional<state::action> queued_action(const state::store& s, std::string_view id) {
    auto v = s.get(state::cf::outbox, "a/" + std::string(id));
    state::action a;
    if (v.ok() && v.value && state::decode_action(*v.value, a)) {
        return a;
    }
    return std::nullopt;
}

}  // namespace billsync::workflows
