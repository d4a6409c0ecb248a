#include "state/store.hpp"

#include <gtest/gtest.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::open_store;
using testing::temp_dir;

TEST(store, atomic_batch_survives_reopen) {
    temp_dir dir;
    {
        auto s = open_store(dir.db());
        ASSERT_TRUE(s);
        batch seed(*s);
        seed.put(cf::cursors, "gone", "x");
        ASSERT_TRUE(s->write(seed, true).ok);

        batch b(*s);
        b.put(cf::inbox, "qbo/a", "event");
        b.put(cf::timers, "n/t1", "due");
        b.put(cf::audit, "line", "{}");
        b.del(cf::cursors, "gone");
        EXPECT_EQ(b.count(), 4u);
        ASSERT_TRUE(s->write(b, true).ok);
    }
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    EXPECT_EQ(s->schema_version(), current_schema_version);
    EXPECT_EQ(s->get(cf::inbox, "qbo/a").value, std::optional<std::string>("event"));
    EXPECT_EQ(s->get(cf::timers, "n/t1").value, std::optional<std::string>("due"));
    EXPECT_EQ(s->get(cf::audit, "line").value, std::optional<std::string>("{}"));
    EXPECT_FALSE(s->get(cf::cursors, "gone").value);
}

// The files of a data dir with this extension (".sst" tables, ".log" write-ahead log).
std::size_t files_named(const std::filesystem::path& dir, std::string_view extension) {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        n += e.path().extension() == extension ? 1 : 0;
    }
    return n;
}

// A reopen (a restart after a crash or a kill) replays the write-ahead log and keeps it, rather
// than writing and syncing new tables before the open returns; the writes are all there.
TEST(store, a_reopen_replays_the_log_without_writing_tables) {
    temp_dir dir;
    const auto tables = [&] { return files_named(dir.db(), ".sst"); };
    {
        auto s = open_store(dir.db());
        ASSERT_TRUE(s);
        batch b(*s);
        b.put(cf::inbox, "qbo/a", "event");
        b.put(cf::timers, "n/t1", "due");
        ASSERT_TRUE(s->write(b, true).ok);
    }
    const auto before = tables();
    for (int restart = 0; restart < 2; ++restart) {
        auto s = open_store(dir.db());
        ASSERT_TRUE(s);
        EXPECT_EQ(s->get(cf::inbox, "qbo/a").value, std::optional<std::string>("event"));
        EXPECT_EQ(s->get(cf::timers, "n/t1").value, std::optional<std::string>("due"));
        EXPECT_EQ(tables(), before) << "restart " << restart;
    }
}

// The kept log is bounded: every restart starts a log file, and a column family that is never
// written (RocksDB's default one) would pin them all, each open replaying every write since the
// first. Once the kept log passes its bound the open has every column family flushed, and the
// files go; every write stays readable.
TEST(store, restarts_do_not_pile_up_log_files) {
    temp_dir dir;
    constexpr int restarts = 30;
    for (int restart = 0; restart < restarts; ++restart) {
        auto s = open_store(dir.db());
        ASSERT_TRUE(s);
        batch b(*s);
        b.put(cf::inbox, "qbo/" + std::to_string(restart), "event");
        ASSERT_TRUE(s->write(b, true).ok);
    }
    EXPECT_LE(files_named(dir.db(), ".log"),
              12u);  // the bound (8 files), what the last opens started
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    for (int restart = 0; restart < restarts; ++restart) {
        EXPECT_EQ(s->get(cf::inbox, "qbo/" + std::to_string(restart)).value,
                  std::optional<std::string>("event"))
            << restart;
    }
}

TEST(store, batch_reads_its_own_writes) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    batch b(*s);
    EXPECT_FALSE(s->get(b, cf::entities, "k").value);
    b.put(cf::entities, "k", "1");
    b.put(cf::entities, "k", "2");
    EXPECT_EQ(s->get(b, cf::entities, "k").value, std::optional<std::string>("2"));
    EXPECT_FALSE(s->get(cf::entities, "k").value);  // not written yet
    b.del(cf::entities, "k");
    EXPECT_FALSE(s->get(b, cf::entities, "k").value);
    ASSERT_TRUE(s->write(b, false).ok);
    EXPECT_FALSE(s->get(cf::entities, "k").value);
}

TEST(store, hooks_run_on_commit_or_abandon) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    int committed = 0;
    int abandoned = 0;
    {
        batch b(*s);
        b.put(cf::meta, "x", "1");
        b.on_commit([&] { ++committed; });
        b.on_abandon([&] { ++abandoned; });
        ASSERT_TRUE(s->write(b, true).ok);
        EXPECT_FALSE(s->write(b, true).ok);  // a batch is written once
    }
    EXPECT_EQ(committed, 1);
    EXPECT_EQ(abandoned, 0);
    {
        batch b(*s);
        b.put(cf::meta, "y", "1");
        b.on_commit([&] { ++committed; });
        b.on_abandon([&] { ++abandoned; });
    }
    EXPECT_EQ(committed, 1);
    EXPECT_EQ(abandoned, 1);
    EXPECT_FALSE(s->get(cf::meta, "y").value);
}

TEST(store, batch_of_another_store_is_refused) {
    temp_dir a;
    temp_dir b;
    auto s1 = open_store(a.db());
    auto s2 = open_store(b.db());
    ASSERT_TRUE(s1 && s2);
    batch foreign(*s2);
    foreign.put(cf::meta, "k", "v");
    auto st = s1->write(foreign, true);
    EXPECT_FALSE(st.ok);
    EXPECT_NE(st.message.find("does not belong"), std::string::npos);
}

TEST(store, refuses_a_newer_schema) {
    temp_dir dir;
    {
        open_options newer;
        newer.schema_version = current_schema_version + 2;
        ASSERT_TRUE(open_store(dir.db(), newer));
    }
    auto r = store::open(dir.db());
    ASSERT_FALSE(r.ok());
    const std::string expected = "data dir " + dir.db().string() + " was written by schema " +
                                 std::to_string(current_schema_version + 2) +
                                 ", this billsync understands up to " +
                                 std::to_string(current_schema_version) + "; upgrade billsync";
    EXPECT_EQ(r.st.message, expected);

    open_options ro;
    ro.read_only = true;
    EXPECT_FALSE(store::open(dir.db(), ro).ok());
}

TEST(store, migrates_an_older_schema_in_one_batch) {
    temp_dir dir;
    {
        open_options v1;
        v1.schema_version = 1;
        auto s = open_store(dir.db(), v1);
        ASSERT_TRUE(s);
        batch b(*s);
        b.put(cf::entities, "old", "v1");
        ASSERT_TRUE(s->write(b, true).ok);
    }
    std::vector<std::uint32_t> ran;
    open_options v3;
    v3.schema_version = 3;
    v3.migrations = {
        {2,
         [&](store& s, batch& b) {
             ran.push_back(2);
             // sees the previous step's write through the batch
             auto step1 = s.get(b, cf::entities, "step1");
             EXPECT_EQ(step1.value, std::optional<std::string>("done"));
             b.put(cf::entities, "step2", "done");
             return status::success();
         }},
        {1,
         [&](store& s, batch& b) {
             ran.push_back(1);
             EXPECT_EQ(s.get(cf::entities, "old").value, std::optional<std::string>("v1"));
             b.put(cf::entities, "step1", "done");
             return status::success();
         }},
    };
    {
        auto s = open_store(dir.db(), v3);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->schema_version(), 3u);
        EXPECT_EQ(ran, (std::vector<std::uint32_t>{1, 2}));
        EXPECT_EQ(s->get(cf::meta, "schema_version").value, std::optional<std::string>("3"));
        EXPECT_EQ(s->get(cf::entities, "step2").value, std::optional<std::string>("done"));
    }
    ran.clear();
    auto again = open_store(dir.db(), v3);  // already migrated: nothing runs
    ASSERT_TRUE(again);
    EXPECT_TRUE(ran.empty());
}

TEST(store, failed_or_missing_migration_changes_nothing) {
    temp_dir dir;
    {
        open_options v1;
        v1.schema_version = 1;
        ASSERT_TRUE(open_store(dir.db(), v1));
    }
    open_options v2;
    v2.schema_version = 2;
    v2.migrations = {{1, [](store&, batch& b) {
                          b.put(cf::entities, "half", "done");
                          return status::failure("disk says no");
                      }}};
    auto r = store::open(dir.db(), v2);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.st.message.find("from schema 1 failed: disk says no"), std::string::npos);

    v2.migrations.clear();
    r = store::open(dir.db(), v2);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.st.message.find("no migration from schema 1 to 2"), std::string::npos);

    open_options v1;
    v1.schema_version = 1;
    auto s = open_store(dir.db(), v1);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->schema_version(), 1u);
    EXPECT_FALSE(s->get(cf::entities, "half").value);
}

TEST(store, read_only_open_beside_a_writer) {
    temp_dir dir;
    auto writer = open_store(dir.db());
    ASSERT_TRUE(writer);
    batch b(*writer);
    b.put(cf::cursors, "qbo", "c1");
    ASSERT_TRUE(writer->write(b, true).ok);

    open_options ro;
    ro.read_only = true;
    auto reader = open_store(dir.db(), ro);
    ASSERT_TRUE(reader);
    EXPECT_TRUE(reader->read_only());
    EXPECT_EQ(reader->get(cf::cursors, "qbo").value, std::optional<std::string>("c1"));

    batch w(*reader);
    w.put(cf::cursors, "qbo", "c2");
    auto st = reader->write(w, true);
    EXPECT_FALSE(st.ok);
    EXPECT_NE(st.message.find("read-only"), std::string::npos);

    batch more(*writer);
    more.put(cf::cursors, "qbo", "c3");
    ASSERT_TRUE(writer->write(more, true).ok);
    ASSERT_TRUE(reader->catch_up().ok);
    EXPECT_EQ(reader->get(cf::cursors, "qbo").value, std::optional<std::string>("c3"));
}

// Issue 18 item 15: the secondary instance's scratch dir mirrors the state; another local user
// must neither predict its name nor read it.
TEST(store, read_only_scratch_dir_is_private_and_unpredictable) {
    temp_dir dir;
    auto writer = open_store(dir.db());
    ASSERT_TRUE(writer);
    open_options ro;
    ro.read_only = true;
    auto a = open_store(dir.db(), ro);
    auto b = open_store(dir.db(), ro);
    ASSERT_TRUE(a && b);
    const auto& path = a->secondary_dir();
    ASSERT_FALSE(path.empty());
    EXPECT_NE(path, b->secondary_dir());
    const auto name = path.filename().string();
    EXPECT_TRUE(name.starts_with("billsync-secondary-")) << name;
    EXPECT_EQ(name.find(std::to_string(::getpid())), std::string::npos) << name;
    using std::filesystem::perms;
    const auto mode = std::filesystem::status(path).permissions();
    EXPECT_EQ(mode & (perms::group_all | perms::others_all), perms::none) << name;
    EXPECT_EQ(mode & perms::owner_all, perms::owner_all);
    const auto kept = path;
    a.reset();
    EXPECT_FALSE(std::filesystem::exists(kept));  // removed at close
}

TEST(store, read_only_open_of_a_missing_dir_fails) {
    temp_dir dir;
    open_options ro;
    ro.read_only = true;
    auto r = store::open(dir.path() / "nothing-here", ro);
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "nothing-here"));

    open_options no_create;
    no_create.create_if_missing = false;
    EXPECT_FALSE(store::open(dir.path() / "nothing-here", no_create).ok());
}

// Every row of every column family, for comparing two stores.
std::vector<std::pair<std::string, std::string>> all_rows(const store& s) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (std::size_t i = 0; i < cf_count; ++i) {
        const auto family = static_cast<cf>(i);
        EXPECT_TRUE(s.for_each(family, "", [&](std::string_view k, std::string_view v) {
                         rows.emplace_back(std::string(cf_name(family)) + "/" + std::string(k),
                                           std::string(v));
                         return true;
                     }).ok);
    }
    return rows;
}

TEST(store, checkpoint_copies_everything_and_the_copy_is_independent) {
    temp_dir dir;
    auto writer = open_store(dir.db());
    ASSERT_TRUE(writer);
    batch flushed(*writer);
    flushed.put(cf::entities, "in-sst", "1");
    ASSERT_TRUE(writer->write(flushed, true).ok);
    ASSERT_TRUE(writer->flush().ok);
    batch in_wal(*writer);  // only in the WAL and the memtable
    in_wal.put(cf::timers, "in-wal", "2");
    in_wal.put(cf::audit, "line", "{}");
    ASSERT_TRUE(writer->write(in_wal, true).ok);
    const auto before = all_rows(*writer);

    // From a read-only (secondary) instance next to the writer, as `billsync preview` does.
    open_options ro;
    ro.read_only = true;
    auto reader = open_store(dir.db(), ro);
    ASSERT_TRUE(reader);
    ASSERT_TRUE(reader->checkpoint(dir.path() / "copy").ok);
    reader.reset();

    auto copy = open_store(dir.path() / "copy");
    ASSERT_TRUE(copy);
    EXPECT_EQ(all_rows(*copy), before);
    batch change(*copy);
    change.put(cf::entities, "in-sst", "changed");
    change.del(cf::timers, "in-wal");
    ASSERT_TRUE(copy->write(change, true).ok);
    ASSERT_TRUE(copy->flush().ok);
    copy.reset();
    EXPECT_EQ(all_rows(*writer), before);

    // The target must not exist yet.
    EXPECT_FALSE(writer->checkpoint(dir.path() / "copy").ok);
    EXPECT_TRUE(writer->checkpoint(dir.path() / "copy2").ok);
}

TEST(store, prefix_and_range_iteration) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    batch b(*s);
    for (const char* k : {"a/1", "a/2", "a/3", "b/1", "ab"}) {
        b.put(cf::entities, k, std::string("v") + k);
    }
    ASSERT_TRUE(s->write(b, false).ok);

    std::vector<std::string> seen;
    auto collect = [&](std::string_view k, std::string_view) {
        seen.emplace_back(k);
        return true;
    };
    ASSERT_TRUE(s->for_each(cf::entities, "a/", collect).ok);
    EXPECT_EQ(seen, (std::vector<std::string>{"a/1", "a/2", "a/3"}));

    seen.clear();
    ASSERT_TRUE(s->for_each_range(cf::entities, "a/2", "b/", collect).ok);
    EXPECT_EQ(seen, (std::vector<std::string>{"a/2", "a/3", "ab"}));

    seen.clear();
    ASSERT_TRUE(s->for_each(cf::entities, "", [&](std::string_view k, std::string_view) {
                     seen.emplace_back(k);
                     return seen.size() < 2;
                 }).ok);
    EXPECT_EQ(seen.size(), 2u);

    auto last = s->last(cf::entities, "a/");
    ASSERT_TRUE(last.ok());
    ASSERT_TRUE(last.value);
    EXPECT_EQ(last.value->first, "a/3");
    EXPECT_EQ(last.value->second, "va/3");
    EXPECT_FALSE(s->last(cf::entities, "c/").value);
}

TEST(store, prefix_iteration_through_a_batch_sees_its_puts_and_deletes) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    batch first(*s);
    for (const char* k : {"a/1", "a/2", "a/3", "b/1"}) {
        first.put(cf::entities, k, std::string("v") + k);
    }
    ASSERT_TRUE(s->write(first, false).ok);

    batch b(*s);
    b.del(cf::entities, "a/2");
    b.put(cf::entities, "a/25", "new");
    b.put(cf::entities, "a/3", "changed");
    b.put(cf::entities, "b/0", "elsewhere");
    std::vector<std::pair<std::string, std::string>> seen;
    ASSERT_TRUE(s->for_each(b, cf::entities, "a/", [&](std::string_view k, std::string_view v) {
                     seen.emplace_back(k, v);
                     return true;
                 }).ok);
    EXPECT_EQ(seen,
              (std::vector<std::pair<std::string, std::string>>{
                  {"a/1", "va/1"}, {"a/25", "new"}, {"a/3", "changed"}}));
    // The database itself is unchanged until the batch is written.
    std::size_t stored = 0;
    ASSERT_TRUE(s->for_each(cf::entities, "a/", [&](std::string_view, std::string_view) {
                     ++stored;
                     return true;
                 }).ok);
    EXPECT_EQ(stored, 3U);
}

TEST(store, approximate_counts_name_every_column_family) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    batch b(*s);
    for (int i = 0; i < 10; ++i) {
        b.put(cf::xref, "k" + std::to_string(i), "v");
    }
    ASSERT_TRUE(s->write(b, false).ok);
    auto counts = s->approximate_counts();
    ASSERT_EQ(counts.size(), cf_count);
    EXPECT_EQ(counts[4].first, "xref");
    EXPECT_EQ(counts[4].second, 10u);
    EXPECT_EQ(s->approximate_count(cf::xref), 10u);
}

TEST(store, every_column_family_shares_one_bounded_cache) {
    temp_dir dir;
    auto s = open_store(dir.db());
    ASSERT_TRUE(s);
    const auto m = s->memory();
    EXPECT_TRUE(m.one_cache_for_all);  // default family included; index and filter blocks too
    EXPECT_EQ(m.block_cache_capacity, open_options{}.block_cache_size);
    EXPECT_EQ(m.memtable_budget, open_options{}.memtable_budget);
    EXPECT_LT(m.memtable_budget, m.block_cache_capacity);
    EXPECT_TRUE(m.memtables_charged_to_cache);
}

TEST(store, the_memtable_budget_hands_memtables_to_a_flush) {
    temp_dir dir;
    open_options o;
    o.memtable_budget = 4u << 20;
    o.write_buffer_size = 64u << 20;  // the family never reaches its own limit
    auto s = store::open(dir.db(), o);
    ASSERT_TRUE(s.ok()) << s.st.message;
    // One and a half budgets into one family. Past 7/8 of the budget the next write first
    // switches the memtable to a flush (in the write path, not in the background), so the
    // memtable written to never holds much more than the budget; without it, it would hold all
    // of it (about 6.5 MiB with the skip list) until the family's own 64 MiB limit.
    const std::string value(1000, 'v');
    std::size_t written = 0;
    std::size_t peak = 0;
    for (int round = 0; written < o.memtable_budget * 3 / 2; ++round) {
        batch b(*s.value);
        for (int i = 0; i < 64; ++i) {
            b.put(cf::entities, "k" + std::to_string(round) + "-" + std::to_string(i), value);
            written += value.size();
        }
        ASSERT_TRUE(s.value->write(b, false).ok);
        peak = std::max(peak, s.value->memory().active_memtables);
    }
    const auto m = s.value->memory();
    EXPECT_LE(peak, o.memtable_budget + (1u << 20)) << peak;  // plus one 1 MiB arena block
    EXPECT_GE(m.block_cache_usage, m.active_memtables);       // the memtables are charged to it
}

// Tables are written with a partitioned index: a large firm's table has an index of megabytes,
// which a bounded cache would evict and read back whole for nearly every point read.
TEST(store, tables_are_written_with_a_partitioned_index) {
    temp_dir dir;
    {
        auto s = open_store(dir.db());
        ASSERT_TRUE(s);
        batch b(*s);
        std::uint64_t x = 88172645463325252u;  // xorshift: rows that do not compress away
        for (int i = 0; i < 20000; ++i) {
            std::string value;
            for (int k = 0; k < 8; ++k) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                value += std::to_string(x);
            }
            b.put(cf::entities, "row-" + std::to_string(i), value);
        }
        ASSERT_TRUE(s->write(b, true).ok);
        ASSERT_TRUE(s->flush().ok);
    }
    std::size_t tables = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir.db())) {
        if (e.path().extension() != ".sst") {
            continue;
        }
        rocksdb::SstFileReader reader(rocksdb::Options{});
        ASSERT_TRUE(reader.Open(e.path().string()).ok()) << e.path();
        const auto props = reader.GetTableProperties();
        ASSERT_TRUE(props);
        EXPECT_GE(props->index_partitions, 1u) << e.path();  // 0: one whole index block
        if (props->column_family_name == cf_name(cf::entities)) {
            EXPECT_GT(props->index_partitions, 1u) << props->num_data_blocks << " data blocks";
            ++tables;
        }
    }
    EXPECT_EQ(tables, 1u);
}

// A scratch copy (what `billsync preview` simulates on) keeps no write-ahead log and never
// compacts on its own; a normal store does both.
TEST(store, a_scratch_store_writes_no_log_and_never_compacts) {
    auto wal_bytes = [](const std::filesystem::path& dir) {
        std::uintmax_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            if (e.path().extension() == ".log") {
                n += e.file_size();
            }
        }
        return n;
    };
    // RocksDB records the options it opened with in OPTIONS-<n>: the latest one is the truth.
    auto compactions_disabled = [](const std::filesystem::path& dir) {
        std::filesystem::path latest;
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            const auto name = e.path().filename().string();
            if (name.starts_with("OPTIONS-") &&
                (latest.empty() || name > latest.filename().string())) {
                latest = e.path();
            }
        }
        std::ifstream in(latest);
        std::string line;
        int on = 0, off = 0;
        while (std::getline(in, line)) {
            if (line.find("disable_auto_compactions=true") != std::string::npos) {
                ++on;
            } else if (line.find("disable_auto_compactions=false") != std::string::npos) {
                ++off;
            }
        }
        return std::pair{on, off};
    };
    temp_dir dir;
    {
        auto s = open_store(dir.db());
        ASSERT_TRUE(s);
        batch b(*s);
        b.put(cf::entities, "row", std::string(4096, 'x'));
        ASSERT_TRUE(s->write(b, true).ok);
        EXPECT_GT(wal_bytes(dir.db()), 0u);
        EXPECT_EQ(compactions_disabled(dir.db()).first, 0);
    }
    open_options o;
    o.create_if_missing = false;
    o.scratch = true;
    auto opened = store::open(dir.db(), o);
    ASSERT_TRUE(opened.ok()) << opened.st.message;
    auto& s = *opened.value;
    const auto before = wal_bytes(dir.db());
    for (int i = 0; i < 50; ++i) {
        batch b(s);
        b.put(cf::entities, "row-" + std::to_string(i), std::string(4096, 'y'));
        ASSERT_TRUE(s.write(b, true).ok);  // asked synced: a scratch store still writes
    }
    EXPECT_EQ(wal_bytes(dir.db()), before);
    EXPECT_EQ(s.synced_writes(), 0u);
    const auto [on, off] = compactions_disabled(dir.db());
    EXPECT_GT(on, 0);
    EXPECT_EQ(off, 0);
    auto row = s.get(cf::entities, "row-49");
    ASSERT_TRUE(row.ok() && row.value);
    EXPECT_EQ(row.value->size(), 4096u);
}

TEST(keys, be64_and_instants_sort_bytewise) {
    EXPECT_LT(keys::be64(1), keys::be64(256));
    EXPECT_EQ(keys::read_be64(keys::be64(0x0102030405060708ull)), 0x0102030405060708ull);
    const util::instant before{util::duration{-5}};
    const util::instant after{util::duration{5}};
    EXPECT_LT(keys::be64(keys::from_instant(before)), keys::be64(keys::from_instant(after)));
    EXPECT_EQ(keys::to_instant(keys::from_instant(before)), before);
    EXPECT_EQ(keys::prefix_end("a/"), "a0");
    EXPECT_EQ(keys::prefix_end(std::string("a\xff", 2)), "b");
    EXPECT_EQ(keys::prefix_end(""), "");
}

TEST(keys, codec_rejects_truncated_values) {
    auto v = codec::writer(7).str("hello").u64(300).time(util::instant{}).take();
    codec::reader r(v, 7);
    EXPECT_EQ(r.str(), "hello");
    EXPECT_EQ(r.u64(), 300u);
    EXPECT_EQ(r.time(), util::instant{});
    EXPECT_TRUE(r.done());

    codec::reader wrong_format(v, 8);
    wrong_format.str();
    EXPECT_FALSE(wrong_format.done());

    codec::reader truncated(std::string_view(v).substr(0, v.size() - 1), 7);
    truncated.str();
    truncated.u64();
    truncated.time();
    EXPECT_FALSE(truncated.done());
}

}  // namespace
}  // namespace billsync::state
