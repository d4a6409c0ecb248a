#pragma once

// Group commit: many writers, one fsync. Batches submitted concurrently are merged into one
// RocksDB write with sync = true by a single committer thread; then every completion runs, on
// the committer thread, in submission order (callers re-post to their own executor). While the
// committer fsyncs one group the next one gathers, so throughput grows with concurrency instead of
// being capped at one request per fsync.
//
// A group either commits as a whole or fails as a whole: every batch in a failed group gets the
// failure status (a batch that cannot be written at all, e.g. one built for another store, is
// failed alone before the group is written). Batches of a failed group are destroyed (running their
// on_abandon hooks) before the completions run, so a completion may resubmit at once.
//
// Backpressure: at most max_queued batches wait; submit() blocks beyond that and try_submit()
// refuses (a webhook handler answers 503 and the vendor redelivers later).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "state/store.hpp"

namespace billsync::state {

struct group_commit_options {
    std::size_t max_queued = 8192;            // batches waiting to be written
    std::size_t max_group_batches = 1024;     // batches merged into one write at most
    std::size_t max_group_bytes = 32u << 20;  // stop adding to a group beyond this size
    bool sync = true;                         // false only for benchmarks of the merge itself
};

class group_commit {
public:
    using done_fn = std::function<void(status)>;

    explicit group_commit(store& s, group_commit_options options = {});
    ~group_commit();  // stop()
    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;

    // Queues b; blocks while the queue is full. After stop(), done runs at once with a failure.
    void submit(batch b, done_fn done);
    // Queues b unless the queue is full or stopped; on false, b and done are left untouched.
    bool try_submit(batch&& b, done_fn&& done);

    // Writes everything already queued, runs its completions, then joins the committer thread.
    // Idempotent; later submits fail.
    void stop();

    std::uint64_t groups_written() const noexcept {
        return groups_.load(std::memory_order_relaxed);
    }
    std::uint64_t batches_written() const noexcept {
        return batches_.load(std::memory_order_relaxed);
    }
    std::uint64_t callback_exceptions() const noexcept {
        return callback_exceptions_.load(std::memory_order_relaxed);
    }
    std::size_t queued() const;

private:
    struct entry {
        batch b;
        done_fn done;
    };

    void run();

    store& store_;
    const group_commit_options options_;
    mutable std::mutex mutex_;
    std::condition_variable work_cv_;
    std::condition_variable space_cv_;
    std::deque<entry> queue_;
    bool stopping_ = false;
    std::atomic<std::uint64_t> groups_{0};
    std::atomic<std::uint64_t> batches_{0};
    std::atomic<std::uint64_t> callback_exceptions_{0};
    std::thread thread_;  // last: starts after everything above exists
};

}  // namespace billsync::state
