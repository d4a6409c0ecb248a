#pragma once

// The inbox: events per connector in arrival order, deduplicated, durable before acknowledgement.
//
//   inbox:  connector '\0' be64(seq)      -> inbox_event (binary codec v1, see keys.hpp)
//   dedup:  connector '\0' dedup_key      -> be64(biased received_at)
//
// Event value, format byte 1: kind, dedup_key, received_at, headers_json, body, attempts,
// last_error (connector and seq come from the key).
//
// append() writes the inbox row and the dedup row in ONE batch through group_commit, and reports
// `stored` only once that batch is fsynced. Dedup rows outlive inbox rows (state/retention removes
// those older than `[daemon.retention] dedup_days`), so a redelivery after processing is still a
// duplicate. Race-freedom: a dedup key being appended is held in memory until its group is
// written; an identical delivery arriving meanwhile waits for that outcome and then reports
// `duplicate` (or `failed` if the first write failed, so the vendor retries and nothing is lost).
// An empty dedup_key disables deduplication for that event.
//
// Readers (one consumer per connector, e.g. its strand): peek() returns the oldest events,
// remove() adds the delete to the caller's batch (together with the entity/change rows the event
// produced). Counts and the oldest received_at per connector are kept in memory, initialised by
// one scan at open; the in-memory sequence index also lets peek() seek straight past the
// tombstones of removed events.
//
// Threads: every member is thread-safe. append() does one point lookup on the caller's thread;
// its completion runs on the group_commit thread (or inline for an immediate failure).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "state/detail/live_queue.hpp"
#include "state/group_commit.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

struct inbox_event {
    std::string connector;
    std::string kind;
    std::string dedup_key;
    util::instant received_at{};
    std::string headers_json;
    std::string body;
    std::uint32_t attempts = 0;
    std::string last_error;
    std::uint64_t seq = 0;  // position in the connector's queue (from the key)

    bool operator==(const inbox_event&) const = default;
};

// Value encoding of an event (without connector and seq); used by dead letters too.
std::string encode_event(const inbox_event& e);
bool decode_event(std::string_view value, inbox_event& e);

enum class append_outcome : std::uint8_t { stored, duplicate, failed };

struct append_result {
    append_outcome outcome = append_outcome::failed;
    std::uint64_t seq = 0;  // stored: the event's seq; duplicate: the original's seq if known
    status st;              // failed: why (io_error / no_space set for disk trouble)
};

struct inbox_stats {
    std::string connector;
    std::uint64_t pending = 0;
    std::optional<util::instant> oldest;
};

class inbox {
public:
    using done_fn = std::function<void(append_result)>;

    // One scan of the inbox column family initialises sequence numbers and counters.
    static result<std::unique_ptr<inbox>> open(store& s, group_commit& committer);

    void append(std::string_view connector,
                std::string_view kind,
                std::string_view dedup_key,
                std::string headers_json,
                std::string body,
                util::instant received_at,
                done_fn done);

    // The oldest max events of connector, in order.
    result<std::vector<inbox_event>> peek(std::string_view connector, std::size_t max) const;
    // Adds the removal to b; counters follow when b commits.
    void remove(const inbox_event& e, batch& b);
    // Durably (synced) counts a failed processing attempt: e.attempts + 1, e.last_error = error.
    status record_failure(inbox_event& e, std::string_view error);
    // Puts e back at the tail of its connector's queue with a new seq and attempts = 0 (used to
    // retry a dead letter). Returns the new seq; the event appears when b commits.
    std::uint64_t requeue(batch& b, inbox_event e);

    // Connectors with pending events, sorted.
    std::vector<std::string> connectors() const;
    std::uint64_t pending(std::string_view connector) const;
    std::optional<util::instant> oldest(std::string_view connector) const;
    std::vector<inbox_stats> stats() const;

private:
    struct queue_state {
        std::uint64_t next_seq = 1;
        detail::live_queue live;  // committed, not yet removed (16 bytes an event)
    };

    inbox(store& s, group_commit& committer) : store_(s), committer_(committer) {}
    void finish(const std::string& dedup_key, const append_result& first, const done_fn& done);
    queue_state& queue(std::string_view connector);  // requires mutex_

    store& store_;
    group_commit& committer_;
    mutable std::mutex mutex_;
    std::map<std::string, queue_state, std::less<>> queues_;
    // connector '\0' dedup_key of appends not yet written -> deliveries waiting for the outcome
    std::unordered_map<std::string, std::vector<done_fn>> writing_;
};

}  // namespace billsync::state
