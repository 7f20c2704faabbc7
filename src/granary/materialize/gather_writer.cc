#include "granary/materialize/gather_writer.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "granary/common/progress.h"
#include "granary/materialize/latest_rows.h"

namespace granary {
namespace {

// Writer threads fed from a bounded queue. The first error stops every writer and makes Push
// fail; Finish joins the threads.
class ParallelWriter {
 public:
  ParallelWriter(OnlineStore* store, const ViewLayout& layout, const GatherWriteOptions& options)
      : store_(store), layout_(layout), options_(options) {
    const int threads = std::max(1, options.threads);
    capacity_ = 2 * static_cast<size_t>(threads);
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~ParallelWriter() { (void)Finish(); }

  // Queues a batch; false once a writer failed (Finish() says why).
  bool Push(std::shared_ptr<arrow::RecordBatch> batch) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return queue_.size() < capacity_ || !error_.ok(); });
    if (!error_.ok()) return false;
    queue_.push_back(std::move(batch));
    not_empty_.notify_one();
    return true;
  }

  void Fail(Status st) {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = std::move(st);
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  // Waits for the queued batches and the threads; the first error.
  Status Finish() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      not_empty_.notify_all();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mu_);
    return error_;
  }

  WriteStats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }
  int64_t batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  void Work() {
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [&] { return !queue_.empty() || closed_ || !error_.ok(); });
        if (!error_.ok() || queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
        not_full_.notify_one();
      }
      if (options_.cancelled != nullptr && options_.cancelled->load()) {
        Fail(Status::Cancelled(
            fmt::format("feature view '{}': materialization cancelled", layout_.name())));
        return;
      }
      Result<WriteStats> written = store_->WriteBatch(layout_, *batch);
      if (!written.ok()) {
        Fail(written.status().WithContext(
            fmt::format("feature view '{}': writing to {}", layout_.name(), store_->Describe())));
        return;
      }
      {
        std::lock_guard lock(mu_);
        stats_ += *written;
        ++batches_;
      }
      if (options_.progress != nullptr) options_.progress->Add(batch->num_rows());
      if (options_.after_write) options_.after_write(*written);
    }
  }

  OnlineStore* store_;
  const ViewLayout& layout_;
  const GatherWriteOptions& options_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::shared_ptr<arrow::RecordBatch>> queue_;  // guarded by mu_
  bool closed_ = false;                                    // guarded by mu_
  Status error_;                                           // guarded by mu_
  WriteStats stats_;                                       // guarded by mu_
  int64_t batches_ = 0;                                    // guarded by mu_
  std::vector<std::thread> threads_;
};

Status SourceChanged(const FeatureView& view) {
  return Status::FailedPrecondition(fmt::format(
      "feature view '{}': its source changed while it was being materialized (files were added, "
      "removed or rewritten between the two passes); the watermark was not moved; run it again",
      view.name));
}

}  // namespace

Status GatherAndWrite(const ViewSource& source, const SourceScanStats& first_pass_plan,
                      const std::vector<ChosenRow>& chosen, const ViewLayout& layout,
                      OnlineStore* store, const GatherWriteOptions& options,
                      GatherWriteStats* stats) {
  if (chosen.empty()) return Status::OK();
  SourceScanOptions scan_options = source.options;
  scan_options.with_join_keys = true;
  scan_options.with_created_timestamp = true;
  scan_options.with_features = true;
  scan_options.features.clear();
  scan_options.batch_rows = options.scan_batch_rows;
  GRANARY_ASSIGN_OR_RAISE(auto scan, FeatureSourceScan::Open(source.repo_root, *source.defs,
                                                             *source.view, scan_options));
  if (!SameScanPlan(scan->stats(), first_pass_plan)) return SourceChanged(*source.view);
  const int ts_index = scan->event_timestamp_index();
  ParallelWriter writer(store, layout, options);
  Status produce;
  bool push_failed = false;
  size_t next = 0;
  int64_t offset = 0;
  std::vector<int64_t> local;
  while (next < chosen.size()) {
    if (options.cancelled != nullptr && options.cancelled->load()) {
      produce = Status::Cancelled(
          fmt::format("feature view '{}': materialization cancelled", source.view->name));
      break;
    }
    auto next_batch = scan->Next();
    if (!next_batch.ok()) {
      produce = next_batch.status();
      break;
    }
    const std::shared_ptr<arrow::RecordBatch>& batch = *next_batch;
    if (batch == nullptr) break;
    const int64_t end = offset + batch->num_rows();
    const int64_t* ts = batch->column(ts_index)->data()->GetValues<int64_t>(1);
    local.clear();
    for (; next < chosen.size() && chosen[next].index < end; ++next) {
      const int64_t row = chosen[next].index - offset;
      if (ts[row] != chosen[next].event_ts) {
        produce = SourceChanged(*source.view);
        break;
      }
      local.push_back(row);
    }
    offset = end;
    if (!produce.ok()) break;
    if (local.empty()) continue;
    std::shared_ptr<arrow::RecordBatch> rows;
    if (static_cast<int64_t>(local.size()) == batch->num_rows()) {
      rows = batch;  // every row is an entity's latest (no history in range)
    } else {
      arrow::Int64Builder builder;
      if (!builder.AppendValues(local).ok()) return Status::Internal("out of memory");
      std::shared_ptr<arrow::Array> indices;
      if (!builder.Finish(&indices).ok()) return Status::Internal("out of memory");
      auto taken = arrow::compute::Take(batch, indices);
      if (!taken.ok()) return Status::Internal(taken.status().ToString());
      rows = taken->record_batch();
    }
    bool pushed = true;
    for (int64_t begin = 0; begin < rows->num_rows() && pushed; begin += options.batch_rows) {
      pushed = writer.Push(rows->Slice(begin, options.batch_rows));
    }
    if (!pushed) {
      push_failed = true;  // a writer failed: Finish() returns its error
      break;
    }
  }
  if (produce.ok() && !push_failed && next < chosen.size()) {
    produce = SourceChanged(*source.view);  // fewer rows than in the first pass
  }
  if (!produce.ok()) writer.Fail(produce);
  Status written = writer.Finish();
  stats->scan = scan->stats();
  stats->written = writer.stats();
  stats->write_batches = writer.batches();
  return written;
}

}  // namespace granary
