#include "state/timers.hpp"

#include <algorithm>

#include "state/keys.hpp"

namespace billsync::state {

namespace {

constexpr std::string_view due_prefix = "d/";
constexpr std::string_view name_prefix = "n/";
constexpr std::string_view failures_prefix = "f/";

std::string due_key(util::instant due, std::string_view name) {
    std::string k;
    k.reserve(due_prefix.size() + 8 + name.size());
    k.append(due_prefix);
    keys::append_instant(k, due);
    k.append(name);
    return k;
}

std::string name_key(std::string_view name) {
    std::string k(name_prefix);
    k.append(name);
    return k;
}

std::string failures_key(std::string_view name) {
    std::string k(failures_prefix);
    k.append(name);
    return k;
}

status corrupt(std::string_view what) {
    return status::failure("corrupt timer row: " + std::string(what));
}

}  // namespace

timers::timers(store& s) : store_(s), floor_(std::string(due_prefix)) {
    std::int64_t n = 0;
    // A failed scan leaves the count at what it saw; reads of the state fail loudly elsewhere.
    (void)store_.for_each(cf::timers, name_prefix, [&n](std::string_view, std::string_view) {
        ++n;
        return true;
    });
    count_.store(n, std::memory_order_relaxed);
}

status timers::schedule(batch& b,
                        std::string_view name,
                        util::instant due,
                        std::string_view payload) {
    const std::string nk = name_key(name);
    auto old = store_.get(b, cf::timers, nk);
    if (!old.ok()) {
        return old.st;
    }
    if (old.value) {
        if (old.value->size() != 8) {
            return corrupt(nk);
        }
        b.del(cf::timers, due_key(keys::to_instant(keys::read_be64(*old.value)), name));
    } else {
        b.on_commit([this] { count_.fetch_add(1, std::memory_order_relaxed); });
    }
    std::string dk = due_key(due, name);
    b.put(cf::timers, dk, payload);
    b.put(cf::timers, nk, keys::be64(keys::from_instant(due)));
    b.on_commit([this, dk = std::move(dk)] { floor_.lower(dk); });
    return {};
}

status timers::cancel(batch& b, std::string_view name) {
    const std::string nk = name_key(name);
    auto old = store_.get(b, cf::timers, nk);
    if (!old.ok()) {
        return old.st;
    }
    if (!old.value) {
        return {};
    }
    if (old.value->size() != 8) {
        return corrupt(nk);
    }
    b.del(cf::timers, due_key(keys::to_instant(keys::read_be64(*old.value)), name));
    b.del(cf::timers, nk);
    b.del(cf::timers, failures_key(name));
    b.on_commit([this] { count_.fetch_sub(1, std::memory_order_relaxed); });
    return {};
}

status timers::fire(batch& b, const timer& t) {
    const std::string nk = name_key(t.name);
    auto current = store_.get(b, cf::timers, nk);
    if (!current.ok()) {
        return current.st;
    }
    b.del(cf::timers, due_key(t.due, t.name));
    if (current.value && current.value->size() == 8 &&
        keys::read_be64(*current.value) == keys::from_instant(t.due)) {
        b.del(cf::timers, nk);
        b.del(cf::timers, failures_key(t.name));
        b.on_commit([this] { count_.fetch_sub(1, std::memory_order_relaxed); });
    }
    return {};
}

result<std::uint32_t> timers::record_failure(batch& b, std::string_view name) {
    const std::string fk = failures_key(name);
    auto old = store_.get(b, cf::timers, fk);
    if (!old.ok()) {
        return result<std::uint32_t>::failure(std::move(old.st));
    }
    std::uint64_t count = 0;
    if (old.value) {
        if (old.value->size() != 8) {
            return result<std::uint32_t>::failure(corrupt(fk));
        }
        count = keys::read_be64(*old.value);
    }
    count = std::min<std::uint64_t>(count + 1, 0xffffffffu);
    b.put(cf::timers, fk, keys::be64(count));
    return {status::success(), static_cast<std::uint32_t>(count)};
}

result<std::vector<timer>> timers::due(util::instant now, std::size_t limit) {
    using result_t = result<std::vector<timer>>;
    std::vector<timer> out;
    if (limit == 0) {
        return {};
    }
    // Rows with due <= now are below "d/" be64(now + 1µs).
    std::string end(due_prefix);
    keys::append_instant(end, now + util::duration{1});
    auto [from, ticket] = floor_.begin();
    std::string first_live;
    std::uint64_t visited = 0;
    status bad;
    auto st = store_.for_each_range(
        cf::timers, from, end, [&](std::string_view key, std::string_view value) {
            ++visited;
            if (key.size() < due_prefix.size() + 8) {
                bad = corrupt("short key");
                return false;
            }
            if (first_live.empty()) {
                first_live.assign(key);
            }
            timer t;
            t.due = keys::to_instant(keys::read_be64(key.substr(due_prefix.size())));
            t.name.assign(key.substr(due_prefix.size() + 8));
            t.payload.assign(value);
            out.push_back(std::move(t));
            return out.size() < limit;
        });
    rows_visited_.fetch_add(visited, std::memory_order_relaxed);
    if (!st.ok) {
        return result_t::failure(std::move(st));
    }
    if (!bad.ok) {
        return result_t::failure(std::move(bad));
    }
    floor_.raise(ticket, first_live.empty() ? std::string_view(end) : first_live);
    return {status::success(), std::move(out)};
}

result<std::optional<util::instant>> timers::next_due() {
    using result_t = result<std::optional<util::instant>>;
    std::optional<util::instant> next;
    auto [from, ticket] = floor_.begin();
    std::string first_live;
    const std::string end = keys::prefix_end(due_prefix);
    auto st =
        store_.for_each_range(cf::timers, from, end, [&](std::string_view key, std::string_view) {
            rows_visited_.fetch_add(1, std::memory_order_relaxed);
            if (key.size() >= due_prefix.size() + 8) {
                next = keys::to_instant(keys::read_be64(key.substr(due_prefix.size())));
                first_live.assign(key);
            }
            return false;
        });
    if (!st.ok) {
        return result_t::failure(std::move(st));
    }
    floor_.raise(ticket, first_live.empty() ? std::string_view(end) : first_live);
    return {status::success(), next};
}

result<std::optional<timer>> timers::get(std::string_view name) const {
    using result_t = result<std::optional<timer>>;
    auto nk = store_.get(cf::timers, name_key(name));
    if (!nk.ok()) {
        return result_t::failure(std::move(nk.st));
    }
    if (!nk.value) {
        return {};
    }
    if (nk.value->size() != 8) {
        return result_t::failure(corrupt("name row"));
    }
    timer t;
    t.name.assign(name);
    t.due = keys::to_instant(keys::read_be64(*nk.value));
    auto row = store_.get(cf::timers, due_key(t.due, name));
    if (!row.ok()) {
        return result_t::failure(std::move(row.st));
    }
    if (!row.value) {
        return result_t::failure(corrupt("name row without due row"));
    }
    t.payload = std::move(*row.value);
    return {status::success(), std::move(t)};
}

}  // namespace billsync::state
