#pragma once

// The synchronous RocksDB store: every column family of state/, schema versioning, atomic
// batches and prefix/range scans. Thread-safe: RocksDB serialises writes, reads run concurrently.
//
// Durability: the WAL is always on and flushed on every write (manual_wal_flush = false); a write
// with sync = true is fsynced before it returns. Every RocksDB Status becomes a state::status
// value; nothing in state/ asserts on I/O results.
//
// Read-only opens use DB::OpenAsSecondary with a private temporary directory, not
// DB::OpenForReadOnly: RocksDB documents OpenForReadOnly while another process has the database
// open read-write as undefined behaviour, whereas a secondary instance is made for exactly that
// (`billsync status` next to a running daemon). A secondary sees the primary's state as of open
// (WAL included); catch_up() refreshes it.

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/keys.hpp"

namespace rocksdb {
class Cache;
class DB;
class ColumnFamilyHandle;
class Status;
class WriteBatch;
class WriteBufferManager;
}  // namespace rocksdb

namespace billsync::state {

struct status {
    bool ok = true;
    std::string message;
    bool io_error = false;  // the disk or file system failed; the daemon should stop accepting
    bool no_space = false;  // a subset of io_error: the volume is full
    // RocksDB cannot resume from this error in place (its severity is fatal, e.g. a failed WAL
    // append): only closing and reopening the database clears it.
    bool needs_reopen = false;

    static status success() { return {}; }
    static status failure(std::string message) {
        return {false, std::move(message), false, false, false};
    }
    static status from(const rocksdb::Status& s);

    explicit operator bool() const noexcept { return ok; }
};

template <class T>
struct result {
    status st;
    T value{};

    bool ok() const noexcept { return st.ok; }
    static result failure(status s) { return {std::move(s), T{}}; }
};

class store;
class batch;

// A step from schema `from` to `from + 1`. It reads through the store (use store::get(batch&, …)
// to see earlier steps' writes) and writes into the batch that also bumps the version, so an
// upgrade applies completely or not at all.
struct migration {
    std::uint32_t from = 0;
    std::function<status(store&, batch&)> fn;
};

inline constexpr std::uint32_t current_schema_version = 3;

// The migrations of this build, in order: 1 -> 2 indexes stored clients for the identity map;
// 2 -> 3 writes the date and open-balance indexes of stored invoices, payments and time entries
// (state/entity_index.hpp).
std::vector<migration> builtin_migrations();

struct open_options {
    bool read_only = false;
    bool create_if_missing = true;
    // Tests override these two to exercise upgrades; production uses the defaults.
    std::uint32_t schema_version = current_schema_version;
    std::vector<migration> migrations = builtin_migrations();
    std::size_t write_buffer_size = 8u << 20;  // per column family memtable
    // RocksDB's memory, bounded as a whole (a daemon runs on a small host next to others): ONE
    // block cache shared by every column family, holding data blocks and also index and filter
    // blocks (so table readers do not grow outside it as files accumulate), and one memtable
    // budget for all column families together, charged to that cache.
    std::size_t block_cache_size = 24u << 20;
    std::size_t memtable_budget = 12u << 20;  // part of block_cache_size
    // A throwaway copy that lives for one command (`billsync preview` simulates on a checkpoint):
    // no automatic compactions (they would only compete with the command for the CPU) and no
    // write-ahead log (a crash loses nothing anyone needs); every write is unsynced.
    bool scratch = false;
};

// What store::memory() reports: the configured bounds and what is in use now.
struct memory_info {
    std::size_t block_cache_capacity = 0;
    std::size_t block_cache_usage = 0;  // includes the memtables' reservation
    std::size_t memtable_budget = 0;
    std::size_t memtable_usage = 0;    // all column families, active and being flushed
    std::size_t active_memtables = 0;  // the part still written to (what the budget switches)
    std::size_t table_readers = 0;     // table reader memory outside the block cache
    // Every column family (ours, default, unknown ones) uses the one shared block cache and keeps
    // index and filter blocks in it.
    bool one_cache_for_all = false;
    bool memtables_charged_to_cache = false;
};

// Several changes applied atomically by store::write or group_commit. Reads through
// store::get(batch&, …) see the batch's own writes (a WriteBatchWithIndex underneath), so a table
// may touch one key several times in a batch and stay consistent.
//
// Hooks: on_commit hooks run (on the writing thread) after the batch is durably written, before
// the writer's completion callback; on_abandon hooks run when a batch that was never
// successfully written is destroyed. Tables use them to keep in-memory indexes exact. Hooks must
// not throw.
class batch {
public:
    explicit batch(const store& s);
    ~batch();
    batch(batch&& other) noexcept;
    batch& operator=(batch&& other) noexcept;
    batch(const batch&) = delete;
    batch& operator=(const batch&) = delete;

    void put(cf family, std::string_view key, std::string_view value);
    void del(cf family, std::string_view key);
    void on_commit(std::function<void()> hook);
    void on_abandon(std::function<void()> hook);

    std::size_t count() const noexcept;  // operations added
    bool empty() const noexcept { return count() == 0; }
    std::size_t byte_size() const noexcept;

private:
    friend class store;
    struct impl;
    std::unique_ptr<impl> impl_;
};

class store {
public:
    static result<std::unique_ptr<store>> open(const std::filesystem::path& dir,
                                               const open_options& options = {});
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    // Writes a batch atomically; with sync the WAL is fsynced first. On success runs the batch's
    // on_commit hooks.
    status write(batch& b, bool sync);
    // Writes several batches as ONE atomic RocksDB write (used by group_commit).
    // Every batch must pass check(); otherwise nothing is written.
    status write_group(std::span<batch* const> batches, bool sync);

    // Whether b can be written to this store (it belongs to it, was not written yet, and no
    // operation failed while it was built).
    status check(const batch& b) const;

    result<std::optional<std::string>> get(cf family, std::string_view key) const;
    // Reads the batch's own writes first, then the database.
    result<std::optional<std::string>> get(batch& b, cf family, std::string_view key) const;

    // fn(key, value) -> bool: return false to stop. Keys come in bytewise order.
    using visit_fn = std::function<bool(std::string_view key, std::string_view value)>;
    status for_each(cf family, std::string_view prefix, const visit_fn& fn) const;
    // The keys under prefix as writing b would leave them: the batch's own puts and deletes over
    // the database's rows.
    status for_each(batch& b, cf family, std::string_view prefix, const visit_fn& fn) const;
    // Keys in [from, to); an empty `to` means no upper bound.
    status for_each_range(cf family,
                          std::string_view from,
                          std::string_view to,
                          const visit_fn& fn) const;
    // The last key (and value) starting with prefix.
    result<std::optional<std::pair<std::string, std::string>>> last(cf family,
                                                                    std::string_view prefix) const;

    // RocksDB's estimate ("rocksdb.estimate-num-keys"): cheap, approximate after deletes.
    std::uint64_t approximate_count(cf family) const;
    std::vector<std::pair<std::string_view, std::uint64_t>> approximate_counts() const;

    // RocksDB's memory bounds and current use.
    memory_info memory() const;

    // Read-only (secondary) instances: pick up what the primary wrote since.
    status catch_up();
    // After a background error (a failed WAL, flush or compaction write, e.g. on a full disk)
    // RocksDB refuses every write until it is resumed: DB::Resume() clears the error once its
    // cause has gone (and fails while it has not). OK when there is nothing to resume. A fatal
    // error (RocksDB 7.8 classes a failed WAL append so) cannot be resumed in place: the result
    // then has needs_reopen set.
    status resume();
    // Flushes memtables to SST files (tests, shutdown of tools); the WAL already holds the data.
    status flush();
    // A consistent copy of the whole database in `dir` (which must not exist yet), made with a
    // RocksDB checkpoint: SST files are hard-linked where the file system allows, copied
    // otherwise, and the WAL is copied. Works on read-only (secondary) instances too, so a copy
    // can be taken next to a running daemon; this store's files are never modified. The copy
    // opens with store::open like any data dir.
    status checkpoint(const std::filesystem::path& dir) const;

    std::uint32_t schema_version() const noexcept { return schema_version_; }
    bool read_only() const noexcept { return read_only_; }
    // A read-only instance's own scratch files (private, removed at close); empty otherwise.
    const std::filesystem::path& secondary_dir() const noexcept { return secondary_dir_; }
    const std::filesystem::path& dir() const noexcept { return dir_; }

    // Counters for tests and /status.
    std::uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }
    std::uint64_t synced_writes() const noexcept {
        return synced_writes_.load(std::memory_order_relaxed);
    }

private:
    store() = default;
    friend class batch;
    status open_impl(const open_options& options);
    status check_schema(const open_options& options);
    rocksdb::ColumnFamilyHandle* handle(cf family) const noexcept {
        return handles_[static_cast<std::size_t>(family)];
    }
    status write_raw(rocksdb::WriteBatch* wb, bool sync);

    std::filesystem::path dir_;
    std::filesystem::path secondary_dir_;
    rocksdb::DB* db_ = nullptr;
    std::array<rocksdb::ColumnFamilyHandle*, cf_count> handles_{};
    std::vector<rocksdb::ColumnFamilyHandle*> all_handles_;  // ours, default and unknown ones
    std::shared_ptr<rocksdb::Cache> block_cache_;
    std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
    std::uint32_t schema_version_ = 0;
    bool read_only_ = false;
    bool scratch_ = false;
    std::atomic<std::uint64_t> writes_{0};
    std::atomic<std::uint64_t> synced_writes_{0};
};

}  // namespace billsync::state
