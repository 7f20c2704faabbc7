#include "granary/online/rocksdb/rocksdb_store.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <fstream>
#include <limits>
#include <numeric>

#include "granary/common/hash.h"
#include "granary/common/mutex.h"
#include "granary/online/rocksdb/records.h"
#include "granary/online/rocksdb/writer_folders.h"
#include "granary/online/value_codec.h"

namespace granary {

using rocksdb_records::AppendRecordKey;
using rocksdb_records::ExpiryOf;
using rocksdb_records::FromRocks;
using rocksdb_records::kNever;
using rocksdb_records::kRecordHeader;
using rocksdb_records::kRecordVersion;

namespace {

// Rows compared and written under one set of locks.
constexpr int64_t kChunkRows = 256;

// View markers: "\0marker\0" + view name (rocksdb_store.h).
constexpr std::string_view kMarkerPrefix("\0marker\0", 8);

bool IsMarkerKey(const rocksdb::Slice& key) { return !key.empty() && key[0] == '\0'; }

// The stripe locks of a write (rocksdb_store.h, stripes_): the stripes of its keys, each taken
// once and in increasing order, so that two writers never deadlock; released in reverse order
// when it goes out of scope.
template <size_t N>
class StripeLocks {
 public:
  StripeLocks(std::array<std::mutex, N>& all, std::vector<size_t> stripes)
      : all_(all), held_(std::move(stripes)) {
    std::sort(held_.begin(), held_.end());
    held_.erase(std::unique(held_.begin(), held_.end()), held_.end());
    for (size_t s : held_) all_[s].lock();
  }
  ~StripeLocks() {
    for (auto it = held_.rbegin(); it != held_.rend(); ++it) all_[*it].unlock();
  }
  StripeLocks(const StripeLocks&) = delete;
  StripeLocks& operator=(const StripeLocks&) = delete;

 private:
  std::array<std::mutex, N>& all_;
  std::vector<size_t> held_;
};

}  // namespace

struct RocksDbOnlineStore::CompactionFilterImpl final : public rocksdb::CompactionFilter {
  explicit CompactionFilterImpl(const Clock* clock) : clock(clock) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    if (value.size() < kRecordHeader || value[0] != kRecordVersion) return false;
    return ExpiryOf(std::string_view(value.data(), value.size())) <= clock->Now().micros;
  }
  const char* Name() const override { return "granary.expiry"; }
  const Clock* clock;
};

// What a reader last saw of the writer's files. RocksDB's catch-up lists the folder and reads the
// MANIFEST and the logs (about 0.4 ms, bench/online); when none of them changed it is skipped.
// Every change of the writer shows in one of three places: the folder's mtime (a file created or
// deleted: a new log, a flush, a compaction), the size of the newest log (writes), the size of
// the current MANIFEST (version edits). Directory mtimes come from the kernel's coarse clock (a
// few ms), so two changes in one tick look like one: a folder changed in the last two seconds is
// never trusted, and the catch-up runs. Stats are taken before the catch-up they justify.
struct RocksDbOnlineStore::WriterFiles {
  bool valid = false;
  timespec folder_mtime{};
  std::filesystem::path log, manifest;
  int64_t log_size = -1, manifest_size = -1;

  static int64_t SizeOf(const std::filesystem::path& path) {
    struct stat st;
    if (path.empty() || stat(path.c_str(), &st) != 0) return -1;
    return st.st_size;
  }

  // Observes the writer's files; returns whether something may have changed since last time.
  bool Changed(const std::filesystem::path& folder) {
    struct stat st;
    if (stat(folder.c_str(), &st) != 0) {
      valid = false;
      return true;
    }
    bool changed = !valid || st.st_mtim.tv_sec != folder_mtime.tv_sec ||
                   st.st_mtim.tv_nsec != folder_mtime.tv_nsec;
    const bool recent = std::time(nullptr) - st.st_mtim.tv_sec < 2;
    if (changed) {
      folder_mtime = st.st_mtim;
      log.clear();
      uint64_t newest = 0;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.ends_with(".log")) continue;
        uint64_t number = 0;
        auto [end, err] = std::from_chars(name.data(), name.data() + name.size() - 4, number);
        if (err == std::errc() && end == name.data() + name.size() - 4 && number >= newest) {
          newest = number;
          log = entry.path();
        }
      }
      std::string current;
      std::getline(std::ifstream(folder / "CURRENT"), current);
      manifest = current.empty() ? std::filesystem::path() : folder / current;
    }
    const int64_t new_log_size = SizeOf(log), new_manifest_size = SizeOf(manifest);
    changed |= new_log_size != log_size || new_manifest_size != manifest_size;
    log_size = new_log_size;
    manifest_size = new_manifest_size;
    valid = new_log_size >= 0 && new_manifest_size >= 0;  // a file gone: list the folder again
    return changed || recent;
  }
};

RocksDbOnlineStore::Options RocksDbOnlineStore::ForMemoryBudget(int64_t budget_bytes) {
  const int64_t budget = std::max<int64_t>(budget_bytes, 0);
  Options options;
  options.block_cache_bytes = static_cast<size_t>(std::clamp<int64_t>(
      budget / 4, int64_t{8} << 20, static_cast<int64_t>(kDefaultBlockCacheBytes)));
  options.write_buffer_bytes = static_cast<size_t>(std::clamp<int64_t>(
      budget / 8, int64_t{4} << 20, static_cast<int64_t>(kDefaultWriteBufferBytes)));
  return options;
}

Result<RocksDbOnlineStore::MemoryUse> RocksDbOnlineStore::Memory() const {
  MemoryUse use;
  auto property = [&](const std::string& name, int64_t* out) -> Status {
    uint64_t value = 0;
    if (!db_->GetIntProperty(name, &value)) {
      return Status::Internal(fmt::format("{}: RocksDB has no property {}", Describe(), name));
    }
    *out = static_cast<int64_t>(value);
    return Status::OK();
  };
  GRANARY_RETURN_NOT_OK(
      property(rocksdb::DB::Properties::kBlockCacheCapacity, &use.block_cache_capacity));
  GRANARY_RETURN_NOT_OK(
      property(rocksdb::DB::Properties::kBlockCacheUsage, &use.block_cache_usage));
  GRANARY_RETURN_NOT_OK(property(rocksdb::DB::Properties::kSizeAllMemTables, &use.memtables));
  GRANARY_RETURN_NOT_OK(
      property(rocksdb::DB::Properties::kEstimateTableReadersMem, &use.table_readers));
  const rocksdb::Options opened = db_->GetOptions();
  use.write_buffer_bytes = static_cast<int64_t>(opened.write_buffer_size);
  use.max_write_buffers = opened.max_write_buffer_number;
  use.level0_compaction_files = opened.level0_file_num_compaction_trigger;
  return use;
}

Result<std::unique_ptr<RocksDbOnlineStore>> RocksDbOnlineStore::Open(
    const std::filesystem::path& path, const Options& options) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return Status::IOError(
        fmt::format("cannot create the online store folder {}: {}", path.string(), ec.message()));
  }
  std::unique_ptr<RocksDbOnlineStore> store(new RocksDbOnlineStore());
  store->path_ = path;
  store->options_ = options;
  store->filter_ = std::make_unique<CompactionFilterImpl>(options.clock);
  store->stripes_ = std::make_unique<std::array<std::mutex, kStripes>>();

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.IncreaseParallelism(2);
  db_options.compaction_filter = store->filter_.get();
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.max_write_buffer_number = kWriteBuffers;
  // Smaller write buffers flush smaller level-0 files. Compacted into level 1 every 4 files, as
  // with a server's 64 MiB buffers, they would rewrite level 1 for every 4 x 8 MiB (measured on
  // the seed's tiles at a 64 MiB budget: twice the bytes written and 1.5x the CPU); so level 0
  // holds as many bytes before a compaction as a server's does.
  const int level0_files =
      std::max(4, static_cast<int>(4 * kDefaultWriteBufferBytes /
                                   std::max<size_t>(options.write_buffer_bytes, 1)));
  db_options.level0_file_num_compaction_trigger = level0_files;
  db_options.level0_slowdown_writes_trigger = std::max(20, level0_files + 16);
  db_options.level0_stop_writes_trigger = std::max(36, level0_files + 32);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  table.cache_index_and_filter_blocks = false;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db_options.compression = rocksdb::kLZ4Compression;
  // RocksDB's info logs: one more LOG.old file at every open, 1,000 kept by default.
  db_options.keep_log_file_num = kInfoLogsKept;
  // What deleting empty write-ahead logs before an open relies on (DeleteEmptyWriteAheadLogs):
  // the MANIFEST does not track logs, logs are not recycled (an empty one is never reused), and
  // they live in the store's folder. RocksDB 7.8's defaults, set here so that they stay so.
  db_options.track_and_verify_wals_in_manifest = false;
  db_options.recycle_log_file_num = 0;
  db_options.wal_dir.clear();
  rocksdb::DB* db = nullptr;
  WriterFolders& writers = WriterFolders::Get();
  if (!options.read_only) {
    GRANARY_ASSIGN_OR_RAISE(const FolderId folder_id, FolderIdOf(path));
    {
      MutexLock lock(&writers.mu);
      if (writers.held.count(folder_id) != 0) {
        return Status::Unavailable(fmt::format(
            "rocksdb open in {}: this process already holds the embedded online store in that "
            "folder (perhaps under another path); use the store it opened",
            path.string()));
      }
      (void)DeleteEmptyWriteAheadLogs(path);
      GRANARY_RETURN_NOT_OK(
          FromRocks(rocksdb::DB::Open(db_options, path.string(), &db), "open", path.string()));
      writers.held.insert(folder_id);
      store->writer_folder_ = folder_id;
    }
    store->db_.reset(db);
    // Bulk loads cut off (kill -9) left their files: this process holds the store alone now.
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      if (entry.path().filename().string().starts_with("bulk-")) {
        std::filesystem::remove_all(entry.path(), ec);
      }
    }
    // Entity keys start with a type tag of 1 or more; markers sort before them.
    std::unique_ptr<rocksdb::Iterator> it(store->db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(rocksdb::Slice("\x01", 1));
    GRANARY_RETURN_NOT_OK(FromRocks(it->status(), "read", path.string()));
    store->empty_at_open_ = !it->Valid();
    return store;
  }
  if (!std::filesystem::exists(path / "CURRENT")) {
    // A secondary needs a database to follow: create the empty one a writer would have. A lock
    // error means another process is creating it at this moment, which does as well. Under the
    // writers' lock: no cleanup may open LOCK while this open holds it.
    MutexLock lock(&writers.mu);
    rocksdb::Status created = rocksdb::DB::Open(db_options, path.string(), &db);
    if (created.ok()) {
      (void)db->Close();
      delete db;
      db = nullptr;
    } else if (Status st = FromRocks(created, "open", path.string());
               st.code() != StatusCode::kUnavailable) {
      return st;
    }
  }
  GRANARY_ASSIGN_OR_RAISE(TempDir secondary, TempDir::Make("granary-online-reader-"));
  db_options.max_open_files = -1;  // required of a secondary instance
  db_options.compaction_filter = nullptr;
  GRANARY_RETURN_NOT_OK(FromRocks(
      rocksdb::DB::OpenAsSecondary(db_options, path.string(), secondary.path().string(), &db),
      "open (read-only, as a secondary instance)", path.string()));
  store->db_.reset(db);
  store->secondary_dir_.emplace(std::move(secondary));
  {
    MutexLock lock(&store->catch_up_mu_);  // no other thread yet: for the analysis
    store->writer_files_ = std::make_unique<WriterFiles>();
  }
  return store;
}

Status RocksDbOnlineStore::CheckWritable(std::string_view what) const {
  if (!secondary_dir_) return Status::OK();
  return Status::FailedPrecondition(
      fmt::format("{}: cannot {}: this process opened the store read-only (a secondary instance "
                  "beside its writer, such as a running server); write through the process that "
                  "holds it",
                  Describe(), what));
}

Status RocksDbOnlineStore::CatchUpWithWriter() {
  MutexLock lock(&catch_up_mu_);
  if (!writer_files_->Changed(path_)) return Status::OK();
  Status st = FromRocks(db_->TryCatchUpWithPrimary(), "catch-up with the writer", path_.string());
  if (!st.ok()) writer_files_->valid = false;
  return st;
}

RocksDbOnlineStore::~RocksDbOnlineStore() {
  if (writer_folder_) {
    // Closed and forgotten at once: an open of the folder in between would find it held.
    WriterFolders& writers = WriterFolders::Get();
    MutexLock lock(&writers.mu);
    if (db_) (void)db_->Close();
    db_.reset();
    writers.held.erase(*writer_folder_);
    return;
  }
  if (db_) (void)db_->Close();
  db_.reset();  // before secondary_dir_, which holds the instance's files
}

std::string RocksDbOnlineStore::Describe() const {
  return (secondary_dir_ ? "rocksdb (read-only) at " : "rocksdb at ") + path_.string();
}

Result<WriteStats> RocksDbOnlineStore::WriteBatch(const ViewLayout& view,
                                                  const arrow::RecordBatch& rows) {
  GRANARY_RETURN_NOT_OK(CheckWritable("write"));
  GRANARY_ASSIGN_OR_RAISE(EntityKeyColumn keys, EncodeEntityKeys(view, rows));
  GRANARY_ASSIGN_OR_RAISE(BodyEncoder encoder, BodyEncoder::Make(view, rows));
  WriteStats total;
  for (int64_t begin = 0; begin < rows.num_rows(); begin += kChunkRows) {
    GRANARY_ASSIGN_OR_RAISE(
        WriteStats s,
        WriteChunk(view, encoder, keys, begin, std::min(rows.num_rows(), begin + kChunkRows)));
    total += s;
  }
  return total;
}

Result<WriteStats> RocksDbOnlineStore::WriteChunk(const ViewLayout& view,
                                                  const BodyEncoder& encoder,
                                                  const EntityKeyColumn& keys, int64_t begin,
                                                  int64_t end) {
  const size_t n = static_cast<size_t>(end - begin);
  std::string key_bytes;
  std::vector<uint32_t> key_end(n);
  for (size_t i = 0; i < n; ++i) {
    AppendRecordKey(&key_bytes, keys.key(begin + i), view.view_id());
    key_end[i] = static_cast<uint32_t>(key_bytes.size());
  }
  auto key_of = [&](size_t i) {
    size_t b = i == 0 ? 0 : key_end[i - 1];
    return std::string_view(key_bytes.data() + b, key_end[i] - b);
  };
  // Rows by key (bytewise, as RocksDB orders keys), then by row order.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return key_of(a) < key_of(b); });
  std::vector<rocksdb::Slice> unique_keys;
  std::vector<size_t> group_start;  // index into `order` where each unique key starts
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || key_of(order[i]) != key_of(order[i - 1])) {
      std::string_view k = key_of(order[i]);
      unique_keys.emplace_back(k.data(), k.size());
      group_start.push_back(i);
    }
  }
  group_start.push_back(n);

  std::vector<size_t> stripes;
  stripes.reserve(unique_keys.size());
  for (const rocksdb::Slice& k : unique_keys) {
    stripes.push_back(Fnv1a64(std::string_view(k.data(), k.size())) % kStripes);
  }
  StripeLocks locks(*stripes_, std::move(stripes));
  {
    // Counted before the write and under the stripes: a bulk load's ingest, which holds every
    // stripe, sees every write of its view that reached the database (rocksdb_bulk_load.cc).
    MutexLock lock(&views_mu_);
    ++view_writes_[view.view_id()];
  }

  std::vector<rocksdb::PinnableSlice> stored(unique_keys.size());
  std::vector<rocksdb::Status> statuses(unique_keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), unique_keys.size(),
                unique_keys.data(), stored.data(), statuses.data(), /*sorted_input=*/true);

  const int64_t now = options_.clock->Now().micros;
  const int64_t expiry = view.key_ttl().micros <= 0 || now > kNever - view.key_ttl().micros
                             ? kNever
                             : now + view.key_ttl().micros;
  WriteStats stats;
  rocksdb::WriteBatch batch;
  std::string record;
  for (size_t g = 0; g + 1 < group_start.size(); ++g) {
    const rocksdb::Status& st = statuses[g];
    if (!st.ok() && !st.IsNotFound()) {
      return FromRocks(st, "read", path_.string());
    }
    // The stored row competes only when it is live and of this schema.
    std::optional<WriteOrder> current;
    std::string_view stored_body;
    if (st.ok() && stored[g].size() >= kRecordHeader && stored[g][0] == kRecordVersion) {
      std::string_view rec(stored[g].data(), stored[g].size());
      BodyHeader header;
      stored_body = rec.substr(kRecordHeader);
      if (ExpiryOf(rec) > now && ParseBodyHeader(stored_body, view.features().size(), &header) &&
          header.fingerprint == view.fingerprint()) {
        current = header.order;
      }
    }
    int64_t winner = -1;
    for (size_t i = group_start[g]; i < group_start[g + 1]; ++i) {
      const int64_t row = begin + order[i];
      WriteOrder o = encoder.Order(row);
      if (current && o.Compare(*current) < 0) {
        ++stats.skipped_older;
        continue;
      }
      ++stats.written;
      current = o;
      winner = row;
    }
    record.clear();
    record.push_back(kRecordVersion);
    layout::PutFixed<int64_t>(&record, expiry);
    if (winner >= 0) {
      GRANARY_RETURN_NOT_OK(encoder.Append(winner, &record));
    } else {
      record.append(stored_body);  // skipped: keep the newer row, refresh its expiry
    }
    batch.Put(unique_keys[g], rocksdb::Slice(record));
  }
  GRANARY_RETURN_NOT_OK(
      FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "write", path_.string()));
  return stats;
}

Result<int64_t> RocksDbOnlineStore::WriteTiles(const ViewLayout& tiles_view,
                                               const EntityKeyColumn& keys,
                                               const std::vector<std::string>& records,
                                               const TileWriteOptions& options) {
  GRANARY_RETURN_NOT_OK(CheckWritable("write tiles"));
  if (tiles_view.tiles() == nullptr || records.size() != keys.size()) {
    return Status::Internal("WriteTiles: a tile layout and one record string per key");
  }
  const uint32_t fingerprint = tiles_view.fingerprint();
  std::optional<int64_t> replace;
  if (options.replace_through) replace = options.replace_through->micros;
  const int64_t replace_from =
      options.replace_from ? options.replace_from->micros : std::numeric_limits<int64_t>::min();
  int64_t written = 0;
  for (size_t begin = 0; begin < keys.size(); begin += kChunkRows) {
    const size_t end = std::min(keys.size(), begin + static_cast<size_t>(kChunkRows));
    // Keys of one chunk are distinct (one record string per entity); their stripes are locked in
    // increasing order, as WriteChunk does.
    std::vector<std::string> record_keys;
    std::vector<size_t> stripes;
    for (size_t i = begin; i < end; ++i) {
      std::string k;
      AppendRecordKey(&k, keys.key(i), tiles_view.view_id());
      stripes.push_back(Fnv1a64(k) % kStripes);
      record_keys.push_back(std::move(k));
    }
    StripeLocks locks(*stripes_, std::move(stripes));
    std::vector<rocksdb::Slice> slices(record_keys.begin(), record_keys.end());
    std::vector<rocksdb::PinnableSlice> stored(slices.size());
    std::vector<rocksdb::Status> statuses(slices.size());
    db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), slices.size(), slices.data(),
                  stored.data(), statuses.data(), /*sorted_input=*/false);
    const int64_t now = options_.clock->Now().micros;
    const Duration key_ttl = tiles_view.key_ttl();
    const int64_t expiry =
        key_ttl.micros <= 0 || now > kNever - key_ttl.micros ? kNever : now + key_ttl.micros;
    rocksdb::WriteBatch batch;
    std::string record;
    for (size_t j = 0; j < slices.size(); ++j) {
      if (!statuses[j].ok() && !statuses[j].IsNotFound()) {
        return FromRocks(statuses[j], "read", path_.string());
      }
      std::string_view old_body;
      if (statuses[j].ok() && stored[j].size() >= kRecordHeader && stored[j][0] == kRecordVersion &&
          ExpiryOf(std::string_view(stored[j].data(), stored[j].size())) > now) {
        old_body = std::string_view(stored[j].data(), stored[j].size()).substr(kRecordHeader);
      }
      record.clear();
      record.push_back(kRecordVersion);
      layout::PutFixed<int64_t>(&record, expiry);
      record +=
          aggregation::MergeTileBody(old_body, fingerprint, replace, options.expire_before.micros,
                                     records[begin + j], replace_from);
      batch.Put(slices[j], rocksdb::Slice(record));
      ++written;
    }
    GRANARY_RETURN_NOT_OK(
        FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "write", path_.string()));
  }
  return written;
}

Status RocksDbOnlineStore::DeleteViews(const std::vector<std::string>& view_names) {
  GRANARY_RETURN_NOT_OK(CheckWritable("delete views"));
  std::vector<std::string> suffixes;
  for (const std::string& name : view_names) {
    std::string s;
    layout::PutBigEndian32(&s, ViewIdOf(name));
    suffixes.push_back(std::move(s));
    std::string tiles;
    layout::PutBigEndian32(&tiles, TileViewIdOf(name));
    suffixes.push_back(std::move(tiles));
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  rocksdb::WriteBatch batch;
  for (const std::string& name : view_names) {
    batch.Delete(std::string(kMarkerPrefix) + name);
  }
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() < 4 || IsMarkerKey(key)) continue;
    std::string_view suffix(key.data() + key.size() - 4, 4);
    if (std::find(suffixes.begin(), suffixes.end(), suffix) != suffixes.end()) {
      batch.Delete(key);
    }
    if (batch.Count() >= 10000) {
      GRANARY_RETURN_NOT_OK(
          FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "delete", path_.string()));
      batch.Clear();
    }
  }
  GRANARY_RETURN_NOT_OK(FromRocks(it->status(), "scan", path_.string()));
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "delete", path_.string());
}

Status RocksDbOnlineStore::DeleteAll() {
  GRANARY_RETURN_NOT_OK(CheckWritable("delete"));
  // Every key starts with an entity key tag byte (0x01..0x06), so [0x00, 0xff) covers them all.
  const std::string begin(1, '\x00'), end(1, '\xff');
  GRANARY_RETURN_NOT_OK(
      FromRocks(db_->DeleteRange(rocksdb::WriteOptions(), db_->DefaultColumnFamily(), begin, end),
                "delete", path_.string()));
  rocksdb::Slice b(begin), e(end);
  return FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(), &b, &e), "compaction",
                   path_.string());
}

Status RocksDbOnlineStore::PutViewMarker(const std::string& view, const ViewMarker& marker) {
  rocksdb::WriteOptions sync;
  sync.sync = true;  // a marker must not outlive the data it stands for, nor come before it
  return FromRocks(db_->Put(sync, std::string(kMarkerPrefix) + view, EncodeViewMarker(marker)),
                   "write a view marker", path_.string());
}

Result<std::vector<ShardMarkers>> RocksDbOnlineStore::ReadViewMarkers() {
  ShardMarkers shard;
  shard.shard = Describe();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice prefix(kMarkerPrefix.data(), kMarkerPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string view = it->key().ToString().substr(kMarkerPrefix.size());
    GRANARY_ASSIGN_OR_RAISE(
        shard.views[view],
        DecodeViewMarker(std::string_view(it->value().data(), it->value().size()),
                         fmt::format("{}: marker of {}", Describe(), view)));
  }
  GRANARY_RETURN_NOT_OK(FromRocks(it->status(), "scan", path_.string()));
  return std::vector<ShardMarkers>{std::move(shard)};
}

Result<int64_t> RocksDbOnlineStore::CompactAndCount() {
  GRANARY_RETURN_NOT_OK(CheckWritable("compact"));
  GRANARY_RETURN_NOT_OK(
      FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compaction",
                path_.string()));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  int64_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) count += IsMarkerKey(it->key()) ? 0 : 1;
  GRANARY_RETURN_NOT_OK(FromRocks(it->status(), "scan", path_.string()));
  return count;
}

Status rocksdb_records::FromRocks(const rocksdb::Status& s, std::string_view what,
                                  const std::string& where) {
  if (s.ok()) return Status::OK();
  std::string msg = fmt::format("rocksdb {} in {}: {}", what, where, s.ToString());
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return Status::Unavailable(msg +
                               " (another process, such as a running server, holds the embedded "
                               "online store; stop it or use Redis for shared access)");
  }
  if (s.IsCorruption()) return Status::Corruption(msg);
  return Status::IOError(msg);
}

}  // namespace granary
