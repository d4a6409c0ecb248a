#include "sim/faults.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace billsync::simulators {

namespace {

constexpr std::array<std::pair<fault_kind, std::string_view>, 7> kind_names = {{
    {fault_kind::server_error, "server_error"},
    {fault_kind::rate_limited, "rate_limited"},
    {fault_kind::rate_limited_bare, "rate_limited_bare"},
    {fault_kind::timeout_unread, "timeout_unread"},
    {fault_kind::timeout_after_read, "timeout_after_read"},
    {fault_kind::reset_after_write, "reset_after_write"},
    {fault_kind::slow, "slow"},
}};

std::uint64_t hash_text(std::uint64_t h, std::string_view s) noexcept {
    // FNV-1a, then mixed: stable across platforms and runs (std::hash is not promised to be).
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

bool matches(const std::string& pattern_method,
             const std::string& prefix,
             std::string_view method,
             std::string_view path) {
    return (pattern_method == "*" || pattern_method == method) && path.starts_with(prefix);
}

}  // namespace

std::uint64_t mix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::string_view to_string(fault_kind k) noexcept {
    for (const auto& [kind, name] : kind_names) {
        if (kind == k) {
            return name;
        }
    }
    return "unknown";
}

std::optional<fault_kind> fault_kind_from(std::string_view name) noexcept {
    for (const auto& [kind, n] : kind_names) {
        if (n == name) {
            return kind;
        }
    }
    return std::nullopt;
}

fault_plan::fault_plan(std::uint64_t seed, std::string vendor)
    : seed_(seed), vendor_(std::move(vendor)) {}

void fault_plan::add(fault_rule rule) {
    std::lock_guard lock(mutex_);
    rules_.push_back(std::move(rule));
}

void fault_plan::add(webhook_fault_rule rule) {
    std::lock_guard lock(mutex_);
    webhook_rules_.push_back(std::move(rule));
}

void fault_plan::set_enabled(bool on) {
    std::lock_guard lock(mutex_);
    enabled_ = on;
}

bool fault_plan::enabled() const {
    std::lock_guard lock(mutex_);
    return enabled_;
}

std::uint64_t fault_plan::draw(std::string_view a,
                               std::string_view b,
                               std::uint64_t n,
                               std::uint64_t salt) const {
    auto h = mix64(seed_ ^ 0x6368616f73ULL);
    h = hash_text(h, vendor_);
    h = hash_text(h, a);
    h = hash_text(h ^ 0x2f, b);
    return mix64(h ^ mix64(n) ^ mix64(salt + 0x51ULL));
}

double fault_plan::unit(std::string_view a,
                        std::string_view b,
                        std::uint64_t n,
                        std::uint64_t salt) const {
    return static_cast<double>(draw(a, b, n, salt) >> 11) * 0x1.0p-53;
}

std::optional<fault_rule> fault_plan::decide(std::string_view method, std::string_view path) {
    std::lock_guard lock(mutex_);
    std::string key;
    key.reserve(method.size() + 1 + path.size());
    key.append(method).append(" ").append(path);
    auto it = routes_.find(key);
    if (it == routes_.end()) {
        it = routes_.emplace(key, route_state{}).first;
    }
    auto& route = it->second;
    const auto nth = ++route.requests;
    if (!enabled_) {
        route.in_a_row = 0;
        return std::nullopt;
    }
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        const auto& rule = rules_[i];
        if (!matches(rule.method, rule.path_prefix, method, path)) {
            continue;
        }
        const bool fires =
            rule.permanent || ((rule.max_in_a_row == 0 || route.in_a_row < rule.max_in_a_row) &&
                               unit(method, path, nth, i) < rule.probability);
        if (!fires) {
            continue;
        }
        ++route.in_a_row;
        injected_.push_back({vendor_,
                             std::string(to_string(rule.kind)),
                             std::string(method),
                             std::string(path),
                             nth,
                             rule.permanent});
        return rule;
    }
    route.in_a_row = 0;
    return std::nullopt;
}

std::vector<std::size_t> fault_plan::delivery_order(std::string_view source, std::size_t count) {
    std::lock_guard lock(mutex_);
    std::vector<std::size_t> order;
    order.reserve(count);
    const webhook_fault_rule* rule = nullptr;
    for (const auto& r : webhook_rules_) {
        if (r.source == "*" || r.source == source) {
            rule = &r;
            break;
        }
    }
    auto bit = batches_.find(source);
    if (bit == batches_.end()) {
        bit = batches_.emplace(std::string(source), 0).first;
    }
    const auto batch = ++bit->second;
    const auto note = [&](std::string what, std::size_t i) {
        injected_.push_back(
            {vendor_, std::move(what), "POST", std::string(source), batch * 1'000'000 + i, false});
    };
    for (std::size_t i = 0; i < count; ++i) {
        if (!enabled_ || rule == nullptr) {
            order.push_back(i);
            continue;
        }
        if (unit(source, "lose", batch * 1'000'000 + i, 1) < rule->lose) {
            note("webhook_lost", i);
            continue;
        }
        order.push_back(i);
        if (unit(source, "duplicate", batch * 1'000'000 + i, 2) < rule->duplicate) {
            note("webhook_duplicated", i);
            order.push_back(i);
        }
    }
    if (enabled_ && rule != nullptr && order.size() > 1 &&
        unit(source, "reorder", batch, 3) < rule->reorder) {
        note("webhook_reordered", order.size());
        // Fisher–Yates with the plan's own draws (std::shuffle's algorithm is not specified).
        for (std::size_t i = order.size() - 1; i > 0; --i) {
            const auto j = static_cast<std::size_t>(draw(source, "shuffle", batch, i) % (i + 1));
            std::swap(order[i], order[j]);
        }
    }
    return order;
}

std::vector<injected_fault> fault_plan::injected() const {
    std::lock_guard lock(mutex_);
    return injected_;
}

std::size_t fault_plan::injected_count() const {
    std::lock_guard lock(mutex_);
    return injected_.size();
}

std::map<std::string, std::uint64_t> fault_plan::counts() const {
    std::lock_guard lock(mutex_);
    std::map<std::string, std::uint64_t> out;
    for (const auto& f : injected_) {
        ++out[f.what];
    }
    return out;
}

}  // namespace billsync::simulators
