#include "granary/offline/table_io.h"

#include <arrow/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

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
      return Status::InvalidArgument(
          fmt::format("{}: {}", path.string(), table.status().message()));
    }
    return *table;
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

Status WriteTableFile(const arrow::Table& table, const std::filesystem::path& path) {
  GRANARY_ASSIGN_OR_RAISE(FileKind kind, KindOf(path));
  const auto folder = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::string temp = (folder / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = mkstemp(temp.data());
  if (fd < 0) {
    return Status::IOError(
        fmt::format("cannot create a file in {}: {}", folder.string(), std::strerror(errno)));
  }
  // mkstemp makes the file private; give it the mode a new file would get.
  (void)::fchmod(fd, 0666 & ~CurrentUmask());
  ::close(fd);
  auto fail = [&](const std::string& what) {
    std::error_code ec;
    std::filesystem::remove(temp, ec);
    return Status::IOError(fmt::format("cannot write {}: {}", path.string(), what));
  };
  auto out = arrow::io::FileOutputStream::Open(temp);
  if (!out.ok()) return fail(out.status().message());
  arrow::Status st;
  if (kind == FileKind::kCsv) {
    st = arrow::csv::WriteCSV(table, arrow::csv::WriteOptions::Defaults(), out->get());
  } else {
    try {
      auto props =
          parquet::WriterProperties::Builder().compression(arrow::Compression::SNAPPY)->build();
      st = parquet::arrow::WriteTable(table, arrow::default_memory_pool(), *out, 256 * 1024, props);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
  }
  if (!st.ok()) return fail(st.message());
  st = (*out)->Close();
  if (!st.ok()) return fail(st.message());
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return fail(ec.message());
  return Status::OK();
}

}  // namespace granary
