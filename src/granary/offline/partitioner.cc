#include "granary/offline/partitioner.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>
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
  const int64_t n = batch->num_rows();
  if (n == 0) return Status::OK();
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
    GRANARY_ASSIGN_OR_RAISE(
        SpillFolder dir, SpillFolder::Make(options_.spill_parent, "granary-spill-", "the data"));
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
