#include "granary/offline/embedded/latest_stream.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

namespace granary {
namespace {

Status SourceChanged(const FeatureView& view) {
  return Status::FailedPrecondition(fmt::format(
      "feature view '{}': its source changed while it was being materialized (files were added, "
      "removed or rewritten between the two passes); the watermark was not moved; run it again",
      view.name));
}

class LatestRowsStream final : public OfflineBatchStream {
 public:
  LatestRowsStream(const FeatureView& view, std::unique_ptr<FeatureSourceScan> scan,
                   std::vector<ChosenRow> chosen, OfflineReadStats stats, const CancelFlag* cancel)
      : view_(view),
        scan_(std::move(scan)),
        chosen_(std::move(chosen)),
        stats_(std::move(stats)),
        cancel_(cancel),
        ts_index_(scan_->event_timestamp_index()) {}

  const std::shared_ptr<arrow::Schema>& schema() const override { return scan_->schema(); }

  Result<std::shared_ptr<arrow::RecordBatch>> Next() override {
    while (next_ < chosen_.size()) {
      if (cancel_ != nullptr && cancel_->cancelled()) {
        return Status::Cancelled(
            fmt::format("feature view '{}': materialization cancelled", view_.name));
      }
      GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, scan_->Next());
      if (batch == nullptr) break;
      const int64_t end = offset_ + batch->num_rows();
      const int64_t* ts = batch->column(ts_index_)->data()->GetValues<int64_t>(1);
      local_.clear();
      for (; next_ < chosen_.size() && chosen_[next_].index < end; ++next_) {
        const int64_t row = chosen_[next_].index - offset_;
        if (ts[row] != chosen_[next_].event_ts) return SourceChanged(view_);
        local_.push_back(row);
      }
      offset_ = end;
      if (local_.empty()) continue;
      // Every row is an entity's latest (no history in range): the batch as it is.
      if (static_cast<int64_t>(local_.size()) == batch->num_rows()) return batch;
      arrow::Int64Builder builder;
      if (!builder.AppendValues(local_).ok()) return Status::Internal("out of memory");
      std::shared_ptr<arrow::Array> indices;
      if (!builder.Finish(&indices).ok()) return Status::Internal("out of memory");
      auto taken = arrow::compute::Take(batch, indices);
      if (!taken.ok()) return Status::Internal(taken.status().ToString());
      return taken->record_batch();
    }
    if (next_ < chosen_.size()) return SourceChanged(view_);  // fewer rows than the first pass
    return std::shared_ptr<arrow::RecordBatch>();
  }

  std::vector<OfflineReadStats> stats() const override { return {stats_}; }
  int64_t expected_rows() const override { return static_cast<int64_t>(chosen_.size()); }

 private:
  const FeatureView& view_;
  std::unique_ptr<FeatureSourceScan> scan_;
  const std::vector<ChosenRow> chosen_;
  const OfflineReadStats stats_;  // the first pass's: what was read to find the rows
  const CancelFlag* cancel_;
  const int ts_index_;
  size_t next_ = 0;     // the next chosen row to find
  int64_t offset_ = 0;  // read position of the next batch's first row
  std::vector<int64_t> local_;
};

}  // namespace

OfflineReadStats ToReadStats(const std::string& view, const SourceScanStats& scan) {
  OfflineReadStats out;
  out.view = view;
  out.files_total = scan.files_total;
  out.files_pruned = scan.files_pruned;
  out.row_groups_total = scan.row_groups_total;
  out.row_groups_pruned = scan.row_groups_pruned;
  out.rows_scanned = scan.rows_scanned;
  out.rows_returned = scan.rows_returned;
  out.bytes_estimated = scan.bytes_estimated;
  out.rows_estimated = scan.rows_estimated;
  return out;
}

Result<std::unique_ptr<OfflineBatchStream>> OpenLatestRowsStream(const ViewSource& source,
                                                                 const LatestRowsStats& first_pass,
                                                                 std::vector<ChosenRow> chosen,
                                                                 int64_t batch_rows,
                                                                 const CancelFlag* cancel) {
  SourceScanOptions scan_options = source.options;
  scan_options.with_join_keys = true;
  scan_options.with_created_timestamp = true;
  scan_options.with_features = true;
  scan_options.batch_rows = std::max<int64_t>(1, batch_rows);
  GRANARY_ASSIGN_OR_RAISE(auto scan, FeatureSourceScan::Open(source.repo_root, *source.defs,
                                                             *source.view, scan_options));
  // With no row chosen there is nothing to find again, so a plan that changed does not matter.
  if (!chosen.empty() && !SameScanPlan(scan->stats(), first_pass.scan)) {
    return SourceChanged(*source.view);
  }
  OfflineReadStats stats = ToReadStats(source.view->name, first_pass.scan);
  stats.null_key_rows = first_pass.null_key_rows;
  stats.partitions = first_pass.partitions;
  stats.bytes_spilled = first_pass.bytes_spilled;
  stats.peak_state_bytes = first_pass.peak_state_bytes;
  stats.rows_read_twice = first_pass.rows_read_twice;
  return std::unique_ptr<OfflineBatchStream>(new LatestRowsStream(
      *source.view, std::move(scan), std::move(chosen), std::move(stats), cancel));
}

}  // namespace granary
