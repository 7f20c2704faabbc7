// pick_floor: how much would the point-in-time join's gather save by decoding only the chosen
// values? (issue 18; docs/PERFORMANCE.md, "Decoding only the chosen values: measured").
//
// Over the Parquet files of one view (default: bench/pit_join's view0), with a seeded uniform
// random set of chosen rows at each density, it times three passes in one process, alternating
// (so that the load of a shared machine falls on each alike), and prints the median CPU and
// wall seconds of each:
//   (a) today's gather: parquet::arrow's reader decodes every row group's columns into arrays
//       (batches of 64 Ki rows, no pre-buffering, as the offline scan reads), and the chosen
//       values and their validity are copied out (the loop of ScatteredColumn::Put);
//   (b) the page-level pick (granary/offline/chosen_values.h, the gather's own): pages
//   decompressed, levels and dictionary indices
//       decoded, only the chosen values copied; a column chunk it does not support is read as in
//       (a) instead (counted as a fallback);
//   (c) the floor of (b): every page read and decompressed, nothing decoded.
// After every pass of (b) its values and validity are checked against (a)'s, byte for byte; any
// difference exits 1.
//
//   build/bench/pick_floor [--dir DIR] [--columns f0,f1,...] [--densities 0.005,0.05,0.5]
//                          [--repeat 5] [--seed N] [--passes abc]
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <parquet/arrow/reader.h>
#include <parquet/column_page.h>
#include <parquet/column_reader.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>
#include <parquet/properties.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/status.h"
#include "granary/offline/chosen_values.h"
#include "granary/offline/source_fragment.h"

namespace granary::bench {
namespace {

// The floor of PickChosenValues: reads (and decompresses) every page of the column chunk and
// decodes nothing. Returns the pages' uncompressed bytes.
Result<int64_t> ReadPagesOnly(parquet::RowGroupReader& row_group, int column) {
  try {
    std::unique_ptr<parquet::PageReader> pages = row_group.GetColumnPageReader(column);
    int64_t bytes = 0;
    while (std::shared_ptr<parquet::Page> page = pages->NextPage()) bytes += page->size();
    return bytes;
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("column {}: {}", column, e.what()));
  }
}

struct Options {
  std::string dir = "build/bench-data/pit_join/view0";
  std::vector<std::string> columns;  // empty: f0..f9
  std::vector<double> densities = {0.005, 0.05, 0.5};
  int repeat = 5;
  uint64_t seed = 18;
  bool help = false;
  std::string passes = "abc";  // a subset (to profile one): without both a and b, no check
};

// One file of the view: its row groups' first rows and the chosen rows (file positions).
struct ViewFile {
  std::string path;
  std::vector<int64_t> row_group_first;  // one more than row groups: the last is the row count
  std::vector<int> leaves;               // the columns' leaf indices, in Options::columns order
  std::vector<int64_t> chosen;           // ascending
  int64_t first_slot = 0;                // the output slot of chosen[0] (across the view)
};

// The chosen values of every column, in chosen-row order across the view's files.
struct Picked {
  std::vector<std::vector<uint8_t>> values;
  std::vector<std::vector<uint8_t>> valid;
  std::vector<int> width;
};

struct Clock {
  double cpu = 0, wall = 0;
  static Clock Now() {
    timespec cpu_time, wall_time;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_time);
    clock_gettime(CLOCK_MONOTONIC, &wall_time);
    return {cpu_time.tv_sec + cpu_time.tv_nsec * 1e-9, wall_time.tv_sec + wall_time.tv_nsec * 1e-9};
  }
  Clock operator-(const Clock& o) const { return {cpu - o.cpu, wall - o.wall}; }
};

parquet::ReaderProperties FileProperties(size_t columns) {
  parquet::ReaderProperties props(arrow::default_memory_pool());
  props.enable_buffered_stream();
  props.set_buffer_size(ParquetReadBufferBytes(columns, 1));
  return props;
}

Result<std::unique_ptr<parquet::ParquetFileReader>> OpenFile(const std::string& path,
                                                             size_t columns) {
  try {
    PARQUET_ASSIGN_OR_THROW(auto file, arrow::io::ReadableFile::Open(path));
    return parquet::ParquetFileReader::Open(std::move(file), FileProperties(columns));
  } catch (const std::exception& e) {
    return Status::IOError(fmt::format("{}: {}", path, e.what()));
  }
}

// Copies the chosen rows of `source` (file rows [first, first + length)) to their slots: the
// loop of ScatteredColumn::Put, slots in place of entity rows.
void CopyChosen(const arrow::ArrayData& source, int width, int64_t first, const int64_t* chosen,
                const int64_t* chosen_end, int64_t slot, uint8_t* values, uint8_t* valid) {
  const uint8_t* bits =
      source.null_count != 0 && source.buffers[0] != nullptr ? source.buffers[0]->data() : nullptr;
  const uint8_t* from = source.buffers[1]->data();
  for (const int64_t* c = chosen; c != chosen_end; ++c, ++slot) {
    const int64_t row = source.offset + (*c - first);
    if (bits != nullptr && !arrow::bit_util::GetBit(bits, row)) {
      valid[slot] = 0;
      std::memset(values + slot * width, 0, width);
      continue;
    }
    std::memcpy(values + slot * width, from + row * width, width);
    valid[slot] = 1;
  }
}

// (a): Arrow's reader decodes every row of the chosen columns; the chosen values are copied out.
Status DecodeAllAndCopy(const ViewFile& file, Picked* out) {
  GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFile(file.path, file.leaves.size()));
  parquet::ArrowReaderProperties props;
  props.set_batch_size(64 * 1024);
  props.set_pre_buffer(false);
  props.set_use_threads(false);
  auto made =
      parquet::arrow::FileReader::Make(arrow::default_memory_pool(), std::move(reader), props);
  if (!made.ok()) {
    return Status::IOError(fmt::format("{}: {}", file.path, made.status().ToString()));
  }
  std::unique_ptr<parquet::arrow::FileReader> arrow_reader = std::move(*made);
  std::vector<int> row_groups(file.row_group_first.size() - 1);
  for (size_t i = 0; i < row_groups.size(); ++i) row_groups[i] = static_cast<int>(i);
  auto batches = arrow_reader->GetRecordBatchReader(row_groups, file.leaves);
  if (!batches.ok()) {
    return Status::IOError(fmt::format("{}: {}", file.path, batches.status().ToString()));
  }
  int64_t first = 0;
  const int64_t* next = file.chosen.data();
  const int64_t* end = next + file.chosen.size();
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    auto st = (*batches)->ReadNext(&batch);
    if (!st.ok()) return Status::IOError(fmt::format("{}: {}", file.path, st.ToString()));
    if (batch == nullptr) break;
    const int64_t last = first + batch->num_rows();
    const int64_t* stop = std::lower_bound(next, end, last);
    const int64_t slot = file.first_slot + (next - file.chosen.data());
    for (int c = 0; c < batch->num_columns(); ++c) {
      CopyChosen(*batch->column(c)->data(), out->width[c], first, next, stop, slot,
                 out->values[c].data(), out->valid[c].data());
    }
    next = stop;
    first = last;
  }
  return Status::OK();
}

// (a) for one column chunk: the fallback of (b) where the picker does not support a page.
Status DecodeChunkAndCopy(const ViewFile& file, int row_group, int c, const int64_t* chosen,
                          const int64_t* chosen_end, int64_t slot, Picked* out) {
  GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFile(file.path, 1));
  auto made = parquet::arrow::FileReader::Make(arrow::default_memory_pool(), std::move(reader),
                                               parquet::default_arrow_reader_properties());
  if (!made.ok()) {
    return Status::IOError(fmt::format("{}: {}", file.path, made.status().ToString()));
  }
  auto table = (*made)->ReadRowGroup(row_group, {file.leaves[c]});
  if (!table.ok()) {
    return Status::IOError(fmt::format("{}: {}", file.path, table.status().ToString()));
  }
  int64_t first = file.row_group_first[row_group];
  for (const auto& chunk : (*table)->column(0)->chunks()) {
    const int64_t last = first + chunk->length();
    const int64_t* stop = std::lower_bound(chosen, chosen_end, last);
    CopyChosen(*chunk->data(), out->width[c], first, chosen, stop, slot, out->values[c].data(),
               out->valid[c].data());
    slot += stop - chosen;
    chosen = stop;
    first = last;
  }
  return Status::OK();
}

// (b): the page-level pick. `fallbacks` counts the column chunks read as in (a).
Status PickPages(const ViewFile& file, Picked* out, int64_t* fallbacks) {
  GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFile(file.path, file.leaves.size()));
  std::vector<int64_t> local;  // the chosen rows of a row group, as its own positions
  const int64_t* next = file.chosen.data();
  const int64_t* end = next + file.chosen.size();
  for (size_t rg = 0; rg + 1 < file.row_group_first.size(); ++rg) {
    const int64_t first = file.row_group_first[rg];
    const int64_t* stop = std::lower_bound(next, end, file.row_group_first[rg + 1]);
    if (stop == next) continue;
    local.assign(next, stop);
    for (int64_t& row : local) row -= first;
    const int64_t slot = file.first_slot + (next - file.chosen.data());
    std::shared_ptr<parquet::RowGroupReader> row_group = reader->RowGroup(static_cast<int>(rg));
    for (size_t c = 0; c < file.leaves.size(); ++c) {
      PickedValues to{out->values[c].data() + slot * out->width[c], out->valid[c].data() + slot};
      Status st = PickChosenValues(*row_group, file.leaves[c], local.data(),
                                   static_cast<int64_t>(local.size()), to);
      if (st.code() == StatusCode::kNotImplemented) {
        ++*fallbacks;
        st = DecodeChunkAndCopy(file, static_cast<int>(rg), static_cast<int>(c), next, stop, slot,
                                out);
      }
      if (!st.ok()) return st.WithContext(fmt::format("{} row group {}", file.path, rg));
    }
    next = stop;
  }
  return Status::OK();
}

// (c): every page of the chosen columns read and decompressed, nothing decoded.
Status ReadPages(const ViewFile& file, int64_t* bytes) {
  GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFile(file.path, file.leaves.size()));
  for (size_t rg = 0; rg + 1 < file.row_group_first.size(); ++rg) {
    std::shared_ptr<parquet::RowGroupReader> row_group = reader->RowGroup(static_cast<int>(rg));
    for (int leaf : file.leaves) {
      GRANARY_ASSIGN_OR_RAISE(int64_t read, ReadPagesOnly(*row_group, leaf));
      *bytes += read;
    }
  }
  return Status::OK();
}

// Opens the view's files, maps the columns to leaves, and counts their pages by kind and
// encoding (printed, so that a table says what it measured).
Status OpenView(const Options& options, std::vector<ViewFile>* files, Picked* picked,
                int64_t* rows) {
  std::vector<std::string> paths;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(options.dir, error)) {
    if (entry.path().extension() == ".parquet") paths.push_back(entry.path().string());
  }
  if (error || paths.empty()) {
    return Status::NotFound(fmt::format(
        "no .parquet files in {}: run bench/pit_join/run once to generate them, or pass --dir",
        options.dir));
  }
  std::sort(paths.begin(), paths.end());
  std::map<std::string, int64_t> pages;
  *rows = 0;
  for (const auto& path : paths) {
    ViewFile file;
    file.path = path;
    GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFile(path, options.columns.size()));
    const auto metadata = reader->metadata();
    for (const auto& name : options.columns) {
      const int leaf = metadata->schema()->ColumnIndex(name);
      if (leaf < 0) return Status::InvalidArgument(fmt::format("{}: no column '{}'", path, name));
      const parquet::ColumnDescriptor* descr = metadata->schema()->Column(leaf);
      if (descr->physical_type() != parquet::Type::INT32 &&
          descr->physical_type() != parquet::Type::INT64 &&
          descr->physical_type() != parquet::Type::FLOAT &&
          descr->physical_type() != parquet::Type::DOUBLE) {
        return Status::InvalidArgument(
            fmt::format("{}: column '{}' is {}; the benchmark compares fixed-width columns only",
                        path, name, parquet::TypeToString(descr->physical_type())));
      }
      if (files->empty()) picked->width.push_back(PickValueWidth(*descr));
      file.leaves.push_back(leaf);
    }
    file.row_group_first.push_back(0);
    for (int rg = 0; rg < metadata->num_row_groups(); ++rg) {
      file.row_group_first.push_back(file.row_group_first.back() +
                                     metadata->RowGroup(rg)->num_rows());
      try {
        auto row_group = reader->RowGroup(rg);
        for (int leaf : file.leaves) {
          auto page_reader = row_group->GetColumnPageReader(leaf);
          while (auto page = page_reader->NextPage()) {
            std::string kind;
            if (page->type() == parquet::PageType::DICTIONARY_PAGE) {
              kind = "dictionary page";
            } else if (page->type() == parquet::PageType::DATA_PAGE ||
                       page->type() == parquet::PageType::DATA_PAGE_V2) {
              kind = fmt::format("{} data page {}",
                                 page->type() == parquet::PageType::DATA_PAGE ? "V1" : "V2",
                                 parquet::EncodingToString(
                                     static_cast<const parquet::DataPage&>(*page).encoding()));
            } else {
              kind = "other page";
            }
            ++pages[kind];
          }
        }
      } catch (const std::exception& e) {
        return Status::IOError(fmt::format("{}: {}", path, e.what()));
      }
    }
    *rows += file.row_group_first.back();
    files->push_back(std::move(file));
  }
  fmt::print("{}: {} files, {} rows, {} columns ({}); pages:", options.dir, files->size(), *rows,
             options.columns.size(), fmt::join(options.columns, ","));
  for (const auto& [kind, count] : pages) fmt::print(" {} {};", kind, count);
  fmt::print("\n");
  return Status::OK();
}

// Each row chosen with probability `density`, from `seed`.
int64_t ChooseRows(std::vector<ViewFile>* files, double density, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::bernoulli_distribution pick(density);
  int64_t slot = 0;
  for (ViewFile& file : *files) {
    file.chosen.clear();
    file.first_slot = slot;
    for (int64_t row = 0; row < file.row_group_first.back(); ++row) {
      if (pick(random)) file.chosen.push_back(row);
    }
    slot += static_cast<int64_t>(file.chosen.size());
  }
  return slot;
}

void Resize(Picked* picked, int64_t slots) {
  picked->values.resize(picked->width.size());
  picked->valid.resize(picked->width.size());
  for (size_t c = 0; c < picked->width.size(); ++c) {
    // Filled with a pattern that no pass writes alike, so that a slot a pass missed differs.
    picked->values[c].assign(static_cast<size_t>(slots * picked->width[c]), 0xa5);
    picked->valid[c].assign(static_cast<size_t>(slots), 0xa5);
  }
}

Status Compare(const Picked& expected, const Picked& actual, const Options& options) {
  for (size_t c = 0; c < expected.values.size(); ++c) {
    const size_t width = static_cast<size_t>(expected.width[c]);
    for (size_t slot = 0; slot < expected.valid[c].size(); ++slot) {
      if (expected.valid[c][slot] != actual.valid[c][slot] ||
          std::memcmp(&expected.values[c][slot * width], &actual.values[c][slot * width], width) !=
              0) {
        return Status::Internal(fmt::format(
            "column '{}', chosen row {}: the page-level pick gave validity {} and other bytes "
            "than Arrow's reader (validity {})",
            options.columns[c], slot, actual.valid[c][slot], expected.valid[c][slot]));
      }
    }
  }
  return Status::OK();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Status Run(const Options& options) {
  std::vector<ViewFile> files;
  Picked decoded, picked;
  int64_t rows = 0;
  GRANARY_RETURN_NOT_OK(OpenView(options, &files, &decoded, &rows));
  picked.width = decoded.width;
  const bool checked = options.passes.find('a') != std::string::npos &&
                       options.passes.find('b') != std::string::npos;
  fmt::print(
      "seed {}; median of {} alternating passes; CPU and wall seconds a pass over the "
      "view\n",
      options.seed, options.repeat);
  fmt::print("{:>8} {:>9} | {:>16} | {:>16} | {:>16} | {:>7} {:>9}\n", "density", "chosen",
             "(a) decode all", "(b) pick", "(c) pages only", "(b)/(a)", "fallbacks");
  for (double density : options.densities) {
    const int64_t slots = ChooseRows(&files, density, options.seed);
    std::vector<double> cpu[3], wall[3];
    int64_t fallbacks = 0, page_bytes = 0;
    for (int r = 0; r < options.repeat; ++r) {
      Resize(&decoded, slots);
      Resize(&picked, slots);
      // The passes in turn, each first once: a pass is not always the one after the others.
      for (int k = 0; k < 3; ++k) {
        const int pass = (r + k) % 3;
        if (options.passes.find(static_cast<char>('a' + pass)) == std::string::npos) continue;
        const Clock start = Clock::Now();
        for (const ViewFile& file : files) {
          if (pass == 0) GRANARY_RETURN_NOT_OK(DecodeAllAndCopy(file, &decoded));
          if (pass == 1) GRANARY_RETURN_NOT_OK(PickPages(file, &picked, &fallbacks));
          if (pass == 2) GRANARY_RETURN_NOT_OK(ReadPages(file, &page_bytes));
        }
        const Clock took = Clock::Now() - start;
        cpu[pass].push_back(took.cpu);
        wall[pass].push_back(took.wall);
      }
      if (checked) GRANARY_RETURN_NOT_OK(Compare(decoded, picked, options));
    }
    auto cell = [&](int pass) {
      if (cpu[pass].empty()) return std::string("-");
      return fmt::format("{:6.3f} / {:6.3f}", Median(cpu[pass]), Median(wall[pass]));
    };
    fmt::print("{:>7.1f}% {:>9} | {:>16} | {:>16} | {:>16} | {:>7.2f} {:>9}\n", density * 100,
               slots, cell(0), cell(1), cell(2), checked ? Median(cpu[1]) / Median(cpu[0]) : 0.0,
               fallbacks / options.repeat);
    std::fflush(stdout);
  }
  if (checked) {
    fmt::print("(b)'s values and validity equal (a)'s for every chosen row of every pass\n");
  }
  return Status::OK();
}

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Status ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help") {
      options->help = true;
      return Status::OK();
    }
    if (i + 1 >= argc) return Status::InvalidArgument(fmt::format("{} needs a value", flag));
    const std::string value = argv[++i];
    try {
      if (flag == "--dir") {
        options->dir = value;
      } else if (flag == "--columns") {
        options->columns = Split(value);
      } else if (flag == "--densities") {
        options->densities.clear();
        for (const auto& d : Split(value)) options->densities.push_back(std::stod(d));
      } else if (flag == "--repeat") {
        options->repeat = std::max(1, std::stoi(value));
      } else if (flag == "--passes") {
        options->passes = value;
        if (value.empty() || value.find_first_not_of("abc") != std::string::npos) {
          return Status::InvalidArgument("--passes: letters of a, b and c");
        }
      } else if (flag == "--seed") {
        options->seed = std::stoull(value);
      } else {
        return Status::InvalidArgument(fmt::format("unknown option {}; see --help", flag));
      }
    } catch (const std::exception&) {
      return Status::InvalidArgument(fmt::format("{} {}: not a number", flag, value));
    }
  }
  if (options->columns.empty()) {
    for (int f = 0; f < 10; ++f) options->columns.push_back(fmt::format("f{}", f));
  }
  for (double d : options->densities) {
    if (!(d > 0 && d <= 1)) {
      return Status::InvalidArgument(fmt::format("density {} is not in (0, 1]", d));
    }
  }
  return Status::OK();
}

}  // namespace
}  // namespace granary::bench

int main(int argc, char** argv) {
  granary::bench::Options options;
  granary::Status st = granary::bench::ParseOptions(argc, argv, &options);
  if (st.ok() && options.help) {
    std::printf(
        "usage: pick_floor [--dir DIR] [--columns f0,f1,...] [--densities 0.005,0.05,0.5] "
        "[--repeat 5] [--seed N] [--passes abc]\n");
    return 0;
  }
  if (st.ok()) st = granary::bench::Run(options);
  if (!st.ok()) {
    std::fprintf(stderr, "pick_floor: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
