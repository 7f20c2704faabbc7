// OnlineStore: the latest feature values per entity, for serving (docs/ONLINE_LAYOUT.md).
//
// One interface over the embedded store (RocksDB, the default) and Redis (standalone or
// Cluster), built by OpenOnlineStore from granary.yaml's online_store.
//
// Semantics every store keeps:
//   - Write-if-newer, atomically per entity and view: a row replaces the stored one only when its
//     (event_timestamp, created_timestamp) is not older (WriteOrder); a stored value written
//     under another schema of the view is always replaced. A late batch never overwrites a
//     fresher row, even with concurrent writers.
//   - Key expiry: every write, including one skipped because the stored row is newer, keeps the
//     entity for at least the view's key_ttl from now (0 = forever).
//   - Reads: statuses per value (FeatureStatus); a row older than now - ttl is OUTSIDE_MAX_AGE,
//     with the Clock given at open time.
//
//   - View markers (docs/ONLINE_LAYOUT.md, "View markers"): a materialization that advances a
//     view's watermark first writes a marker into the store itself, on every shard (each master
//     of a Redis Cluster; the one server or database otherwise): the view, the layout tag and the
//     watermark its data stands for. A shard whose data is lost (FLUSHALL, a Redis without
//     persistence restarting, a master coming back empty, a RocksDB folder deleted) loses its
//     markers with it, so comparing the markers with the registry's watermarks tells lost data
//     from data never written. Markers never expire and are not entity values: reads never see
//     them, DeleteViews removes the views' markers and DeleteAll all of them.
//
// Threading contract:
//   - All methods are thread-safe, and may be called from any number of threads at once.
//   - WriteBatch, Read, DeleteViews and DeleteAll block the calling thread until done (Redis: the
//     calling thread runs their I/O itself, on connections of its own); do not call them from a
//     thread that serves an io_context you pass to AsyncRead, whose work would wait meanwhile.
//   - AsyncRead never blocks the calling thread on the network: Redis connections used by it are
//     owned per io_context and run on that io_context's thread (the one per-core worker of the
//     HTTP server). The completion handler runs on `executor` (through asio::post), never
//     inline inside AsyncRead. RocksDB answers from memory/disk inline (a seek per entity), then
//     posts.
//   - The store must outlive every pending AsyncRead, and every io_context passed to AsyncRead
//     must outlive the store: stop the io_contexts, destroy the store, then the io_contexts.
//     Each such io_context must be run by one thread (the server's one io_context per core).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/result.h"
#include "granary/online/online_features.h"
#include "granary/online/view_layout.h"
#include "granary/registry/repo_config.h"

namespace arrow {
class RecordBatch;
}

namespace granary {

// What a view's watermark promises, as kept in the store (see "View markers" above).
struct ViewMarker {
  std::string layout;   // the layout tag (materialize/interval.h) the data was written under
  Timestamp watermark;  // the latest row of each entity up to here was written (within ttl)
  int64_t run_id = 0;   // the run that wrote it, for messages
  bool operator==(const ViewMarker&) const = default;
};

// The markers one shard of a store holds.
struct ShardMarkers {
  std::string shard;  // a cluster master "10.0.0.5:6379"; else the store's Describe()
  std::map<std::string, ViewMarker> views;  // by view name; empty: none (lost, or never written)
};

// A marker as stores keep it: "v1 <layout> <watermark micros> <run id>" (docs/ONLINE_LAYOUT.md).
std::string EncodeViewMarker(const ViewMarker& marker);
// Corruption naming `where` when `text` is not such a marker.
Result<ViewMarker> DecodeViewMarker(std::string_view text, std::string_view where);

struct WriteStats {
  int64_t written = 0;        // rows stored
  int64_t skipped_older = 0;  // rows not stored because the stored row is newer

  WriteStats& operator+=(const WriteStats& o) {
    written += o.written;
    skipped_older += o.skipped_older;
    return *this;
  }
};

// How WriteTiles treats the tiles already stored (docs/ONLINE_LAYOUT.md, "Tiles").
struct TileWriteOptions {
  // Drop stored records whose last event is at or before this time: a materialization replaces
  // what its source says up to its interval's end. nullopt keeps them: a push adds.
  std::optional<Timestamp> replace_through;
  // Drop stored records of tiles starting before this (TileSpec::ExpireBefore(now)): no read
  // at now or later needs them.
  Timestamp expire_before;
  // With replace_through: only records of tiles starting at or after this are replaced (an
  // incremental materialization, which read the events from here on: IncrementalTileStart).
  // nullopt: from the oldest.
  std::optional<Timestamp> replace_from;
};

// A first load of one view, written as files instead of write-if-newer batches (RocksDB: sorted
// SST files, ingested at Finish; docs/ONLINE_LAYOUT.md, "Bulk loading"). Made by
// OnlineStore::StartBulkLoad only when nothing the load could overwrite is stored, and Finish
// keeps write-if-newer against whatever was written meanwhile (a push): the result is the same
// as WriteBatch of the same rows. Nothing added is visible before Finish; a load destroyed
// without Finish leaves nothing behind.
//
// Thread-safe: Add may be called from several threads at once; Finish once, after every Add
// returned. The ViewLayout given to StartBulkLoad and the store must outlive the load.
class OnlineBulkLoad {
 public:
  virtual ~OnlineBulkLoad() = default;
  // Adds rows laid out as WriteBatch takes them. Returns how many were added.
  virtual Result<int64_t> Add(const arrow::RecordBatch& rows) = 0;
  // Makes every added row visible; `written` counts rows stored, `skipped_older` rows a newer
  // value written since the start kept out.
  virtual Result<WriteStats> Finish() = 0;
};

struct BulkLoadOptions {
  // Memory for the rows held as encoded records (with their sort entries), whatever the number
  // of writers: the first buffer fills all of it (writers wait while it is written), later ones
  // half, each written while the next fills; the files are merged at Finish when several.
  int64_t sort_buffer_bytes = int64_t{256} << 20;
};

class OnlineStore {
 public:
  virtual ~OnlineStore() = default;

  // Writes the rows of one view: columns named as the view's join keys, `event_timestamp`,
  // optionally `created_timestamp`, and one per feature (BodyEncoder). Large batches are split
  // and written in parallel per node. Rows for the same entity within a batch are applied in
  // order of WriteOrder, as separate writes would be.
  virtual Result<WriteStats> WriteBatch(const ViewLayout& view, const arrow::RecordBatch& rows) = 0;

  // Writes window-aggregation tiles of one view: `tiles_view` is a ViewLayout::tile_layout(),
  // records[i] the tile records (aggregation::EncodeTileRecords) of entity keys.key(i). For each
  // entity, atomically (Redis: a server-side script; RocksDB: a read-modify-write under the
  // key's lock), the stored tiles lose the records of another fingerprint and those `options`
  // drops, then records[i] is appended. Key expiry as WriteBatch. Returns entities written.
  virtual Result<int64_t> WriteTiles(const ViewLayout& tiles_view, const EntityKeyColumn& keys,
                                     const std::vector<std::string>& records,
                                     const TileWriteOptions& options) = 0;

  // A bulk load of `view` when the store has one and it is safe: nothing of the view may be
  // stored (RocksDB: the store held no entity record when this process opened it, and this
  // process wrote none of the view since). Otherwise nullptr, not an error: use WriteBatch.
  virtual Result<std::unique_ptr<OnlineBulkLoad>> StartBulkLoad(const ViewLayout& view,
                                                                const BulkLoadOptions& options) {
    return std::unique_ptr<OnlineBulkLoad>();
  }

  // Reads the requested features for every entity row.
  virtual Result<OnlineFeatures> Read(const OnlineReadRequest& request) = 0;

  // As Read, without blocking; `done` runs on `executor` (see the threading contract above).
  using ReadCallback = std::function<void(Result<OnlineFeatures>)>;
  virtual void AsyncRead(const boost::asio::any_io_executor& executor, OnlineReadRequest request,
                         ReadCallback done) = 0;

  // Removes the stored values of these views (by name) for every entity, and their markers.
  virtual Status DeleteViews(const std::vector<std::string>& view_names) = 0;
  // Removes everything this project stored, markers included (teardown).
  virtual Status DeleteAll() = 0;

  // Writes `marker` for view `view` on every shard (replacing the view's marker there). Blocks.
  virtual Status PutViewMarker(const std::string& view, const ViewMarker& marker) = 0;
  // The markers of every shard, one entry per shard in a stable order. Blocks. An unreachable
  // shard is an error (Unavailable), not an empty entry: only data that is gone reads as lost.
  virtual Result<std::vector<ShardMarkers>> ReadViewMarkers() = 0;

  // "rocksdb at /repo/data/online", "redis at 127.0.0.1:6379", for messages.
  virtual std::string Describe() const = 0;
};

struct OnlineStoreOptions {
  const Clock* clock = &SystemClock::Default();  // for ttl checks and key expiry; not owned
  // Redis: how long to wait for a connection, and for any reply before the node counts as down.
  // granary.yaml's online_store.connect_timeout and request_timeout win over these when set.
  Duration connect_timeout = Duration::Seconds(2);
  Duration request_timeout = Duration::Seconds(2);
  // Reads only (get-online-features, the SDK's lookups). RocksDB admits one writing process (a
  // running `granary serve` holds it), so a read-only store opens as a RocksDB secondary
  // instance beside it, which catches up with the writer's flushed files and write-ahead log
  // before every Read (docs/ONLINE_LAYOUT.md, "Readers beside the server"); WriteBatch,
  // DeleteViews and DeleteAll then return FailedPrecondition. Redis: no difference.
  bool read_only = false;
  // A batch run's memory budget in bytes (materialize --memory-budget); 0: none (a server).
  // RocksDB then sizes its block cache and write buffers from it
  // (RocksDbOnlineStore::ForMemoryBudget) instead of a server's fixed sizes. Redis: unused.
  int64_t memory_budget_bytes = 0;
};

// Opens the store described by config.online_store for project config.project. RocksDB: creates
// its folder (and an empty database) when missing, also when read_only. Redis: connects (and, for a
// cluster, reads the slot map) before returning, so a wrong address or password fails here, with a
// message naming the server.
Result<std::unique_ptr<OnlineStore>> OpenOnlineStore(const RepoConfig& config,
                                                     const OnlineStoreOptions& options = {});

// What the store opened with `options` holds in memory of its own beside a memory budget, for a
// batch run to print ("RocksDB block cache 16 MiB and write buffers 2 x 8 MiB, sized from the
// memory budget"); empty when the store keeps nothing sized by the process (Redis) or no budget
// is set.
std::string DescribeOnlineStoreMemory(const RepoConfig& config, const OnlineStoreOptions& options);

}  // namespace granary
