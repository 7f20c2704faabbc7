#include "granary/materialize/online_writer.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <deque>
#include <thread>

#include "granary/common/mutex.h"
#include "granary/common/progress.h"

namespace granary {
namespace {

// Writer threads fed from a bounded queue. The first error stops every writer and makes Push
// fail; Finish joins the threads.
class ParallelWriter {
 public:
  // With `bulk` (may be null), the writers add their batches to it instead of WriteBatch.
  ParallelWriter(OnlineStore* store, const ViewLayout& layout, const OnlineWriteOptions& options,
                 OnlineBulkLoad* bulk)
      : store_(store), layout_(layout), options_(options), bulk_(bulk) {
    const int threads = std::max(1, options.threads);
    capacity_ = 2 * static_cast<size_t>(threads);
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~ParallelWriter() { (void)Finish(); }

  // Queues a batch; false once a writer failed (Finish() says why).
  bool Push(std::shared_ptr<arrow::RecordBatch> batch) {
    MutexLock lock(&mu_);
    while (queue_.size() >= capacity_ && error_.ok()) not_full_.Wait(&mu_);
    if (!error_.ok()) return false;
    queue_.push_back(std::move(batch));
    not_empty_.Signal();
    return true;
  }

  void Fail(Status st) {
    MutexLock lock(&mu_);
    if (error_.ok()) error_ = std::move(st);
    not_full_.SignalAll();
    not_empty_.SignalAll();
  }

  // Waits for the queued batches and the threads; the first error.
  Status Finish() {
    {
      MutexLock lock(&mu_);
      closed_ = true;
      not_empty_.SignalAll();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    MutexLock lock(&mu_);
    return error_;
  }

  WriteStats stats() const {
    MutexLock lock(&mu_);
    return stats_;
  }
  int64_t batches() const {
    MutexLock lock(&mu_);
    return batches_;
  }

 private:
  void Work() {
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      {
        MutexLock lock(&mu_);
        while (queue_.empty() && !closed_ && error_.ok()) not_empty_.Wait(&mu_);
        if (!error_.ok() || queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
        not_full_.Signal();
      }
      if (options_.cancelled != nullptr && options_.cancelled->load()) {
        Fail(Status::Cancelled(
            fmt::format("feature view '{}': materialization cancelled", layout_.name())));
        return;
      }
      Result<WriteStats> written = WriteStats();
      if (bulk_ != nullptr) {
        Result<int64_t> added = bulk_->Add(*batch);
        if (!added.ok()) written = added.status();
      } else {
        written = store_->WriteBatch(layout_, *batch);
      }
      if (!written.ok()) {
        Fail(written.status().WithContext(
            fmt::format("feature view '{}': writing to {}", layout_.name(), store_->Describe())));
        return;
      }
      {
        MutexLock lock(&mu_);
        stats_ += *written;
        ++batches_;
      }
      if (options_.progress != nullptr) options_.progress->Add(batch->num_rows());
      if (options_.after_write) options_.after_write(*written);
    }
  }

  OnlineStore* store_;
  const ViewLayout& layout_;
  const OnlineWriteOptions& options_;
  OnlineBulkLoad* bulk_;
  size_t capacity_;
  mutable Mutex mu_;
  CondVar not_full_;
  CondVar not_empty_;
  std::deque<std::shared_ptr<arrow::RecordBatch>> queue_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  Status error_ GUARDED_BY(mu_);
  WriteStats stats_ GUARDED_BY(mu_);
  int64_t batches_ GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace

Status WriteLatestRows(OfflineBatchStream& rows, const ViewLayout& layout, OnlineStore* store,
                       const OnlineWriteOptions& options, OnlineWriteStats* stats) {
  const int ts_index = rows.schema()->GetFieldIndex(kEventTimestampColumn);
  if (ts_index < 0) {
    return Status::Internal(fmt::format("feature view '{}': the offline engine's rows have no {}",
                                        layout.name(), kEventTimestampColumn));
  }
  std::unique_ptr<OnlineBulkLoad> bulk;
  if (options.bulk_load_min_rows >= 0 &&
      (rows.expected_rows() == 0 || rows.expected_rows() >= options.bulk_load_min_rows)) {
    GRANARY_ASSIGN_OR_RAISE(bulk, store->StartBulkLoad(layout, options.bulk_load));
  }
  ParallelWriter writer(store, layout, options, bulk.get());
  Status produce;
  std::optional<int64_t> newest;
  while (true) {
    if (options.cancelled != nullptr && options.cancelled->load()) {
      produce = Status::Cancelled(
          fmt::format("feature view '{}': materialization cancelled", layout.name()));
      break;
    }
    auto next = rows.Next();
    if (!next.ok()) {
      produce = next.status();
      break;
    }
    const std::shared_ptr<arrow::RecordBatch>& batch = *next;
    if (batch == nullptr) break;
    stats->rows += batch->num_rows();
    const auto& ts = *batch->column(ts_index);
    const int64_t* values = ts.data()->GetValues<int64_t>(1);
    for (int64_t i = 0; i < ts.length(); ++i) {
      if (ts.IsValid(i)) newest = std::max(newest.value_or(values[i]), values[i]);
    }
    bool pushed = true;
    for (int64_t begin = 0; begin < batch->num_rows() && pushed; begin += options.batch_rows) {
      pushed = writer.Push(batch->Slice(begin, options.batch_rows));
    }
    if (!pushed) break;  // a writer failed: Finish() returns its error
  }
  if (!produce.ok()) writer.Fail(produce);
  Status written = writer.Finish();
  stats->written = writer.stats();
  stats->write_batches = writer.batches();
  if (newest) stats->newest_event = Timestamp::FromMicros(*newest);
  if (bulk != nullptr && written.ok()) {
    stats->bulk_loaded = true;
    if (options.cancelled != nullptr && options.cancelled->load()) {
      return Status::Cancelled(
          fmt::format("feature view '{}': materialization cancelled", layout.name()));
    }
    Result<WriteStats> loaded = bulk->Finish();
    if (!loaded.ok()) {
      return loaded.status().WithContext(
          fmt::format("feature view '{}': bulk loading {}", layout.name(), store->Describe()));
    }
    stats->written = *loaded;
    if (options.after_write) options.after_write(*loaded);
  }
  return written;
}

}  // namespace granary
