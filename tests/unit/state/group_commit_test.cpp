#include "state/group_commit.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::committer_hold;
using testing::countdown;
using testing::open_store;
using testing::temp_dir;

TEST(group_commit, merges_concurrent_submits_into_few_syncs) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    constexpr int threads = 64;
    constexpr int per_thread = 20;
    constexpr int total = threads * per_thread;
    std::atomic<int> ok{0};
    std::atomic<int> failed{0};
    countdown all(total);
    std::uint64_t syncs_before = 0;
    {
        group_commit gc(*s);
        committer_hold hold(*s, gc);  // everything below queues up behind the held group
        syncs_before = s->synced_writes();
        std::vector<std::thread> submitters;
        for (int t = 0; t < threads; ++t) {
            submitters.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    batch b(*s);
                    b.put(cf::entities, "k/" + std::to_string(t) + "/" + std::to_string(i), "v");
                    gc.submit(std::move(b), [&](status st) {
                        (st.ok ? ok : failed).fetch_add(1);
                        all.done();
                    });
                }
            });
        }
        for (auto& th : submitters) {
            th.join();
        }
        EXPECT_EQ(gc.queued(), static_cast<std::size_t>(total));
        hold.release();
        all.wait();
        EXPECT_EQ(gc.batches_written(), static_cast<std::uint64_t>(total) + 1);
    }
    EXPECT_EQ(ok.load(), total);
    EXPECT_EQ(failed.load(), 0);
    // 1280 queued batches, at most 1024 per group: two fsyncs instead of 1280.
    const auto syncs = s->synced_writes() - syncs_before;
    EXPECT_LE(syncs, 2u);
    EXPECT_LT(syncs, static_cast<std::uint64_t>(total));
    int rows = 0;
    ASSERT_TRUE(s->for_each(cf::entities, "k/", [&](std::string_view, std::string_view) {
                     ++rows;
                     return true;
                 }).ok);
    EXPECT_EQ(rows, total);
}

TEST(group_commit, concurrent_submitters_without_a_hold_all_complete) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    constexpr int threads = 16;
    constexpr int per_thread = 50;
    std::atomic<int> ok{0};
    {
        group_commit gc(*s);
        std::vector<std::thread> submitters;
        for (int t = 0; t < threads; ++t) {
            submitters.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    countdown one(1);  // each submitter waits for its own acknowledgement
                    batch b(*s);
                    b.put(cf::entities, std::to_string(t) + "/" + std::to_string(i), "v");
                    gc.submit(std::move(b), [&](status st) {
                        if (st.ok) {
                            ok.fetch_add(1);
                        }
                        one.done();
                    });
                    one.wait();
                }
            });
        }
        for (auto& th : submitters) {
            th.join();
        }
        EXPECT_LE(gc.groups_written(), static_cast<std::uint64_t>(threads * per_thread));
    }
    EXPECT_EQ(ok.load(), threads * per_thread);
}

TEST(group_commit, stop_flushes_pending_work_and_refuses_later_submits) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    group_commit gc(*s);
    std::atomic<int> ok{0};
    for (int i = 0; i < 100; ++i) {
        batch b(*s);
        b.put(cf::entities, "k" + std::to_string(i), "v");
        gc.submit(std::move(b), [&](status st) {
            if (st.ok) {
                ok.fetch_add(1);
            }
        });
    }
    gc.stop();
    EXPECT_EQ(ok.load(), 100);

    bool refused = false;
    batch late(*s);
    late.put(cf::entities, "late", "v");
    gc.submit(std::move(late), [&](status st) { refused = !st.ok; });
    EXPECT_TRUE(refused);
    EXPECT_FALSE(s->get(cf::entities, "late").value);
    gc.stop();  // idempotent
}

TEST(group_commit, bounded_queue_pushes_back) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    group_commit_options options;
    options.max_queued = 2;
    group_commit gc(*s, options);
    committer_hold hold(*s, gc);
    for (int i = 0; i < 2; ++i) {
        batch b(*s);
        b.put(cf::entities, "k" + std::to_string(i), "v");
        EXPECT_TRUE(gc.try_submit(std::move(b), [](status) {}));
    }
    batch extra(*s);
    extra.put(cf::entities, "extra", "v");
    group_commit::done_fn done = [](status) {};
    EXPECT_FALSE(gc.try_submit(std::move(extra), std::move(done)));
    EXPECT_FALSE(extra.empty());  // left untouched on refusal
    EXPECT_TRUE(done);
    hold.release();
    gc.stop();
    EXPECT_TRUE(s->get(cf::entities, "k1").value);
}

TEST(group_commit, a_bad_batch_fails_alone_and_exceptions_are_contained) {
    temp_dir dir;
    temp_dir other_dir;
    auto s = open_store(dir.db());
    auto other = open_store(other_dir.db());
    ASSERT_TRUE(s && other);
    status good_status = status::failure("not called");
    status bad_status;
    int abandoned = 0;
    {
        group_commit gc(*s);
        {
            committer_hold hold(*s, gc);
            batch good(*s);
            good.put(cf::entities, "good", "v");
            gc.submit(std::move(good), [&](status st) { good_status = st; });
            batch foreign(*other);
            foreign.put(cf::entities, "foreign", "v");
            foreign.on_abandon([&] { ++abandoned; });
            gc.submit(std::move(foreign), [&](status st) { bad_status = st; });
            batch throws(*s);
            throws.put(cf::entities, "throws", "v");
            gc.submit(std::move(throws), [](status) { throw std::runtime_error("boom"); });
        }
        gc.stop();
        EXPECT_EQ(gc.callback_exceptions(), 1u);
    }
    EXPECT_TRUE(good_status.ok) << good_status.message;
    EXPECT_FALSE(bad_status.ok);
    EXPECT_EQ(abandoned, 1);
    EXPECT_TRUE(s->get(cf::entities, "good").value);
    EXPECT_TRUE(s->get(cf::entities, "throws").value);
}

}  // namespace
}  // namespace billsync::state
