// Writing a view's latest rows to the online store, in parallel: the rows come from the offline
// engine as a stream (OfflineEngine::LatestRows) and go to OnlineStore::WriteBatch.
//
// Pipeline: the calling thread pulls batches from the stream (which reads ahead on its own
// threads, or in a cluster) and cuts them into write batches; `threads` writers call WriteBatch
// at once, from a bounded queue (two batches per writer), so reading the next rows overlaps
// writing the previous ones and memory stays bounded. Each entity appears once in the stream, so
// concurrent batches never hold the same entity.
//
// Bulk loading: when `bulk_load_min_rows` allows it (the stream expects at least that many rows,
// or does not know) and the store offers a bulk load of the view (OnlineStore::StartBulkLoad:
// RocksDB, for a view it holds nothing of), the writers add their batches to the load and the
// rows become visible at once when the stream ends; a failed or cancelled run leaves nothing.
//
// A stream that fails (a source that changed under the embedded engine, a lost cluster
// connection) stops the writers; what was written is still correct (write-if-newer: each row is
// some entity's latest in the interval) and the caller must not move its watermark.
#pragma once

#include <atomic>
#include <functional>
#include <optional>

#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"
#include "granary/online/online_store.h"

namespace granary {

class Progress;

struct OnlineWriteOptions {
  int threads = 2;            // writers calling OnlineStore::WriteBatch at once (at least 1)
  int64_t batch_rows = 4096;  // rows per WriteBatch call
  const std::atomic<bool>* cancelled = nullptr;  // checked between batches; may be null
  Progress* progress = nullptr;                  // counts entities written or skipped
  // Called after each successful WriteBatch, on the writer's thread; for observers and tests.
  // A bulk load calls it after each batch added (with nothing written yet) and once at the end
  // with every row it stored.
  std::function<void(const WriteStats& batch)> after_write;
  // The fewest rows a stream must expect for a bulk load; -1: never.
  int64_t bulk_load_min_rows = -1;
  BulkLoadOptions bulk_load;
};

struct OnlineWriteStats {
  int64_t rows = 0;  // rows taken from the stream (entities)
  WriteStats written;
  int64_t write_batches = 0;
  bool bulk_loaded = false;               // the rows went through OnlineStore::StartBulkLoad
  std::optional<Timestamp> newest_event;  // the newest event time among the rows
};

// Drains `rows` (batches laid out as WriteBatch takes them) into `store` under `layout`. Returns
// the first error of the stream or of any writer; stops early on cancellation.
Status WriteLatestRows(OfflineBatchStream& rows, const ViewLayout& layout, OnlineStore* store,
                       const OnlineWriteOptions& options, OnlineWriteStats* stats);

}  // namespace granary
