// Materialization: the latest row of each entity, from a view's offline source to the online
// store (docs/OPERATIONS.md has the rules for operators; interval.h the watermark rules).
//
// Per view, one run recorded in the registry (view, interval, start and end, rows read, entities
// written and skipped, status, error):
//   1. the repository lock is taken (no two runs of one repository overlap, in any process);
//   2. the interval comes from the request and the view's watermark (interval.h);
//   3. pass one reads the join keys and timestamps of rows in the interval, pruned by files,
//      partitions and row groups, and picks each entity's latest row in bounded memory
//      (latest_rows.h);
//   4. pass two reads those rows' features and writes them with OnlineStore::WriteBatch from
//      parallel writers, reading ahead while writing (gather_writer.h). The store's
//      write-if-newer decides: an online row that is newer stays (counted as skipped);
//   5. on success the run is recorded and the watermark moved in one registry transaction.
// A failure (a store down, a source unreadable), a cancellation, a crash or kill -9 leaves the
// watermark where it was; the run is recorded failed with the error (after a crash, by the next
// run); a re-run writes the same rows again and converges to the same online state.
//
// Thread-safe: Materialize() may be called from any thread; runs of the same repository refuse
// to overlap (kAlreadyExists). MaterializationJob runs one in the background, for a server.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/metrics.h"
#include "granary/common/progress.h"
#include "granary/common/result.h"
#include "granary/offline/source_scan.h"
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

struct MaterializeOptions {
  // Memory for picking the latest rows (pass one's table, or its partitions' buffers) and for
  // the batches in flight in pass two. Past it, pass one partitions and spills to disk.
  int64_t memory_budget_bytes = int64_t{1} << 30;
  int write_threads = 0;            // parallel WriteBatch calls; 0: two per core
  int64_t write_batch_rows = 4096;  // rows per WriteBatch call
  std::filesystem::path spill_dir;  // empty: the system's temp dir
  ProgressOptions progress{.mode = ProgressOptions::Mode::kSilent};
  const Clock* clock = &SystemClock::Default();
  MetricsRegistry* metrics = &MetricsRegistry::Default();  // null: no metrics
  OnlineStoreOptions store_options;                        // when the run opens the store itself
  // Called after each view, on the calling thread (the CLI prints a line per view).
  std::function<void(const struct ViewMaterialization&)> after_view;
  // Called after each WriteBatch, on a writer thread; for observers and fault-injection tests.
  std::function<void(const std::string& view, const WriteStats& batch)> after_write;
  // Test hook (production leaves it 0): partition pass one this many ways even when it fits.
  int TEST_force_partitions = 0;
};

// What happened to one view.
struct ViewMaterialization {
  std::string view;
  std::optional<Timestamp> start;  // nullopt: from the first row
  Timestamp end;
  int64_t run_id = 0;  // 0: no run recorded (up to date, or not started)
  Status status;
  bool up_to_date = false;    // incremental: nothing after the watermark; nothing read
  bool started_over = false;  // incremental: the schema changed since the watermark
  std::optional<Timestamp> watermark_before;  // valid for the current schema
  std::optional<Timestamp> watermark_after;
  std::string watermark_note;  // why the watermark did not move, when it did not
  SourceScanStats scan;        // pass one
  int64_t rows_in_range = 0;   // rows with event times in the interval
  int64_t null_key_rows = 0;   // rows in range with a null join key (belong to no entity)
  int64_t entities = 0;        // entities with a row in range (their latest rows)
  int64_t entities_written = 0;
  int64_t entities_skipped = 0;  // the online store held a newer row
  int partitions = 0;            // 0: pass one in memory
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
// FailedPrecondition without applied definitions, and the store's open error.
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
  std::mutex join_mu_;
  std::thread thread_;
};

}  // namespace granary
