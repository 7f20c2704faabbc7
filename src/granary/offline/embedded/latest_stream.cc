#include "granary/offline/embedded/latest_stream.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>

#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

Status SourceChanged(const FeatureView& view) {
  return Status::FailedPrecondition(fmt::format(
      "feature view '{}': its source changed while it was being materialized (files it read were "
      "removed or rewritten between the two passes); the watermark was not moved; run it again",
      view.name));
}

// The chosen rows in read order; the scan's wants_rows holds them too.
using Choice = std::shared_ptr<const LatestRowsChoice>;

class LatestRowsStream final : public OfflineBatchStream {
 public:
  // `schema`: the scan's with the event time at `ts_index`. Without the first pass's times, the
  // scan's last column is the event time, read again, which moves to `ts_index`.
  LatestRowsStream(const FeatureView& view, SourceSnapshot files,
                   std::unique_ptr<FeatureSourceScan> scan, std::shared_ptr<arrow::Schema> schema,
                   int ts_index, Choice chosen, OfflineReadStats stats, const CancelFlag* cancel)
      : view_(view),
        files_(std::move(files)),
        scan_(std::move(scan)),
        schema_(std::move(schema)),
        ts_index_(ts_index),
        chosen_(std::move(chosen)),
        next_(chosen_->positions),
        stats_(std::move(stats)),
        cancel_(cancel) {}

  const std::shared_ptr<arrow::Schema>& schema() const override { return schema_; }

  Result<std::shared_ptr<arrow::RecordBatch>> Next() override {
    while (!next_.done()) {
      if (cancel_ != nullptr && cancel_->cancelled()) {
        return Status::Cancelled(
            fmt::format("feature view '{}': materialization cancelled", view_.name));
      }
      GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, scan_->Next());
      if (batch == nullptr) break;
      const int64_t offset = scan_->positions().first;
      const int64_t end = offset + batch->num_rows();
      // A chosen row before this batch was in a row group the first pass read and this one did
      // not find: the files changed.
      if (next_.value() < offset) return SourceChanged(view_);
      local_.clear();
      const int64_t first = next_.index();
      for (; !next_.done() && next_.value() < end; next_.Next()) {
        local_.push_back(next_.value() - offset);
      }
      if (local_.empty()) continue;
      arrow::ArrayVector columns;
      if (static_cast<int64_t>(local_.size()) == batch->num_rows()) {
        columns = batch->columns();  // every row is an entity's latest: the batch as it is
      } else {
        arrow::Int64Builder builder;
        if (!builder.AppendValues(local_).ok()) return Status::Internal("out of memory");
        std::shared_ptr<arrow::Array> indices;
        if (!builder.Finish(&indices).ok()) return Status::Internal("out of memory");
        auto taken = arrow::compute::Take(batch, indices);
        if (!taken.ok()) return Status::Internal(taken.status().ToString());
        columns = taken->record_batch()->columns();
      }
      std::shared_ptr<arrow::Array> time_array;
      if (chosen_->has_event_times) {
        arrow::TimestampBuilder times(schema_->field(ts_index_)->type(),
                                      arrow::default_memory_pool());
        const int64_t* from = chosen_->event_times.data() + first;
        if (!times.AppendValues(from, static_cast<int64_t>(local_.size())).ok()) {
          return Status::Internal("out of memory");
        }
        if (!times.Finish(&time_array).ok()) return Status::Internal("out of memory");
      } else {
        time_array = std::move(columns.back());  // read again as the scan's last column
        columns.pop_back();
      }
      columns.insert(columns.begin() + ts_index_, std::move(time_array));
      return arrow::RecordBatch::Make(schema_, static_cast<int64_t>(local_.size()),
                                      std::move(columns));
    }
    if (!next_.done()) return SourceChanged(view_);  // fewer rows than the first pass
    if (!checked_) {
      // A file rewritten while this pass read it (after its footer was read).
      checked_ = true;
      GRANARY_RETURN_NOT_OK(files_.CheckUnchanged(fmt::format("feature view '{}'", view_.name)));
    }
    return std::shared_ptr<arrow::RecordBatch>();
  }

  std::vector<OfflineReadStats> stats() const override { return {stats_}; }
  int64_t expected_rows() const override { return chosen_->positions.size(); }

 private:
  const FeatureView& view_;
  const SourceSnapshot files_;
  std::unique_ptr<FeatureSourceScan> scan_;
  const std::shared_ptr<arrow::Schema> schema_;
  const int ts_index_;
  const Choice chosen_;
  PositionList::Reader next_;     // the next chosen row to find
  const OfflineReadStats stats_;  // the first pass's: what was read to find the rows
  const CancelFlag* cancel_;
  bool checked_ = false;
  std::vector<int64_t> local_;  // scratch: the chosen rows' indices in the current batch
};

// The data source whose timestamp_field the second pass reads again.
Result<const DataSource*> EventTimeSource(const ViewSource& source) {
  const DataSource* data_source = source.defs->FindOfflineSource(source.view->source);
  if (data_source == nullptr) {
    return Status::InvalidArgument(fmt::format("feature view '{}': unknown data source '{}'",
                                               source.view->name, source.view->source));
  }
  return data_source;
}

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

Result<std::unique_ptr<OfflineBatchStream>> OpenLatestRowsStream(
    const ViewSource& source, SourceSnapshot files, const LatestRowsStats& first_pass,
    LatestRowsChoice chosen, int64_t batch_rows, const CancelFlag* cancel) {
  auto choice = std::make_shared<const LatestRowsChoice>(std::move(chosen));
  // The features of the chosen rows, found by the first pass's read positions in the same files:
  // the row groups without a chosen row are not read, nor the event times when the first pass
  // kept them. Otherwise the event time is read as a plain column after the features (neither
  // filtered on, which would stop the scan from skipping row groups, nor checked: the rows at
  // the chosen positions are the rows the first pass chose).
  SourceScanOptions scan_options = source.options;
  scan_options.with_join_keys = true;
  scan_options.with_created_timestamp = true;
  scan_options.with_features = true;
  scan_options.with_event_timestamp = false;
  if (!choice->has_event_times) {
    GRANARY_ASSIGN_OR_RAISE(const DataSource* data_source, EventTimeSource(source));
    scan_options.extra_columns.push_back(
        Field{data_source->timestamp_field, ValueType::Scalar(ScalarType::kTimestamp), "", {}});
  }
  scan_options.wants_rows = [choice](int64_t begin, int64_t end) {
    return choice->positions.AnyIn(begin, end);
  };
  scan_options.batch_rows = std::max<int64_t>(1, batch_rows);
  GRANARY_ASSIGN_OR_RAISE(auto scan,
                          FeatureSourceScan::Open(files, *source.defs, *source.view, scan_options));
  // With no row chosen there is nothing to find again, so a plan that changed does not matter.
  if (!choice->positions.empty() && (!SameScanPlan(scan->stats(), first_pass.scan) ||
                                     scan->FilesFingerprint() != first_pass.files_fingerprint)) {
    return SourceChanged(*source.view);
  }
  // The first pass's columns: the event time after the join keys, filled from the first pass's
  // times of the chosen rows.
  const int ts_index = static_cast<int>(scan->join_keys().size());
  std::shared_ptr<arrow::Schema> columns = scan->schema();
  if (!choice->has_event_times) {
    auto without = columns->RemoveField(columns->num_fields() - 1);  // the time read again
    if (!without.ok()) return Status::Internal(without.status().ToString());
    columns = std::move(*without);
  }
  auto schema = columns->AddField(
      ts_index,
      arrow::field(kEventTimestampColumn, ToArrowType(ValueType::Scalar(ScalarType::kTimestamp))));
  if (!schema.ok()) return Status::Internal(schema.status().ToString());
  OfflineReadStats stats = ToReadStats(source.view->name, first_pass.scan);
  stats.null_key_rows = first_pass.null_key_rows;
  stats.partitions = first_pass.partitions;
  stats.bytes_spilled = first_pass.bytes_spilled;
  stats.peak_state_bytes = first_pass.peak_state_bytes;
  stats.rows_read_twice = first_pass.rows_read_twice;
  return std::unique_ptr<OfflineBatchStream>(
      new LatestRowsStream(*source.view, std::move(files), std::move(scan), std::move(*schema),
                           ts_index, std::move(choice), std::move(stats), cancel));
}

}  // namespace granary
