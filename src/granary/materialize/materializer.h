// Materialization: the latest row of each entity, from a view's offline source to the online
// store (docs/OPERATIONS.md has the rules for operators; interval.h the watermark rules).
//
// Per view, one run recorded in the registry (view, interval, start and end, rows read, entities
// written and skipped, status, error):
//   1. the repository lock is taken (no two runs of one repository overlap, in any process);
//   2. the interval comes from the request and the view's watermark (interval.h);
//   3. the offline engine (offline/offline_engine.h, OfflineEngine::LatestRows) streams the
//      latest row of each entity in the interval (the embedded engine: two passes over the
//      source, pruned by files, partitions and row groups, in bounded memory; Spark: a query in
//      the cluster);
//   4. parallel writers write those rows with OnlineStore::WriteBatch while the stream reads
//      ahead (online_writer.h). The store's write-if-newer decides: an online row that is newer
//      stays (counted as skipped);
//   5. on success the view's marker is written into the online store (OnlineStore::PutViewMarker:
//      what the watermark will promise), then the run is recorded and the watermark moved in one
//      registry transaction.
// An incremental run first compares the markers with the watermarks (online_check.h): a view
// whose online data is lost (FLUSHALL, a master back empty, a deleted RocksDB folder) is reloaded
// from the offline store over its ttl window, and its run says why (MaterializationRun::note).
// A failure (a store down, a source unreadable), a cancellation, a crash or kill -9 leaves the
// watermark where it was; the run is recorded failed with the error (after a crash, by the next
// run, keeping the counts it recorded as it went); a re-run writes the same rows again and
// converges to the same online state. An attempt that fails before any view starts (the lock held
// by another run, the store down or refusing the credentials) is recorded too: a failed run of
// each view it would have run, with the error. A run is alive while its process holds the
// repository lock under the token recorded with the run (repository_lock.h), never by its pid.
//
// Thread-safe: Materialize() may be called from any thread; runs of the same repository refuse
// to overlap (kAlreadyExists). MaterializationJob runs one in the background, for a server.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/metrics.h"
#include "granary/common/mutex.h"
#include "granary/common/progress.h"
#include "granary/common/result.h"
#include "granary/offline/engine_factory.h"
#include "granary/offline/offline_engine.h"
#include "granary/online/online_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

struct MaterializeRequest {
  enum class Kind {
    kInterval,     // materialize START END
    kIncremental,  // materialize-incremental END: from each view's watermark
  };
  Kind kind = Kind::kIncremental;
  Timestamp start;  // kInterval only; inclusive
  Timestamp end;    // inclusive; must not be in the future (it becomes the watermark)
  // Views by name; empty: every online view of the applied definitions.
  std::vector<std::string> views;
  // Recorded with each run: "materialize", "materialize-incremental", "schedule", "server"...
  std::string trigger = "materialize";
};

// The offline engine options a materialization opens its engine with by default: the embedded
// engine gets 1 GiB for picking the latest rows.
OfflineEngineOptions DefaultMaterializeEngineOptions();

struct MaterializeOptions {
  // The offline engine to read from (borrowed, such as a server's; must outlive the run); null:
  // the run opens the engine of config.offline_store with `offline` and closes it.
  OfflineEngine* engine = nullptr;
  // The engine's own knobs (the embedded engine: the memory budget for picking the latest rows,
  // past which it partitions and spills to its spill folder).
  OfflineEngineOptions offline = DefaultMaterializeEngineOptions();
  // Bytes for the batches in flight between the engine and the writers (about a dozen).
  int64_t batch_memory_bytes = int64_t{256} << 20;
  int write_threads = 0;            // parallel WriteBatch calls; 0: two per core
  int64_t write_batch_rows = 4096;  // rows per WriteBatch call
  // A view whose latest rows number at least this many (or an unknown number) is bulk loaded
  // when the store offers it (OnlineStore::StartBulkLoad: RocksDB, for a view it holds nothing
  // of), with batch_memory_bytes of sort buffer; -1: never. Small loads are not worth the files.
  int64_t bulk_load_min_rows = 20'000;
  ProgressOptions progress{.mode = ProgressOptions::Mode::kSilent};
  const Clock* clock = &SystemClock::Default();
  MetricsRegistry* metrics = &MetricsRegistry::Default();  // null: no metrics
  OnlineStoreOptions store_options;                        // when the run opens the store itself
  // Called after each view, on the calling thread (the CLI prints a line per view).
  std::function<void(const struct ViewMaterialization&)> after_view;
  // Called after each WriteBatch, on a writer thread; for observers and fault-injection tests.
  std::function<void(const std::string& view, const WriteStats& batch)> after_write;
};

// One memory budget for a run, as --memory-budget and the SDK's memory_budget give it: `bytes`
// for the embedded engine's work of picking the latest rows (past it, it partitions and spills
// to `spill_dir`, empty: the system's temp dir), a quarter of it for the batches in flight; a
// store the run opens itself sizes its own buffers from it (OnlineStoreOptions).
void SetMemoryBudget(MaterializeOptions* options, int64_t bytes,
                     const std::filesystem::path& spill_dir);

// Rows per batch of the second read of a view's latest rows (its features): a dozen batches are
// in flight (decoded ahead, queued, being written), so about a twelfth of `batch_memory_bytes`,
// and never more than 4 MiB a batch whatever the budget (larger batches decode no faster and only
// add memory the process must touch); between 1,024 and 65,536 rows.
int64_t LatestRowsBatchRows(int64_t batch_memory_bytes, const ViewLayout& layout);

// What happened to one view.
struct ViewMaterialization {
  std::string view;
  std::optional<Timestamp> start;  // nullopt: from the first row
  Timestamp end;
  int64_t run_id = 0;  // 0: no run recorded (up to date, or not started)
  Status status;
  bool up_to_date = false;    // incremental: nothing after the watermark; nothing read
  bool started_over = false;  // incremental: the schema changed since the watermark
  // Incremental: the online data the watermark promised was lost (online_check.h), so the view
  // was reloaded over its ttl window; what was found. Empty otherwise.
  std::string reload_reason;
  std::optional<Timestamp> watermark_before;  // valid for the current schema
  std::optional<Timestamp> watermark_after;
  std::string watermark_note;  // why the watermark did not move, when it did not
  OfflineReadStats scan;       // what the engine read to find the latest rows
  int64_t rows_in_range = 0;   // rows with event times in the interval
  int64_t null_key_rows = 0;   // rows in range with a null join key (belong to no entity)
  int64_t entities = 0;        // entities with a row in range (their latest rows)
  int64_t entities_written = 0;
  int64_t entities_skipped = 0;  // the online store held a newer row
  bool bulk_loaded = false;      // written as files by OnlineStore::StartBulkLoad (RocksDB)
  int64_t tile_events = 0;       // aggregation views: events read for the tiles
  int64_t tile_entities = 0;     // aggregation views: entities whose tiles were written
  // Aggregation views, an incremental run: the events for the tiles were read from here
  // (IncrementalTileStart of the watermark), not over the whole retention; unset otherwise.
  std::optional<Timestamp> tiles_from;
  // Aggregation views: the tiles' estimated peak bytes in memory, and, when they outgrew a
  // quarter of the memory budget, the events read before that (read again), the partitions the
  // events were split into by entity, the bytes of them spilled and the groups of entities built
  // and written one after the other (0 partitions: built in memory in one pass).
  int64_t tile_peak_state_bytes = 0;
  int64_t tile_events_read_twice = 0;
  int tile_partitions = 0;
  int64_t tile_bytes_spilled = 0;
  int tile_groups = 0;
  std::optional<Timestamp> newest_event;  // the newest event time among the rows chosen
  int partitions = 0;                     // 0: the engine's work fit in memory
  int64_t bytes_spilled = 0;
  int64_t peak_state_bytes = 0;
  double seconds = 0;
};

struct MaterializeReport {
  std::vector<ViewMaterialization> views;
  // OK when every view succeeded or was up to date; else the first failure (a cancellation
  // stops the remaining views and is reported as kCancelled).
  Status status;
};

// Runs a materialization of the repository at `config.root`. `store` (borrowed) is the online
// store to write to, such as a server's; null: the run opens one from `config` and closes it.
// `cancelled` (may be null) stops the run when set, from any thread: the view in progress is
// recorded failed ("cancelled"), its watermark unchanged, and the remaining views are not
// started.
// Errors before any view runs come back as the Result: kAlreadyExists while another run of the
// repository holds its lock (naming it), InvalidArgument for bad views or times,
// FailedPrecondition without applied definitions, and the store's open error. Each but
// InvalidArgument (a request to fix, not an attempt that failed) is recorded as a failed run of
// the views it would have run, when those are known (see above).
Result<MaterializeReport> Materialize(const RepoConfig& config, const MaterializeRequest& request,
                                      const MaterializeOptions& options, OnlineStore* store,
                                      const std::atomic<bool>* cancelled);

class RepositoryLock;

// One materialization on a thread of its own, for a server's POST /materialize-incremental.
// Thread-safe.
class MaterializationJob {
 public:
  // Takes the repository lock on the calling thread (kAlreadyExists at once when another run,
  // in this process or another, holds it; map it to 409) and starts the run on a new thread.
  // `store` must outlive the job. `on_done` (optional) is called on the job's thread with the
  // result once the run has ended, the lock is released and done() is true; it must not destroy
  // the job or wait for it.
  using OnDone = std::function<void(const Result<MaterializeReport>&)>;
  static Result<std::unique_ptr<MaterializationJob>> Start(RepoConfig config,
                                                           MaterializeRequest request,
                                                           MaterializeOptions options,
                                                           OnlineStore* store,
                                                           OnDone on_done = nullptr);
  ~MaterializationJob();  // Cancel(), then Wait()
  MaterializationJob(const MaterializationJob&) = delete;
  MaterializationJob& operator=(const MaterializationJob&) = delete;

  void Cancel() { cancelled_.store(true); }
  bool done() const { return done_.load(); }
  // Blocks until the run ends; the same result on every call.
  const Result<MaterializeReport>& Wait();

 private:
  MaterializationJob() = default;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> done_{false};
  std::optional<Result<MaterializeReport>> result_;  // written by the thread before done_
  Mutex join_mu_;
  std::thread thread_;
};

}  // namespace granary
