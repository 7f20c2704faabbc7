#include "granary/offline/table_io.h"

#include <arrow/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/writer.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/time.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

enum class FileKind { kParquet, kCsv };

// The process's file mode creation mask, read without changing it. umask(2) reads the mask only
// by setting it, and the mask is process-wide: setting it to 0 for a moment would give files
// that other threads create meanwhile the wrong mode. Linux shows it in /proc/self/status; where
// that is missing, it is read once, on first use.
mode_t CurrentUmask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) != 0) continue;
    std::string_view digits(line);
    digits.remove_prefix(6);
    while (!digits.empty() && (digits.front() == ' ' || digits.front() == '\t')) {
      digits.remove_prefix(1);
    }
    unsigned mask = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), mask, 8);
    if (ec == std::errc() && end != digits.data()) return static_cast<mode_t>(mask & 0777);
    break;
  }
  static const mode_t once = [] {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return mask;
  }();
  return once;
}

Result<FileKind> KindOf(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".parquet" || ext == ".pq") return FileKind::kParquet;
  if (ext == ".csv") return FileKind::kCsv;
  return Status::InvalidArgument(
      fmt::format("{}: unknown file type '{}'; use a .parquet or .csv file", path.string(), ext));
}

// The names in a CSV file's header line (Arrow's default dialect: ',' and '"' quoting).
std::vector<std::string> CsvHeader(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> names(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        names.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        names.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      names.emplace_back();
    } else {
      names.back() += c;
    }
  }
  return names;
}

// Arrow's CSV conversion errors name the column by number and not the row ("In CSV column #0:
// CSV conversion error to int64: invalid value 'abc'"). Reads that column again as text to find
// the first row holding the value, and says file, column, row and line as definition errors do.
// Returns "" when the message is not a conversion error or the row is not found.
std::string DescribeCsvConversionError(const std::filesystem::path& path,
                                       const std::string& message) {
  static const std::regex kConversion(
      R"(In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to ([^:]+): invalid value '(.*)')");
  std::smatch m;
  if (!std::regex_search(message, m, kConversion)) return "";
  const size_t index = std::stoul(m[1].str());
  const std::string type = m[2].str();
  const std::string value = m[3].str();
  const std::vector<std::string> header = CsvHeader(path);
  if (index >= header.size()) return "";
  const std::string& column = header[index];
  auto in = arrow::io::ReadableFile::Open(path.string());
  if (!in.ok()) return "";
  auto convert = arrow::csv::ConvertOptions::Defaults();
  convert.include_columns = {column};
  convert.column_types[column] = arrow::utf8();
  convert.strings_can_be_null = false;
  auto reader = arrow::csv::TableReader::Make(arrow::io::default_io_context(), *in,
                                              arrow::csv::ReadOptions::Defaults(),
                                              arrow::csv::ParseOptions::Defaults(), convert);
  if (!reader.ok()) return "";
  auto table = (*reader)->Read();
  if (!table.ok() || (*table)->num_columns() != 1) return "";
  int64_t row = 0;
  for (const auto& chunk : (*table)->column(0)->chunks()) {
    const auto& strings = static_cast<const arrow::StringArray&>(*chunk);
    for (int64_t i = 0; i < strings.length(); ++i, ++row) {
      if (strings.IsNull(i) || strings.GetView(i) != value) continue;
      // Lines count the header; a quoted value spanning lines would shift them, rows never.
      return fmt::format(
          "{}: column '{}', row {} (line {}): '{}' is not a valid {}; fix the value or the "
          "column's type",
          path.string(), column, row + 1, row + 2, value, type);
    }
  }
  return "";
}

// A CSV file with a header and no rows gives Arrow nothing to infer types from, so its columns
// come back as the null type; make them empty string columns, which every later step (timestamp
// parsing, key casts) accepts, so that an empty entity file gives an empty result.
std::shared_ptr<arrow::Table> EmptyCsvColumnsAsStrings(std::shared_ptr<arrow::Table> table) {
  if (table->num_rows() != 0) return table;
  arrow::FieldVector fields;
  arrow::ChunkedArrayVector columns;
  for (int i = 0; i < table->num_columns(); ++i) {
    auto field = table->schema()->field(i);
    if (field->type()->id() == arrow::Type::NA) field = field->WithType(arrow::utf8());
    fields.push_back(field);
    columns.push_back(std::make_shared<arrow::ChunkedArray>(arrow::ArrayVector{}, field->type()));
  }
  return arrow::Table::Make(arrow::schema(fields), columns, 0);
}

// One timestamp as RFC 3339 text, as the JSON output writes them ("2026-12-04T08:00:00Z", with
// the fraction when not 0; nanoseconds keep their last three digits). Zone-less timestamps get
// no "Z". nullopt for a time in seconds or milliseconds beyond int64 microseconds.
std::optional<std::string> TimestampText(int64_t value, arrow::TimeUnit::type unit, bool utc) {
  const std::optional<int64_t> micros = TimestampToMicros(value, unit);  // floored nanoseconds
  if (!micros) return std::nullopt;
  const int64_t nanos = unit == arrow::TimeUnit::NANO ? value - *micros * 1000 : 0;
  std::string text = FormatTimestamp(Timestamp{*micros});
  text.pop_back();  // the "Z"
  if (nanos != 0) {
    if (text.find('.') == std::string::npos) text += ".000000";
    text += fmt::format("{:03d}", nanos);
  }
  if (utc) text += 'Z';
  return text;
}

// `table` with its timestamp columns as RFC 3339 text, for CSV: Arrow's CSV writer puts a space
// between date and time ("2026-12-04 08:00:00.000000Z"), which is not RFC 3339.
Result<std::shared_ptr<arrow::Table>> TimestampsAsText(const arrow::Table& table) {
  arrow::FieldVector fields;
  arrow::ChunkedArrayVector columns;
  for (int c = 0; c < table.num_columns(); ++c) {
    auto field = table.schema()->field(c);
    auto column = table.column(c);
    if (field->type()->id() != arrow::Type::TIMESTAMP) {
      fields.push_back(field);
      columns.push_back(column);
      continue;
    }
    const auto& type = static_cast<const arrow::TimestampType&>(*field->type());
    const bool utc = !type.timezone().empty();
    arrow::ArrayVector chunks;
    int64_t row = 0;  // of the table, across chunks
    for (const auto& chunk : column->chunks()) {
      const auto& times = static_cast<const arrow::TimestampArray&>(*chunk);
      arrow::StringBuilder builder;
      for (int64_t i = 0; i < times.length(); ++i, ++row) {
        if (times.IsNull(i)) {
          if (!builder.AppendNull().ok()) return Status::Internal("cannot build timestamp text");
          continue;
        }
        const std::optional<std::string> text = TimestampText(times.Value(i), type.unit(), utc);
        if (!text) {
          return Status::InvalidArgument(fmt::format("column '{}', row {}: {}", field->name(), row,
                                                     TimeBeyondRange(times, i)));
        }
        if (!builder.Append(*text).ok()) return Status::Internal("cannot build timestamp text");
      }
      std::shared_ptr<arrow::Array> text;
      if (!builder.Finish(&text).ok()) return Status::Internal("cannot build timestamp text");
      chunks.push_back(text);
    }
    fields.push_back(field->WithType(arrow::utf8()));
    columns.push_back(std::make_shared<arrow::ChunkedArray>(chunks, arrow::utf8()));
  }
  return arrow::Table::Make(arrow::schema(fields), columns, table.num_rows());
}

}  // namespace

Result<std::shared_ptr<arrow::Table>> ReadTableFile(
    const std::filesystem::path& path,
    const std::map<std::string, std::shared_ptr<arrow::DataType>>& csv_types) {
  GRANARY_ASSIGN_OR_RAISE(FileKind kind, KindOf(path));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound(fmt::format("{}: no such file", path.string()));
  }
  auto in = arrow::io::ReadableFile::Open(path.string());
  if (!in.ok()) {
    return Status::IOError(fmt::format("cannot open {}: {}", path.string(), in.status().message()));
  }
  if (kind == FileKind::kCsv) {
    auto convert = arrow::csv::ConvertOptions::Defaults();
    for (const auto& [name, type] : csv_types) convert.column_types[name] = type;
    auto reader = arrow::csv::TableReader::Make(arrow::io::default_io_context(), *in,
                                                arrow::csv::ReadOptions::Defaults(),
                                                arrow::csv::ParseOptions::Defaults(), convert);
    if (!reader.ok()) {
      return Status::InvalidArgument(
          fmt::format("{}: not a readable CSV file: {}", path.string(), reader.status().message()));
    }
    auto table = (*reader)->Read();
    if (!table.ok()) {
      std::string described = DescribeCsvConversionError(path, table.status().message());
      if (!described.empty()) return Status::InvalidArgument(described);
      return Status::InvalidArgument(
          fmt::format("{}: {}", path.string(), table.status().message()));
    }
    return EmptyCsvColumnsAsStrings(*table);
  }
  try {
    auto reader = parquet::arrow::OpenFile(*in, arrow::default_memory_pool());
    if (!reader.ok()) {
      return Status::InvalidArgument(fmt::format("{} is not a readable Parquet file: {}",
                                                 path.string(), reader.status().message()));
    }
    auto table = (*reader)->ReadTable();
    if (!table.ok()) {
      return Status::InvalidArgument(fmt::format("{} is not a readable Parquet file: {}",
                                                 path.string(), table.status().message()));
    }
    return *table;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(
        fmt::format("{} is not a readable Parquet file: {}", path.string(), e.what()));
  }
}

// The schema of `schema`'s table as CSV text: timestamp columns become strings (TimestampsAsText).
static std::shared_ptr<arrow::Schema> CsvTextSchema(const arrow::Schema& schema) {
  arrow::FieldVector fields;
  for (const auto& field : schema.fields()) {
    fields.push_back(field->type()->id() == arrow::Type::TIMESTAMP ? field->WithType(arrow::utf8())
                                                                   : field);
  }
  return arrow::schema(fields);
}

namespace {

// ".NAME.tmp-": the start of the names of the temporary files a TableFileWriter of `path` makes
// beside it (mkstemp adds six characters).
std::string TemporaryPrefix(const std::filesystem::path& path) {
  return "." + path.filename().string() + ".tmp-";
}

// A temporary file left unlocked for this long has no writer: a writer locks its file right
// after creating it (the age covers the instant in between, and files of versions before the
// lock that are still being written, which a write keeps young).
constexpr auto kAbandonedAfter = std::chrono::seconds(10);

// Removes the temporary files of `path` that runs killed outright left beside it (a live
// writer holds an exclusive flock on its own); returns them. Errors only mean a file stays.
std::vector<std::filesystem::path> RemoveAbandonedTemporaryFiles(
    const std::filesystem::path& path) {
  std::vector<std::filesystem::path> removed;
  const auto folder = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const std::string prefix = TemporaryPrefix(path);
  std::error_code ec;
  std::filesystem::directory_iterator it(folder, ec);
  if (ec) return removed;
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::error_code entry_ec;
    if (!entry.is_regular_file(entry_ec) || entry_ec) continue;
    const auto written = std::filesystem::last_write_time(entry.path(), entry_ec);
    if (entry_ec || now - written < kAbandonedAfter) continue;
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && std::filesystem::remove(entry.path(), entry_ec)) {
      removed.push_back(entry.path());
    }
    ::close(fd);
  }
  return removed;
}

}  // namespace

class TableFileWriter::Impl {
 public:
  std::filesystem::path path;
  std::filesystem::path temp;
  std::shared_ptr<arrow::Schema> schema;
  FileKind kind = FileKind::kParquet;
  std::shared_ptr<arrow::io::FileOutputStream> out;
  std::unique_ptr<parquet::arrow::FileWriter> parquet;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> csv;
  std::vector<std::filesystem::path> removed;  // abandoned temporary files Open removed
  int lock_fd = -1;  // the temporary file, with an exclusive flock(2) held until the end
  int64_t rows = 0;
  bool failed = false;
  bool committed = false;

  ~Impl() {
    if (!committed) {
      // Close before removing; errors do not matter, the file goes.
      if (out && !out->closed()) (void)out->Close();
      std::error_code ec;
      std::filesystem::remove(temp, ec);
    }
    // Unlocked only once the file is gone or renamed: a sweep never sees it unlocked in place.
    if (lock_fd >= 0) ::close(lock_fd);
  }

  Status Fail(const std::string& what) {
    failed = true;
    return Status::IOError(fmt::format("cannot write {}: {}", path.string(), what));
  }

  Status WriteTable(const arrow::Table& table) {
    if (failed || committed) {
      return Status::FailedPrecondition(
          fmt::format("{}: a write after a failed write or after the commit", path.string()));
    }
    arrow::Status st;
    try {
      if (kind == FileKind::kCsv) {
        auto text = TimestampsAsText(table);
        if (!text.ok()) {
          // A value the file cannot hold (a time beyond int64 microseconds): the caller's data.
          failed = true;
          return text.status().WithContext(fmt::format("cannot write {}", path.string()));
        }
        st = csv->WriteTable(**text);
      } else {
        // Into the buffered row group (closed at kRowGroupRows rows), so that small batches
        // still make row groups of a useful size.
        arrow::TableBatchReader reader(table);
        std::shared_ptr<arrow::RecordBatch> batch;
        while ((st = reader.ReadNext(&batch)).ok() && batch != nullptr) {
          st = parquet->WriteRecordBatch(*batch);
          if (!st.ok()) break;
        }
      }
    } catch (const std::exception& e) {
      return Fail(e.what());
    }
    if (!st.ok()) return Fail(st.message());
    rows += table.num_rows();
    return Status::OK();
  }

  static constexpr int64_t kRowGroupRows = kTableFileRowGroupRows;
};

TableFileWriter::TableFileWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TableFileWriter::~TableFileWriter() = default;

Result<std::unique_ptr<TableFileWriter>> TableFileWriter::Open(
    const std::filesystem::path& path, std::shared_ptr<arrow::Schema> schema) {
  GRANARY_ASSIGN_OR_RAISE(FileKind kind, KindOf(path));
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->schema = std::move(schema);
  impl->kind = kind;
  const auto folder = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  impl->removed = RemoveAbandonedTemporaryFiles(path);
  std::string temp = (folder / (TemporaryPrefix(path) + "XXXXXX")).string();
  int fd = mkstemp(temp.data());
  if (fd < 0) {
    return Status::IOError(
        fmt::format("cannot create a file in {}: {}", folder.string(), std::strerror(errno)));
  }
  impl->temp = temp;  // from here on, the Impl's destructor removes it
  impl->lock_fd = fd;
  // Held while this writer lives: the sweep above, in another run writing the same output, leaves
  // a locked temporary file alone. A new file cannot be locked by anyone else yet.
  (void)::flock(fd, LOCK_EX | LOCK_NB);
  // mkstemp makes the file private; give it the mode a new file would get.
  (void)::fchmod(fd, 0666 & ~CurrentUmask());
  auto out = arrow::io::FileOutputStream::Open(temp);
  if (!out.ok()) return impl->Fail(out.status().message());
  impl->out = *out;
  try {
    if (kind == FileKind::kCsv) {
      auto csv = arrow::csv::MakeCSVWriter(impl->out, CsvTextSchema(*impl->schema),
                                           arrow::csv::WriteOptions::Defaults());
      if (!csv.ok()) return impl->Fail(csv.status().message());
      impl->csv = *csv;
    } else {
      parquet::WriterProperties::Builder builder;
      builder.compression(arrow::Compression::SNAPPY)->max_row_group_length(Impl::kRowGroupRows);
      // Floating-point features are continuous: a dictionary of their values overflows its page
      // and falls back to plain encoding after hashing every value of the first pages, which
      // cost about 5 % of a training set's time (bench/pit_join). Plain from the start.
      for (const auto& field : impl->schema->fields()) {
        const auto id = field->type()->id();
        if (id == arrow::Type::DOUBLE || id == arrow::Type::FLOAT) {
          builder.disable_dictionary(field->name());
        }
      }
      auto props = builder.build();
      // The columns of each row group are encoded on Arrow's CPU pool, in parallel: writing a
      // training set was otherwise one core's work after the join (docs/PERFORMANCE.md,
      // "Training sets on a quiet machine").
      auto arrow_props = parquet::ArrowWriterProperties::Builder().set_use_threads(true)->build();
      auto writer = parquet::arrow::FileWriter::Open(*impl->schema, arrow::default_memory_pool(),
                                                     impl->out, props, arrow_props);
      if (!writer.ok()) return impl->Fail(writer.status().message());
      impl->parquet = std::move(*writer);
    }
  } catch (const std::exception& e) {
    return impl->Fail(e.what());
  }
  return std::unique_ptr<TableFileWriter>(new TableFileWriter(std::move(impl)));
}

Status TableFileWriter::Write(const arrow::RecordBatch& batch) {
  if (impl_->kind == FileKind::kParquet && !impl_->failed && !impl_->committed) {
    arrow::Status st;
    try {
      st = impl_->parquet->WriteRecordBatch(batch);
    } catch (const std::exception& e) {
      return impl_->Fail(e.what());
    }
    if (!st.ok()) return impl_->Fail(st.message());
    impl_->rows += batch.num_rows();
    return Status::OK();
  }
  auto table = arrow::Table::Make(batch.schema(), batch.columns(), batch.num_rows());
  return impl_->WriteTable(*table);
}

Status TableFileWriter::Write(const arrow::Table& table) { return impl_->WriteTable(table); }

Status TableFileWriter::Commit() {
  if (impl_->failed || impl_->committed) {
    return Status::FailedPrecondition(
        fmt::format("{}: a commit after a failed write or a commit", impl_->path.string()));
  }
  arrow::Status st;
  try {
    st = impl_->kind == FileKind::kCsv ? impl_->csv->Close() : impl_->parquet->Close();
    if (st.ok()) st = impl_->out->Close();
  } catch (const std::exception& e) {
    return impl_->Fail(e.what());
  }
  if (!st.ok()) return impl_->Fail(st.message());
  std::error_code ec;
  std::filesystem::rename(impl_->temp, impl_->path, ec);
  if (ec) return impl_->Fail(ec.message());
  impl_->committed = true;
  return Status::OK();
}

const std::filesystem::path& TableFileWriter::path() const { return impl_->path; }
const std::filesystem::path& TableFileWriter::temp_path() const { return impl_->temp; }
const std::vector<std::filesystem::path>& TableFileWriter::removed_abandoned() const {
  return impl_->removed;
}
int64_t TableFileWriter::rows() const { return impl_->rows; }

Status WriteTableFile(const arrow::Table& table, const std::filesystem::path& path) {
  GRANARY_ASSIGN_OR_RAISE(auto writer, TableFileWriter::Open(path, table.schema()));
  GRANARY_RETURN_NOT_OK(writer->Write(table));
  return writer->Commit();
}

}  // namespace granary
