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

// A spill file's output stream: what the IPC writer writes (a message is a dozen small writes:
// its length, metadata, each buffer and its padding) is gathered in a buffer shared by all the
// partitioner's files and written with one call on Flush(), which SpillGroupOf makes after each
// group (one group spills at a time, so the buffer never holds two files' bytes).
class SpillFileStream : public arrow::io::OutputStream {
 public:
  SpillFileStream(std::shared_ptr<arrow::io::FileOutputStream> file, std::string* buffer)
      : file_(std::move(file)), buffer_(buffer) {}

  arrow::Status Write(const void* data, int64_t nbytes) override {
    buffer_->append(static_cast<const char*>(data), static_cast<size_t>(nbytes));
    position_ += nbytes;
    return buffer_->size() >= kMaxBuffered ? Flush() : arrow::Status::OK();
  }
  arrow::Status Flush() override {
    if (buffer_->empty()) return arrow::Status::OK();
    auto st = file_->Write(buffer_->data(), static_cast<int64_t>(buffer_->size()));
    buffer_->clear();
    return st;
  }
  arrow::Status Close() override {
    auto st = Flush();
    auto closed = file_->Close();
    return st.ok() ? closed : st;
  }
  bool closed() const override { return file_->closed(); }
  arrow::Result<int64_t> Tell() const override { return position_; }

 private:
  // Past this the buffer is written out mid-group: a group's spill is often less (the
  // partitioner's budget over its groups), this only bounds the buffer.
  static constexpr size_t kMaxBuffered = size_t{4} << 20;
  std::shared_ptr<arrow::io::FileOutputStream> file_;
  std::string* buffer_;
  int64_t position_ = 0;
};

// A spill file's write error, to be told with the file's name by SpillGroupOf.
Status WriteError(const arrow::Status& st) {
  return st.ok() ? Status::OK() : Status::IOError(st.message());
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
      partitions_(options_.num_partitions) {
  const int groups = std::min(options_.num_partitions, kSpillGroups);
  for (int g = 0; g < groups; ++g) {
    SpillGroup group;
    group.first_partition = static_cast<int>(int64_t{options_.num_partitions} * g / groups);
    group.end_partition = static_cast<int>(int64_t{options_.num_partitions} * (g + 1) / groups);
    for (int p = group.first_partition; p < group.end_partition; ++p) partitions_[p].group = g;
    groups_.push_back(group);
  }
}

int64_t EntityPartitioner::GatherBytes() const {
  // About 8 KiB a partition, at most a quarter of the budget: with thousands of partitions a
  // 64K-row batch alone would give each partition a range of a few dozen rows, and each range is
  // a slice of its own (arrays the budget does not count) until the partition is spilled or read.
  return std::min(options_.memory_budget_bytes / 4,
                  int64_t{options_.num_partitions} * (int64_t{8} << 10));
}

EntityPartitioner::~EntityPartitioner() {
  for (SpillGroup& group : groups_) {
    if (group.sink != nullptr) (void)group.sink->Close();
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
  // Batches are gathered (GatherBytes) and then split together.
  const int64_t gather = GatherBytes();
  const int64_t bytes = BatchBytes(*batch);
  if (pending_.empty() && bytes >= gather) return Split(batch, /*more_coming=*/true);
  pending_.push_back(batch);
  pending_bytes_ += bytes;
  stats_.bytes_in_memory += bytes;
  stats_.peak_bytes_in_memory = std::max(stats_.peak_bytes_in_memory, stats_.bytes_in_memory);
  // Split early when the budget is reached, so that the spill that follows keeps it.
  if (pending_bytes_ < gather && stats_.bytes_in_memory <= options_.memory_budget_bytes) {
    return Status::OK();
  }
  return SplitPending(/*more_coming=*/true);
}

Status EntityPartitioner::SplitPending(bool more_coming) {
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
  return Split(batch, more_coming);
}

Status EntityPartitioner::Split(const std::shared_ptr<arrow::RecordBatch>& batch,
                                bool more_coming) {
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
  // The rows in partition order, taken once per group of partitions (a Take per group, not per
  // partition: a Take a partition, thousands of pieces of a few KiB each with its arrays and
  // buffers, cost more than the rows' copy at the seed's 2,747 partitions, docs/PERFORMANCE.md).
  // Each partition keeps its range of its group's batch; a group's batch is freed once all its
  // partitions spilled or were released, so a spill of whole groups frees what it writes.
  std::shared_ptr<arrow::Int64Array> indices;
  const bool one_partition = counts[part_of[0] + 1] - counts[part_of[0]] == n;
  if (!one_partition) {
    std::vector<int64_t> order(n);
    {
      std::vector<int64_t> next(counts.begin(), counts.end() - 1);
      for (int64_t i = 0; i < n; ++i) order[next[part_of[i]]++] = i;
    }
    arrow::Int64Builder index_builder;
    std::shared_ptr<arrow::Array> built;
    if (!index_builder.AppendValues(order).ok() || !index_builder.Finish(&built).ok()) {
      return Status::Internal("out of memory");
    }
    indices = std::static_pointer_cast<arrow::Int64Array>(built);
  }
  for (SpillGroup& group : groups_) {
    const int64_t first = counts[group.first_partition];
    const int64_t rows = counts[group.end_partition] - first;
    if (rows == 0) continue;
    std::shared_ptr<arrow::RecordBatch> sorted = batch;
    if (!one_partition) {
      auto taken = arrow::compute::Take(batch, indices->Slice(first, rows));
      if (!taken.ok()) return Status::Internal(taken.status().ToString());
      sorted = taken->record_batch();
    }
    // Each range is charged its rows' share of its group's batch's bytes (the shares add up to
    // them exactly).
    const int64_t sorted_bytes = BatchBytes(*sorted);
    auto share = [&](int64_t row) {
      return static_cast<int64_t>(static_cast<__int128>(sorted_bytes) * (row - first) / rows);
    };
    for (int p = group.first_partition; p < group.end_partition; ++p) {
      const int64_t begin = counts[p], end = counts[p + 1];
      if (begin == end) continue;
      partitions_[p].ranges.push_back(Range{sorted, begin - first, end - begin});
      partitions_[p].bytes += share(end) - share(begin);
    }
    group.bytes += sorted_bytes;
    stats_.bytes_in_memory += sorted_bytes;
  }
  stats_.rows += n;
  stats_.peak_bytes_in_memory = std::max(stats_.peak_bytes_in_memory, stats_.bytes_in_memory);
  if (stats_.bytes_in_memory <= options_.memory_budget_bytes) return Status::OK();
  // Back under the budget, and a gather below it while more rows may come (so that the next
  // spill is a gather away, not the next batch away): the largest groups first, the ones whose
  // partitions have gone longest without a spill, so each message is as large as can be.
  const int64_t target = options_.memory_budget_bytes - (more_coming ? GatherBytes() : 0);
  while (stats_.bytes_in_memory > target) {
    SpillGroup* largest = &groups_.front();
    for (SpillGroup& group : groups_) {
      if (group.bytes > largest->bytes) largest = &group;
    }
    if (largest->bytes == 0) break;
    GRANARY_RETURN_NOT_OK(SpillGroupOf(*largest));
  }
  return Status::OK();
}

Status EntityPartitioner::SpillGroupOf(SpillGroup& group) {
  if (!spill_dir_) {
    GRANARY_ASSIGN_OR_RAISE(SpillFolder dir,
                            SpillFolder::Make(options_.spill_parent, "granary-spill-", "the data"));
    spill_dir_.emplace(std::move(dir));
  }
  if (group.sink == nullptr) {
    group.spill_path = spill_dir_->path() / fmt::format("group-{:02}.arrows", &group - &groups_[0]);
    auto out = arrow::io::FileOutputStream::Open(group.spill_path.string());
    if (!out.ok()) {
      return Status::IOError(fmt::format("cannot create spill file {}: {}",
                                         group.spill_path.string(), out.status().message()));
    }
    group.sink = std::make_shared<SpillFileStream>(*out, &spill_buffer_);
  }
  Status st;
  for (int p = group.first_partition; p < group.end_partition && st.ok(); ++p) {
    st = SpillPartition(p);
  }
  if (st.ok()) st = WriteError(group.sink->Flush());
  if (st.code() == StatusCode::kIOError) {
    spill_buffer_.clear();
    return Status::IOError(fmt::format("cannot write spill file {}: {} (is the disk full?)",
                                       group.spill_path.string(), st.message()));
  }
  return st;
}

std::shared_ptr<arrow::RecordBatch> EntityPartitioner::Range::Rows() const {
  if (offset == 0 && length == sorted->num_rows()) return sorted;
  return sorted->Slice(offset, length);
}

Status EntityPartitioner::SpillPartition(int i) {
  Partition& part = partitions_[i];
  if (part.ranges.empty()) return Status::OK();
  SpillGroup& group = GroupOf(i);
  // The partition's ranges go as one message: with thousands of partitions each is a few KiB,
  // and a message costs its metadata, a batch object when read back, and a dozen small writes.
  std::vector<std::shared_ptr<arrow::RecordBatch>> pieces;
  for (const Range& range : part.ranges) pieces.push_back(range.Rows());
  std::shared_ptr<arrow::RecordBatch> batch = pieces.front();
  if (pieces.size() > 1) {
    auto combined = arrow::ConcatenateRecordBatches(pieces);
    if (!combined.ok()) return Status::Internal(combined.status().ToString());
    batch = *combined;
  }
  // A stream of its own (schema, the message, end of stream) at the end of the group's file, so
  // that the extent reads back alone; the schema's few hundred bytes are small beside a message.
  const int64_t begin = *group.sink->Tell();
  auto writer = arrow::ipc::MakeStreamWriter(group.sink, schema_);
  if (!writer.ok()) return WriteError(writer.status());
  GRANARY_RETURN_NOT_OK(WriteError((*writer)->WriteRecordBatch(*batch)));
  GRANARY_RETURN_NOT_OK(WriteError((*writer)->Close()));  // the end of stream; the file stays open
  if (part.extents.empty()) ++group.partitions_spilled;
  part.extents.push_back(Extent{begin, *group.sink->Tell() - begin});
  stats_.bytes_spilled += part.bytes;
  stats_.bytes_in_memory -= part.bytes;
  group.bytes -= part.bytes;
  ++stats_.spills;
  part.ranges.clear();
  part.bytes = 0;
  return Status::OK();
}

Status EntityPartitioner::Finish() {
  if (finished_) return Status::OK();
  // What is still in memory stays there (within the budget): only a split past it spills.
  GRANARY_RETURN_NOT_OK(SplitPending(/*more_coming=*/false));
  finished_ = true;
  for (SpillGroup& group : groups_) {
    if (group.sink == nullptr) continue;
    auto st = group.sink->Close();
    group.sink.reset();
    if (!st.ok()) {
      return Status::IOError(fmt::format("cannot close spill file {}: {} (is the disk full?)",
                                         group.spill_path.string(), st.message()));
    }
  }
  return Status::OK();
}

Result<std::shared_ptr<arrow::Table>> EntityPartitioner::ReadPartition(int i) const {
  if (!finished_) return Status::Internal("EntityPartitioner::ReadPartition before Finish");
  const Partition& part = partitions_.at(i);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  if (!part.extents.empty()) {
    const std::string path = groups_[part.group].spill_path.string();
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
    // One read an extent (a spill's message, in a stream of its own) rather than a few small
    // reads a message; the batches are slices of those buffers.
    for (const Extent& extent : part.extents) {
      auto contents = (*in)->ReadAt(extent.offset, extent.length);
      if (!contents.ok()) return unreadable(contents.status());
      if ((*contents)->size() != extent.length) {
        return unreadable(arrow::Status::IOError("the file is shorter than was written"));
      }
      auto stream = std::make_shared<arrow::io::BufferReader>(*contents);
      auto reader = arrow::ipc::RecordBatchStreamReader::Open(stream);
      if (!reader.ok()) return unreadable(reader.status());
      while (true) {
        std::shared_ptr<arrow::RecordBatch> batch;
        auto st = (*reader)->ReadNext(&batch);
        if (!st.ok()) return unreadable(st);
        if (batch == nullptr) break;
        batches.push_back(std::move(batch));
      }
    }
  }
  for (const Range& range : part.ranges) batches.push_back(range.Rows());
  auto table = arrow::Table::FromRecordBatches(schema_, batches);
  if (!table.ok()) return Status::Internal(table.status().ToString());
  return *table;
}

void EntityPartitioner::Release(int i) {
  Partition& part = partitions_.at(i);
  SpillGroup& group = GroupOf(i);
  stats_.bytes_in_memory -= part.bytes;
  group.bytes -= part.bytes;
  part.ranges.clear();
  part.bytes = 0;
  if (part.extents.empty()) return;
  part.extents.clear();
  // The group's file goes with the last of its spilled partitions (the rest of it is removed
  // with the spill folder).
  if (--group.partitions_spilled == 0 && finished_) {
    std::error_code ec;
    std::filesystem::remove(group.spill_path, ec);
  }
}

}  // namespace granary
