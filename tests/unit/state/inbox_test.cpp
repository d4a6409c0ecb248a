#include "state/inbox.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>
#include <vector>

#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::at_s;
using testing::committer_hold;
using testing::countdown;
using testing::temp_dir;

class inbox_test : public ::testing::Test {
protected:
    void SetUp() override { reopen(); }

    void reopen() {
        in_.reset();
        gc_.reset();
        store_.reset();
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
        gc_ = std::make_unique<group_commit>(*store_);
        auto r = inbox::open(*store_, *gc_);
        ASSERT_TRUE(r.ok()) << r.st.message;
        in_ = std::move(r.value);
    }

    append_result append(std::string_view connector,
                         std::string_view dedup,
                         std::string body,
                         util::instant at = at_s(1000)) {
        std::promise<append_result> p;
        auto f = p.get_future();
        in_->append(connector,
                    "invoice.updated",
                    dedup,
                    R"({"content-type":"application/json"})",
                    std::move(body),
                    at,
                    [&p](append_result r) { p.set_value(std::move(r)); });
        return f.get();
    }

    std::vector<inbox_event> peek(std::string_view connector, std::size_t max = 100) {
        auto r = in_->peek(connector, max);
        EXPECT_TRUE(r.ok()) << r.st.message;
        return r.value;
    }

    void remove(const inbox_event& e) {
        batch b(*store_);
        in_->remove(e, b);
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
    std::unique_ptr<group_commit> gc_;
    std::unique_ptr<inbox> in_;
};

TEST_F(inbox_test, keeps_arrival_order_per_connector) {
    EXPECT_EQ(append("qbo", "e1", "one", at_s(10)).outcome, append_outcome::stored);
    EXPECT_EQ(append("xero", "e1", "x-one", at_s(11)).outcome, append_outcome::stored);
    EXPECT_EQ(append("qbo", "e2", "two", at_s(12)).outcome, append_outcome::stored);
    EXPECT_EQ(append("qbo", "", "three", at_s(13)).outcome, append_outcome::stored);

    auto events = peek("qbo");
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].body, "one");
    EXPECT_EQ(events[1].body, "two");
    EXPECT_EQ(events[2].body, "three");
    EXPECT_LT(events[0].seq, events[1].seq);
    EXPECT_EQ(events[0].connector, "qbo");
    EXPECT_EQ(events[0].kind, "invoice.updated");
    EXPECT_EQ(events[0].dedup_key, "e1");
    EXPECT_EQ(events[0].headers_json, R"({"content-type":"application/json"})");
    EXPECT_EQ(events[0].received_at, at_s(10));
    EXPECT_EQ(events[0].attempts, 0u);
    EXPECT_EQ(peek("qbo", 2).size(), 2u);

    EXPECT_EQ(in_->connectors(), (std::vector<std::string>{"qbo", "xero"}));
    EXPECT_EQ(in_->pending("qbo"), 3u);
    EXPECT_EQ(in_->pending("xero"), 1u);
    EXPECT_EQ(in_->pending("karbon"), 0u);
    EXPECT_EQ(in_->oldest("qbo"), at_s(10));
    EXPECT_FALSE(in_->oldest("karbon"));

    remove(events[0]);
    EXPECT_EQ(in_->pending("qbo"), 2u);
    EXPECT_EQ(in_->oldest("qbo"), at_s(12));
    auto rest = peek("qbo");
    ASSERT_EQ(rest.size(), 2u);
    EXPECT_EQ(rest[0].body, "two");

    remove(rest[0]);
    remove(rest[1]);
    EXPECT_EQ(in_->connectors(), (std::vector<std::string>{"xero"}));
    EXPECT_TRUE(peek("qbo").empty());
    auto stats = in_->stats();
    ASSERT_EQ(stats.size(), 1u);
    EXPECT_EQ(stats[0].connector, "xero");
    EXPECT_EQ(stats[0].pending, 1u);
}

TEST_F(inbox_test, sequential_duplicate_is_reported) {
    auto first = append("qbo", "evt-1", "a");
    auto second = append("qbo", "evt-1", "a");
    EXPECT_EQ(first.outcome, append_outcome::stored);
    EXPECT_EQ(second.outcome, append_outcome::duplicate);
    EXPECT_EQ(append("xero", "evt-1", "a").outcome, append_outcome::stored);  // per connector
    EXPECT_EQ(in_->pending("qbo"), 1u);
}

TEST_F(inbox_test, concurrent_identical_deliveries_store_once) {
    std::vector<append_result> results;
    std::mutex m;
    constexpr int copies = 8;
    countdown all(copies);
    {
        committer_hold hold(*store_, *gc_);  // all deliveries arrive before any commit
        for (int i = 0; i < copies; ++i) {
            in_->append("qbo", "k", "evt-7", "{}", "body", at_s(5), [&](append_result r) {
                std::lock_guard lock(m);
                results.push_back(std::move(r));
                all.done();
            });
        }
    }
    all.wait();
    int stored = 0;
    int duplicate = 0;
    for (const auto& r : results) {
        stored += r.outcome == append_outcome::stored ? 1 : 0;
        duplicate += r.outcome == append_outcome::duplicate ? 1 : 0;
    }
    EXPECT_EQ(stored, 1);
    EXPECT_EQ(duplicate, copies - 1);
    EXPECT_EQ(peek("qbo").size(), 1u);
}

TEST_F(inbox_test, concurrent_threads_store_each_key_once) {
    constexpr int threads = 8;
    constexpr int keys = 50;
    std::atomic<int> stored{0};
    std::atomic<int> duplicates{0};
    countdown all(threads * keys);
    std::vector<std::thread> senders;
    for (int t = 0; t < threads; ++t) {
        senders.emplace_back([&] {
            for (int k = 0; k < keys; ++k) {
                in_->append("karbon",
                            "work_item",
                            "evt-" + std::to_string(k),
                            "{}",
                            "body",
                            at_s(k),
                            [&](append_result r) {
                                if (r.outcome == append_outcome::stored) {
                                    stored.fetch_add(1);
                                } else if (r.outcome == append_outcome::duplicate) {
                                    duplicates.fetch_add(1);
                                }
                                all.done();
                            });
            }
        });
    }
    for (auto& s : senders) {
        s.join();
    }
    all.wait();
    EXPECT_EQ(stored.load(), keys);
    EXPECT_EQ(duplicates.load(), (threads - 1) * keys);
    EXPECT_EQ(in_->pending("karbon"), static_cast<std::uint64_t>(keys));
}

TEST_F(inbox_test, duplicate_after_processing_and_after_reopen) {
    ASSERT_EQ(append("qbo", "evt-1", "a").outcome, append_outcome::stored);
    ASSERT_EQ(append("qbo", "evt-2", "b", at_s(2000)).outcome, append_outcome::stored);
    auto events = peek("qbo");
    ASSERT_EQ(events.size(), 2u);
    remove(events[0]);
    EXPECT_EQ(append("qbo", "evt-1", "a").outcome, append_outcome::duplicate);

    reopen();
    EXPECT_EQ(append("qbo", "evt-1", "a").outcome, append_outcome::duplicate);
    EXPECT_EQ(append("qbo", "evt-2", "b").outcome, append_outcome::duplicate);
    EXPECT_EQ(in_->pending("qbo"), 1u);
    EXPECT_EQ(in_->oldest("qbo"), at_s(2000));
    auto r = append("qbo", "evt-3", "c");
    EXPECT_EQ(r.outcome, append_outcome::stored);
    EXPECT_GT(r.seq, events[1].seq);  // sequence numbers continue after a restart
    auto after = peek("qbo");
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[0].body, "b");
    EXPECT_EQ(after[1].body, "c");
}

TEST_F(inbox_test, a_failed_append_records_nothing) {
    gc_->stop();
    auto r = append("qbo", "evt-1", "a");
    EXPECT_EQ(r.outcome, append_outcome::failed);
    EXPECT_FALSE(r.st.ok);
    EXPECT_EQ(append("", "evt-1", "a").outcome, append_outcome::failed);  // invalid connector
    reopen();
    EXPECT_EQ(append("qbo", "evt-1", "a").outcome, append_outcome::stored);
}

TEST_F(inbox_test, record_failure_is_durable) {
    ASSERT_EQ(append("qbo", "evt-1", "a").outcome, append_outcome::stored);
    auto events = peek("qbo");
    ASSERT_EQ(events.size(), 1u);
    ASSERT_TRUE(in_->record_failure(events[0], "timeout").ok);
    ASSERT_TRUE(in_->record_failure(events[0], "502 from vendor").ok);
    EXPECT_EQ(events[0].attempts, 2u);
    reopen();
    auto again = peek("qbo");
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempts, 2u);
    EXPECT_EQ(again[0].last_error, "502 from vendor");

    remove(again[0]);
    EXPECT_FALSE(in_->record_failure(again[0], "late").ok);  // never resurrects a removed event
    EXPECT_TRUE(peek("qbo").empty());
}

// The committer writes a group, then runs its batches' hooks in order. A consumer that reads in
// between (here: the hook of a batch queued ahead of the append in the same group) already sees
// the new row; processing it there left the late hook to count it as pending for ever (/status
// reported tens of thousands of events waiting after a drained burst).
TEST_F(inbox_test, an_event_read_before_its_append_committed_is_not_counted_for_ever) {
    ASSERT_EQ(append("qbo", "e0", "zero").outcome, append_outcome::stored);
    std::vector<inbox_event> seen;
    std::promise<append_result> appended;
    {
        committer_hold hold(*store_, *gc_);
        batch reader(*store_);
        reader.put(cf::meta, "test/reader", "1");
        reader.on_commit([this, &seen] {
            auto r = in_->peek("qbo", 10);
            seen = r.value;
            batch b(*store_);
            for (const auto& e : seen) {
                in_->remove(e, b);
            }
            EXPECT_TRUE(store_->write(b, true).ok);
        });
        gc_->submit(std::move(reader), nullptr);
        in_->append(
            "qbo", "invoice.updated", "e1", "{}", "one", at_s(1000), [&appended](append_result r) {
                appended.set_value(std::move(r));
            });
    }
    ASSERT_EQ(appended.get_future().get().outcome, append_outcome::stored);
    ASSERT_EQ(seen.size(), 1u);  // only what had committed
    EXPECT_EQ(seen[0].body, "zero");
    // The counts match the rows: one event left, and it is there to process.
    EXPECT_EQ(in_->pending("qbo"), 1u);
    const auto rest = peek("qbo");
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(rest[0].body, "one");
    remove(rest[0]);
    EXPECT_EQ(in_->pending("qbo"), 0u);
    EXPECT_TRUE(in_->stats().empty());
}

TEST(inbox_codec, event_round_trips) {
    inbox_event e;
    e.kind = "k";
    e.dedup_key = std::string("d\0d", 3);
    e.received_at = at_s(-5);
    e.headers_json = "{}";
    e.body = std::string(1000, 'x');
    e.attempts = 300;
    e.last_error = "err";
    inbox_event back;
    ASSERT_TRUE(decode_event(encode_event(e), back));
    EXPECT_EQ(back, e);
    EXPECT_FALSE(decode_event(encode_event(e).substr(0, 10), back));
}

}  // namespace
}  // namespace billsync::state
