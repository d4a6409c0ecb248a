#include "state/retention.hpp"

#include "state/keys.hpp"
#include "state/outbox.hpp"

namespace billsync::state {

namespace {

constexpr std::string_view changes_mark_prefix = "retention/changes/";
constexpr std::string_view dead_letter_prefix = "outbox/";  // dead_letters key of an action

void count(prune_counts& out, std::string_view label, std::uint64_t n = 1) {
    for (auto& [name, value] : out) {
        if (name == label) {
            value += n;
            return;
        }
    }
    out.emplace_back(std::string(label), n);
}

bool keeps_for_ever(std::chrono::seconds keep) { return keep.count() <= 0; }

// A whole pass never examines more than chunk rows of a table per step: it visits keys in
// [from, to), from where the last step stopped. `done` is set when the table's end was reached.
struct chunk_scan {
    std::size_t seen = 0;
    std::string last_key;
    bool done = true;
};

chunk_scan scan_chunk(const store& s,
                      cf family,
                      std::string_view from,
                      std::string_view to,
                      std::size_t chunk,
                      status& st,
                      const std::function<void(std::string_view key, std::string_view value)>& fn) {
    chunk_scan out;
    st = s.for_each_range(family, from, to, [&](std::string_view key, std::string_view value) {
        if (out.seen == chunk) {
            out.done = false;  // there is more: the next step starts at this key
            out.last_key = std::string(key);
            return false;
        }
        ++out.seen;
        fn(key, value);
        return true;
    });
    return out;
}

}  // namespace

void add_counts(prune_counts& into, const prune_counts& more) {
    for (const auto& [label, n] : more) {
        count(into, label, n);
    }
}

pruner::pruner(store& s, retention_policy policy, std::size_t chunk)
    : store_(s), policy_(std::move(policy)), chunk_(chunk == 0 ? 1 : chunk) {}

result<bool> pruner::begin_pass(util::instant now) {
    if (in_pass()) {
        return {status::success(), false};
    }
    now_ = now;
    changes_below_.reset();
    // The change log's mark for this pass: records below the next seq exist now.
    auto last = store_.last(cf::changes, "");
    if (!last.ok()) {
        return result<bool>::failure(std::move(last.st));
    }
    const std::uint64_t next_seq =
        last.value && last.value->first.size() == 8 ? keys::read_be64(last.value->first) + 1 : 1;
    batch b(store_);
    std::string mark(changes_mark_prefix);
    keys::append_instant(mark, now);
    b.put(cf::meta, mark, keys::be64(next_seq));
    // The newest mark at or before the cutoff bounds the old records; older marks go.
    if (!keeps_for_ever(policy_.changes)) {
        std::string cutoff_key(changes_mark_prefix);
        keys::append_instant(cutoff_key, now - policy_.changes);
        std::optional<std::string> newest_old;
        auto st = store_.for_each_range(cf::meta,
                                        changes_mark_prefix,
                                        cutoff_key + '\0',
                                        [&](std::string_view key, std::string_view value) {
                                            if (newest_old) {
                                                b.del(cf::meta, *newest_old);
                                            }
                                            newest_old = std::string(key);
                                            if (value.size() == 8) {
                                                changes_below_ = keys::read_be64(value);
                                            }
                                            return true;
                                        });
        if (!st.ok) {
            return result<bool>::failure(std::move(st));
        }
    }
    if (auto st = store_.write(b, false); !st.ok) {
        return result<bool>::failure(std::move(st));
    }
    phase_ = 0;
    resume_.clear();
    return {status::success(), true};
}

result<prune_counts> pruner::step() {
    prune_counts out;
    if (!in_pass()) {
        return {status::success(), std::move(out)};
    }
    batch b(store_);
    status st;
    switch (phase_) {
        case 0:
            st = step_dedup(b, out);
            break;
        case 1:
            st = step_audit(b, out);
            break;
        case 2:
            st = step_changes(b, out);
            break;
        case 3:
            st = step_outbox(b, out);
            break;
        default:
            st = step_expiring(policy_.expiring[phase_ - 4], b, out);
            break;
    }
    if (!st.ok) {
        return result<prune_counts>::failure(std::move(st));
    }
    if (!b.empty()) {
        if (auto ws = store_.write(b, false); !ws.ok) {
            return result<prune_counts>::failure(std::move(ws));
        }
    }
    return {status::success(), std::move(out)};
}

result<prune_counts> pruner::run_pass(util::instant now) {
    prune_counts total;
    if (auto begun = begin_pass(now); !begun.ok()) {
        return result<prune_counts>::failure(std::move(begun.st));
    }
    while (in_pass()) {
        auto r = step();
        if (!r.ok()) {
            return r;
        }
        add_counts(total, r.value);
    }
    return {status::success(), std::move(total)};
}

status pruner::step_dedup(batch& b, prune_counts& out) {
    count(out, "dedup", 0);
    if (keeps_for_ever(policy_.dedup)) {
        next_phase();
        return status::success();
    }
    const std::uint64_t limit = keys::from_instant(now_ - policy_.dedup);
    status st;
    const auto scan =
        scan_chunk(store_, cf::dedup, resume_, "", chunk_, st, [&](auto key, auto value) {
            if (value.size() == 8 && keys::read_be64(value) < limit) {
                b.del(cf::dedup, key);
                count(out, "dedup");
            }
        });
    if (scan.done) {
        next_phase();
    } else {
        resume_ = scan.last_key;
    }
    return st;
}

status pruner::step_audit(batch& b, prune_counts& out) {
    count(out, "audit", 0);
    if (keeps_for_ever(policy_.audit)) {
        next_phase();
        return status::success();
    }
    // Keys start with the time: everything before the cutoff's key is old.
    std::string cutoff;
    keys::append_instant(cutoff, now_ - policy_.audit);
    status st;
    const auto scan =
        scan_chunk(store_, cf::audit, resume_, cutoff, chunk_, st, [&](auto key, auto) {
            b.del(cf::audit, key);
            count(out, "audit");
        });
    if (scan.done) {
        next_phase();
    } else {
        resume_ = scan.last_key;
    }
    return st;
}

status pruner::step_changes(batch& b, prune_counts& out) {
    count(out, "changes", 0);
    if (keeps_for_ever(policy_.changes) || !changes_below_) {
        next_phase();
        return status::success();
    }
    status st;
    const auto scan = scan_chunk(
        store_, cf::changes, resume_, keys::be64(*changes_below_), chunk_, st, [&](auto key, auto) {
            b.del(cf::changes, key);
            count(out, "changes");
        });
    if (scan.done) {
        next_phase();
    } else {
        resume_ = scan.last_key;
    }
    return st;
}

status pruner::step_outbox(batch& b, prune_counts& out) {
    count(out, "outbox_compacted", 0);
    count(out, "outbox_forgotten", 0);
    if (keeps_for_ever(policy_.outbox) && keeps_for_ever(policy_.outbox_seen)) {
        next_phase();
        return status::success();
    }
    const auto compact_before = now_ - policy_.outbox;
    const auto forget_before = now_ - policy_.outbox_seen;
    constexpr std::string_view prefix = "a/";
    status st;
    status read_error;
    const std::string from = resume_.empty() ? std::string(prefix) : resume_;
    const auto scan = scan_chunk(
        store_, cf::outbox, from, keys::prefix_end(prefix), chunk_, st, [&](auto key, auto value) {
            action a;
            if (!read_error.ok || !decode_action(value, a)) {
                return;
            }
            if (a.state != action_state::done && a.state != action_state::dead) {
                return;
            }
            const std::string id(key.substr(prefix.size()));
            if (a.state == action_state::dead) {
                // A dead action with its dead letter may still be retried: it stays whole.
                auto letter = store_.get(cf::dead_letters, std::string(dead_letter_prefix) + id);
                if (!letter.ok()) {
                    read_error = letter.st;
                    return;
                }
                if (letter.value) {
                    return;
                }
            }
            const auto age = std::max(a.next_attempt_at, a.first_attempt_at);
            if (!keeps_for_ever(policy_.outbox_seen) && age < forget_before) {
                b.del(cf::outbox, key);
                count(out, "outbox_forgotten");
                return;
            }
            // The result stays: it is the side effect's remote id (a created invoice's), short, and
            // what the workflows' views link back to.
            const bool compact = a.payload.empty() && a.last_error.empty() && a.window.empty();
            if (!keeps_for_ever(policy_.outbox) && age < compact_before && !compact) {
                a.payload.clear();
                a.last_error.clear();
                a.window.clear();
                b.put(cf::outbox, key, encode_action(a));
                count(out, "outbox_compacted");
            }
        });
    if (!read_error.ok) {
        return read_error;
    }
    if (scan.done) {
        next_phase();
    } else {
        resume_ = scan.last_key;
    }
    return st;
}

status pruner::step_expiring(const expiring_rows& rows, batch& b, prune_counts& out) {
    count(out, rows.label, 0);
    if (keeps_for_ever(rows.keep) || !rows.time_of) {
        next_phase();
        return status::success();
    }
    const auto cutoff = now_ - rows.keep;
    const std::string prefix = keys::join(rows.entity_type, "");
    const std::string from = resume_.empty() ? prefix : resume_;
    status st;
    const auto scan = scan_chunk(store_,
                                 cf::entities,
                                 from,
                                 keys::prefix_end(prefix),
                                 chunk_,
                                 st,
                                 [&](auto key, auto value) {
                                     const auto t = rows.time_of(value);
                                     if (!t || *t < cutoff) {
                                         b.del(cf::entities, key);
                                         count(out, rows.label);
                                     }
                                 });
    if (scan.done) {
        next_phase();
    } else {
        resume_ = scan.last_key;
    }
    return st;
}

}  // namespace billsync::state
