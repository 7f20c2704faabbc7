// The embedded online store: RocksDB in the repository's data folder (the default).
//
// One RocksDB record per (entity, view): key = entity key bytes + view id (4 bytes, big-endian),
// so an entity's views are adjacent: a read seeks once per entity and walks its views with
// Next(), from the same blocks; value = version byte, expiry time, body (docs/ONLINE_LAYOUT.md,
// "RocksDB").
//
// Write-if-newer is a compare-and-write under striped per-key locks inside the process (RocksDB
// allows one process to open a database for writing; the lock file refuses a second). Readers
// in other processes (the CLI's get-online-features, the SDK, beside a running server) open it
// read-only as secondary instances: each has a private folder for its own files under the
// system's temporary directory, removed on close, and catches up with the writer before every
// Read, so it sees every write the writer's process finished before the Read began. A merge
// operator would make writes blind and lose the count of skipped rows, so it is not used. Expired
// records read as NOT_FOUND and are dropped by a compaction filter.
//
// Bulk loading (StartBulkLoad, rocksdb_bulk_load.cc): a view that this process knows holds no
// record (the store held no entity record at open, and no WriteBatch of the view ran since) is
// loaded as sorted SST files ingested at Finish; a WriteBatch of the view meanwhile sends the
// load through the write-if-newer path instead (docs/ONLINE_LAYOUT.md, "Bulk loading").
//
// View markers are records of their own, "\0marker\0<view>": the leading zero byte sorts them
// before every entity key (whose first byte is a type tag, 1 to 6), so reads never meet them.
//
// Thread-safe (see OnlineStore).
#pragma once

#include <sys/types.h>

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "granary/common/mutex.h"
#include "granary/common/temp_dir.h"
#include "granary/online/online_store.h"

namespace rocksdb {
class DB;
}

namespace granary {

class RocksDbOnlineStore final : public OnlineStore {
 public:
  struct Options {
    const Clock* clock = &SystemClock::Default();
    // RocksDB's own memory, in bytes, outside Arrow's pool and any memory budget: the block
    // cache (blocks read: a server's lookups, a materialization's read-modify-write of tiles)
    // and the memtables (two of write_buffer_bytes: one filling while the other is flushed).
    // These defaults suit a server; a batch run sizes them from its budget (ForMemoryBudget).
    size_t block_cache_bytes = kDefaultBlockCacheBytes;
    size_t write_buffer_bytes = kDefaultWriteBufferBytes;
    bool read_only = false;  // a secondary instance (see above); writes: FailedPrecondition
  };
  static constexpr size_t kDefaultBlockCacheBytes = size_t{256} << 20;
  static constexpr size_t kDefaultWriteBufferBytes = size_t{64} << 20;  // RocksDB's own default
  static constexpr int kWriteBuffers = 2;
  // RocksDB's info logs kept in the store's folder (LOG, and a LOG.old.* per earlier open).
  static constexpr size_t kInfoLogsKept = 10;

  // The options of a batch run held to a memory budget of `budget_bytes` (--memory-budget): a
  // block cache of a quarter of the budget and write buffers of an eighth each, at least 8 MiB and
  // 4 MiB, at most the defaults above (a 1 GiB budget, materialize's default, gives the
  // defaults). The store's memory then grows with the budget instead of being a fixed 384 MiB
  // beside a 64 MiB one.
  static Options ForMemoryBudget(int64_t budget_bytes);

  // Opens (creating when missing) the database in `path`. A second writing process gets
  // Unavailable with the holder named by RocksDB's lock error, a second writer of the same folder
  // in this process (under any path) Unavailable too; read_only never conflicts. A writer first
  // deletes the empty write-ahead logs that earlier opens left (RocksDB 7.8 keeps one per open
  // that wrote nothing), when no process holds the store.
  static Result<std::unique_ptr<RocksDbOnlineStore>> Open(const std::filesystem::path& path,
                                                          const Options& options);

  // What RocksDB reports of its memory (bytes): the sizes it runs with and what they hold now.
  struct MemoryUse {
    int64_t block_cache_capacity = 0;
    int64_t block_cache_usage = 0;
    int64_t write_buffer_bytes = 0;  // each memtable's size before it is flushed
    int max_write_buffers = 0;
    // Level-0 files that start a compaction: 4 with 64 MiB buffers, more with smaller ones, so
    // that as many bytes are compacted at a time (a budget's small buffers write no more).
    int level0_compaction_files = 0;
    int64_t memtables = 0;      // all memtables, those being flushed included
    int64_t table_readers = 0;  // the open files' indexes and filters (outside the cache)
  };
  Result<MemoryUse> Memory() const;
  ~RocksDbOnlineStore() override;

  Result<WriteStats> WriteBatch(const ViewLayout& view, const arrow::RecordBatch& rows) override;
  // A locked read-modify-write per entity (the stripes below), not a merge operator: the drop
  // rules need the clock and the interval's end, which a merge operator would have to carry in
  // every operand, and reads would pay for unmerged operands.
  Result<int64_t> WriteTiles(const ViewLayout& tiles_view, const EntityKeyColumn& keys,
                             const std::vector<std::string>& records,
                             const TileWriteOptions& options) override;
  Result<std::unique_ptr<OnlineBulkLoad>> StartBulkLoad(const ViewLayout& view,
                                                        const BulkLoadOptions& options) override;
  // With request.split, a read of at least kSplitReadRecords records is split by ranges of entity
  // rows across the pool's threads, one iterator each; the result is the same.
  Result<OnlineFeatures> Read(const OnlineReadRequest& request) override;
  // Records (entity rows x views) from which Read splits: about 0.5 us each, so a few hundred
  // cover the cost of waking a helper (1 x 250 features, 25 records, is not split).
  static constexpr size_t kSplitReadRecords = 256;
  void AsyncRead(const boost::asio::any_io_executor& executor, OnlineReadRequest request,
                 ReadCallback done) override;
  Status DeleteViews(const std::vector<std::string>& view_names) override;
  Status DeleteAll() override;
  Status PutViewMarker(const std::string& view, const ViewMarker& marker) override;
  Result<std::vector<ShardMarkers>> ReadViewMarkers() override;
  std::string Describe() const override;

  // Runs a full compaction (dropping expired records) and returns how many entity records remain
  // (markers not counted); for tests and operations.
  Result<int64_t> CompactAndCount();

 private:
  struct CompactionFilterImpl;
  struct WriterFiles;
  friend class RocksDbBulkLoad;
  RocksDbOnlineStore() = default;
  Status CatchUpWithWriter();
  Status CheckWritable(std::string_view what) const;
  Result<WriteStats> WriteChunk(const ViewLayout& view, const class BodyEncoder& encoder,
                                const EntityKeyColumn& keys, int64_t begin, int64_t end);

  static constexpr size_t kStripes = 4096;
  std::filesystem::path path_;
  Options options_;
  std::unique_ptr<CompactionFilterImpl> filter_;
  std::optional<TempDir> secondary_dir_;  // read_only: the secondary instance's own folder
  // A writer: its folder's device and inode, in WriterFolders (writer_folders.h).
  std::optional<std::pair<dev_t, ino_t>> writer_folder_;
  Mutex catch_up_mu_;
  // read_only: what the last catch-up saw of the writer's files.
  std::unique_ptr<WriterFiles> writer_files_ GUARDED_BY(catch_up_mu_);
  std::unique_ptr<rocksdb::DB> db_;
  // Serialises compare-and-write per key: a key's stripe is hash(key) % kStripes; a writer locks
  // the stripes of its chunk in increasing order (so two writers never deadlock). Plain
  // std::mutex: a run-time set of locks is beyond what -Wthread-safety can follow.
  std::unique_ptr<std::array<std::mutex, kStripes>> stripes_;
  // What this process knows of the views stored: whether the store held no entity record when
  // opened, and per view id that may hold records, how many chunks WriteBatch wrote (a bulk load
  // compares the count at its start and at its ingest).
  bool empty_at_open_ = false;
  Mutex views_mu_;
  std::map<uint32_t, int64_t> view_writes_ GUARDED_BY(views_mu_);
};

}  // namespace granary
