#pragma once

// Dead letters: events and actions that failed too often, kept for an operator.
//
//   dead_letters:  id -> dead_letter (binary codec, format 1)
//
// Ids: "inbox/<connector>/<seq>" for inbox events, "intake/<connector>/<dedup key>" for
// deliveries refused by their payload check, "outbox/<action id>" for outbox actions,
// "timer/<name>" for timers that failed to fire too often (the timer is removed; retry()
// schedules it again at its last due instant, so it fires at once).
// An inbox dead letter carries the whole event in `record`, so retry() can put it back at the
// tail of its connector's queue. An outbox action stays in the outbox in state dead (so its
// idempotency key is still known); retry() makes it pending again. Both moves are one batch.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/inbox.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

class outbox;
class timers;
struct timer;

struct dead_letter {
    std::string id;
    std::string origin;  // "inbox" | "intake" | "outbox" | "timer"
    std::string connector;
    std::string kind;
    std::string error;
    std::string payload;  // the event body / the action payload
    std::uint32_t attempts = 0;
    util::instant at{};
    std::string record;  // inbox, intake: encode_event() of the event; timer: its name and due;
                         // outbox: empty

    bool operator==(const dead_letter&) const = default;
};

std::string encode_dead_letter(const dead_letter& d);
bool decode_dead_letter(std::string_view value, dead_letter& d);
std::string inbox_dead_letter_id(std::string_view connector, std::uint64_t seq);
std::string outbox_dead_letter_id(std::string_view action_id);
std::string timer_dead_letter_id(std::string_view timer_name);

// A signed delivery that failed its payload check at intake, kept with the event it would have
// been ("intake/<connector>/<dedup key>"), so retry() can queue it like an inbox dead letter.
dead_letter intake_dead_letter(const inbox_event& e, std::string_view error, util::instant at);

class dead_letters {
public:
    // Without `t`, timer dead letters are listed and dropped but cannot be retried.
    dead_letters(store& s, inbox& in, outbox& out, timers* t = nullptr)
        : store_(s), inbox_(in), outbox_(out), timers_(t) {}

    // Moves an inbox event to the dead letters (removal from the inbox in the same batch).
    void from_inbox(batch& b, const inbox_event& e, std::string_view error, util::instant at);
    // Moves a due timer to the dead letters (it is removed from the timers in the same batch).
    status from_timer(batch& b,
                      timers& from,
                      const timer& t,
                      std::string_view error,
                      std::uint32_t attempts,
                      util::instant at);

    // In id order.
    result<std::vector<dead_letter>> list(std::size_t limit) const;
    result<std::optional<dead_letter>> get(std::string_view id) const;
    // Forgets a dead letter (an outbox action stays dead). Synced.
    status drop(std::string_view id);
    // Inbox, intake: to the queue's tail with attempts 0; outbox: back to pending; timer: scheduled
    // again at its due instant. Synced.
    status retry(std::string_view id);

private:
    store& store_;
    inbox& inbox_;
    outbox& outbox_;
    timers* timers_;
};

}  // namespace billsync::state
