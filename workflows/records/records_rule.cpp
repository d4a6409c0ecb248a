#include "workflows/records/records_rule.hpp"

#include <nlohmann/json.hpp>

#include "workflows/action_key.hpp"

namespace billsync::workflows::records {

namespace {

constexpr std::string_view remind_prefix = "remind/";

state::result<bool> enqueue(context& ctx,
                            std::string_view rule,
                            const std::string& connector,
                            const std::string& entity,
                            std::uint64_t version,
                            std::string payload,
                            std::string_view why) {
    state::action a;
    a.id = action_key(rule, entity, version);
    a.connector = connector;
    a.kind = std::string(rule);
    a.payload = std::move(payload);
    return ctx.enqueue(std::move(a), cause{rule, entity, version, why});
}

}  // namespace

records_rule::records_rule(std::set<std::string, std::less<>> action_sources)
    : action_sources_(std::move(action_sources)) {}

bool records_rule::owns_timer(std::string_view timer_name) const noexcept {
    return timer_name.starts_with(remind_prefix);
}

state::status records_rule::on_change(const mappings::change& c, context& ctx) const {
    if (c.entity_type != "record" || !action_sources_.contains(c.source)) {
        return state::status::success();
    }
    const auto timer_name = std::string(remind_prefix) + c.entity_id;
    if (c.what == mappings::change::op::deleted) {
        return ctx.timers.cancel(ctx.b, timer_name);
    }
    nlohmann::json payload{{"entity", c.entity_id}, {"version", c.version}};
    payload["fields"] = nlohmann::json::parse(c.fields_json, nullptr, false);
    if (auto added = enqueue(ctx,
                             "notify",
                             c.source,
                             c.entity_id,
                             c.version,
                             payload.dump(),
                             std::string(to_string(c.what)));
        !added.ok()) {
        return added.st;
    }
    const auto& fields = payload["fields"];
    if (fields.is_object() && fields.contains("remind_after_s") &&
        fields["remind_after_s"].is_number_integer()) {
        const auto after = std::chrono::seconds(fields["remind_after_s"].get<std::int64_t>());
        nlohmann::json t{{"source", c.source}, {"entity", c.entity_id}, {"version", c.version}};
        return ctx.timers.schedule(ctx.b, timer_name, ctx.now + after, t.dump());
    }
    return ctx.timers.cancel(ctx.b, timer_name);
}

state::status records_rule::on_timer(const state::timer& t, context& ctx) const {
    const auto p = nlohmann::json::parse(t.payload, nullptr, false);
    if (!p.is_discarded() && p.contains("source") && p.contains("entity") &&
        p.contains("version")) {
        const auto source = p["source"].get<std::string>();
        if (action_sources_.contains(source)) {
            return enqueue(ctx,
                           "remind",
                           source,
                           p["entity"].get<std::string>(),
                           p["version"].get<std::uint64_t>(),
                           p.dump(),
                           "timer " + t.name)
                .st;
        }
    }
    nlohmann::json line{{"decision", "timer_ignored"}, {"timer", t.name}};
    ctx.audit.append(ctx.b, ctx.now, line.dump());
    return state::status::success();
}

std::unique_ptr<rule> make(const settings& /*s*/, const rule_deps& deps, std::string* /*error*/) {
    std::set<std::string, std::less<>> sources;
    for (const auto& c : deps.connectors) {
        if (c.takes_actions) {
            sources.insert(c.name);
        }
    }
    return std::make_unique<records_rule>(std::move(sources));
}

}  // namespace billsync::workflows::records
