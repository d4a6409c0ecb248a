#include "state/inbox.hpp"

#include <utility>

#include "state/keys.hpp"

namespace billsync::state {

namespace {

constexpr std::uint8_t event_format = 1;

std::string queue_prefix(std::string_view connector) {
    std::string p(connector);
    p.push_back('\0');
    return p;
}

std::string event_key(std::string_view connector, std::uint64_t seq) {
    std::string k = queue_prefix(connector);
    keys::append_be64(k, seq);
    return k;
}

bool valid_connector(std::string_view connector) {
    return !connector.empty() && connector.find('\0') == std::string_view::npos;
}

void call(const inbox::done_fn& done, const append_result& r) {
    if (done) {
        done(r);
    }
}

}  // namespace

std::string encode_event(const inbox_event& e) {
    return codec::writer(event_format)
        .str(e.kind)
        .str(e.dedup_key)
        .time(e.received_at)
        .str(e.headers_json)
        .str(e.body)
        .u64(e.attempts)
        .str(e.last_error)
        .take();
}

bool decode_event(std::string_view value, inbox_event& e) {
    codec::reader r(value, event_format);
    e.kind = r.str();
    e.dedup_key = r.str();
    e.received_at = r.time();
    e.headers_json = r.str();
    e.body = r.str();
    e.attempts = r.u32();
    e.last_error = r.str();
    return r.done();
}

result<std::unique_ptr<inbox>> inbox::open(store& s, group_commit& committer) {
    std::unique_ptr<inbox> in(new inbox(s, committer));
    status bad;
    auto st = s.for_each(cf::inbox, "", [&](std::string_view key, std::string_view value) {
        const auto sep = key.find('\0');
        if (sep == std::string_view::npos || key.size() != sep + 1 + 8) {
            bad = status::failure("corrupt inbox key");
            return false;
        }
        inbox_event e;
        if (!decode_event(value, e)) {
            bad =
                status::failure("corrupt inbox event in queue " + std::string(key.substr(0, sep)));
            return false;
        }
        const std::uint64_t seq = keys::read_be64(key.substr(sep + 1));
        auto& q = in->queue(key.substr(0, sep));
        q.live.add(seq, e.received_at);
        if (seq >= q.next_seq) {
            q.next_seq = seq + 1;
        }
        return true;
    });
    if (!st.ok) {
        return result<std::unique_ptr<inbox>>::failure(std::move(st));
    }
    if (!bad.ok) {
        return result<std::unique_ptr<inbox>>::failure(std::move(bad));
    }
    return {status::success(), std::move(in)};
}

inbox::queue_state& inbox::queue(std::string_view connector) {
    auto it = queues_.find(connector);
    if (it == queues_.end()) {
        it = queues_.emplace(std::string(connector), queue_state{}).first;
    }
    return it->second;
}

void inbox::append(std::string_view connector,
                   std::string_view kind,
                   std::string_view dedup_key,
                   std::string headers_json,
                   std::string body,
                   util::instant received_at,
                   done_fn done) {
    if (!valid_connector(connector)) {
        call(done, {append_outcome::failed, 0, status::failure("invalid connector name")});
        return;
    }
    const bool dedup = !dedup_key.empty();
    std::string dkey = dedup ? keys::join(connector, dedup_key) : std::string();
    if (dedup) {
        {
            std::lock_guard lock(mutex_);
            auto it = writing_.find(dkey);
            if (it != writing_.end()) {
                it->second.push_back(std::move(done));  // answered when the first one commits
                return;
            }
            writing_.emplace(dkey, std::vector<done_fn>{});
        }
        auto found = store_.get(cf::dedup, dkey);
        if (!found.ok()) {
            finish(dkey, {append_outcome::failed, 0, std::move(found.st)}, done);
            return;
        }
        if (found.value) {
            finish(dkey, {append_outcome::duplicate, 0, {}}, done);
            return;
        }
    }

    inbox_event e;
    e.kind.assign(kind);
    e.dedup_key.assign(dedup_key);
    e.received_at = received_at;
    e.headers_json = std::move(headers_json);
    e.body = std::move(body);

    std::uint64_t seq = 0;
    {
        std::lock_guard lock(mutex_);
        seq = queue(connector).next_seq++;
    }
    batch b(store_);
    b.put(cf::inbox, event_key(connector, seq), encode_event(e));
    if (dedup) {
        b.put(cf::dedup, dkey, keys::be64(keys::from_instant(received_at)));
    }
    b.on_commit([this, c = std::string(connector), seq, received_at] {
        std::lock_guard lock(mutex_);
        queue(c).live.add(seq, received_at);
    });
    group_commit::done_fn on_written = [this, dkey, seq, done](status st) {
        if (st.ok) {
            finish(dkey, {append_outcome::stored, seq, {}}, done);
        } else {
            finish(dkey, {append_outcome::failed, 0, std::move(st)}, done);
        }
    };
    if (!committer_.try_submit(std::move(b), std::move(on_written))) {
        finish(dkey,
               {append_outcome::failed,
                0,
                status::failure("inbox write queue is full or stopped; retry later")},
               done);
    }
}

void inbox::finish(const std::string& dedup_key, const append_result& first, const done_fn& done) {
    std::vector<done_fn> waiters;
    if (!dedup_key.empty()) {
        std::lock_guard lock(mutex_);
        auto it = writing_.find(dedup_key);
        if (it != writing_.end()) {
            waiters = std::move(it->second);
            writing_.erase(it);
        }
    }
    call(done, first);
    append_result others = first;
    if (first.outcome == append_outcome::stored) {
        others.outcome = append_outcome::duplicate;
    }
    for (const auto& w : waiters) {
        call(w, others);
    }
}

result<std::vector<inbox_event>> inbox::peek(std::string_view connector, std::size_t max) const {
    using result_t = result<std::vector<inbox_event>>;
    std::vector<inbox_event> out;
    // Only committed events (their on_commit hook ran): a row written by a group whose hooks are
    // still running is left for the next peek. Were it processed and removed first, its late
    // hook would count it as pending for good.
    std::vector<std::uint64_t> seqs;
    {
        std::lock_guard lock(mutex_);
        auto it = queues_.find(connector);
        if (it == queues_.end() || it->second.live.empty() || max == 0) {
            return {};
        }
        it->second.live.for_each([&](std::uint64_t seq, util::instant) {
            seqs.push_back(seq);
            return seqs.size() < max;
        });
    }
    const std::string prefix = queue_prefix(connector);
    status bad;
    auto next = seqs.begin();
    auto st =
        store_.for_each_range(cf::inbox,
                              event_key(connector, seqs.front()),
                              keys::prefix_end(prefix),
                              [&](std::string_view key, std::string_view value) {
                                  inbox_event e;
                                  if (key.size() != prefix.size() + 8 || !decode_event(value, e)) {
                                      bad = status::failure("corrupt inbox event");
                                      return false;
                                  }
                                  e.seq = keys::read_be64(key.substr(prefix.size()));
                                  while (next != seqs.end() && *next < e.seq) {
                                      ++next;  // its removal is committing
                                  }
                                  if (next == seqs.end() || *next != e.seq) {
                                      return false;  // not committed yet: stop, keep the order
                                  }
                                  e.connector.assign(connector);
                                  out.push_back(std::move(e));
                                  ++next;
                                  return next != seqs.end();
                              });
    if (!st.ok) {
        return result_t::failure(std::move(st));
    }
    if (!bad.ok) {
        return result_t::failure(std::move(bad));
    }
    return {status::success(), std::move(out)};
}

void inbox::remove(const inbox_event& e, batch& b) {
    b.del(cf::inbox, event_key(e.connector, e.seq));
    b.on_commit([this, c = e.connector, seq = e.seq] {
        std::lock_guard lock(mutex_);
        auto it = queues_.find(c);
        if (it != queues_.end()) {
            it->second.live.erase(seq);
        }
    });
}

status inbox::record_failure(inbox_event& e, std::string_view error) {
    {
        std::lock_guard lock(mutex_);
        auto it = queues_.find(e.connector);
        if (it == queues_.end() || !it->second.live.contains(e.seq)) {
            return status::failure("event " + e.connector + "/" + std::to_string(e.seq) +
                                   " is no longer in the inbox");
        }
    }
    inbox_event updated = e;
    ++updated.attempts;
    updated.last_error.assign(error);
    batch b(store_);
    b.put(cf::inbox, event_key(e.connector, e.seq), encode_event(updated));
    auto st = store_.write(b, true);
    if (st.ok) {
        e = std::move(updated);
    }
    return st;
}

std::uint64_t inbox::requeue(batch& b, inbox_event e) {
    std::uint64_t seq = 0;
    {
        std::lock_guard lock(mutex_);
        seq = queue(e.connector).next_seq++;
    }
    e.attempts = 0;
    e.last_error.clear();
    b.put(cf::inbox, event_key(e.connector, seq), encode_event(e));
    b.on_commit([this, c = e.connector, seq, at = e.received_at] {
        std::lock_guard lock(mutex_);
        queue(c).live.add(seq, at);
    });
    return seq;
}

std::vector<std::string> inbox::connectors() const {
    std::vector<std::string> out;
    std::lock_guard lock(mutex_);
    for (const auto& [name, q] : queues_) {
        if (!q.live.empty()) {
            out.push_back(name);
        }
    }
    return out;
}

std::uint64_t inbox::pending(std::string_view connector) const {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(connector);
    return it == queues_.end() ? 0 : it->second.live.size();
}

std::optional<util::instant> inbox::oldest(std::string_view connector) const {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(connector);
    if (it == queues_.end() || it->second.live.empty()) {
        return std::nullopt;
    }
    return it->second.live.oldest();  // seq order is arrival order
}

std::vector<inbox_stats> inbox::stats() const {
    std::vector<inbox_stats> out;
    std::lock_guard lock(mutex_);
    for (const auto& [name, q] : queues_) {
        if (q.live.empty()) {
            continue;
        }
        out.push_back({name, q.live.size(), q.live.oldest()});
    }
    return out;
}

}  // namespace billsync::state
