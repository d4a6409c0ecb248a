#include "state/outbox.hpp"

#include <utility>

#include "state/dead_letters.hpp"
#include "state/keys.hpp"

namespace billsync::state {

namespace {

constexpr std::uint8_t action_format = 1;
constexpr std::string_view action_prefix = "a/";
constexpr std::string_view pending_prefix = "p/";
constexpr std::string_view in_flight_prefix = "i/";
constexpr std::string_view unknown_prefix = "u/";

std::string with(std::string_view prefix, std::string_view id) {
    std::string k(prefix);
    k.append(id);
    return k;
}

std::string pending_key(util::instant at, std::string_view id) {
    std::string k(pending_prefix);
    keys::append_instant(k, at);
    k.append(id);
    return k;
}

// The index row of an action in its state, if its state has one.
std::optional<std::string> index_key(const action& a) {
    switch (a.state) {
        case action_state::pending:
            return pending_key(a.next_attempt_at, a.id);
        case action_state::in_flight:
            return with(in_flight_prefix, a.id);
        case action_state::unknown:
            return with(unknown_prefix, a.id);
        case action_state::done:
        case action_state::dead:
            break;
    }
    return std::nullopt;
}

status wrong_state(const action& a, std::string_view wanted) {
    return status::failure("outbox action " + a.id + " is " + std::string(to_string(a.state)) +
                           ", not " + std::string(wanted));
}

}  // namespace

std::string_view to_string(action_state s) noexcept {
    switch (s) {
        case action_state::pending:
            return "pending";
        case action_state::in_flight:
            return "in_flight";
        case action_state::unknown:
            return "unknown";
        case action_state::done:
            return "done";
        case action_state::dead:
            return "dead";
    }
    return "invalid";
}

std::string encode_action(const action& a) {
    codec::writer w(action_format);
    w.str(a.connector)
        .str(a.kind)
        .str(a.payload)
        .u64(static_cast<std::uint64_t>(a.state))
        .u64(a.attempts)
        .time(a.next_attempt_at)
        .str(a.last_error)
        .str(a.result);
    // Optional trailing fields: older rows end before them.
    const bool windowed = !a.window.empty() || a.deadline != util::instant{};
    if (a.first_attempt_at != util::instant{} || windowed) {
        w.time(a.first_attempt_at);
    }
    if (windowed) {
        w.str(a.window).time(a.deadline);
    }
    return w.take();
}

bool decode_action(std::string_view value, action& a) {
    codec::reader r(value, action_format);
    a.connector = r.str();
    a.kind = r.str();
    a.payload = r.str();
    const std::uint64_t state = r.u64();
    a.attempts = r.u32();
    a.next_attempt_at = r.time();
    a.last_error = r.str();
    a.result = r.str();
    a.first_attempt_at = r.done() ? util::instant{} : r.time();
    a.window = r.done() ? std::string() : r.str();
    a.deadline = r.done() ? util::instant{} : r.time();
    if (state > static_cast<std::uint64_t>(action_state::dead)) {
        return false;
    }
    a.state = static_cast<action_state>(state);
    return r.done();
}

outbox::outbox(store& s) : store_(s), ready_floor_(std::string(pending_prefix)) {}

result<std::unique_ptr<outbox>> outbox::open(store& s) {
    using result_t = result<std::unique_ptr<outbox>>;
    std::unique_ptr<outbox> out(new outbox(s));
    if (s.read_only()) {
        return {status::success(), std::move(out)};
    }
    std::vector<std::string> ids;
    auto st = s.for_each(cf::outbox, in_flight_prefix, [&](std::string_view key, std::string_view) {
        ids.emplace_back(key.substr(in_flight_prefix.size()));
        return true;
    });
    if (!st.ok) {
        return result_t::failure(std::move(st));
    }
    if (ids.empty()) {
        if (auto ls = out->load_live(); !ls.ok) {
            return result_t::failure(std::move(ls));
        }
        return {status::success(), std::move(out)};
    }
    batch b(s);
    for (const auto& id : ids) {
        action a;
        if (auto ls = out->load(b, id, a); !ls.ok) {
            return result_t::failure(std::move(ls));
        }
        if (a.state != action_state::in_flight) {
            b.del(cf::outbox, with(in_flight_prefix, id));  // a stale index row
            continue;
        }
        action after = a;
        after.state = action_state::unknown;
        out->save(b, &a, after);
    }
    if (auto ws = s.write(b, true); !ws.ok) {
        return result_t::failure(std::move(ws));
    }
    out->recovered_unknown_ = ids.size();
    if (auto ls = out->load_live(); !ls.ok) {
        return result_t::failure(std::move(ls));
    }
    return {status::success(), std::move(out)};
}

status outbox::load(batch& b, std::string_view id, action& out) const {
    auto row = store_.get(b, cf::outbox, with(action_prefix, id));
    if (!row.ok()) {
        return row.st;
    }
    if (!row.value) {
        return status::failure("no outbox action " + std::string(id));
    }
    if (!decode_action(*row.value, out)) {
        return status::failure("corrupt outbox action " + std::string(id));
    }
    out.id.assign(id);
    return {};
}

void outbox::save(batch& b, const action* before, const action& after) {
    auto old_index = before != nullptr ? index_key(*before) : std::nullopt;
    auto new_index = index_key(after);
    if (old_index && old_index != new_index) {
        b.del(cf::outbox, *old_index);
    }
    if (new_index && old_index != new_index) {
        b.put(cf::outbox, *new_index, "");
        if (after.state == action_state::pending) {
            b.on_commit([this, k = *new_index] { ready_floor_.lower(k); });
        }
    }
    b.put(cf::outbox, with(action_prefix, after.id), encode_action(after));
    // Batches commit in order, so applying each saved state at commit leaves the latest.
    b.on_commit([this, id = after.id, tracked = after] {
        std::lock_guard lock(live_mutex_);
        track(id, tracked);
    });
}

void outbox::track(const std::string& id, const action& a) {
    if (auto it = live_.find(id); it != live_.end()) {
        auto& counts = live_counts_[it->second.connector];
        if (it->second.state == action_state::unknown) {
            --counts.unknown;
        } else if (auto d = counts.due.find(it->second.due); d != counts.due.end()) {
            counts.due.erase(d);
        }
        if (counts.unknown == 0 && counts.due.empty()) {
            live_counts_.erase(it->second.connector);
        }
        live_.erase(it);
    }
    if (a.state == action_state::done || a.state == action_state::dead) {
        return;
    }
    auto& counts = live_counts_[a.connector];
    if (a.state == action_state::unknown) {
        ++counts.unknown;
    } else {
        counts.due.insert(a.next_attempt_at);
    }
    live_.emplace(id, live_action{a.connector, a.state, a.next_attempt_at});
}

status outbox::load_live() {
    std::vector<std::string> ids;
    for (auto prefix : {pending_prefix, in_flight_prefix, unknown_prefix}) {
        const std::size_t skip = prefix == pending_prefix ? prefix.size() + 8 : prefix.size();
        auto st = store_.for_each(cf::outbox, prefix, [&](std::string_view key, std::string_view) {
            if (key.size() >= skip) {
                ids.emplace_back(key.substr(skip));
            }
            return true;
        });
        if (!st.ok) {
            return st;
        }
    }
    std::lock_guard lock(live_mutex_);
    for (const auto& id : ids) {
        auto a = get(id);
        if (!a.ok()) {
            return a.st;
        }
        if (a.value) {
            track(id, *a.value);  // a stale index row (its action moved on) counts once, as is
        }
    }
    return {};
}

std::vector<outbox_stats> outbox::stats() const {
    std::vector<outbox_stats> out;
    std::lock_guard lock(live_mutex_);
    for (const auto& [connector, counts] : live_counts_) {
        outbox_stats st;
        st.connector = connector;
        st.pending = counts.due.size();
        st.unknown = counts.unknown;
        if (!counts.due.empty()) {
            st.oldest_due = *counts.due.begin();
        }
        out.push_back(std::move(st));
    }
    return out;
}

result<bool> outbox::enqueue(batch& b, action a) {
    if (a.id.empty()) {
        return result<bool>::failure(status::failure("outbox action without an id"));
    }
    {
        std::lock_guard lock(mutex_);
        if (!reserved_.insert(a.id).second) {
            return {status::success(), false};  // being added by a batch not yet written
        }
    }
    auto release = [this, id = a.id] {
        std::lock_guard lock(mutex_);
        reserved_.erase(id);
    };
    auto existing = store_.get(b, cf::outbox, with(action_prefix, a.id));
    if (!existing.ok() || existing.value) {
        release();
        if (!existing.ok()) {
            return result<bool>::failure(std::move(existing.st));
        }
        return {status::success(), false};
    }
    a.state = action_state::pending;
    a.attempts = 0;
    a.first_attempt_at = {};
    a.result.clear();
    save(b, nullptr, a);
    b.on_commit(release);
    b.on_abandon(release);
    return {status::success(), true};
}

result<std::vector<action>> outbox::ready(util::instant now, std::size_t limit) {
    using result_t = result<std::vector<action>>;
    std::vector<action> out;
    if (limit == 0) {
        return {};
    }
    std::string end(pending_prefix);
    keys::append_instant(end, now + util::duration{1});
    auto [from, ticket] = ready_floor_.begin();
    std::string first_live;
    status bad;
    auto st =
        store_.for_each_range(cf::outbox, from, end, [&](std::string_view key, std::string_view) {
            if (key.size() < pending_prefix.size() + 8) {
                bad = status::failure("corrupt outbox index row");
                return false;
            }
            if (first_live.empty()) {
                first_live.assign(key);
            }
            const std::string id(key.substr(pending_prefix.size() + 8));
            auto row = store_.get(cf::outbox, with(action_prefix, id));
            if (!row.ok()) {
                bad = std::move(row.st);
                return false;
            }
            action a;
            if (row.value && decode_action(*row.value, a) && a.state == action_state::pending) {
                a.id = id;
                out.push_back(std::move(a));
            }
            return out.size() < limit;
        });
    if (!st.ok) {
        return result_t::failure(std::move(st));
    }
    if (!bad.ok) {
        return result_t::failure(std::move(bad));
    }
    ready_floor_.raise(ticket, first_live.empty() ? std::string_view(end) : first_live);
    return {status::success(), std::move(out)};
}

result<std::optional<action>> outbox::get(std::string_view id) const {
    using result_t = result<std::optional<action>>;
    auto row = store_.get(cf::outbox, with(action_prefix, id));
    if (!row.ok()) {
        return result_t::failure(std::move(row.st));
    }
    if (!row.value) {
        return {};
    }
    action a;
    if (!decode_action(*row.value, a)) {
        return result_t::failure(status::failure("corrupt outbox action " + std::string(id)));
    }
    a.id.assign(id);
    return {status::success(), std::move(a)};
}

result<std::vector<action>> outbox::unknown(std::size_t limit) const {
    using result_t = result<std::vector<action>>;
    std::vector<action> out;
    status bad;
    if (limit == 0) {
        return {};
    }
    auto st =
        store_.for_each(cf::outbox, unknown_prefix, [&](std::string_view key, std::string_view) {
            auto a = get(key.substr(unknown_prefix.size()));
            if (!a.ok()) {
                bad = std::move(a.st);
                return false;
            }
            if (a.value && a.value->state == action_state::unknown) {
                out.push_back(std::move(*a.value));
            }
            return out.size() < limit;
        });
    if (!st.ok) {
        return result_t::failure(std::move(st));
    }
    if (!bad.ok) {
        return result_t::failure(std::move(bad));
    }
    return {status::success(), std::move(out)};
}

status outbox::mark_in_flight(std::string_view id, util::instant now) {
    batch b(store_);
    action a;
    if (auto st = load(b, id, a); !st.ok) {
        return st;
    }
    if (a.state != action_state::pending) {
        return wrong_state(a, "pending");
    }
    action after = a;
    after.state = action_state::in_flight;
    ++after.attempts;
    if (after.first_attempt_at == util::instant{}) {
        after.first_attempt_at = now;
    }
    save(b, &a, after);
    return store_.write(b, true);
}

status outbox::complete(batch& b, std::string_view id, std::string_view result) {
    action a;
    if (auto st = load(b, id, a); !st.ok) {
        return st;
    }
    if (a.state == action_state::done) {
        return {};
    }
    if (a.state == action_state::dead) {
        return wrong_state(a, "pending, in_flight or unknown");
    }
    action after = a;
    after.state = action_state::done;
    after.result.assign(result);
    save(b, &a, after);
    return {};
}

status outbox::retry_later(batch& b,
                           std::string_view id,
                           util::instant next_at,
                           std::string_view error) {
    action a;
    if (auto st = load(b, id, a); !st.ok) {
        return st;
    }
    if (a.state == action_state::done || a.state == action_state::dead) {
        return wrong_state(a, "pending, in_flight or unknown");
    }
    action after = a;
    after.state = action_state::pending;
    after.next_attempt_at = next_at;
    after.last_error.assign(error);
    save(b, &a, after);
    return {};
}

status outbox::defer(batch& b, std::string_view id, util::instant at, std::string_view why) {
    // Attempts count side effects started (mark_in_flight), so waiting costs none.
    return retry_later(b, id, at, why);
}

status outbox::drop(batch& b, std::string_view id, std::string_view why) {
    return complete(b, id, "dropped: " + std::string(why));
}

status outbox::to_dead_letter(batch& b,
                              std::string_view id,
                              std::string_view error,
                              util::instant at) {
    action a;
    if (auto st = load(b, id, a); !st.ok) {
        return st;
    }
    if (a.state == action_state::dead) {
        return {};
    }
    if (a.state == action_state::done) {
        return wrong_state(a, "pending, in_flight or unknown");
    }
    action after = a;
    after.state = action_state::dead;
    after.last_error.assign(error);
    save(b, &a, after);

    dead_letter d;
    d.id = outbox_dead_letter_id(id);
    d.origin = "outbox";
    d.connector = a.connector;
    d.kind = a.kind;
    d.error.assign(error);
    d.payload = a.payload;
    d.attempts = a.attempts;
    d.at = at;
    b.put(cf::dead_letters, d.id, encode_dead_letter(d));
    return {};
}

result<bool> outbox::fail(batch& b,
                          std::string_view id,
                          std::string_view error,
                          util::instant now,
                          const retry_policy& policy,
                          double random01,
                          std::optional<backoff_duration> retry_after) {
    action a;
    if (auto st = load(b, id, a); !st.ok) {
        return result<bool>::failure(std::move(st));
    }
    if (a.attempts >= policy.max_attempts) {
        auto st = to_dead_letter(b, id, error, now);
        return {std::move(st), true};
    }
    const auto delay = next_backoff(a.attempts, policy.base, policy.cap, random01, retry_after);
    auto st = retry_later(b, id, now + delay, error);
    return {std::move(st), false};
}

status outbox::revive(batch& b, std::string_view id) {
    action a;
    if (auto st = load(b, id, a); !st.ok) {
        return st;
    }
    if (a.state != action_state::dead) {
        return wrong_state(a, "dead");
    }
    action after = a;
    after.state = action_state::pending;
    after.attempts = 0;
    after.next_attempt_at = util::instant{};
    save(b, &a, after);
    return {};
}

}  // namespace billsync::state
