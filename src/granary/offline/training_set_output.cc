#include "granary/offline/training_set_output.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>

#include "granary/offline/partitioner.h"

namespace granary {
namespace {

// Rows [lo, hi) of `column` as one array. The cuts include every chunk boundary of a held
// column, so the slice lies within one chunk (zero-copy); a slice across chunks is concatenated.
Result<std::shared_ptr<arrow::Array>> SliceOf(const arrow::ChunkedArray& column, int64_t lo,
                                              int64_t hi) {
  auto sliced = column.Slice(lo, hi - lo);
  arrow::ArrayVector parts;
  for (const auto& chunk : sliced->chunks()) {
    if (chunk->length() > 0) parts.push_back(chunk);
  }
  if (parts.size() == 1) return parts.front();
  if (parts.empty()) {
    auto empty = arrow::MakeArrayOfNull(column.type(), 0);
    if (!empty.ok()) return Status::Internal(empty.status().ToString());
    return *empty;
  }
  auto combined = arrow::Concatenate(parts);
  if (!combined.ok()) return Status::Internal(combined.status().ToString());
  return *combined;
}

Status SpillFileError(const std::string& what, const std::string& path, const arrow::Status& st) {
  return Status::IOError(
      fmt::format("cannot {} spill file {}: {} (is the disk full?)", what, path, st.message()));
}

}  // namespace

TrainingSetOutput::TrainingSetOutput(TrainingSetOutputOptions options)
    : options_(std::move(options)) {}

TrainingSetOutput::~TrainingSetOutput() {
  // Readers close their files before the folder (and the files in it) goes.
  for (Group& group : groups_) {
    group.reader.reset();
    if (group.in != nullptr && !group.in->closed()) (void)group.in->Close();
  }
}

Result<std::unique_ptr<TrainingSetOutput>> TrainingSetOutput::Make(
    TrainingSetOutputOptions options) {
  if (options.rows < 0) return Status::InvalidArgument("a training set of a negative row count");
  options.slice_rows = std::max<int64_t>(options.slice_rows, 1);
  auto out = std::unique_ptr<TrainingSetOutput>(new TrainingSetOutput(std::move(options)));
  const int64_t rows = out->options_.rows;
  for (int64_t at = out->options_.slice_rows; at < rows; at += out->options_.slice_rows) {
    out->cuts_.insert(at);
  }
  if (rows > 0) out->cuts_.insert(rows);
  return out;
}

int64_t TrainingSetOutput::BytesOf(
    const std::vector<std::shared_ptr<arrow::ChunkedArray>>& columns) {
  int64_t bytes = 0;
  for (const auto& column : columns) {
    // Per column, so that a buffer its chunks share (slices of one array) counts once.
    bytes += arrow::util::TotalBufferSize(*column);
  }
  return bytes;
}

std::shared_ptr<arrow::Schema> TrainingSetOutput::schema() const {
  arrow::FieldVector fields;
  for (const Group& group : groups_) {
    fields.insert(fields.end(), group.fields.begin(), group.fields.end());
  }
  return arrow::schema(std::move(fields));
}

Result<OutputPlacement> TrainingSetOutput::Add(
    std::vector<std::shared_ptr<arrow::Field>> fields,
    std::vector<std::shared_ptr<arrow::ChunkedArray>> columns, OutputHold hold) {
  if (reading_) return Status::Internal("TrainingSetOutput::Add after Next");
  if (open_ != nullptr) return Status::Internal("TrainingSetOutput::Add while a group is open");
  if (fields.size() != columns.size()) {
    return Status::Internal("TrainingSetOutput::Add: as many fields as columns");
  }
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c]->length() != options_.rows) {
      return Status::Internal(fmt::format("training set column '{}' has {} rows, not {}",
                                          fields[c]->name(), columns[c]->length(), options_.rows));
    }
    // Batches end where any column's chunk ends, as the whole table's batches did.
    int64_t end = 0;
    for (const auto& chunk : columns[c]->chunks()) {
      end += chunk->length();
      if (end > 0 && end < options_.rows) cuts_.insert(end);
    }
  }
  OutputPlacement placed;
  placed.bytes = BytesOf(columns);
  groups_.push_back(Group{std::move(fields), std::move(columns)});
  const bool within = held_bytes_ + placed.bytes <= options_.hold_bytes;
  if (hold == OutputHold::kHold || (hold == OutputHold::kWithinLimit && within) ||
      options_.rows == 0) {
    held_bytes_ += placed.bytes;
    return placed;
  }
  GRANARY_RETURN_NOT_OK(Spill(groups_.size() - 1));
  placed.spilled = true;
  placed.file = groups_.back().file;
  spilled_bytes_ += placed.bytes;
  return placed;
}

Status TrainingSetOutput::OpenSpillFile(size_t index,
                                        std::shared_ptr<arrow::io::FileOutputStream>* out,
                                        std::shared_ptr<arrow::ipc::RecordBatchWriter>* writer) {
  Group& group = groups_[index];
  if (!spill_dir_) {
    GRANARY_ASSIGN_OR_RAISE(SpillFolder dir,
                            SpillFolder::Make(options_.spill_parent, "granary-output-",
                                              "the training set's spilled columns"));
    spill_dir_.emplace(std::move(dir));
  }
  group.file = spill_dir_->path() / fmt::format("columns-{:03}.arrows", index);
  const std::string path = group.file.string();
  auto opened = arrow::io::FileOutputStream::Open(path);
  if (!opened.ok()) return SpillFileError("create", path, opened.status());
  auto made = arrow::ipc::MakeStreamWriter(*opened, arrow::schema(group.fields));
  if (!made.ok()) return SpillFileError("start", path, made.status());
  *out = *opened;
  *writer = *made;
  return Status::OK();
}

Status TrainingSetOutput::Spill(size_t index) {
  Group& group = groups_[index];
  std::shared_ptr<arrow::io::FileOutputStream> out;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
  GRANARY_RETURN_NOT_OK(OpenSpillFile(index, &out, &writer));
  const std::string path = group.file.string();
  auto schema = arrow::schema(group.fields);
  int64_t lo = 0;
  for (int64_t hi : cuts_) {
    GRANARY_RETURN_NOT_OK(CheckCancelled(options_.cancel, "writing the training set"));
    arrow::ArrayVector arrays;
    for (const auto& column : group.columns) {
      GRANARY_ASSIGN_OR_RAISE(auto array, SliceOf(*column, lo, hi));
      arrays.push_back(std::move(array));
    }
    auto st = writer->WriteRecordBatch(*arrow::RecordBatch::Make(schema, hi - lo, arrays));
    if (!st.ok()) return SpillFileError("write", path, st);
    lo = hi;
  }
  if (auto st = writer->Close(); !st.ok()) return SpillFileError("close", path, st);
  if (auto st = out->Close(); !st.ok()) return SpillFileError("close", path, st);
  group.columns.clear();
  return Status::OK();
}

Status TrainingSetOutput::BeginSpilledGroup(std::vector<std::shared_ptr<arrow::Field>> fields) {
  if (reading_) return Status::Internal("TrainingSetOutput::BeginSpilledGroup after Next");
  if (open_ != nullptr) return Status::Internal("TrainingSetOutput: a spilled group is open");
  groups_.push_back(Group{std::move(fields), {}});
  auto open = std::make_unique<OpenGroup>();
  open->schema = arrow::schema(groups_.back().fields);
  open->pieces.resize(groups_.back().fields.size());
  GRANARY_RETURN_NOT_OK(OpenSpillFile(groups_.size() - 1, &open->out, &open->writer));
  open_ = std::move(open);
  return Status::OK();
}

Status TrainingSetOutput::WriteOpenGroupBatch(int64_t end) {
  OpenGroup& open = *open_;
  const std::string path = groups_.back().file.string();
  arrow::ArrayVector arrays;
  for (auto& pieces : open.pieces) {
    // The pieces buffered hold rows [written, appended); the batch ends at `end`.
    int64_t at = open.written;
    arrow::ArrayVector parts, rest;
    for (auto& piece : pieces) {
      const int64_t length = piece->length();
      if (at >= end) {
        rest.push_back(std::move(piece));
      } else if (at + length <= end) {
        parts.push_back(std::move(piece));
      } else {
        parts.push_back(piece->Slice(0, end - at));
        rest.push_back(piece->Slice(end - at));
      }
      at += length;
    }
    pieces = std::move(rest);
    std::shared_ptr<arrow::Array> array;
    if (parts.size() == 1) {
      array = std::move(parts.front());
    } else {
      auto combined = arrow::Concatenate(parts);
      if (!combined.ok()) return Status::Internal(combined.status().ToString());
      array = *combined;
    }
    arrays.push_back(std::move(array));
  }
  auto batch = arrow::RecordBatch::Make(open.schema, end - open.written, std::move(arrays));
  auto bytes = arrow::util::ReferencedBufferSize(*batch);
  if (bytes.ok()) open.bytes += *bytes;
  if (auto st = open.writer->WriteRecordBatch(*batch); !st.ok()) {
    return SpillFileError("write", path, st);
  }
  open.written = end;
  return Status::OK();
}

Status TrainingSetOutput::AppendToSpilledGroup(std::vector<std::shared_ptr<arrow::Array>> columns) {
  if (open_ == nullptr) return Status::Internal("TrainingSetOutput: no spilled group is open");
  OpenGroup& open = *open_;
  if (columns.size() != open.pieces.size()) {
    return Status::Internal(fmt::format("TrainingSetOutput: {} columns appended to a group of {}",
                                        columns.size(), open.pieces.size()));
  }
  const int64_t length = columns.empty() ? 0 : columns.front()->length();
  for (size_t c = 0; c < columns.size(); ++c) {
    const auto& field = open.schema->field(static_cast<int>(c));
    if (columns[c]->length() != length || !columns[c]->type()->Equals(*field->type())) {
      return Status::Internal(fmt::format(
          "training set column '{}': a piece of {} values of {}, expected {} of {}", field->name(),
          columns[c]->length(), columns[c]->type()->ToString(), length, field->type()->ToString()));
    }
  }
  if (open.appended + length > options_.rows) {
    return Status::Internal(fmt::format("training set group: {} rows appended of {}",
                                        open.appended + length, options_.rows));
  }
  GRANARY_RETURN_NOT_OK(CheckCancelled(options_.cancel, "writing the training set"));
  for (size_t c = 0; c < columns.size(); ++c) open.pieces[c].push_back(std::move(columns[c]));
  open.appended += length;
  // Every cut the appended rows reach ends a batch.
  for (auto cut = cuts_.upper_bound(open.written); cut != cuts_.end() && *cut <= open.appended;
       cut = cuts_.upper_bound(open.written)) {
    GRANARY_RETURN_NOT_OK(WriteOpenGroupBatch(*cut));
  }
  return Status::OK();
}

Result<OutputPlacement> TrainingSetOutput::EndSpilledGroup() {
  if (open_ == nullptr) return Status::Internal("TrainingSetOutput: no spilled group is open");
  std::unique_ptr<OpenGroup> open = std::move(open_);
  const std::string path = groups_.back().file.string();
  if (open->appended != options_.rows || open->written != options_.rows) {
    return Status::Internal(
        fmt::format("training set group: {} rows appended of {}", open->appended, options_.rows));
  }
  if (auto st = open->writer->Close(); !st.ok()) return SpillFileError("close", path, st);
  if (auto st = open->out->Close(); !st.ok()) return SpillFileError("close", path, st);
  OutputPlacement placed;
  placed.bytes = open->bytes;
  placed.spilled = true;
  placed.file = groups_.back().file;
  spilled_bytes_ += placed.bytes;
  return placed;
}

Result<std::shared_ptr<arrow::RecordBatch>> TrainingSetOutput::Next() {
  if (open_ != nullptr) return Status::Internal("TrainingSetOutput::Next while a group is open");
  if (!reading_) {
    reading_ = true;
    schema_ = schema();
    for (Group& group : groups_) {
      group.first_rows.assign(group.columns.size(), 0);
      if (group.file.empty()) continue;
      const std::string path = group.file.string();
      auto in = arrow::io::ReadableFile::Open(path);
      if (!in.ok()) {
        return Status::IOError(fmt::format(
            "cannot open spill file {}: {} (was the spill folder removed during the retrieval?)",
            path, in.status().message()));
      }
      group.in = *in;
      auto reader = arrow::ipc::RecordBatchStreamReader::Open(group.in);
      if (!reader.ok()) {
        return Status::Corruption(
            fmt::format("spill file {} is unreadable: {}", path, reader.status().message()));
      }
      group.reader = *reader;
    }
  }
  GRANARY_RETURN_NOT_OK(CheckCancelled(options_.cancel, "writing the training set"));
  // The chunks the last call let go of were freed with the caller's batch (written by now):
  // back to the system, so that the writer's buffers (on other threads, which do not reuse this
  // thread's freed pages) do not come on top of them.
  if (let_go_) ReleaseFreedMemory();
  let_go_ = false;
  auto cut = cuts_.upper_bound(next_row_);
  if (cut == cuts_.end()) {
    // The end: the spill files go now rather than with the object.
    for (Group& group : groups_) {
      group.batch.reset();
      group.reader.reset();
      if (group.in != nullptr && !group.in->closed()) (void)group.in->Close();
    }
    spill_dir_.reset();
    return std::shared_ptr<arrow::RecordBatch>();
  }
  const int64_t lo = next_row_, hi = *cut;
  arrow::ArrayVector arrays;
  for (Group& group : groups_) {
    if (group.file.empty()) {
      for (size_t c = 0; c < group.columns.size(); ++c) {
        std::shared_ptr<arrow::ChunkedArray>& column = group.columns[c];
        int64_t& first = group.first_rows[c];
        GRANARY_ASSIGN_OR_RAISE(auto array, SliceOf(*column, lo - first, hi - first));
        arrays.push_back(std::move(array));
        // Chunks wholly before `hi` are let go: the batch holds what it needs of them, and a
        // column built in chunks of the row group (ScatteredColumn) is freed as it is written.
        size_t passed = 0;
        int64_t end = first;
        while (passed < static_cast<size_t>(column->num_chunks()) &&
               end + column->chunk(static_cast<int>(passed))->length() <= hi) {
          end += column->chunk(static_cast<int>(passed))->length();
          ++passed;
        }
        if (passed > 0) {
          arrow::ArrayVector rest(column->chunks().begin() + static_cast<ptrdiff_t>(passed),
                                  column->chunks().end());
          column = std::make_shared<arrow::ChunkedArray>(std::move(rest), column->type());
          first = end;
          let_go_ = true;
        }
      }
      continue;
    }
    // The spilled batches were cut at the cuts known when the group spilled, a subset of the
    // final ones, so [lo, hi) lies within one of them.
    while (group.batch_end <= lo) {
      std::shared_ptr<arrow::RecordBatch> batch;
      auto st = group.reader->ReadNext(&batch);
      if (!st.ok() || batch == nullptr) {
        return Status::Corruption(
            fmt::format("spill file {} is unreadable: {} (was it changed during the retrieval?)",
                        group.file.string(), st.ok() ? "it ends early" : st.message()));
      }
      group.batch = std::move(batch);
      group.batch_start = group.batch_end;
      group.batch_end = group.batch_start + group.batch->num_rows();
    }
    if (hi > group.batch_end) {
      return Status::Internal(fmt::format("spill file {}: rows {} to {} cross its batches",
                                          group.file.string(), lo, hi));
    }
    auto slice = group.batch->Slice(lo - group.batch_start, hi - lo);
    for (const auto& array : slice->columns()) arrays.push_back(array);
  }
  next_row_ = hi;
  return arrow::RecordBatch::Make(schema_, hi - lo, std::move(arrays));
}

}  // namespace granary
