#pragma once

// The simple tables: cursors, tokens, entities, identity map (xref), change log and audit log.
// Writers add to a caller's batch so these rows commit together with the rest of a step.
//
//   cursors:   key (e.g. "harvest/time_entries")          -> opaque cursor
//   tokens:    key (e.g. "qbo/refresh_token")             -> opaque token (sealing is not ours)
//   entities:  type '\0' id                               -> canonical entity (JSON)
//   xref:      "r/" system '\0' remote_id                 -> local id
//              "l/" local_id '\0' system                  -> remote id
//   changes:   be64(seq)                                  -> change record
//   audit:     be64(biased time) be64(seq)                -> one JSON line

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mappings/entity.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

result<std::optional<std::string>> get_cursor(const store& s, std::string_view key);
void put_cursor(batch& b, std::string_view key, std::string_view value);

result<std::optional<std::string>> get_token(const store& s, std::string_view key);
void put_token(batch& b, std::string_view key, std::string_view value);
void delete_token(batch& b, std::string_view key);

result<std::optional<std::string>> get_entity(const store& s,
                                              std::string_view type,
                                              std::string_view id);
// The same, reading the batch's own writes first.
result<std::optional<std::string>> get_entity(const store& s,
                                              batch& b,
                                              std::string_view type,
                                              std::string_view id);
void put_entity(batch& b, std::string_view type, std::string_view id, std::string_view value);
void delete_entity(batch& b, std::string_view type, std::string_view id);
// fn(id, value) -> bool (false stops), in id order.
status for_each_entity(const store& s,
                       std::string_view type,
                       const std::function<bool(std::string_view, std::string_view)>& fn);

void put_xref(batch& b,
              std::string_view system,
              std::string_view remote_id,
              std::string_view local_id);
result<std::optional<std::string>> local_id(const store& s,
                                            std::string_view system,
                                            std::string_view remote_id);
result<std::optional<std::string>> remote_id(const store& s,
                                             std::string_view local_id,
                                             std::string_view system);
// The same, reading the batch's own writes first (a link written earlier in the same step).
result<std::optional<std::string>> remote_id(const store& s,
                                             batch& b,
                                             std::string_view local_id,
                                             std::string_view system);
// The canonical ids a connector's mapping gives vendor objects: the identity-map row of the object
// when there is one, else mappings::default_canonical_id. `s` must outlive the resolver.
mappings::id_resolver canonical_ids(const store& s, std::string system);

// Every system a canonical id is linked from, with its remote key, in system order: one
// canonical client may be a ledger customer, a practice organization and a time-tracking client.
struct identity_link {
    std::string system;
    std::string remote;
};
result<std::vector<identity_link>> links_of(const store& s, std::string_view local_id);

// An append-only log keyed by sequence number; the next number is found at open.
class change_log {
public:
    static result<std::unique_ptr<change_log>> open(store& s);
    // Returns the seq of the appended record (numbers of abandoned batches are skipped).
    std::uint64_t append(batch& b, std::string_view record);
    void remove(batch& b, std::uint64_t seq);
    // Records with seq >= from, in order.
    result<std::vector<std::pair<std::uint64_t, std::string>>> read(std::uint64_t from,
                                                                    std::size_t limit) const;

private:
    explicit change_log(store& s) : store_(s) {}
    store& store_;
    std::atomic<std::uint64_t> next_{1};
};

struct audit_entry {
    util::instant at{};
    std::uint64_t seq = 0;
    std::string line;
};

class audit_log {
public:
    static result<std::unique_ptr<audit_log>> open(store& s);
    void append(batch& b, util::instant at, std::string_view json_line);
    // Entries with time >= from, in time order.
    result<std::vector<audit_entry>> read(util::instant from, std::size_t limit) const;
    // The seq the next append takes. Every line appended after this was read has a seq at least
    // this high, so a single writer finds the lines one of its steps wrote by their seq range.
    std::uint64_t next_seq() const noexcept { return next_.load(); }

private:
    explicit audit_log(store& s) : store_(s) {}
    store& store_;
    std::atomic<std::uint64_t> next_{1};
};

}  // namespace billsync::state
