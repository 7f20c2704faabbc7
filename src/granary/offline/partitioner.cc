#include "granary/offline/partitioner.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <mutex>
#if defined(__GLIBC__)  // set by any standard header
#include <malloc.h>
#endif

#include "granary/offline/key_hash.h"

namespace granary {

int64_t BatchBytes(const arrow::RecordBatch& batch) {
  int64_t total = 0;
  for (const auto& column : batch.columns()) total += arrow::util::TotalBufferSize(*column);
  return total;
}

namespace {

// Arrow bytes a value of `type` takes, validity bit included (see EstimatedArrowBytes).
double ArrowValueBytes(const arrow::DataType& type) {
  constexpr double kValidity = 1.0 / 8;
  constexpr double kVariableValueBytes = 16;  // stated: a short string's characters
  constexpr double kListValues = 4;           // stated: values a list holds
  switch (type.id()) {
    case arrow::Type::NA:
      return 0;
    case arrow::Type::BOOL:
      return 1.0 / 8 + kValidity;
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return 4 + kVariableValueBytes + kValidity;
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return 8 + kVariableValueBytes + kValidity;
    case arrow::Type::STRING_VIEW:
    case arrow::Type::BINARY_VIEW:
      return 16 + kVariableValueBytes + kValidity;
    case arrow::Type::DICTIONARY:
      return ArrowValueBytes(*static_cast<const arrow::DictionaryType&>(type).index_type());
    case arrow::Type::LIST:
    case arrow::Type::MAP:
      return 4 + kListValues * ArrowValueBytes(*type.field(0)->type()) + kValidity;
    case arrow::Type::LARGE_LIST:
      return 8 + kListValues * ArrowValueBytes(*type.field(0)->type()) + kValidity;
    case arrow::Type::FIXED_SIZE_LIST: {
      const auto& list = static_cast<const arrow::FixedSizeListType&>(type);
      return list.list_size() * ArrowValueBytes(*list.value_type()) + kValidity;
    }
    case arrow::Type::STRUCT: {
      double bytes = kValidity;
      for (const auto& field : type.fields()) bytes += ArrowValueBytes(*field->type());
      return bytes;
    }
    default: {
      const int width = type.byte_width();
      return (width > 0 ? width : kVariableValueBytes) + kValidity;
    }
  }
}

}  // namespace

int64_t EstimatedArrowBytes(const arrow::Schema& schema, int64_t rows) {
  double per_row = 0;
  for (const auto& field : schema.fields()) per_row += ArrowValueBytes(*field->type());
  return static_cast<int64_t>(per_row * static_cast<double>(rows));
}

int MaxSpillPartitions(int wanted) {
  constexpr rlim_t kReserved = 256;  // descriptors left for everything else
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::max(wanted, 1);
  const rlim_t needed = static_cast<rlim_t>(std::max(wanted, 1)) + kReserved;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) return std::max(wanted, 1);
  return static_cast<int>(std::max<rlim_t>(limit.rlim_cur, kReserved + 16) - kReserved);
}

void ReleaseFreedMemory() {
  arrow::default_memory_pool()->ReleaseUnused();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

EntityPartitioner::EntityPartitioner(std::shared_ptr<arrow::Schema> schema,
                                     std::vector<int> key_indices, PartitionerOptions options)
    : schema_(std::move(schema)),
      key_indices_(std::move(key_indices)),
      options_(std::move(options)),
      partitions_(options_.num_partitions) {}

EntityPartitioner::~EntityPartitioner() {
  for (Partition& p : partitions_) {
    if (p.writer != nullptr) (void)p.writer->Close();
  }
}

Result<std::unique_ptr<EntityPartitioner>> EntityPartitioner::Make(
    std::shared_ptr<arrow::Schema> schema, std::vector<std::string> key_columns,
    PartitionerOptions options) {
  if (options.num_partitions < 1) {
    return Status::InvalidArgument("a partitioner needs at least one partition");
  }
  std::vector<int> indices;
  for (const std::string& key : key_columns) {
    int index = schema->GetFieldIndex(key);
    if (index < 0) {
      return Status::InvalidArgument(fmt::format("the rows have no key column '{}'", key));
    }
    indices.push_back(index);
  }
  return std::unique_ptr<EntityPartitioner>(
      new EntityPartitioner(std::move(schema), std::move(indices), std::move(options)));
}

Status EntityPartitioner::Append(const std::shared_ptr<arrow::RecordBatch>& batch) {
  if (finished_) return Status::Internal("EntityPartitioner::Append after Finish");
  if (batch->num_rows() == 0) return Status::OK();
  // Batches are gathered until they hold about 8 KiB a partition (at most a quarter of the
  // budget) and then split together: with thousands of partitions a 64K-row batch alone would
  // make pieces of a few dozen rows, each a batch of its own (a Take per partition and column,
  // objects the budget does not count, and a message per piece in the spill files).
  const int64_t gather = std::min(options_.memory_budget_bytes / 4,
                                  int64_t{options_.num_partitions} * (int64_t{8} << 10));
  const int64_t bytes = BatchBytes(*batch);
  if (pending_.empty() && bytes >= gather) return Split(batch);
  pending_.push_back(batch);
  pending_bytes_ += bytes;
  stats_.bytes_in_memory += bytes;
  stats_.peak_bytes_in_memory = std::max(stats_.peak_bytes_in_memory, stats_.bytes_in_memory);
  // Split early when the budget is reached, so that the spill that follows keeps it.
  if (pending_bytes_ < gather && stats_.bytes_in_memory <= options_.memory_budget_bytes) {
    return Status::OK();
  }
  return SplitPending();
}

Status EntityPartitioner::SplitPending() {
  if (pending_.empty()) return Status::OK();
  std::shared_ptr<arrow::RecordBatch> batch = pending_.front();
  if (pending_.size() > 1) {
    auto combined = arrow::ConcatenateRecordBatches(pending_);
    if (!combined.ok()) return Status::Internal(combined.status().ToString());
    batch = *combined;
  }
  pending_.clear();
  stats_.bytes_in_memory -= pending_bytes_;
  pending_bytes_ = 0;
  return Split(batch);
}

Status EntityPartitioner::Split(const std::shared_ptr<arrow::RecordBatch>& batch) {
  const int64_t n = batch->num_rows();
  std::vector<std::shared_ptr<arrow::Array>> keys;
  for (int index : key_indices_) keys.push_back(batch->column(index));
  GRANARY_ASSIGN_OR_RAISE(KeyColumns key_columns, KeyColumns::Make(std::move(keys)));
  std::vector<uint64_t> hashes(n);
  key_columns.HashRows(hashes.data());
  const int parts = options_.num_partitions;
  // Counting sort of row indices by partition keeps each partition's rows in order.
  std::vector<int32_t> part_of(n);
  std::vector<int64_t> counts(parts + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    part_of[i] = key_columns.IsNull(i) ? 0 : PartitionOf(hashes[i], parts);
    ++counts[part_of[i] + 1];
  }
  for (int p = 0; p < parts; ++p) counts[p + 1] += counts[p];
  arrow::Int64Builder index_builder;
  if (!index_builder.Resize(n).ok()) return Status::Internal("out of memory");
  std::vector<int64_t> order(n);
  {
    std::vector<int64_t> next(counts.begin(), counts.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[next[part_of[i]]++] = i;
  }
  if (!index_builder.AppendValues(order).ok()) return Status::Internal("out of memory");
  std::shared_ptr<arrow::Array> indices;
  if (!index_builder.Finish(&indices).ok()) return Status::Internal("out of memory");
  for (int p = 0; p < parts; ++p) {
    const int64_t begin = counts[p], end = counts[p + 1];
    if (begin == end) continue;
    std::shared_ptr<arrow::RecordBatch> piece;
    if (end - begin == n) {
      piece = batch;
    } else {
      auto taken = arrow::compute::Take(batch, indices->Slice(begin, end - begin));
      if (!taken.ok()) return Status::Internal(taken.status().ToString());
      piece = taken->record_batch();
    }
    const int64_t bytes = BatchBytes(*piece);
    partitions_[p].batches.push_back(std::move(piece));
    partitions_[p].bytes += bytes;
    stats_.bytes_in_memory += bytes;
  }
  stats_.rows += n;
  stats_.peak_bytes_in_memory = std::max(stats_.peak_bytes_in_memory, stats_.bytes_in_memory);
  if (stats_.bytes_in_memory > options_.memory_budget_bytes) return SpillLargest();
  return Status::OK();
}

Status EntityPartitioner::SpillLargest() {
  std::vector<int> order(partitions_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return partitions_[a].bytes > partitions_[b].bytes; });
  for (int p : order) {
    if (stats_.bytes_in_memory <= options_.memory_budget_bytes / 2) break;
    if (partitions_[p].bytes == 0) break;
    GRANARY_RETURN_NOT_OK(SpillPartition(p));
  }
  return Status::OK();
}

Status EntityPartitioner::SpillPartition(int i) {
  Partition& part = partitions_[i];
  if (!spill_dir_) {
    GRANARY_ASSIGN_OR_RAISE(SpillFolder dir,
                            SpillFolder::Make(options_.spill_parent, "granary-spill-", "the data"));
    spill_dir_.emplace(std::move(dir));
  }
  if (part.writer == nullptr) {
    part.spill_path = spill_dir_->path() / fmt::format("partition-{:05}.arrows", i);
    auto out = arrow::io::FileOutputStream::Open(part.spill_path.string());
    if (!out.ok()) {
      return Status::IOError(fmt::format("cannot create spill file {}: {}",
                                         part.spill_path.string(), out.status().message()));
    }
    auto writer = arrow::ipc::MakeStreamWriter(*out, schema_);
    if (!writer.ok()) {
      return Status::IOError(fmt::format("cannot start spill file {}: {}", part.spill_path.string(),
                                         writer.status().message()));
    }
    part.writer = *writer;
  }
  for (const auto& batch : part.batches) {
    auto st = part.writer->WriteRecordBatch(*batch);
    if (!st.ok()) {
      return Status::IOError(fmt::format("cannot write spill file {}: {} (is the disk full?)",
                                         part.spill_path.string(), st.message()));
    }
  }
  stats_.bytes_spilled += part.bytes;
  stats_.bytes_in_memory -= part.bytes;
  ++stats_.spills;
  part.batches.clear();
  part.bytes = 0;
  return Status::OK();
}

Status EntityPartitioner::Finish() {
  if (finished_) return Status::OK();
  GRANARY_RETURN_NOT_OK(SplitPending());
  finished_ = true;
  for (Partition& p : partitions_) {
    if (p.writer == nullptr) continue;
    auto st = p.writer->Close();
    p.writer.reset();
    if (!st.ok()) {
      return Status::IOError(fmt::format("cannot close spill file {}: {} (is the disk full?)",
                                         p.spill_path.string(), st.message()));
    }
  }
  return Status::OK();
}

Result<std::shared_ptr<arrow::Table>> EntityPartitioner::ReadPartition(int i) const {
  if (!finished_) return Status::Internal("EntityPartitioner::ReadPartition before Finish");
  const Partition& part = partitions_.at(i);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  if (!part.spill_path.empty()) {
    const std::string path = part.spill_path.string();
    auto in = arrow::io::ReadableFile::Open(path);
    if (!in.ok()) {
      return Status::IOError(fmt::format(
          "cannot open spill file {}: {} (was the spill folder removed during the retrieval?)",
          path, in.status().message()));
    }
    // The file was written by this process moments ago: unreadable contents mean it was changed
    // meanwhile, or the disk returned bad data.
    auto unreadable = [&](const arrow::Status& st) {
      if (st.IsIOError()) {
        return Status::IOError(fmt::format("cannot read spill file {}: {}", path, st.message()));
      }
      return Status::Corruption(
          fmt::format("spill file {} is unreadable: {} (was it changed during the retrieval?)",
                      path, st.message()));
    };
    auto reader = arrow::ipc::RecordBatchStreamReader::Open(*in);
    if (!reader.ok()) return unreadable(reader.status());
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      auto st = (*reader)->ReadNext(&batch);
      if (!st.ok()) return unreadable(st);
      if (batch == nullptr) break;
      batches.push_back(std::move(batch));
    }
  }
  batches.insert(batches.end(), part.batches.begin(), part.batches.end());
  auto table = arrow::Table::FromRecordBatches(schema_, batches);
  if (!table.ok()) return Status::Internal(table.status().ToString());
  return *table;
}

void EntityPartitioner::Release(int i) {
  Partition& part = partitions_.at(i);
  stats_.bytes_in_memory -= part.bytes;
  part.batches.clear();
  part.bytes = 0;
  if (!part.spill_path.empty()) {
    std::error_code ec;
    std::filesystem::remove(part.spill_path, ec);
    part.spill_path.clear();
  }
}

}  // namespace granary
