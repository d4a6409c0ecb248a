#include "workflows/engine.hpp"

#include <exception>
#include <nlohmann/json.hpp>

namespace billsync::workflows {

namespace {

// A rule that throws fails the step it was asked to decide, nothing more.
template <class Fn>
state::status contained(const rule& r, Fn&& fn) {
    try {
        return fn();
    } catch (const std::exception& e) {
        return state::status::failure("rule " + std::string(r.name()) + " failed: " + e.what());
    } catch (...) {
        return state::status::failure("rule " + std::string(r.name()) + " failed");
    }
}

}  // namespace

engine::engine(std::vector<std::unique_ptr<rule>> rules) : rules_(std::move(rules)) {}

engine::~engine() = default;
engine::engine(engine&&) noexcept = default;
engine& engine::operator=(engine&&) noexcept = default;

void engine::add(std::unique_ptr<rule> r) { rules_.push_back(std::move(r)); }

const rule* engine::find(std::string_view name) const noexcept {
    for (const auto& r : rules_) {
        if (r->name() == name) {
            return r.get();
        }
    }
    return nullptr;
}

std::string_view engine::timer_owner(std::string_view timer_name) const noexcept {
    for (const auto& r : rules_) {
        if (r->owns_timer(timer_name)) {
            return r->name();
        }
    }
    return {};
}

std::vector<refresh_target> engine::before_timer(std::string_view timer_name,
                                                 const state::store& s) const {
    for (const auto& r : rules_) {
        if (r->owns_timer(timer_name)) {
            return r->before_timer(timer_name, s);
        }
    }
    return {};
}

state::status engine::on_change(const mappings::change& c, context& ctx) const {
    for (const auto& r : rules_) {
        if (auto st = contained(*r, [&] { return r->on_change(c, ctx); }); !st.ok) {
            return st;
        }
    }
    return state::status::success();
}

state::status engine::on_start(context& ctx) const {
    for (const auto& r : rules_) {
        if (auto st = contained(*r, [&] { return r->on_start(ctx); }); !st.ok) {
            return st;
        }
    }
    return state::status::success();
}

state::status engine::on_timer(const state::timer& t, context& ctx) const {
    for (const auto& r : rules_) {
        if (r->owns_timer(t.name)) {
            return contained(*r, [&] { return r->on_timer(t, ctx); });
        }
    }
    nlohmann::json line{{"decision", "timer_ignored"}, {"timer", t.name}};
    ctx.audit.append(ctx.b, ctx.now, line.dump());
    return state::status::success();
}

std::optional<std::string> engine::recheck(const state::action& a, context& ctx) const {
    for (const auto& r : rules_) {
        std::optional<std::string> cause;
        try {
            cause = r->recheck(a, ctx);
        } catch (const std::exception&) {
            cause.reset();
        }
        if (cause) {
            return std::string(r->name()) + ": " + *cause;
        }
    }
    return std::nullopt;
}

void engine::on_action_done(const state::action& a, action_result res) const {
    for (const auto& r : rules_) {
        try {
            r->on_action_done(a, res);
        } catch (...) {  // counting only: an outcome is recorded whatever a rule makes of it
        }
    }
}

}  // namespace billsync::workflows
