#include "granary/offline/source_fragment.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/statistics.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "granary/offline/delta_log.h"
#include "granary/offline/parquet_footers.h"
#include "granary/offline/source_pick.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

// Wraps a batch reader with the objects it borrows from, and turns Parquet's exceptions into
// errors naming the file.
class OwningReader final : public arrow::RecordBatchReader {
 public:
  OwningReader(std::shared_ptr<void> owner, std::shared_ptr<arrow::RecordBatchReader> inner,
               std::string path)
      : owner_(std::move(owner)), inner_(std::move(inner)), path_(std::move(path)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return inner_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    try {
      auto st = inner_->ReadNext(batch);
      if (!st.ok()) return st.WithMessage(path_, ": ", st.message());
      return st;
    } catch (const parquet::ParquetStatusException& e) {  // carries the I/O or decoding status
      return e.status().WithMessage(path_, ": ", e.status().message());
    } catch (const parquet::ParquetException& e) {  // data that cannot be decoded
      return arrow::Status::Invalid(path_, ": ", e.what());
    } catch (const std::exception& e) {
      return arrow::Status::IOError(path_, ": ", e.what());
    }
  }

 private:
  std::shared_ptr<void> owner_;
  std::shared_ptr<arrow::RecordBatchReader> inner_;
  std::string path_;
};

// Drops the rows a deletion vector deletes from the batches of a Parquet reader over some row
// groups of a file. Batches may span row groups, so each stream position is mapped back to its
// row index in the file through the row groups read.
class DeletedRowsFilter final : public arrow::RecordBatchReader {
 public:
  struct Span {
    int64_t file_first_row;  // index in the file of the row group's first row
    int64_t rows;
  };
  DeletedRowsFilter(std::shared_ptr<arrow::RecordBatchReader> inner,
                    std::shared_ptr<const DeletionVector> deleted, std::vector<Span> spans)
      : inner_(std::move(inner)), deleted_(std::move(deleted)), spans_(std::move(spans)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return inner_->schema(); }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    while (true) {
      ARROW_RETURN_NOT_OK(inner_->ReadNext(batch));
      if (*batch == nullptr) return arrow::Status::OK();
      const int64_t n = (*batch)->num_rows();
      std::vector<int64_t> drop;  // positions in the batch, ascending
      int64_t batch_at = 0;       // rows of the batch mapped so far
      while (batch_at < n) {
        if (span_ >= spans_.size()) {
          return arrow::Status::Invalid(
              "the Parquet reader returned more rows than its row groups "
              "hold");
        }
        const Span& span = spans_[span_];
        const int64_t take = std::min(n - batch_at, span.rows - span_offset_);
        const int64_t first = span.file_first_row + span_offset_;
        deleted_->ForEachInRange(
            static_cast<uint64_t>(first), static_cast<uint64_t>(take),
            [&](uint64_t row) { drop.push_back(batch_at + static_cast<int64_t>(row) - first); });
        batch_at += take;
        span_offset_ += take;
        if (span_offset_ == span.rows) {
          ++span_;
          span_offset_ = 0;
        }
      }
      if (drop.empty()) return arrow::Status::OK();
      if (static_cast<int64_t>(drop.size()) == n) continue;  // every row deleted: next batch
      arrow::BooleanBuilder keep;
      ARROW_RETURN_NOT_OK(keep.Reserve(n));
      size_t d = 0;
      for (int64_t i = 0; i < n; ++i) {
        const bool deleted = d < drop.size() && drop[d] == i;
        if (deleted) ++d;
        keep.UnsafeAppend(!deleted);
      }
      ARROW_ASSIGN_OR_RAISE(auto mask, keep.Finish());
      ARROW_ASSIGN_OR_RAISE(arrow::Datum filtered, arrow::compute::Filter(*batch, mask));
      *batch = filtered.record_batch();
      return arrow::Status::OK();
    }
  }

 private:
  std::shared_ptr<arrow::RecordBatchReader> inner_;
  std::shared_ptr<const DeletionVector> deleted_;
  std::vector<Span> spans_;
  size_t span_ = 0;          // the row group the next row comes from
  int64_t span_offset_ = 0;  // rows of it already seen
};

// A failure while reading a fragment's batches (the message names the file): the file system
// or disk (IOError), Parquet data that cannot be decoded (Corruption: a truncated or damaged
// file), or CSV text that does not parse as its column's type (InvalidArgument: the data is the
// user's input, to fix).
Status ReadError(const arrow::Status& st, const Fragment& fragment) {
  // Arrow reports both the operating system's errors and Parquet's decoding errors (thrift,
  // page headers) as IOError; only the former carry an errno.
  const bool from_os = st.detail() != nullptr && std::string_view(st.detail()->type_id()) ==
                                                     std::string_view("arrow::ErrnoDetail");
  if (st.IsIOError() && (from_os || fragment.format == FragmentFormat::kCsv)) {
    return Status::IOError(st.message());
  }
  if (fragment.format == FragmentFormat::kCsv) return Status::InvalidArgument(st.message());
  return Status::Corruption(fmt::format("{} (the file is damaged or truncated)", st.message()));
}

}  // namespace

void CollectLeaves(const parquet::arrow::SchemaField& field, std::vector<int>* out) {
  if (field.is_leaf()) out->push_back(field.column_index);
  for (const auto& child : field.children) CollectLeaves(child, out);
}

int64_t ParquetReadBufferBytes(size_t columns, int readers) {
  constexpr int64_t kShared = int64_t{8} << 20;
  const int64_t streams = static_cast<int64_t>(std::max<size_t>(1, columns)) * std::max(1, readers);
  return std::clamp<int64_t>(kShared / streams, int64_t{64} << 10, int64_t{1} << 20);
}

std::map<std::string, std::optional<std::string>> HivePartitionValues(
    const std::filesystem::path& root, const std::filesystem::path& file) {
  std::map<std::string, std::optional<std::string>> out;
  if (file == root) return out;
  for (const auto& part : file.lexically_relative(root).parent_path()) {
    const std::string segment = part.string();
    const size_t eq = segment.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string value = PercentDecode(segment.substr(eq + 1));
    out[segment.substr(0, eq)] =
        value == "__HIVE_DEFAULT_PARTITION__" ? std::nullopt : std::optional(value);
  }
  return out;
}

Status PlanParquetFragment(const FragmentRequest& request, Fragment* fragment,
                           int64_t* row_groups_total, int64_t* row_groups_pruned) {
  GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<const ParquetFooterDigest> digest,
                          ReadParquetFooterDigest(fragment->path.string()));
  return PlanParquetFragment(request, *digest, fragment, row_groups_total, row_groups_pruned);
}

Status PlanParquetFragment(const FragmentRequest& request, const ParquetFooterDigest& d,
                           Fragment* fragment, int64_t* row_groups_total,
                           int64_t* row_groups_pruned) {
  const std::string path = fragment->path.string();
  fragment->num_rows = d.num_rows;
  fragment->row_group_rows = d.row_group_rows;
  fragment->footer_hash = d.stored_hash;
  // Leaves of the needed top-level columns, and the timestamp leaf.
  std::vector<int> leaves;
  int ts_leaf = -1;
  for (size_t i = 0; i < d.leaves(); ++i) {
    if (d.leaf_column[i] < 0) continue;
    const std::string& top = d.columns[static_cast<size_t>(d.leaf_column[i])];
    for (const auto& c : request.columns) {
      if (c == top) leaves.push_back(static_cast<int>(i));
    }
    if (d.leaf_is_top[i] && top == request.timestamp_column) ts_leaf = static_cast<int>(i);
  }
  // Where the timestamp leaf's ranges are; -1 when its statistics are not times (not pruned).
  int ts_slot = -1;
  for (size_t k = 0; k < d.time_leaves.size(); ++k) {
    if (d.time_leaves[k] == ts_leaf) ts_slot = static_cast<int>(k);
  }
  auto unreadable = [&](const ParquetFooterDigest::Failures& failures, size_t cell) {
    return Status::InvalidArgument(
        fmt::format("{} is not a readable Parquet file: {}", path, failures.at(cell)));
  };
  fragment->row_groups.clear();
  fragment->bytes_estimated = 0;
  fragment->rows_estimated = 0;
  const int row_groups = static_cast<int>(d.row_group_rows.size());
  // A deletion vector that deletes every row (the log's cardinality, checked against the vector
  // when a file is read) leaves nothing to read.
  const int64_t deleted = fragment->deletion_vector ? fragment->deletion_vector->cardinality : 0;
  if (d.num_rows > 0 && deleted >= d.num_rows) {
    *row_groups_total += row_groups;
    return Status::OK();
  }
  for (int rg = 0; rg < row_groups; ++rg) {
    ++*row_groups_total;
    if (ts_slot >= 0 && (request.start || request.end)) {
      const size_t cell =
          static_cast<size_t>(rg) * d.time_leaves.size() + static_cast<size_t>(ts_slot);
      if (d.time_range_failures.count(cell) != 0) return unreadable(d.time_range_failures, cell);
      const auto& range = d.time_ranges[cell];
      if (range && ((request.start && range->second < request.start->micros) ||
                    (request.end && range->first > request.end->micros))) {
        ++*row_groups_pruned;
        continue;
      }
    }
    fragment->row_groups.push_back(rg);
    fragment->rows_estimated += d.row_group_rows[static_cast<size_t>(rg)];
    for (int leaf : leaves) {
      const size_t cell = static_cast<size_t>(rg) * d.leaves() + static_cast<size_t>(leaf);
      if (d.leaf_bytes_failures.count(cell) != 0) return unreadable(d.leaf_bytes_failures, cell);
      fragment->bytes_estimated += d.leaf_bytes[cell];
    }
  }
  if (static_cast<int>(fragment->row_groups.size()) == row_groups) {
    fragment->rows_estimated -= deleted;  // which pruned row groups held them is not known
  }
  return Status::OK();
}

Status ParquetReadFailure(const Fragment& fragment) {
  const std::string path = fragment.path.string();
  try {
    throw;
  } catch (const parquet::ParquetStatusException& e) {  // I/O (a file removed since planning)
    return ReadError(e.status().WithMessage("cannot read ", path, ": ", e.status().message()),
                     fragment);
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("{} is not a readable Parquet file: {}", path, e.what()));
  } catch (...) {
    return Status::Corruption(fmt::format("{} is not a readable Parquet file", path));
  }
}

Result<OpenedParquet> OpenParquetFragment(const Fragment& fragment,
                                          const FragmentRequest& request) {
  const std::string path = fragment.path.string();
  try {
    arrow::MemoryPool* pool = request.pool != nullptr ? request.pool : arrow::default_memory_pool();
    parquet::ReaderProperties file_props(pool);
    file_props.enable_buffered_stream();
    // The footer is read again here rather than kept from planning (Fragment). The file is
    // opened once: the reader made below with the read's properties reads through it too.
    PARQUET_ASSIGN_OR_THROW(std::shared_ptr<arrow::io::ReadableFile> file,
                            arrow::io::ReadableFile::Open(path, pool));
    const int file_descriptor = file->file_descriptor();
    GRANARY_ASSIGN_OR_RAISE(const ParquetFileIdentity at_open,
                            IdentityOfDescriptor(file_descriptor, path));
    auto file_reader = parquet::ParquetFileReader::Open(file, file_props);
    const std::shared_ptr<parquet::FileMetaData> metadata = file_reader->metadata();
    bool same = metadata->num_row_groups() == static_cast<int>(fragment.row_group_rows.size()) &&
                metadata->num_rows() == fragment.num_rows;
    for (int rg = 0; same && rg < metadata->num_row_groups(); ++rg) {
      same = metadata->RowGroup(rg)->num_rows() == fragment.row_group_rows[static_cast<size_t>(rg)];
    }
    if (!same) {
      return Status::IOError(fmt::format(
          "{} changed while it was read: it has {} rows in {} row groups, {} in {} when the read "
          "began; run again",
          path, metadata->num_rows(), metadata->num_row_groups(), fragment.num_rows,
          fragment.row_group_rows.size()));
    }
    // The leaves of the requested top-level columns, from the Parquet schema: the Arrow schema
    // manifest (which decodes the Arrow schema stored in the footer) is built once, by
    // FileReader::Make below, which also reports a schema without an Arrow form.
    std::vector<int> leaves;
    {
      const parquet::SchemaDescriptor& schema = *metadata->schema();
      for (const auto& wanted : request.columns) {
        for (int i = 0; i < schema.num_columns(); ++i) {
          if (schema.GetColumnRoot(i)->name() == wanted) leaves.push_back(i);
        }
      }
    }
    std::sort(leaves.begin(), leaves.end());
    leaves.erase(std::unique(leaves.begin(), leaves.end()), leaves.end());
    parquet::ArrowReaderProperties props;
    props.set_batch_size(request.batch_rows);
    // No pre-buffering: it reads the column chunks of every requested row group into one cache
    // that lives as long as the reader, so a file's whole needed bytes were held by the time its
    // last row group was decoded (900 MiB for a 790 MB file). Each column is read through a
    // buffered stream instead, page after page: the memory is a buffer and a page per column.
    props.set_pre_buffer(false);
    props.set_use_threads(request.parquet_use_threads);
    props.set_coerce_int96_timestamp_unit(arrow::TimeUnit::MICRO);
    file_props.set_buffer_size(ParquetReadBufferBytes(leaves.size(), request.readers));
    file_reader = parquet::ParquetFileReader::Open(std::move(file), file_props, metadata);
    auto made = parquet::arrow::FileReader::Make(pool, std::move(file_reader), props);
    if (!made.ok()) {
      return Status::InvalidArgument(fmt::format("{}: cannot map its Parquet schema to Arrow: {}",
                                                 path, made.status().message()));
    }
    return OpenedParquet{std::move(*made), metadata,     std::move(leaves),
                         file_descriptor,  at_open.size, at_open.modified_ns};
  } catch (...) {
    return ParquetReadFailure(fragment);
  }
}

Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const Fragment& fragment,
                                                               const FragmentRequest& request) {
  return OpenFragment(fragment, request, fragment.row_groups);
}

Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const Fragment& fragment,
                                                               const FragmentRequest& request,
                                                               const std::vector<int>& row_groups) {
  const std::string path = fragment.path.string();
  if (fragment.format == FragmentFormat::kCsv) {
    auto in = arrow::io::ReadableFile::Open(path);
    if (!in.ok()) {
      return Status::IOError(fmt::format("cannot open {}: {}", path, in.status().message()));
    }
    auto read_options = arrow::csv::ReadOptions::Defaults();
    read_options.block_size = 1 << 20;
    auto convert = arrow::csv::ConvertOptions::Defaults();
    convert.include_columns = request.columns;
    convert.include_missing_columns = false;
    // Only the columns this file has: read its header first.
    {
      auto header_in = arrow::io::ReadableFile::Open(path);
      if (!header_in.ok()) return Status::IOError("cannot open " + path);
      auto header_options = read_options;
      header_options.block_size = 1 << 16;
      auto header = arrow::csv::StreamingReader::Make(
          arrow::io::default_io_context(), *header_in, header_options,
          arrow::csv::ParseOptions::Defaults(), arrow::csv::ConvertOptions::Defaults());
      if (!header.ok()) {
        return Status::InvalidArgument(
            fmt::format("{} is not a readable CSV file with a header "
                        "row: {}",
                        path, header.status().message()));
      }
      convert.include_columns.clear();
      for (const auto& c : request.columns) {
        if ((*header)->schema()->GetFieldIndex(c) >= 0) convert.include_columns.push_back(c);
      }
    }
    for (const auto& c : convert.include_columns) {
      auto it = request.csv_types.find(c);
      convert.column_types[c] = it != request.csv_types.end() ? it->second : arrow::utf8();
    }
    auto reader = arrow::csv::StreamingReader::Make(
        arrow::io::IOContext(request.pool != nullptr ? request.pool : arrow::default_memory_pool()),
        *in, read_options, arrow::csv::ParseOptions::Defaults(), convert);
    if (!reader.ok()) {
      return Status::InvalidArgument(fmt::format("{}: {}", path, reader.status().message()));
    }
    return std::shared_ptr<arrow::RecordBatchReader>(
        std::make_shared<OwningReader>(nullptr, *reader, path));
  }
  GRANARY_ASSIGN_OR_RAISE(OpenedParquet opened, OpenParquetFragment(fragment, request));
  return OpenFragment(opened, fragment, row_groups);
}

Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const OpenedParquet& opened,
                                                               const Fragment& fragment,
                                                               const std::vector<int>& row_groups) {
  const std::string path = fragment.path.string();
  try {
    std::shared_ptr<parquet::arrow::FileReader> owner = opened.reader;
    const std::shared_ptr<parquet::FileMetaData>& metadata = opened.metadata;
    const std::vector<int>& leaves = opened.leaves;
    std::shared_ptr<const DeletionVector> deleted;
    if (fragment.deletion_vector) {
      GRANARY_ASSIGN_OR_RAISE(
          DeletionVector dv,
          DeletionVector::Load(*fragment.deletion_vector, fragment.delta_table, fragment.path));
      const int64_t rows = metadata->num_rows();
      if (!dv.empty() && dv.max() >= static_cast<uint64_t>(rows)) {
        return Status::Corruption(fmt::format(
            "the deletion vector of {} deletes row {} but the file has {} rows; the vector belongs "
            "to another file or is damaged",
            path, dv.max(), rows));
      }
      if (!dv.empty()) deleted = std::make_shared<const DeletionVector>(std::move(dv));
    }
    auto inner = owner->GetRecordBatchReader(row_groups, leaves);
    if (!inner.ok()) {
      return Status::InvalidArgument(fmt::format("{}: {}", path, inner.status().message()));
    }
    std::shared_ptr<arrow::RecordBatchReader> batches(std::move(*inner));
    if (deleted != nullptr) {
      std::vector<int64_t> first_rows(metadata->num_row_groups() + 1, 0);
      for (int rg = 0; rg < metadata->num_row_groups(); ++rg) {
        first_rows[rg + 1] = first_rows[rg] + metadata->RowGroup(rg)->num_rows();
      }
      std::vector<DeletedRowsFilter::Span> spans;
      for (int rg : row_groups) {
        spans.push_back({first_rows[rg], first_rows[rg + 1] - first_rows[rg]});
      }
      batches = std::make_shared<DeletedRowsFilter>(std::move(batches), std::move(deleted),
                                                    std::move(spans));
    }
    return std::shared_ptr<arrow::RecordBatchReader>(
        std::make_shared<OwningReader>(owner, std::move(batches), path));
  } catch (...) {
    return ParquetReadFailure(fragment);
  }
}

struct FragmentPrefetcher::Queue {
  std::deque<std::shared_ptr<arrow::RecordBatch>> batches;
  bool finished = false;
  Status error;
  // Gather mode: the read positions of the unit's one batch of chosen rows.
  std::shared_ptr<arrow::Array> positions;
};

std::vector<FragmentPrefetcher::Unit> FragmentPrefetcher::Units(
    const std::vector<Fragment>& fragments, int64_t whole_file_bytes) {
  std::vector<Unit> units;
  for (size_t f = 0; f < fragments.size(); ++f) {
    const Fragment& fragment = fragments[f];
    const bool whole = whole_file_bytes > 0 && fragment.bytes_estimated <= whole_file_bytes;
    if (fragment.format == FragmentFormat::kParquet && fragment.row_groups.size() > 1 && !whole) {
      for (int rg : fragment.row_groups) units.push_back({f, {rg}});
    } else {
      units.push_back({f, fragment.row_groups});
    }
  }
  return units;
}

int64_t FragmentPrefetcher::UnitRows(const Fragment& fragment, const Unit& unit) {
  if (fragment.format != FragmentFormat::kParquet || fragment.deletion_vector ||
      fragment.row_group_rows.empty()) {
    return -1;
  }
  int64_t rows = 0;
  for (int rg : unit.row_groups) rows += fragment.row_group_rows[rg];
  return rows;
}

FragmentPrefetcher::FragmentPrefetcher(const std::vector<Fragment>* fragments,
                                       std::vector<Unit> units, const FragmentRequest* request,
                                       int readers, int batches_ahead)
    : fragments_(fragments),
      request_(request),
      units_(std::move(units)),
      units_ahead_(std::max(1, readers)),
      batches_ahead_(static_cast<size_t>(std::max(1, batches_ahead))) {
  for (size_t i = 0; i < units_.size(); ++i) queues_.push_back(std::make_unique<Queue>());
  const int threads = static_cast<int>(std::min<size_t>(units_ahead_, units_.size()));
  for (int r = 0; r < threads; ++r) readers_.emplace_back([this] { ReadLoop(); });
}

FragmentPrefetcher::~FragmentPrefetcher() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  for (auto& t : readers_) t.join();
}

void FragmentPrefetcher::ReadLoop() {
  // This reader's last Parquet file opened, kept for its next unit if that is of the same file:
  // units are row groups, and an open parses the whole footer (a file of 1,000 columns in 20 row
  // groups, opened per row group, parsed its 20,000 column chunks' metadata 20 times). A file
  // written in place since (the kept footer would no longer describe its bytes) is opened again,
  // and checked against the plan as every open is (its row counts: "changed while it was read");
  // a file removed or replaced by a rename is read on through the descriptor, from the file the
  // plan saw. Not caught, as before the reuse: a rewrite within the file system's time
  // resolution that keeps the size, or one that sets the modification time back.
  size_t opened_fragment = SIZE_MAX;
  OpenedParquet opened;
  auto open = [&](size_t index, const Fragment& fragment) -> Result<OpenedParquet*> {
    if (index == opened_fragment) {
      // Size and modification time, as at the open (taken before its footer was read): a write
      // changes them; the change time also moves when the file is removed or renamed (its
      // links), and then the descriptor still reads the file the plan saw.
      auto now = IdentityOfDescriptor(opened.file_descriptor, fragment.path.string());
      if (now.ok() && now->size == opened.size_at_open &&
          now->modified_ns == opened.modified_ns_at_open) {
        return &opened;
      }
    }
    opened = OpenedParquet{};
    opened_fragment = SIZE_MAX;
    GRANARY_ASSIGN_OR_RAISE(opened, OpenParquetFragment(fragment, *request_));
    opened_fragment = index;
    return &opened;
  };
  while (true) {
    size_t i;
    {
      MutexLock lock(&mu_);
      // Claim the next unit, but stay within units_ahead of the consumer.
      while (!stop_ && next_claim_ >= consuming_ + units_ahead_) cv_.Wait(&mu_);
      if (stop_ || next_claim_ >= units_.size()) return;
      i = next_claim_++;
    }
    Queue& queue = *queues_[i];
    const Unit& unit = units_[i];
    const Fragment& fragment = (*fragments_)[unit.fragment];
    auto finish = [&](Status st) {
      MutexLock lock(&mu_);
      queue.error = std::move(st);
      queue.finished = true;
      cv_.SignalAll();
    };
    if (request_->chosen_rows != nullptr && unit.first_position >= 0 &&
        unit.row_groups.size() == 1 && fragment.format == FragmentFormat::kParquet &&
        !fragment.deletion_vector) {
      // Gather mode: one batch of the row group's chosen rows.
      const int row_group = unit.row_groups[0];
      const int64_t first = unit.first_position;
      std::vector<int64_t> rows;
      request_->chosen_rows(first, first + fragment.row_group_rows[row_group], &rows);
      if (rows.empty()) {
        finish(Status::OK());
        continue;
      }
      auto positions = arrow::AllocateBuffer(
          static_cast<int64_t>(rows.size() * sizeof(int64_t)),
          request_->pool != nullptr ? request_->pool : arrow::default_memory_pool());
      if (!positions.ok()) {
        finish(Status::Internal("out of memory for the read positions of a row group"));
        continue;
      }
      std::memcpy((*positions)->mutable_data(), rows.data(), rows.size() * sizeof(int64_t));
      for (int64_t& row : rows) row -= first;
      auto file = open(unit.fragment, fragment);
      if (!file.ok()) {
        finish(file.status());
        continue;
      }
      auto batch = ReadChosenRows(**file, fragment, *request_, row_group, rows);
      if (!batch.ok()) {
        finish(batch.status());
        continue;
      }
      MutexLock lock(&mu_);
      if (stop_) return;
      queue.batches.push_back(std::move(*batch));
      queue.positions = std::make_shared<arrow::Int64Array>(static_cast<int64_t>(rows.size()),
                                                            std::move(*positions));
      queue.finished = true;
      cv_.SignalAll();
      continue;
    }
    auto reader = [&]() -> Result<std::shared_ptr<arrow::RecordBatchReader>> {
      if (fragment.format != FragmentFormat::kParquet) {
        return OpenFragment(fragment, *request_, unit.row_groups);
      }
      GRANARY_ASSIGN_OR_RAISE(OpenedParquet * file, open(unit.fragment, fragment));
      return OpenFragment(*file, fragment, unit.row_groups);
    }();
    if (!reader.ok()) {
      finish(reader.status());
      continue;
    }
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      auto st = (*reader)->ReadNext(&batch);
      if (!st.ok()) {
        finish(ReadError(st, fragment));
        break;
      }
      if (batch == nullptr) {
        finish(Status::OK());
        break;
      }
      MutexLock lock(&mu_);
      while (!stop_ && queue.batches.size() >= batches_ahead_) cv_.Wait(&mu_);
      if (stop_) return;
      queue.batches.push_back(std::move(batch));
      cv_.SignalAll();
    }
  }
}

Result<FragmentPrefetcher::Item> FragmentPrefetcher::Next() {
  MutexLock lock(&mu_);
  while (consuming_ < queues_.size()) {
    Queue& queue = *queues_[consuming_];
    while (queue.batches.empty() && !queue.finished) cv_.Wait(&mu_);
    if (!queue.batches.empty()) {
      Item item{std::move(queue.batches.front()), units_[consuming_].fragment, consuming_,
                std::move(queue.positions)};
      queue.batches.pop_front();
      cv_.SignalAll();
      return item;
    }
    if (!queue.error.ok()) return queue.error;
    ++consuming_;
    cv_.SignalAll();
  }
  return Item{};
}

}  // namespace granary
