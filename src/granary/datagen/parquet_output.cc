#include "granary/datagen/parquet_output.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <fmt/format.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <parquet/properties.h>

namespace granary::datagen {
namespace {

Status FromArrow(const arrow::Status& st, const std::filesystem::path& path, const char* what) {
  if (st.ok()) return Status::OK();
  return Status::IOError(fmt::format("{} {}: {}", what, path.string(), st.message()));
}

}  // namespace

Result<std::unique_ptr<ParquetFileWriter>> ParquetFileWriter::Open(
    const std::filesystem::path& path, std::shared_ptr<arrow::Schema> schema,
    int64_t row_group_rows) {
  auto sink = arrow::io::FileOutputStream::Open(path.string());
  if (!sink.ok()) return FromArrow(sink.status(), path, "cannot create");
  auto props = parquet::WriterProperties::Builder()
                   .compression(parquet::Compression::SNAPPY)
                   ->max_row_group_length(row_group_rows)
                   ->build();
  std::unique_ptr<ParquetFileWriter> out(new ParquetFileWriter());
  out->path_ = path;
  try {
    auto writer =
        parquet::arrow::FileWriter::Open(*schema, arrow::default_memory_pool(), *sink, props);
    if (!writer.ok()) return FromArrow(writer.status(), path, "cannot start Parquet file");
    out->writer_ = std::move(*writer);
  } catch (const parquet::ParquetException& e) {
    return Status::IOError(
        fmt::format("cannot start Parquet file {}: {}", path.string(), e.what()));
  }
  return out;
}

ParquetFileWriter::~ParquetFileWriter() {
  if (writer_) (void)Close();
}

Status ParquetFileWriter::Write(const arrow::RecordBatch& batch) {
  if (!writer_) return Status::Internal("write to a closed Parquet file " + path_.string());
  try {
    GRANARY_RETURN_NOT_OK(FromArrow(writer_->WriteRecordBatch(batch), path_, "cannot write"));
  } catch (const parquet::ParquetException& e) {
    return Status::IOError(fmt::format("cannot write {}: {}", path_.string(), e.what()));
  }
  rows_ += batch.num_rows();
  return Status::OK();
}

Result<int64_t> ParquetFileWriter::Close() {
  if (!writer_) return Status::Internal("Parquet file closed twice: " + path_.string());
  std::unique_ptr<parquet::arrow::FileWriter> writer = std::move(writer_);
  try {
    GRANARY_RETURN_NOT_OK(FromArrow(writer->Close(), path_, "cannot finish"));
  } catch (const parquet::ParquetException& e) {
    return Status::IOError(fmt::format("cannot finish {}: {}", path_.string(), e.what()));
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  if (ec) return Status::IOError(fmt::format("cannot stat {}: {}", path_.string(), ec.message()));
  return static_cast<int64_t>(size);
}

Status TurnTaker::RunInTurn(int64_t turn, const std::function<Status()>& fn) {
  {
    MutexLock lock(&mu_);
    while (!cancelled_ && next_ != turn) cv_.Wait(&mu_);
    if (cancelled_) return Status::Cancelled("stopped because another part of the job failed");
  }
  Status st = fn();
  {
    MutexLock lock(&mu_);
    ++next_;
  }
  cv_.SignalAll();
  return st;
}

void TurnTaker::Cancel() {
  {
    MutexLock lock(&mu_);
    cancelled_ = true;
  }
  cv_.SignalAll();
}

}  // namespace granary::datagen
