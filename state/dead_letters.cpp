#include "state/dead_letters.hpp"

#include <utility>

#include "state/keys.hpp"
#include "state/outbox.hpp"
#include "state/timers.hpp"

namespace billsync::state {

namespace {

constexpr std::uint8_t dead_letter_format = 1;
constexpr std::string_view inbox_origin = "inbox";
constexpr std::string_view outbox_origin = "outbox";
constexpr std::string_view intake_origin = "intake";
constexpr std::string_view outbox_id_prefix = "outbox/";
constexpr std::string_view timer_origin = "timer";
constexpr std::uint8_t timer_record_format = 1;

}  // namespace

std::string encode_dead_letter(const dead_letter& d) {
    return codec::writer(dead_letter_format)
        .str(d.origin)
        .str(d.connector)
        .str(d.kind)
        .str(d.error)
        .str(d.payload)
        .u64(d.attempts)
        .time(d.at)
        .str(d.record)
        .take();
}

bool decode_dead_letter(std::string_view value, dead_letter& d) {
    codec::reader r(value, dead_letter_format);
    d.origin = r.str();
    d.connector = r.str();
    d.kind = r.str();
    d.error = r.str();
    d.payload = r.str();
    d.attempts = r.u32();
    d.at = r.time();
    d.record = r.str();
    return r.done();
}

std::string inbox_dead_letter_id(std::string_view connector, std::uint64_t seq) {
    return "inbox/" + std::string(connector) + "/" + std::to_string(seq);
}

std::string outbox_dead_letter_id(std::string_view action_id) {
    return std::string(outbox_id_prefix) + std::string(action_id);
}

dead_letter intake_dead_letter(const inbox_event& e, std::string_view error, util::instant at) {
    dead_letter d;
    // Keyed by the dedup key, so a redelivery of the same bad payload lands on the same row.
    d.id = "intake/" + e.connector + "/" + e.dedup_key;
    d.origin = intake_origin;
    d.connector = e.connector;
    d.kind = e.kind;
    d.error.assign(error);
    d.payload = e.body;
    d.at = at;
    d.record = encode_event(e);
    return d;
}

std::string timer_dead_letter_id(std::string_view timer_name) {
    return "timer/" + std::string(timer_name);
}

status dead_letters::from_timer(batch& b,
                                timers& from,
                                const timer& t,
                                std::string_view error,
                                std::uint32_t attempts,
                                util::instant at) {
    if (auto st = from.fire(b, t); !st.ok) {
        return st;
    }
    dead_letter d;
    d.origin = timer_origin;
    d.kind = "timer";
    d.error.assign(error);
    d.payload = t.payload;
    d.attempts = attempts;
    d.at = at;
    d.record = codec::writer(timer_record_format).str(t.name).time(t.due).take();
    b.put(cf::dead_letters, timer_dead_letter_id(t.name), encode_dead_letter(d));
    return {};
}

void dead_letters::from_inbox(batch& b,
                              const inbox_event& e,
                              std::string_view error,
                              util::instant at) {
    dead_letter d;
    d.id = inbox_dead_letter_id(e.connector, e.seq);
    d.origin = inbox_origin;
    d.connector = e.connector;
    d.kind = e.kind;
    d.error.assign(error);
    d.payload = e.body;
    d.attempts = e.attempts;
    d.at = at;
    d.record = encode_event(e);
    b.put(cf::dead_letters, d.id, encode_dead_letter(d));
    inbox_.remove(e, b);
}

result<std::vector<dead_letter>> dead_letters::list(std::size_t limit) const {
    using result_t = result<std::vector<dead_letter>>;
    std::vector<dead_letter> out;
    if (limit == 0) {
        return {};
    }
    status bad;
    auto st =
        store_.for_each(cf::dead_letters, "", [&](std::string_view key, std::string_view value) {
            dead_letter d;
            if (!decode_dead_letter(value, d)) {
                bad = status::failure("corrupt dead letter " + std::string(key));
                return false;
            }
            d.id.assign(key);
            out.push_back(std::move(d));
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

result<std::optional<dead_letter>> dead_letters::get(std::string_view id) const {
    using result_t = result<std::optional<dead_letter>>;
    auto row = store_.get(cf::dead_letters, id);
    if (!row.ok()) {
        return result_t::failure(std::move(row.st));
    }
    if (!row.value) {
        return {};
    }
    dead_letter d;
    if (!decode_dead_letter(*row.value, d)) {
        return result_t::failure(status::failure("corrupt dead letter " + std::string(id)));
    }
    d.id.assign(id);
    return {status::success(), std::move(d)};
}

status dead_letters::drop(std::string_view id) {
    auto d = get(id);
    if (!d.ok()) {
        return d.st;
    }
    if (!d.value) {
        return status::failure("no dead letter " + std::string(id));
    }
    batch b(store_);
    b.del(cf::dead_letters, id);
    return store_.write(b, true);
}

status dead_letters::retry(std::string_view id) {
    auto d = get(id);
    if (!d.ok()) {
        return d.st;
    }
    if (!d.value) {
        return status::failure("no dead letter " + std::string(id));
    }
    batch b(store_);
    const bool has_event = d.value->origin == inbox_origin ||
                           (d.value->origin == intake_origin && !d.value->record.empty());
    if (has_event) {
        inbox_event e;
        if (!decode_event(d.value->record, e)) {
            return status::failure("dead letter " + std::string(id) + " has a corrupt event");
        }
        e.connector = d.value->connector;
        inbox_.requeue(b, std::move(e));
    } else if (d.value->origin == outbox_origin && id.starts_with(outbox_id_prefix)) {
        if (auto st = outbox_.revive(b, id.substr(outbox_id_prefix.size())); !st.ok) {
            return st;
        }
    } else if (d.value->origin == timer_origin) {
        codec::reader r(d.value->record, timer_record_format);
        const auto name = r.str();
        const auto due = r.time();
        if (!r.done()) {
            return status::failure("dead letter " + std::string(id) + " has a corrupt timer");
        }
        if (timers_ == nullptr) {
            return status::failure("dead letter " + std::string(id) +
                                   " is a timer and the timers are not open here");
        }
        if (auto st = timers_->schedule(b, name, due, d.value->payload); !st.ok) {
            return st;
        }
    } else {
        return status::failure("dead letter " + std::string(id) + " has an unknown origin '" +
                               d.value->origin + "'");
    }
    b.del(cf::dead_letters, id);
    return store_.write(b, true);
}

}  // namespace billsync::state
