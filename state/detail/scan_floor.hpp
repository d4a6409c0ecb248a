#pragma once

// Where a queue-like scan may start. Rows deleted from the front of a key range stay as
// tombstones until compaction, and a scan from the start of the range steps over all of them:
// firing n timers one batch at a time would cost O(n^2). A scan_floor remembers a key below which
// no live row exists, so each scan starts at the first live row.
//
// Protocol: begin() returns the floor and a ticket; the scan starts there; raise(ticket, k)
// moves the floor up to k (the first live key seen, or the scan's end bound if it saw none), but
// never above a key passed to lower() since begin(). lower(k) runs from the on_commit hook of
// every batch that adds a row at k, so a row committed while a scan ran never ends up below the
// floor. Overlapping scans are allowed; only the most recent one may raise the floor.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace billsync::state::detail {

class scan_floor {
public:
    explicit scan_floor(std::string start) : floor_(std::move(start)) {}

    std::pair<std::string, std::uint64_t> begin() {
        std::lock_guard lock(mutex_);
        lowered_ = false;
        lowered_min_.clear();
        return {floor_, ++scans_};
    }

    void lower(std::string_view key) {
        std::lock_guard lock(mutex_);
        if (key < floor_) {
            floor_.assign(key);
        }
        if (!lowered_ || key < lowered_min_) {
            lowered_min_.assign(key);
            lowered_ = true;
        }
    }

    void raise(std::uint64_t ticket, std::string_view key) {
        std::lock_guard lock(mutex_);
        if (ticket != scans_) {
            return;
        }
        std::string_view target = key;
        if (lowered_ && std::string_view(lowered_min_) < target) {
            target = lowered_min_;
        }
        if (target > floor_) {
            floor_.assign(target);
        }
    }

private:
    std::mutex mutex_;
    std::string floor_;
    std::string lowered_min_;
    bool lowered_ = false;
    std::uint64_t scans_ = 0;
};

}  // namespace billsync::state::detail
