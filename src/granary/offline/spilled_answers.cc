#include "granary/offline/spilled_answers.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>

#include "granary/offline/row_order_columns.h"

namespace granary {
namespace {

Status ArrowError(const arrow::Status& st) { return Status::Internal(st.ToString()); }

}  // namespace

SpilledAnswers::SpilledAnswers(std::vector<std::shared_ptr<arrow::DataType>> types,
                               SpilledAnswersOptions options)
    : types_(std::move(types)),
      options_(std::move(options)),
      num_ranges_((options_.num_rows + options_.range_rows - 1) / options_.range_rows) {
  arrow::FieldVector fields{arrow::field("row", arrow::int64(), /*nullable=*/false)};
  for (size_t c = 0; c < types_.size(); ++c) {
    fields.push_back(arrow::field(fmt::format("answer{}", c), types_[c]));
  }
  schema_ = arrow::schema(std::move(fields));
  MutexLock lock(&mu_);
  buffered_.resize(num_ranges_);
  batches_.resize(num_ranges_);
}

SpilledAnswers::~SpilledAnswers() {
  MutexLock lock(&mu_);
  // The file is closed before its folder goes.
  writer_.reset();
  if (out_ != nullptr && !out_->closed()) (void)out_->Close();
}

Result<std::unique_ptr<SpilledAnswers>> SpilledAnswers::Make(
    std::vector<std::shared_ptr<arrow::DataType>> types, SpilledAnswersOptions options) {
  if (options.num_rows < 0) return Status::Internal("SpilledAnswers: a negative row count");
  options.range_rows = std::max<int64_t>(options.range_rows, 1);
  options.buffer_bytes = std::max<int64_t>(options.buffer_bytes, 0);
  return std::unique_ptr<SpilledAnswers>(new SpilledAnswers(std::move(types), std::move(options)));
}

Status SpilledAnswers::Place(const arrow::Array& rows,
                             const std::vector<std::shared_ptr<arrow::Array>>& values) {
  if (rows.type_id() != arrow::Type::INT64 || rows.null_count() != 0) {
    return Status::Internal("SpilledAnswers: row positions must be int64 without nulls");
  }
  if (values.size() != types_.size()) {
    return Status::Internal(fmt::format("SpilledAnswers: {} columns placed, {} expected",
                                        values.size(), types_.size()));
  }
  const int64_t length = rows.length();
  for (size_t c = 0; c < types_.size(); ++c) {
    if (values[c]->length() != length || !values[c]->type()->Equals(*types_[c])) {
      return Status::Internal(fmt::format(
          "SpilledAnswers: column {} placed as {} values of {}, expected {} of {}", c,
          values[c]->length(), values[c]->type()->ToString(), length, types_[c]->ToString()));
    }
  }
  if (length == 0) return Status::OK();
  // The piece's rows by range (a counting sort, stable), then one Take of every column, so that
  // each range's rows are one slice of the sorted piece.
  const int64_t* ids = rows.data()->GetValues<int64_t>(1);
  std::vector<int64_t> start(num_ranges_ + 1, 0);
  for (int64_t i = 0; i < length; ++i) {
    const int64_t r = ids[i];
    if (r < 0 || r >= options_.num_rows) {
      return Status::Internal(
          fmt::format("SpilledAnswers: row position {} of {} rows", r, options_.num_rows));
    }
    ++start[r / options_.range_rows + 1];
  }
  for (int64_t g = 0; g < num_ranges_; ++g) start[g + 1] += start[g];
  std::shared_ptr<arrow::RecordBatch> sorted;
  {
    arrow::ArrayVector columns{arrow::MakeArray(rows.data())};
    columns.insert(columns.end(), values.begin(), values.end());
    auto piece = arrow::RecordBatch::Make(schema_, length, std::move(columns));
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    bool in_order = true;
    for (int64_t i = 1; i < length && in_order; ++i) {
      in_order = ids[i - 1] / options_.range_rows <= ids[i] / options_.range_rows;
    }
    if (in_order) {
      sorted = std::move(piece);
    } else {
      arrow::Int64Builder order;
      if (auto st = order.Resize(length); !st.ok()) return ArrowError(st);
      std::vector<int64_t> at(length);
      for (int64_t i = 0; i < length; ++i) at[next[ids[i] / options_.range_rows]++] = i;
      if (auto st = order.AppendValues(at); !st.ok()) return ArrowError(st);
      std::shared_ptr<arrow::Array> indices;
      if (auto st = order.Finish(&indices); !st.ok()) return ArrowError(st);
      auto taken = arrow::compute::Take(piece, indices);
      if (!taken.ok()) return ArrowError(taken.status());
      sorted = taken->record_batch();
    }
  }
  auto bytes = arrow::util::ReferencedBufferSize(*sorted);
  if (!bytes.ok()) return ArrowError(bytes.status());
  MutexLock lock(&mu_);
  if (emitted_) return Status::Internal("SpilledAnswers::Place after Emit");
  for (int64_t g = 0; g < num_ranges_; ++g) {
    if (start[g + 1] > start[g]) {
      buffered_[g].push_back(sorted->Slice(start[g], start[g + 1] - start[g]));
    }
  }
  buffered_bytes_ += *bytes;
  if (buffered_bytes_ > options_.buffer_bytes) return FlushLocked();
  return Status::OK();
}

Status SpilledAnswers::FlushLocked() {
  if (writer_ == nullptr) {
    if (!folder_) {
      GRANARY_ASSIGN_OR_RAISE(
          SpillFolder folder,
          SpillFolder::Make(options_.spill_parent, "granary-spill-", "the window join's answers"));
      folder_.emplace(std::move(folder));
    }
    file_ = folder_->path() / "answers.arrow";
    auto out = arrow::io::FileOutputStream::Open(file_.string());
    if (!out.ok()) {
      return Status::IOError(fmt::format("cannot create spill file {}: {} (is the disk full?)",
                                         file_.string(), out.status().message()));
    }
    out_ = *out;
    auto writer = arrow::ipc::MakeFileWriter(out_, schema_);
    if (!writer.ok()) {
      return Status::IOError(
          fmt::format("cannot start spill file {}: {}", file_.string(), writer.status().message()));
    }
    writer_ = *writer;
  }
  for (int64_t g = 0; g < num_ranges_; ++g) {
    auto& pieces = buffered_[g];
    if (pieces.empty()) continue;
    std::shared_ptr<arrow::RecordBatch> batch = pieces.front();
    if (pieces.size() > 1) {
      auto combined = arrow::ConcatenateRecordBatches(pieces);
      if (!combined.ok()) return ArrowError(combined.status());
      batch = *combined;
    }
    pieces.clear();
    if (auto st = writer_->WriteRecordBatch(*batch); !st.ok()) {
      return Status::IOError(fmt::format("cannot write spill file {}: {} (is the disk full?)",
                                         file_.string(), st.message()));
    }
    batches_[g].push_back(written_batches_++);
  }
  buffered_bytes_ = 0;
  auto position = out_->Tell();
  if (position.ok()) bytes_spilled_ = *position;
  return Status::OK();
}

Status SpilledAnswers::Emit(const Emitter& emit) {
  MutexLock lock(&mu_);
  if (emitted_) return Status::Internal("SpilledAnswers::Emit twice");
  emitted_ = true;
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> reader;
  if (written_batches_ > 0) {
    GRANARY_RETURN_NOT_OK(FlushLocked());
    if (auto st = writer_->Close(); !st.ok()) {
      return Status::IOError(
          fmt::format("cannot close spill file {}: {}", file_.string(), st.message()));
    }
    writer_.reset();
    if (auto st = out_->Close(); !st.ok()) {
      return Status::IOError(
          fmt::format("cannot close spill file {}: {}", file_.string(), st.message()));
    }
    auto in = arrow::io::ReadableFile::Open(file_.string());
    if (!in.ok()) {
      return Status::IOError(fmt::format(
          "cannot open spill file {}: {} (was the spill folder removed during the retrieval?)",
          file_.string(), in.status().message()));
    }
    auto opened = arrow::ipc::RecordBatchFileReader::Open(*in);
    if (!opened.ok()) {
      return Status::IOError(fmt::format("spill file {} is unreadable: {}", file_.string(),
                                         opened.status().message()));
    }
    reader = *opened;
  }
  for (int64_t g = 0; g < num_ranges_; ++g) {
    const int64_t first = g * options_.range_rows;
    const int64_t length = std::min(options_.range_rows, options_.num_rows - first);
    std::vector<std::shared_ptr<arrow::RecordBatch>> pieces;
    for (int i : batches_[g]) {
      auto batch = reader->ReadRecordBatch(i);
      if (!batch.ok()) {
        return Status::IOError(fmt::format("spill file {} is unreadable: {}", file_.string(),
                                           batch.status().message()));
      }
      pieces.push_back(std::move(*batch));
    }
    std::vector<int>().swap(batches_[g]);
    for (auto& piece : buffered_[g]) pieces.push_back(std::move(piece));
    std::vector<std::shared_ptr<arrow::RecordBatch>>().swap(buffered_[g]);
    GRANARY_ASSIGN_OR_RAISE(auto range, RowOrderColumns::Make(types_, length));
    for (const auto& piece : pieces) {
      // The positions within the range.
      const auto& ids = *piece->column(0)->data();
      auto shifted =
          arrow::AllocateBuffer(piece->num_rows() * static_cast<int64_t>(sizeof(int64_t)));
      if (!shifted.ok()) return ArrowError(shifted.status());
      const int64_t* from = ids.GetValues<int64_t>(1);
      auto* to = reinterpret_cast<int64_t*>((*shifted)->mutable_data());
      for (int64_t i = 0; i < piece->num_rows(); ++i) to[i] = from[i] - first;
      arrow::Int64Array positions(piece->num_rows(), std::move(*shifted));
      std::vector<std::shared_ptr<arrow::Array>> columns(piece->columns().begin() + 1,
                                                         piece->columns().end());
      Status placed = range->Place(positions, columns);
      if (!placed.ok()) {
        return Status::Internal(
            fmt::format("rows {} to {}: {}", first, first + length, placed.message()));
      }
    }
    pieces.clear();
    auto columns = range->Finish();
    if (!columns.ok()) {
      return Status::Internal(
          fmt::format("rows {} to {}: {}", first, first + length, columns.status().message()));
    }
    range.reset();
    GRANARY_RETURN_NOT_OK(emit(first, std::move(*columns)));
  }
  reader.reset();
  folder_.reset();
  return Status::OK();
}

int64_t SpilledAnswers::bytes_spilled() const {
  MutexLock lock(&mu_);
  return bytes_spilled_;
}

}  // namespace granary
