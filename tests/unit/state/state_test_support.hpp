#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "state/group_commit.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state::testing {

// A fresh directory per test, removed afterwards.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string name = "billsync-state-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
        if (info != nullptr) {
            name += std::string("-") + info->name();
        }
        path_ = std::filesystem::temp_directory_path() / name;
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path db() const { return path_ / "db"; }

private:
    std::filesystem::path path_;
};

inline std::unique_ptr<store> open_store(const std::filesystem::path& dir,
                                         const open_options& options = {}) {
    auto r = store::open(dir, options);
    if (!r.ok()) {
        ADD_FAILURE() << "open failed: " << r.st.message;
        return nullptr;
    }
    return std::move(r.value);
}

inline util::instant at_s(std::int64_t seconds) {
    return util::instant{std::chrono::seconds(seconds)};
}

// A one-shot gate: wait() blocks until open() (no sleeping, no timing).
class gate {
public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

// Counts completions and lets a test wait for n of them.
class countdown {
public:
    explicit countdown(int n) : left_(n) {}
    void done() {
        std::lock_guard lock(mutex_);
        if (--left_ <= 0) {
            cv_.notify_all();
        }
    }
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return left_ <= 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    int left_;
};

// Holds the committer thread inside the on_commit hook of a marker batch until released, so
// batches submitted meanwhile queue up and are deterministically merged into the next group.
class committer_hold {
public:
    committer_hold(store& s, group_commit& gc)
        : entered_(std::make_shared<gate>()), release_(std::make_shared<gate>()) {
        batch b(s);
        b.put(cf::meta, "test/hold", "1");
        b.on_commit([entered = entered_, release = release_] {
            entered->open();
            release->wait();
        });
        gc.submit(std::move(b), nullptr);
        entered_->wait();
    }
    ~committer_hold() { release(); }
    committer_hold(const committer_hold&) = delete;
    committer_hold& operator=(const committer_hold&) = delete;
    void release() { release_->open(); }

private:
    std::shared_ptr<gate> entered_;
    std::shared_ptr<gate> release_;
};

}  // namespace billsync::state::testing
