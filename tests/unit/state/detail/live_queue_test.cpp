// The inbox's in-memory queue index (state/detail/live_queue.hpp): order, counts and the oldest
// arrival must match what a sorted map would say, at a quarter of its memory.

#include "state/detail/live_queue.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace billsync::state::detail {
namespace {

util::instant at(int s) { return util::instant{} + std::chrono::seconds(s); }

std::vector<std::uint64_t> seqs_of(const live_queue& q) {
    std::vector<std::uint64_t> out;
    q.for_each([&](std::uint64_t seq, util::instant) {
        out.push_back(seq);
        return true;
    });
    return out;
}

TEST(live_queue, keeps_events_in_sequence_order_with_the_oldest_arrival_first) {
    live_queue q;
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.oldest().has_value());
    q.add(1, at(10));
    q.add(3, at(30));
    q.add(2, at(20));  // committed after 3
    EXPECT_EQ(seqs_of(q), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(q.size(), 3U);
    EXPECT_EQ(q.oldest(), at(10));
    q.add(2, at(99));  // already there: unchanged
    EXPECT_EQ(q.size(), 3U);
    EXPECT_TRUE(q.erase(1));
    EXPECT_EQ(q.oldest(), at(20));
    EXPECT_FALSE(q.erase(1));
    EXPECT_FALSE(q.erase(7));
    EXPECT_FALSE(q.contains(1));
    EXPECT_TRUE(q.contains(2));
}

TEST(live_queue, a_removal_from_the_middle_is_dropped_when_the_front_reaches_it) {
    live_queue q;
    for (std::uint64_t s = 1; s <= 4; ++s) {
        q.add(s, at(static_cast<int>(s)));
    }
    EXPECT_TRUE(q.erase(3));
    EXPECT_FALSE(q.contains(3));
    EXPECT_EQ(q.size(), 3U);
    EXPECT_EQ(q.rows_held(), 4U);
    EXPECT_EQ(seqs_of(q), (std::vector<std::uint64_t>{1, 2, 4}));
    EXPECT_TRUE(q.erase(1));
    EXPECT_TRUE(q.erase(2));  // the front passes 3 too
    EXPECT_EQ(q.rows_held(), 1U);
    EXPECT_EQ(q.oldest(), at(4));
    q.add(3, at(3));  // a late commit of a removed number comes back
    EXPECT_EQ(seqs_of(q), (std::vector<std::uint64_t>{3, 4}));
}

TEST(live_queue, marks_are_compacted_once_they_outnumber_live_events) {
    live_queue q;
    for (std::uint64_t s = 1; s <= 1000; ++s) {
        q.add(s, at(static_cast<int>(s)));
    }
    // Everything but the first event and every tenth one leaves from behind the front.
    for (std::uint64_t s = 2; s <= 1000; ++s) {
        if (s % 10 != 0) {
            ASSERT_TRUE(q.erase(s));
        }
    }
    EXPECT_EQ(q.size(), 101U);
    EXPECT_LT(q.rows_held(), 2 * 101U + 65U);
    EXPECT_EQ(q.oldest(), at(1));
    EXPECT_EQ(seqs_of(q).size(), 101U);
}

TEST(live_queue, agrees_with_a_sorted_map_under_random_commits_and_removals) {
    std::mt19937_64 rng(20261204);
    live_queue q;
    std::map<std::uint64_t, util::instant> model;
    std::uint64_t next = 1;
    std::vector<std::uint64_t> uncommitted;
    for (int step = 0; step < 20000; ++step) {
        const auto roll = rng() % 10;
        if (roll < 4) {
            uncommitted.push_back(next++);
        } else if (roll < 7 && !uncommitted.empty()) {
            // Commit one of the outstanding numbers, not always the lowest.
            const auto i = static_cast<std::size_t>(rng() % uncommitted.size());
            const auto seq = uncommitted[i];
            uncommitted.erase(uncommitted.begin() + static_cast<std::ptrdiff_t>(i));
            const auto when = at(static_cast<int>(seq));
            q.add(seq, when);
            model.emplace(seq, when);
        } else if (!model.empty()) {
            // Mostly the front, sometimes from the middle (a dead letter).
            auto it = model.begin();
            if (rng() % 4 == 0) {
                std::advance(it, static_cast<std::ptrdiff_t>(rng() % model.size()));
            }
            ASSERT_TRUE(q.erase(it->first));
            model.erase(it);
        }
        ASSERT_EQ(q.size(), model.size());
        ASSERT_EQ(
            q.oldest(),
            model.empty() ? std::optional<util::instant>{} : std::optional{model.begin()->second});
    }
    std::vector<std::uint64_t> expected;
    for (const auto& [seq, when] : model) {
        expected.push_back(seq);
    }
    EXPECT_EQ(seqs_of(q), expected);
}

}  // namespace
}  // namespace billsync::state::detail
