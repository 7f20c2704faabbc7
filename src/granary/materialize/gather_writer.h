// The second pass of materialization: read the view's source again, now with its features, keep
// the rows the first pass chose (latest_rows.h) and write them to the online store, in parallel.
//
// Pipeline: the scan decodes files ahead on its own threads; the calling thread takes the chosen
// rows out of each batch and cuts them into write batches; `threads` writers call
// OnlineStore::WriteBatch at once, from a bounded queue (two batches per writer), so reading the
// next rows overlaps writing the previous ones and memory stays bounded. Each entity appears once
// among the chosen rows, so concurrent batches never hold the same entity.
//
// If the second pass does not find the first pass's rows at the same positions (the source
// changed in between), it fails with FailedPrecondition before the watermark can move; what was
// written is still correct (write-if-newer) and a re-run converges.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/source_scan.h"
#include "granary/online/online_store.h"

namespace granary {

class Progress;

struct GatherWriteOptions {
  int threads = 2;            // writers calling OnlineStore::WriteBatch at once (at least 1)
  int64_t batch_rows = 4096;  // rows per WriteBatch call
  int64_t scan_batch_rows = 64 * 1024;           // rows per batch read from a file
  const std::atomic<bool>* cancelled = nullptr;  // checked between batches; may be null
  Progress* progress = nullptr;                  // counts entities written or skipped
  // Called after each successful WriteBatch, on the writer's thread; for observers and tests.
  std::function<void(const WriteStats& batch)> after_write;
};

struct GatherWriteStats {
  SourceScanStats scan;
  WriteStats written;
  int64_t write_batches = 0;
};

// `chosen` sorted by position, from SelectLatestRows over the same `source` (whose plan was
// `first_pass_plan`). Returns the first error of any writer; stops early on cancellation.
Status GatherAndWrite(const ViewSource& source, const SourceScanStats& first_pass_plan,
                      const std::vector<ChosenRow>& chosen, const ViewLayout& layout,
                      OnlineStore* store, const GatherWriteOptions& options,
                      GatherWriteStats* stats);

}  // namespace granary
