#pragma once

// The committed, not yet removed events of one inbox queue, in sequence order, with their arrival
// times: what the inbox keeps in memory per pending event. A backlog of a few hundred thousand
// events is normal after an outage, so each costs 16 bytes in one deque (a std::map node costs
// about 64 with the allocator's overhead).
//
// Sequence numbers are handed out in order, but commits can land slightly out of order (two
// appends race to the group commit; a requeued dead letter commits after later appends), so
// add() inserts at its place, which is almost always the back. Removal is almost always at the
// front; an event removed from the middle (a dead letter) is marked and dropped when the front
// reaches it, or when marks outnumber live events.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "util/clock.hpp"

namespace billsync::state::detail {

class live_queue {
public:
    // Adds a committed event; a sequence number already present is left as it is.
    void add(std::uint64_t seq, util::instant at) {
        auto it = rows_.end();
        if (!rows_.empty() && seq_of(rows_.back()) >= seq) {
            it = lower(seq);
            if (it != rows_.end() && seq_of(*it) == seq) {
                if (removed(*it)) {
                    *it = {seq, at};
                    ++live_;
                    --marked_;
                }
                return;
            }
        }
        rows_.insert(it, {seq, at});
        ++live_;
    }

    // Removes an event; false when it is not here.
    bool erase(std::uint64_t seq) {
        auto it = lower(seq);
        if (it == rows_.end() || seq_of(*it) != seq || removed(*it)) {
            return false;
        }
        it->seq |= removed_bit;
        --live_;
        ++marked_;
        while (!rows_.empty() && removed(rows_.front())) {
            rows_.pop_front();
            --marked_;
        }
        if (marked_ > live_ && marked_ > 64) {
            std::erase_if(rows_, [](const row& r) { return removed(r); });
            marked_ = 0;
            rows_.shrink_to_fit();
        }
        return true;
    }

    [[nodiscard]] bool contains(std::uint64_t seq) const {
        auto it = lower(seq);
        return it != rows_.end() && seq_of(*it) == seq && !removed(*it);
    }

    [[nodiscard]] std::size_t size() const noexcept { return live_; }
    [[nodiscard]] bool empty() const noexcept { return live_ == 0; }

    // The oldest event's arrival time (the front is never a removed one).
    [[nodiscard]] std::optional<util::instant> oldest() const {
        if (rows_.empty()) {
            return std::nullopt;
        }
        return rows_.front().at;
    }

    // Calls f(seq, at) for the first events in order until it returns false.
    template <typename F>
    void for_each(F&& f) const {
        for (const auto& r : rows_) {
            if (!removed(r) && !f(r.seq, r.at)) {
                return;
            }
        }
    }

    // Rows held, live and marked (tests).
    [[nodiscard]] std::size_t rows_held() const noexcept { return rows_.size(); }

private:
    static constexpr std::uint64_t removed_bit = std::uint64_t{1} << 63;
    struct row {
        std::uint64_t seq;  // removed_bit set: removed, waiting for the front to pass it
        util::instant at;
    };
    static std::uint64_t seq_of(const row& r) noexcept { return r.seq & ~removed_bit; }
    static bool removed(const row& r) noexcept { return (r.seq & removed_bit) != 0; }

    std::deque<row>::iterator lower(std::uint64_t seq) {
        return std::lower_bound(rows_.begin(), rows_.end(), seq, [](const row& r, std::uint64_t s) {
            return seq_of(r) < s;
        });
    }
    std::deque<row>::const_iterator lower(std::uint64_t seq) const {
        return std::lower_bound(rows_.begin(), rows_.end(), seq, [](const row& r, std::uint64_t s) {
            return seq_of(r) < s;
        });
    }

    std::deque<row> rows_;
    std::size_t live_ = 0;
    std::size_t marked_ = 0;
};

}  // namespace billsync::state::detail
