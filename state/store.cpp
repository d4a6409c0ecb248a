#include "state/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <system_error>

#include "state/entity_index.hpp"
#include "state/identity.hpp"
#include "util/temp_dir.hpp"

namespace billsync::state {

namespace {

constexpr std::string_view schema_key = "schema_version";

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Column families used as queues (rows deleted from the front): compact files that fill with
// tombstones early so scans do not wade through them.
bool queue_like(cf family) {
    return family == cf::inbox || family == cf::outbox || family == cf::timers ||
           family == cf::dedup;
}

// Every column family's tables use the one shared block cache, with index and filter blocks in
// it: RocksDB's default gives each column family its own 8 MB cache (13 of them here) and keeps
// every open table's index and filter outside any cache.
//
// The index is partitioned: a large firm's table (a million timers, a quarter of a million time
// entries) has an index of megabytes, and in a bounded cache one such block is evicted and read
// back (decompressed, checksummed) by nearly every point read. Partitions are ordinary 4 KiB
// blocks cached by use; only the small top level stays pinned.
rocksdb::ColumnFamilyOptions with_shared_cache(rocksdb::ColumnFamilyOptions o,
                                               const std::shared_ptr<rocksdb::Cache>& cache) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    t.cache_index_and_filter_blocks = true;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.metadata_block_size = 4096;
    t.pin_top_level_index_and_filter = true;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    return o;
}

rocksdb::ColumnFamilyOptions family_options(cf family,
                                            const open_options& options,
                                            const std::shared_ptr<rocksdb::Cache>& cache) {
    rocksdb::ColumnFamilyOptions o = with_shared_cache({}, cache);
    o.write_buffer_size = options.write_buffer_size;
    o.max_write_buffer_number = 2;
    o.level_compaction_dynamic_level_bytes = true;
    if (queue_like(family)) {
        o.table_properties_collector_factories.push_back(
            rocksdb::NewCompactOnDeletionCollectorFactory(128, 64));
    }
    return o;
}

rocksdb::DBOptions db_options(const open_options& options,
                              std::shared_ptr<rocksdb::WriteBufferManager> write_buffers) {
    rocksdb::DBOptions o;
    o.create_if_missing = options.create_if_missing && !options.read_only;
    o.create_missing_column_families = !options.read_only;
    o.manual_wal_flush = false;  // every write reaches the OS; sync writes are fsynced
    o.max_background_jobs = 2;   // the target hosts are small
    o.keep_log_file_num = 3;     // RocksDB's own info LOG files
    // Quiet column families must not pin more old WAL files than this while the daemon runs
    // (what an open keeps is bounded by trim_recovered_log).
    o.max_total_wal_size = 8u << 20;
    o.write_buffer_manager = std::move(write_buffers);  // all memtables together
    o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    // A restart (after a crash, a kill) replays the write-ahead log into memtables and keeps the
    // log until they are flushed as usual, instead of writing and syncing small tables before the
    // open returns: what was written stays in the synced log, so nothing is less durable, and the
    // open no longer waits on those syncs.
    o.avoid_flush_during_recovery = true;
    // Nor does the open read every table's properties for compaction statistics (RocksDB fills
    // them in as tables are read and written).
    o.skip_stats_update_on_db_open = true;
    // Tables are opened by two threads per column family, not sixteen: on the small target hosts
    // more only adds threads to start and stop (about two hundred at every open here).
    o.max_file_opening_threads = 2;
    if (options.read_only) {
        o.max_open_files = -1;  // required by secondary instances
    }
    return o;
}

// Re-applies the operations of one WriteBatch to another, mapping column family ids to handles.
class merger final : public rocksdb::WriteBatch::Handler {
public:
    merger(std::span<rocksdb::ColumnFamilyHandle* const> handles, rocksdb::WriteBatch& out)
        : handles_(handles), out_(out) {}

    rocksdb::Status PutCF(std::uint32_t id,
                          const rocksdb::Slice& key,
                          const rocksdb::Slice& value) override {
        auto* h = find(id);
        return h != nullptr ? out_.Put(h, key, value) : unknown(id);
    }
    rocksdb::Status DeleteCF(std::uint32_t id, const rocksdb::Slice& key) override {
        auto* h = find(id);
        return h != nullptr ? out_.Delete(h, key) : unknown(id);
    }
    rocksdb::Status SingleDeleteCF(std::uint32_t id, const rocksdb::Slice& key) override {
        auto* h = find(id);
        return h != nullptr ? out_.SingleDelete(h, key) : unknown(id);
    }
    rocksdb::Status DeleteRangeCF(std::uint32_t id,
                                  const rocksdb::Slice& begin,
                                  const rocksdb::Slice& end) override {
        auto* h = find(id);
        return h != nullptr ? out_.DeleteRange(h, begin, end) : unknown(id);
    }
    rocksdb::Status MergeCF(std::uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
        return rocksdb::Status::NotSupported("merge operands are not used by billsync");
    }
    void LogData(const rocksdb::Slice&) override {}

private:
    rocksdb::ColumnFamilyHandle* find(std::uint32_t id) const {
        for (auto* h : handles_) {
            if (h->GetID() == id) {
                return h;
            }
        }
        return nullptr;
    }
    static rocksdb::Status unknown(std::uint32_t id) {
        return rocksdb::Status::InvalidArgument("unknown column family id " + std::to_string(id));
    }

    std::span<rocksdb::ColumnFamilyHandle* const> handles_;
    rocksdb::WriteBatch& out_;
};

// The open keeps the write-ahead log it replayed (avoid_flush_during_recovery), and a column
// family that is written rarely, or never (RocksDB's default one), keeps pinning every log file
// since its last flush: each restart would add a file that is never deleted, and replay them all.
// Once the kept log passes the bound, the open flushes every column family first (a few synced
// tables, once in so many restarts; a kill meanwhile loses nothing, the log stays until the
// flush is done). A flush left to the background would be lost to a daemon killed soon after
// its start, again and again.
void trim_recovered_log(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& all) {
    // About one memtable's worth, and a few restarts' files.
    constexpr std::size_t kept_log_files = 8;
    constexpr std::uint64_t kept_log_bytes = 8u << 20;
    rocksdb::VectorLogPtr files;
    if (!db.GetSortedWalFiles(files).ok()) {
        return;
    }
    std::uint64_t bytes = 0;
    for (const auto& f : files) {
        bytes += f->SizeFileBytes();
    }
    if (files.size() <= kept_log_files && bytes <= kept_log_bytes) {
        return;
    }
    rocksdb::FlushOptions fo;
    fo.allow_write_stall = true;
    (void)db.Flush(fo, all);
}

}  // namespace

status status::from(const rocksdb::Status& s) {
    if (s.ok()) {
        return {};
    }
    status out;
    out.ok = false;
    out.message = s.ToString();
    out.io_error = s.IsIOError() || s.IsNoSpace();
    out.no_space = s.IsNoSpace();
    return out;
}

std::vector<migration> builtin_migrations() {
    return {{1, [](store& s, batch& b) { return identity::index_all(s, b); }},
            {2, [](store& s, batch& b) { return entity_index::index_all(s, b); }}};
}

// --- batch -----------------------------------------------------------------------------------

struct batch::impl {
    explicit impl(const store& s) : owner(&s) {}

    void add_error(const rocksdb::Status& s) {
        if (!s.ok() && error.ok) {
            error = status::from(s);
        }
    }
    void run(std::vector<std::function<void()>>& hooks) {
        auto todo = std::move(hooks);
        hooks.clear();
        for (auto& hook : todo) {
            hook();
        }
    }
    void committed() {
        done = true;
        abandon_hooks.clear();
        run(commit_hooks);
    }

    const store* owner;
    // overwrite_key: a key written twice in one batch reads back its latest value.
    rocksdb::WriteBatchWithIndex wb{rocksdb::BytewiseComparator(), 0, true};
    std::vector<std::function<void()>> commit_hooks;
    std::vector<std::function<void()>> abandon_hooks;
    status error;
    std::size_t ops = 0;
    bool done = false;
};

batch::batch(const store& s) : impl_(std::make_unique<impl>(s)) {}

batch::~batch() {
    if (impl_ && !impl_->done) {
        impl_->run(impl_->abandon_hooks);
    }
}

batch::batch(batch&& other) noexcept = default;

batch& batch::operator=(batch&& other) noexcept {
    if (this != &other) {
        if (impl_ && !impl_->done) {
            impl_->run(impl_->abandon_hooks);
        }
        impl_ = std::move(other.impl_);
    }
    return *this;
}

void batch::put(cf family, std::string_view key, std::string_view value) {
    impl_->add_error(impl_->wb.Put(impl_->owner->handle(family), slice(key), slice(value)));
    ++impl_->ops;
}

void batch::del(cf family, std::string_view key) {
    impl_->add_error(impl_->wb.Delete(impl_->owner->handle(family), slice(key)));
    ++impl_->ops;
}

void batch::on_commit(std::function<void()> hook) {
    impl_->commit_hooks.push_back(std::move(hook));
}

void batch::on_abandon(std::function<void()> hook) {
    impl_->abandon_hooks.push_back(std::move(hook));
}

std::size_t batch::count() const noexcept { return impl_ ? impl_->ops : 0; }

std::size_t batch::byte_size() const noexcept {
    return impl_ ? impl_->wb.GetWriteBatch()->GetDataSize() : 0;
}

// --- store -----------------------------------------------------------------------------------

result<std::unique_ptr<store>> store::open(const std::filesystem::path& dir,
                                           const open_options& options) {
    std::unique_ptr<store> s(new store());
    s->dir_ = dir;
    s->read_only_ = options.read_only;
    s->scratch_ = options.scratch;
    if (auto st = s->open_impl(options); !st.ok) {
        return result<std::unique_ptr<store>>::failure(std::move(st));
    }
    if (auto st = s->check_schema(options); !st.ok) {
        return result<std::unique_ptr<store>>::failure(std::move(st));
    }
    return {status::success(), std::move(s)};
}

status store::open_impl(const open_options& options) {
    // High-priority pool: index and filter blocks are evicted after data blocks.
    block_cache_ = rocksdb::NewLRUCache(options.block_cache_size, -1, false, 0.5);
    // Past 7/8 of the budget a write first hands a memtable to a flush. No
    // allow_stall: RocksDB 7.8 can stall writers there for good (seen in the store tests).
    write_buffers_ =
        std::make_shared<rocksdb::WriteBufferManager>(options.memtable_budget, block_cache_);
    const auto dbo = db_options(options, write_buffers_);
    const std::string path = dir_.string();

    std::vector<std::string> existing;
    auto listed = rocksdb::DB::ListColumnFamilies(dbo, path, &existing);
    if (!listed.ok()) {
        std::error_code ec;
        const bool exists = std::filesystem::exists(dir_ / "CURRENT", ec);
        if (options.read_only || !options.create_if_missing || exists) {
            return status::failure("cannot open data dir " + path + ": " + listed.ToString());
        }
        existing.clear();  // a new database
    }

    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                             with_shared_cache({}, block_cache_));
    for (std::size_t i = 0; i < cf_count; ++i) {
        const auto family = static_cast<cf>(i);
        const std::string name(cf_name(family));
        if (options.read_only &&
            std::find(existing.begin(), existing.end(), name) == existing.end()) {
            return status::failure("data dir " + path + " has no column family '" + name +
                                   "'; it was not initialised by billsync");
        }
        descriptors.emplace_back(name, family_options(family, options, block_cache_));
    }
    if (!options.read_only) {
        // A read-write open must name every column family, including ones a later billsync added.
        for (const auto& name : existing) {
            const bool known = std::any_of(descriptors.begin(),
                                           descriptors.end(),
                                           [&](const auto& d) { return d.name == name; });
            if (!known) {
                descriptors.emplace_back(name, with_shared_cache({}, block_cache_));
            }
        }
    }

    if (options.scratch) {
        for (auto& d : descriptors) {
            d.options.disable_auto_compactions = true;
        }
    }

    rocksdb::Status s;
    if (options.read_only) {
        // Private (0700, unpredictable name): the secondary's own files mirror the state.
        std::error_code ec;
        auto made = util::make_private_temp_dir("billsync-secondary-", ec);
        if (!made) {
            return status::failure("cannot create a private temp dir for a read-only instance: " +
                                   ec.message());
        }
        secondary_dir_ = std::move(*made);
        s = rocksdb::DB::OpenAsSecondary(
            dbo, path, secondary_dir_.string(), descriptors, &all_handles_, &db_);
    } else {
        s = rocksdb::DB::Open(dbo, path, descriptors, &all_handles_, &db_);
    }
    if (!s.ok()) {
        db_ = nullptr;
        all_handles_.clear();
        auto st = status::from(s);
        st.message = "cannot open data dir " + path + ": " + st.message;
        return st;
    }
    for (std::size_t i = 0; i < cf_count; ++i) {
        handles_[i] = all_handles_[i + 1];
    }
    if (!options.read_only) {
        trim_recovered_log(*db_, all_handles_);
    }
    return {};
}

status store::check_schema(const open_options& options) {
    const std::string path = dir_.string();
    auto stored = get(cf::meta, schema_key);
    if (!stored.ok()) {
        return stored.st;
    }
    const std::uint32_t target = options.schema_version;
    if (!stored.value) {
        if (read_only_) {
            return status::failure("data dir " + path +
                                   " has no schema version; it was not initialised by billsync");
        }
        for (std::size_t i = 0; i < cf_count; ++i) {
            bool any = false;
            auto st = for_each(static_cast<cf>(i), "", [&](std::string_view, std::string_view) {
                any = true;
                return false;
            });
            if (!st.ok) {
                return st;
            }
            if (any) {
                return status::failure("data dir " + path +
                                       " holds data but no schema version; refusing to use it");
            }
        }
        batch b(*this);
        b.put(cf::meta, schema_key, std::to_string(target));
        if (auto st = write(b, true); !st.ok) {
            return st;
        }
        schema_version_ = target;
        return {};
    }

    std::uint32_t version = 0;
    const std::string& text = *stored.value;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return status::failure("data dir " + path + " has a corrupt schema version '" + text + "'");
    }
    if (version > target) {
        return status::failure("data dir " + path + " was written by schema " +
                               std::to_string(version) + ", this billsync understands up to " +
                               std::to_string(target) + "; upgrade billsync");
    }
    if (version < target) {
        if (read_only_) {
            return status::failure("data dir " + path + " is at schema " + std::to_string(version) +
                                   ", this billsync needs " + std::to_string(target) +
                                   "; open it read-write once to migrate it");
        }
        batch b(*this);
        for (std::uint32_t from = version; from < target; ++from) {
            auto m = std::find_if(options.migrations.begin(),
                                  options.migrations.end(),
                                  [&](const migration& mig) { return mig.from == from; });
            if (m == options.migrations.end() || !m->fn) {
                return status::failure("data dir " + path + ": no migration from schema " +
                                       std::to_string(from) + " to " + std::to_string(from + 1));
            }
            if (auto st = m->fn(*this, b); !st.ok) {
                st.message = "migration of data dir " + path + " from schema " +
                             std::to_string(from) + " failed: " + st.message;
                return st;
            }
        }
        b.put(cf::meta, schema_key, std::to_string(target));
        if (auto st = write(b, true); !st.ok) {
            return st;
        }
    }
    schema_version_ = target;
    return {};
}

store::~store() {
    if (db_ != nullptr) {
        for (auto* h : all_handles_) {
            db_->DestroyColumnFamilyHandle(h);
        }
        db_->Close();  // errors on close cannot be acted upon; the WAL has every acknowledged write
        delete db_;
    }
    if (!secondary_dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(secondary_dir_, ec);
    }
}

status store::resume() {
    if (read_only_ || db_ == nullptr) {
        return status::success();
    }
    auto s = db_->Resume();
    auto out = status::from(s);
    out.needs_reopen = !s.ok() && s.severity() >= rocksdb::Status::Severity::kFatalError;
    return out;
}

status store::write_raw(rocksdb::WriteBatch* wb, bool sync) {
    if (read_only_) {
        return status::failure("data dir " + dir_.string() + " is open read-only");
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync && !scratch_;
    wo.disableWAL = scratch_;
    auto s = db_->Write(wo, wb);
    writes_.fetch_add(1, std::memory_order_relaxed);
    if (wo.sync) {
        synced_writes_.fetch_add(1, std::memory_order_relaxed);
    }
    return status::from(s);
}

status store::write(batch& b, bool sync) {
    batch* one = &b;
    return write_group(std::span<batch* const>(&one, 1), sync);
}

status store::check(const batch& b) const {
    if (!b.impl_ || b.impl_->owner != this) {
        return status::failure("batch does not belong to this store");
    }
    if (b.impl_->done) {
        return status::failure("batch was already written");
    }
    return b.impl_->error;
}

status store::write_group(std::span<batch* const> batches, bool sync) {
    for (auto* b : batches) {
        if (auto st = check(*b); !st.ok) {
            return st;
        }
    }
    status st;
    if (batches.size() == 1) {
        st = write_raw(batches[0]->impl_->wb.GetWriteBatch(), sync);
    } else {
        rocksdb::WriteBatch merged;
        merger m(all_handles_, merged);
        for (auto* b : batches) {
            if (auto s = b->impl_->wb.GetWriteBatch()->Iterate(&m); !s.ok()) {
                return status::from(s);
            }
        }
        st = write_raw(&merged, sync);
    }
    if (st.ok) {
        for (auto* b : batches) {
            b->impl_->committed();
        }
    }
    return st;
}

result<std::optional<std::string>> store::get(cf family, std::string_view key) const {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), handle(family), slice(key), &value);
    if (s.IsNotFound()) {
        return {};
    }
    if (!s.ok()) {
        return result<std::optional<std::string>>::failure(status::from(s));
    }
    return {status::success(), std::move(value)};
}

result<std::optional<std::string>> store::get(batch& b, cf family, std::string_view key) const {
    if (!b.impl_ || b.impl_->owner != this) {
        return result<std::optional<std::string>>::failure(
            status::failure("batch does not belong to this store"));
    }
    std::string value;
    auto s = b.impl_->wb.GetFromBatchAndDB(
        db_, rocksdb::ReadOptions(), handle(family), slice(key), &value);
    if (s.IsNotFound()) {
        return {};
    }
    if (!s.ok()) {
        return result<std::optional<std::string>>::failure(status::from(s));
    }
    return {status::success(), std::move(value)};
}

status store::for_each(cf family, std::string_view prefix, const visit_fn& fn) const {
    return for_each_range(family, prefix, keys::prefix_end(prefix), fn);
}

status store::for_each(batch& b, cf family, std::string_view prefix, const visit_fn& fn) const {
    if (!b.impl_ || b.impl_->owner != this) {
        return status::failure("batch does not belong to this store");
    }
    rocksdb::ReadOptions ro;
    const std::string upper = keys::prefix_end(prefix);
    const rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) {
        ro.iterate_upper_bound = &upper_slice;
    }
    // The batch's iterator owns the database iterator it merges over.
    std::unique_ptr<rocksdb::Iterator> it(
        b.impl_->wb.NewIteratorWithBase(handle(family), db_->NewIterator(ro, handle(family)), &ro));
    for (it->Seek(slice(prefix)); it->Valid() && view(it->key()).starts_with(prefix); it->Next()) {
        if (!fn(view(it->key()), view(it->value()))) {
            break;
        }
    }
    return status::from(it->status());
}

status store::for_each_range(cf family,
                             std::string_view from,
                             std::string_view to,
                             const visit_fn& fn) const {
    rocksdb::ReadOptions ro;
    const std::string upper(to);
    const rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) {
        ro.iterate_upper_bound = &upper_slice;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handle(family)));
    for (it->Seek(slice(from)); it->Valid(); it->Next()) {
        if (!fn(view(it->key()), view(it->value()))) {
            break;
        }
    }
    return status::from(it->status());
}

result<std::optional<std::pair<std::string, std::string>>> store::last(
    cf family, std::string_view prefix) const {
    using result_t = result<std::optional<std::pair<std::string, std::string>>>;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handle(family)));
    const std::string end = keys::prefix_end(prefix);
    if (end.empty()) {
        it->SeekToLast();
    } else {
        it->SeekForPrev(slice(end));
        if (it->Valid() && view(it->key()) == end) {
            it->Prev();
        }
    }
    if (!it->status().ok()) {
        return result_t::failure(status::from(it->status()));
    }
    if (!it->Valid() || !view(it->key()).starts_with(prefix)) {
        return {};
    }
    return {status::success(),
            std::make_pair(std::string(view(it->key())), std::string(view(it->value())))};
}

std::uint64_t store::approximate_count(cf family) const {
    std::uint64_t n = 0;
    if (!db_->GetIntProperty(handle(family), "rocksdb.estimate-num-keys", &n)) {
        return 0;
    }
    return n;
}

std::vector<std::pair<std::string_view, std::uint64_t>> store::approximate_counts() const {
    std::vector<std::pair<std::string_view, std::uint64_t>> out;
    out.reserve(cf_count);
    for (std::size_t i = 0; i < cf_count; ++i) {
        out.emplace_back(cf_names[i], approximate_count(static_cast<cf>(i)));
    }
    return out;
}

memory_info store::memory() const {
    memory_info m;
    m.block_cache_capacity = block_cache_->GetCapacity();
    m.block_cache_usage = block_cache_->GetUsage();
    m.memtable_budget = write_buffers_->buffer_size();
    m.memtables_charged_to_cache = write_buffers_->cost_to_cache();
    std::uint64_t v = 0;
    if (db_->GetAggregatedIntProperty("rocksdb.size-all-mem-tables", &v)) {
        m.memtable_usage = v;
    }
    if (db_->GetAggregatedIntProperty("rocksdb.cur-size-active-mem-table", &v)) {
        m.active_memtables = v;
    }
    if (db_->GetAggregatedIntProperty("rocksdb.estimate-table-readers-mem", &v)) {
        m.table_readers = v;
    }
    m.one_cache_for_all =
        std::all_of(all_handles_.begin(), all_handles_.end(), [&](rocksdb::ColumnFamilyHandle* h) {
            const auto o = db_->GetOptions(h);
            const auto* t = o.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
            return t != nullptr && t->block_cache == block_cache_ &&
                   t->cache_index_and_filter_blocks;
        });
    return m;
}

status store::catch_up() {
    if (!read_only_) {
        return {};
    }
    return status::from(db_->TryCatchUpWithPrimary());
}

status store::flush() {
    if (read_only_) {
        return {};
    }
    std::vector<rocksdb::ColumnFamilyHandle*> ours(handles_.begin(), handles_.end());
    return status::from(db_->Flush(rocksdb::FlushOptions(), ours));
}

status store::checkpoint(const std::filesystem::path& dir) const {
    rocksdb::Checkpoint* raw = nullptr;
    if (auto s = rocksdb::Checkpoint::Create(db_, &raw); !s.ok()) {
        auto st = status::from(s);
        st.message = "cannot checkpoint " + dir_.string() + ": " + st.message;
        return st;
    }
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    // Never flush first (that would write to this database): the WAL is copied instead.
    auto s = cp->CreateCheckpoint(dir.string(), std::numeric_limits<std::uint64_t>::max());
    if (!s.ok()) {
        auto st = status::from(s);
        st.message =
            "cannot checkpoint " + dir_.string() + " into " + dir.string() + ": " + st.message;
        return st;
    }
    return {};
}

}  // namespace billsync::state
