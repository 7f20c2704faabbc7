#include "granary/datagen/time_ordered_writer.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/compression.h>
#include <fmt/format.h>

#include <mutex>

#include "granary/datagen/parquet_output.h"

namespace granary::datagen {
namespace {

Status FromArrow(const arrow::Status& st, const std::filesystem::path& path, const char* what) {
  if (st.ok()) return Status::OK();
  return Status::IOError(fmt::format("{} {}: {}", what, path.string(), st.message()));
}

// Registers Arrow's compute kernels (sort_indices lives in libarrow_compute since Arrow 21).
void InitializeCompute() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto st = arrow::compute::Initialize();
    (void)st;  // fails only when already initialized
  });
}

}  // namespace

Result<std::unique_ptr<TimeOrderedTableWriter>> TimeOrderedTableWriter::Open(
    const std::filesystem::path& path, std::shared_ptr<arrow::Schema> schema,
    std::string time_column, Timestamp origin, Duration bucket, int64_t row_group_rows) {
  InitializeCompute();
  const int index = schema->GetFieldIndex(time_column);
  if (index < 0 || schema->field(index)->type()->id() != arrow::Type::TIMESTAMP ||
      bucket.micros <= 0) {
    return Status::Internal(fmt::format("{}: no timestamp column '{}' to order by (or no bucket)",
                                        path.string(), time_column));
  }
  std::unique_ptr<TimeOrderedTableWriter> out(new TimeOrderedTableWriter());
  out->path_ = path;
  out->spill_path_ = path;
  out->spill_path_ += ".spill.arrow";
  out->schema_ = std::move(schema);
  out->time_column_ = std::move(time_column);
  out->time_index_ = index;
  out->origin_micros_ = origin.micros;
  out->bucket_micros_ = bucket.micros;
  out->row_group_rows_ = row_group_rows;
  auto sink = arrow::io::FileOutputStream::Open(out->spill_path_.string());
  if (!sink.ok()) return FromArrow(sink.status(), out->spill_path_, "cannot create");
  out->spill_ = *sink;
  // LZ4: the spill holds every row of the table once more, uncompressed it would be several
  // times the Parquet file.
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  if (auto codec = arrow::util::Codec::Create(arrow::Compression::LZ4_FRAME); codec.ok()) {
    options.codec = std::shared_ptr<arrow::util::Codec>(std::move(*codec));
  }
  auto writer = arrow::ipc::MakeFileWriter(out->spill_, out->schema_, options);
  if (!writer.ok()) return FromArrow(writer.status(), out->spill_path_, "cannot start");
  out->spill_writer_ = *writer;
  return out;
}

TimeOrderedTableWriter::~TimeOrderedTableWriter() {
  if (spill_writer_) (void)spill_writer_->Close();
  std::error_code ec;
  std::filesystem::remove(spill_path_, ec);
}

Status TimeOrderedTableWriter::Append(const arrow::RecordBatch& batch) {
  if (!spill_writer_) return Status::Internal("append to a closed table " + path_.string());
  const auto& times = static_cast<const arrow::TimestampArray&>(*batch.column(time_index_));
  const auto unit = static_cast<const arrow::TimestampType&>(*times.type()).unit();
  const int64_t per_micro = unit == arrow::TimeUnit::NANO ? 1000 : 1;
  std::vector<std::vector<int64_t>> rows_of_bucket;
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    const int64_t micros = times.IsNull(i) ? origin_micros_ : times.Value(i) / per_micro;
    const int64_t b = micros <= origin_micros_ ? 0 : (micros - origin_micros_) / bucket_micros_;
    if (static_cast<size_t>(b) >= rows_of_bucket.size()) rows_of_bucket.resize(b + 1);
    rows_of_bucket[b].push_back(i);
  }
  for (size_t b = 0; b < rows_of_bucket.size(); ++b) {
    if (rows_of_bucket[b].empty()) continue;
    arrow::Int64Builder indices;
    GRANARY_RETURN_NOT_OK(FromArrow(indices.AppendValues(rows_of_bucket[b]), spill_path_, "spill"));
    auto index_array = indices.Finish();
    if (!index_array.ok()) return FromArrow(index_array.status(), spill_path_, "spill");
    auto taken = arrow::compute::Take(batch.Slice(0), *index_array);
    if (!taken.ok()) return FromArrow(taken.status(), spill_path_, "spill");
    GRANARY_RETURN_NOT_OK(FromArrow(spill_writer_->WriteRecordBatch(*taken->record_batch()),
                                    spill_path_, "cannot write"));
    bucket_of_batch_.push_back(static_cast<int64_t>(b));
  }
  rows_ += batch.num_rows();
  return Status::OK();
}

Result<int64_t> TimeOrderedTableWriter::Close() {
  if (!spill_writer_) return Status::Internal("table closed twice: " + path_.string());
  GRANARY_RETURN_NOT_OK(FromArrow(spill_writer_->Close(), spill_path_, "cannot finish"));
  spill_writer_.reset();
  GRANARY_RETURN_NOT_OK(FromArrow(spill_->Close(), spill_path_, "cannot finish"));
  // Read, not mapped: the mapped pages a read touches would stay in the process's resident set
  // until the end (the whole spill, GBs at the seed's scale); read buffers go with each bucket.
  auto file = arrow::io::ReadableFile::Open(spill_path_.string());
  if (!file.ok()) return FromArrow(file.status(), spill_path_, "cannot read");
  auto reader = arrow::ipc::RecordBatchFileReader::Open(*file);
  if (!reader.ok()) return FromArrow(reader.status(), spill_path_, "cannot read");
  GRANARY_ASSIGN_OR_RAISE(auto parquet, ParquetFileWriter::Open(path_, schema_, row_group_rows_));

  int64_t buckets = 0;
  for (int64_t b : bucket_of_batch_) buckets = std::max(buckets, b + 1);
  std::vector<std::vector<int>> batches_of_bucket(buckets);
  for (size_t i = 0; i < bucket_of_batch_.size(); ++i) {
    batches_of_bucket[bucket_of_batch_[i]].push_back(static_cast<int>(i));
  }
  arrow::compute::SortOptions order({arrow::compute::SortKey(time_column_)});
  for (const std::vector<int>& batches : batches_of_bucket) {
    if (batches.empty()) continue;
    arrow::RecordBatchVector parts;
    for (int i : batches) {
      auto part = (*reader)->ReadRecordBatch(i);
      if (!part.ok()) return FromArrow(part.status(), spill_path_, "cannot read");
      parts.push_back(*part);
    }
    auto table = arrow::Table::FromRecordBatches(schema_, parts);
    if (!table.ok()) return FromArrow(table.status(), spill_path_, "cannot read");
    // Stable: rows of one instant keep their order of arrival.
    auto indices = arrow::compute::SortIndices(arrow::Datum(*table), order);
    if (!indices.ok()) return FromArrow(indices.status(), spill_path_, "cannot sort");
    auto sorted = arrow::compute::Take(arrow::Datum(*table), arrow::Datum(*indices));
    if (!sorted.ok()) return FromArrow(sorted.status(), spill_path_, "cannot sort");
    auto batch = sorted->table()->CombineChunksToBatch();
    if (!batch.ok()) return FromArrow(batch.status(), spill_path_, "cannot sort");
    GRANARY_RETURN_NOT_OK(parquet->Write(**batch));
  }
  GRANARY_ASSIGN_OR_RAISE(int64_t bytes, parquet->Close());
  std::error_code ec;
  std::filesystem::remove(spill_path_, ec);
  return bytes;
}

}  // namespace granary::datagen
