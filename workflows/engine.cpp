#include "workflows/engine.hpp"

#include <nlohmann/json.hpp>

#include "workflows/action_key.hpp"
#include "workflows/followup/followup_rule.hpp"

namespace billsync::workflows {

namespace {
constexpr std::string_view remind_prefix = "remind/";
}

engine::engine(std::set<std::string, std::less<>> action_sources)
    : action_sources_(std::move(action_sources)) {}

engine::~engine() = default;
engine::engine(engine&&) noexcept = default;

std::optional<engine::refresh_target> engine::before_timer(std::string_view timer_name) const {
    if (!followup_) {
        return std::nullopt;
    }
    if (auto invoice = followup::followup_rule::touch_invoice(timer_name)) {
        return refresh_target{"invoice", std::move(*invoice)};
    }
    return std::nullopt;
}

void engine::set_followup(std::unique_ptr<followup::followup_rule> rule) {
    followup_ = std::move(rule);
}

state::status engine::enqueue(context& ctx,
                              std::string_view rule,
                              const std::string& connector,
                              const std::string& entity,
                              std::uint64_t version,
                              std::string payload,
                              std::string_view cause) const {
    state::action a;
    a.id = action_key(rule, entity, version);
    a.connector = connector;
    a.kind = std::string(rule);
    a.payload = std::move(payload);
    a.next_attempt_at = ctx.now;
    auto added = ctx.outbox.enqueue(ctx.b, a);
    if (!added.ok()) {
        return added.st;
    }
    if (added.value) {
        ctx.enqueued.emplace_back(a.id, a.connector);
    }
    nlohmann::json line{{"decision", added.value ? "action_enqueued" : "action_already_known"},
                        {"action", a.id},
                        {"rule", rule},
                        {"entity", entity},
                        {"version", version},
                        {"cause", cause}};
    ctx.audit.append(ctx.b, ctx.now, line.dump());
    return state::status::success();
}

state::status engine::on_change(const mappings::change& c, context& ctx) const {
    if (followup_ && c.entity_type != "record") {
        return followup_->on_change(c, ctx);
    }
    if (c.entity_type != "record" || !action_sources_.contains(c.source)) {
        return state::status::success();
    }
    const auto timer_name = std::string(remind_prefix) + c.entity_id;
    if (c.what == mappings::change::op::deleted) {
        return ctx.timers.cancel(ctx.b, timer_name);
    }
    nlohmann::json payload{{"entity", c.entity_id}, {"version", c.version}};
    payload["fields"] = nlohmann::json::parse(c.fields_json, nullptr, false);
    if (auto st = enqueue(ctx,
                          "notify",
                          c.source,
                          c.entity_id,
                          c.version,
                          payload.dump(),
                          std::string(to_string(c.what)));
        !st.ok) {
        return st;
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

state::status engine::on_timer(const state::timer& t, context& ctx) const {
    if (followup_ && followup_->owns_timer(t.name)) {
        return followup_->on_timer(t, ctx);
    }
    if (t.name.starts_with(remind_prefix)) {
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
                               "timer " + t.name);
            }
        }
    }
    nlohmann::json line{{"decision", "timer_ignored"}, {"timer", t.name}};
    ctx.audit.append(ctx.b, ctx.now, line.dump());
    return state::status::success();
}

}  // namespace billsync::workflows
