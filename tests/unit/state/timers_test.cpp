#include "state/timers.hpp"

#include <gtest/gtest.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::at_s;
using testing::temp_dir;

class timers_test : public ::testing::Test {
protected:
    void SetUp() override { reopen(); }

    void reopen() {
        timers_.reset();
        store_.reset();
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
        timers_ = std::make_unique<timers>(*store_);
    }

    void schedule(std::string_view name, std::int64_t due_s, std::string_view payload = "p") {
        batch b(*store_);
        ASSERT_TRUE(timers_->schedule(b, name, at_s(due_s), payload).ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    std::vector<std::string> due_names(std::int64_t now_s, std::size_t limit = 100) {
        auto r = timers_->due(at_s(now_s), limit);
        EXPECT_TRUE(r.ok()) << r.st.message;
        std::vector<std::string> names;
        for (const auto& t : r.value) {
            names.push_back(t.name);
        }
        return names;
    }

    void fire_all(std::int64_t now_s, std::size_t per_batch) {
        for (;;) {
            auto r = timers_->due(at_s(now_s), per_batch);
            ASSERT_TRUE(r.ok());
            if (r.value.empty()) {
                return;
            }
            batch b(*store_);
            for (const auto& t : r.value) {
                ASSERT_TRUE(timers_->fire(b, t).ok);
            }
            ASSERT_TRUE(store_->write(b, false).ok);
        }
    }

    std::size_t rows_with_prefix(std::string_view prefix) {
        std::size_t n = 0;
        EXPECT_TRUE(store_
                        ->for_each(cf::timers,
                                   prefix,
                                   [&](std::string_view, std::string_view) {
                                       ++n;
                                       return true;
                                   })
                        .ok);
        return n;
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
    std::unique_ptr<timers> timers_;
};

TEST_F(timers_test, due_in_due_then_name_order) {
    schedule("b", 10);
    schedule("a", 10);
    schedule("c", 5);
    schedule("d", 20);
    EXPECT_EQ(due_names(4), (std::vector<std::string>{}));
    EXPECT_EQ(due_names(10), (std::vector<std::string>{"c", "a", "b"}));
    EXPECT_EQ(due_names(10, 2), (std::vector<std::string>{"c", "a"}));
    EXPECT_EQ(due_names(100), (std::vector<std::string>{"c", "a", "b", "d"}));
    auto next = timers_->next_due();
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next.value, at_s(5));

    auto t = timers_->due(at_s(5), 1);
    ASSERT_EQ(t.value.size(), 1u);
    EXPECT_EQ(t.value[0], (timer{"c", at_s(5), "p"}));
}

TEST_F(timers_test, cancel_and_reschedule) {
    schedule("followup/inv-42/touch2", 10, "v1");
    schedule("followup/inv-42/touch2", 30, "v2");  // reschedule
    EXPECT_TRUE(due_names(10).empty());
    EXPECT_EQ(timers_->next_due().value, at_s(30));
    auto got = timers_->get("followup/inv-42/touch2");
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(got.value);
    EXPECT_EQ(got.value->due, at_s(30));
    EXPECT_EQ(got.value->payload, "v2");

    batch b(*store_);
    ASSERT_TRUE(timers_->cancel(b, "followup/inv-42/touch2").ok);
    ASSERT_TRUE(timers_->cancel(b, "never-scheduled").ok);
    ASSERT_TRUE(store_->write(b, true).ok);
    EXPECT_TRUE(due_names(1000).empty());
    EXPECT_FALSE(timers_->next_due().value);
    EXPECT_FALSE(timers_->get("followup/inv-42/touch2").value);
    EXPECT_EQ(rows_with_prefix(""), 0u);
}

TEST_F(timers_test, one_batch_touching_a_name_several_times_stays_consistent) {
    {
        batch b(*store_);
        ASSERT_TRUE(timers_->schedule(b, "x", at_s(10), "1").ok);
        ASSERT_TRUE(timers_->cancel(b, "x").ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(rows_with_prefix(""), 0u);
    {
        batch b(*store_);
        ASSERT_TRUE(timers_->schedule(b, "y", at_s(10), "1").ok);
        ASSERT_TRUE(timers_->schedule(b, "y", at_s(20), "2").ok);
        ASSERT_TRUE(timers_->cancel(b, "y").ok);
        ASSERT_TRUE(timers_->schedule(b, "y", at_s(30), "3").ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(rows_with_prefix("d/"), 1u);
    EXPECT_EQ(rows_with_prefix("n/"), 1u);
    auto t = timers_->due(at_s(100), 10);
    ASSERT_EQ(t.value.size(), 1u);
    EXPECT_EQ(t.value[0], (timer{"y", at_s(30), "3"}));
}

TEST_F(timers_test, fire_of_a_rescheduled_timer_keeps_the_new_one) {
    schedule("x", 10, "old");
    auto due = timers_->due(at_s(10), 10);
    ASSERT_EQ(due.value.size(), 1u);
    schedule("x", 50, "new");
    batch b(*store_);
    ASSERT_TRUE(timers_->fire(b, due.value[0]).ok);
    ASSERT_TRUE(store_->write(b, true).ok);
    auto got = timers_->get("x");
    ASSERT_TRUE(got.value);
    EXPECT_EQ(got.value->due, at_s(50));
    EXPECT_EQ(got.value->payload, "new");
}

TEST_F(timers_test, count_is_exact_through_schedule_reschedule_cancel_fire_and_reopen) {
    EXPECT_EQ(timers_->count(), 0u);
    schedule("a", 10);
    schedule("b", 20);
    schedule("a", 30);  // a reschedule is still one timer
    EXPECT_EQ(timers_->count(), 2u);
    {
        batch b(*store_);
        auto failures = timers_->record_failure(b, "b");  // failure rows are not timers
        ASSERT_TRUE(failures.ok());
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(timers_->count(), 2u);
    {
        batch b(*store_);  // schedule and cancel in one batch: nothing
        ASSERT_TRUE(timers_->schedule(b, "c", at_s(5), "p").ok);
        ASSERT_TRUE(timers_->cancel(b, "c").ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(timers_->count(), 2u);
    {
        batch b(*store_);  // abandoned: nothing
        ASSERT_TRUE(timers_->cancel(b, "a").ok);
    }
    EXPECT_EQ(timers_->count(), 2u);
    auto due = timers_->due(at_s(25), 10);
    ASSERT_TRUE(due.ok());
    ASSERT_EQ(due.value.size(), 1u);
    {
        batch b(*store_);
        ASSERT_TRUE(timers_->fire(b, due.value[0]).ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(timers_->count(), 1u);
    reopen();
    EXPECT_EQ(timers_->count(), 1u);
    {
        batch b(*store_);
        ASSERT_TRUE(timers_->cancel(b, "a").ok);
        ASSERT_TRUE(timers_->cancel(b, "never-scheduled").ok);
        ASSERT_TRUE(store_->write(b, true).ok);
    }
    EXPECT_EQ(timers_->count(), 0u);
}

TEST_F(timers_test, survive_restart) {
    schedule("a", 10, "pa");
    schedule("b", 20, "pb");
    fire_all(10, 10);
    reopen();
    auto t = timers_->due(at_s(100), 10);
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(t.value.size(), 1u);
    EXPECT_EQ(t.value[0], (timer{"b", at_s(20), "pb"}));
}

TEST_F(timers_test, due_visits_only_due_rows) {
    batch b(*store_);
    for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(timers_->schedule(b, "later/" + std::to_string(i), at_s(100000 + i), "").ok);
    }
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(timers_->schedule(b, "now/" + std::to_string(i), at_s(i), "").ok);
    }
    ASSERT_TRUE(store_->write(b, false).ok);
    const auto before = timers_->rows_visited();
    EXPECT_EQ(due_names(50, 100).size(), 10u);
    EXPECT_EQ(timers_->rows_visited() - before, 10u);
}

TEST_F(timers_test, due_skips_the_tombstones_of_fired_timers) {
    batch b(*store_);
    for (int i = 0; i < 3000; ++i) {
        ASSERT_TRUE(timers_->schedule(b, "t" + std::to_string(i), at_s(i), "").ok);
    }
    ASSERT_TRUE(store_->write(b, false).ok);
    fire_all(3000, 100);  // 3000 deletes at the front of the index
    schedule("fresh", 5000);

    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
    rocksdb::get_perf_context()->Reset();
    EXPECT_EQ(due_names(6000), (std::vector<std::string>{"fresh"}));
    const auto skipped = rocksdb::get_perf_context()->internal_delete_skipped_count;

    timers fresh_start(*store_);  // no memory of the fired range: wades through the tombstones
    rocksdb::get_perf_context()->Reset();
    auto r = fresh_start.due(at_s(6000), 10);
    const auto skipped_cold = rocksdb::get_perf_context()->internal_delete_skipped_count;
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    ASSERT_EQ(r.value.size(), 1u);
    EXPECT_GE(skipped_cold, 3000u);
    EXPECT_LE(skipped, 200u);  // at most the last fired batch (its keys and name rows)
}

TEST_F(timers_test, a_timer_scheduled_before_the_floor_is_still_found) {
    schedule("late", 100);
    EXPECT_EQ(due_names(200), (std::vector<std::string>{"late"}));
    schedule("earlier", 50);  // sorts before the scan floor
    EXPECT_EQ(due_names(200), (std::vector<std::string>{"earlier", "late"}));
    fire_all(200, 10);
    EXPECT_TRUE(due_names(1000).empty());
    schedule("past", 1);
    EXPECT_EQ(due_names(1000), (std::vector<std::string>{"past"}));
    EXPECT_EQ(timers_->next_due().value, at_s(1));
}

}  // namespace
}  // namespace billsync::state
