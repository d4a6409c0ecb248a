#include "state/group_commit.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace billsync::state {

namespace {

status stopped() { return status::failure("group commit is stopped; the write was not made"); }

}  // namespace

group_commit::group_commit(store& s, group_commit_options options)
    : store_(s), options_(options), thread_([this] { run(); }) {}

group_commit::~group_commit() { stop(); }

void group_commit::submit(batch b, done_fn done) {
    {
        std::unique_lock lock(mutex_);
        space_cv_.wait(lock, [&] { return stopping_ || queue_.size() < options_.max_queued; });
        if (!stopping_) {
            queue_.push_back(entry{std::move(b), std::move(done)});
            work_cv_.notify_one();
            return;
        }
    }
    if (done) {
        done(stopped());
    }
}

bool group_commit::try_submit(batch&& b, done_fn&& done) {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.max_queued) {
        return false;
    }
    queue_.push_back(entry{std::move(b), std::move(done)});
    work_cv_.notify_one();
    return true;
}

void group_commit::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_cv_.notify_all();
    space_cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
        thread_.join();
    }
}

std::size_t group_commit::queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void group_commit::run() {
    std::vector<batch> batches;
    std::vector<done_fn> dones;
    std::vector<batch*> pointers;
    std::vector<status> results;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;  // stopping and drained
            }
            std::size_t bytes = 0;
            while (!queue_.empty() && batches.size() < options_.max_group_batches &&
                   (batches.empty() || bytes < options_.max_group_bytes)) {
                bytes += queue_.front().b.byte_size();
                batches.push_back(std::move(queue_.front().b));
                dones.push_back(std::move(queue_.front().done));
                queue_.pop_front();
            }
        }
        space_cv_.notify_all();

        // A batch that cannot be written fails alone instead of failing its whole group.
        results.assign(batches.size(), status{});
        pointers.clear();
        for (std::size_t i = 0; i < batches.size(); ++i) {
            results[i] = store_.check(batches[i]);
            if (results[i].ok) {
                pointers.push_back(&batches[i]);
            }
        }
        if (!pointers.empty()) {
            status st = store_.write_group(pointers, options_.sync);
            groups_.fetch_add(1, std::memory_order_relaxed);
            if (st.ok) {
                batches_.fetch_add(pointers.size(), std::memory_order_relaxed);
            } else {
                for (auto& r : results) {
                    if (r.ok) {
                        r = st;
                    }
                }
            }
        }
        batches.clear();  // runs on_abandon hooks of failed batches before the completions

        for (std::size_t i = 0; i < dones.size(); ++i) {
            if (!dones[i]) {
                continue;
            }
            try {
                dones[i](std::move(results[i]));
            } catch (...) {
                // A completion must not kill the committer; count it so tests and /status see it.
                callback_exceptions_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        dones.clear();
    }
}

}  // namespace billsync::state
