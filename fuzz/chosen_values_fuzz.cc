// Fuzzes the gather's page-level picker (granary/offline/chosen_values.h: PickChosenValues), which
// parses a Parquet column chunk's pages itself (page headers through parquet's PageReader, then
// the definition levels, dictionary pages and indices, PLAIN values) to copy out only the chosen
// rows' values. The input is a Parquet file (any file: Feast's and parquet-testing's seed it);
// the chosen rows come from the input's bytes (a hash of them picks the density, 1/64 to every
// row, and the rows). For every row group and every column the picker supports, it must return an
// error (Corruption, or NotImplemented for pages it leaves to Arrow's reader) or agree with
// Arrow's reader on every chosen row's validity and value bytes, where Arrow's reader reads the
// chunk; never crash, and never read past a page (ASan).
#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/schema.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "granary/offline/chosen_values.h"

namespace {

// Row groups and columns looked at, and rows a row group may have (a footer may claim any).
constexpr int kMaxRowGroups = 8;
constexpr int kMaxColumns = 16;
constexpr int64_t kMaxRows = 1 << 16;

// Arrow types whose values are the physical values unchanged, byte for byte.
bool SameBytes(const arrow::DataType& type, int width) {
  switch (type.id()) {
    case arrow::Type::INT32:
    case arrow::Type::UINT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::DATE32:
    case arrow::Type::TIME32:
    case arrow::Type::TIME64:
      return type.byte_width() == width;
    default:
      return false;
  }
}

// Arrow's reader's row group `row_group` (as the scan reads a whole row group); null when it
// fails.
std::shared_ptr<arrow::Table> ReadWithArrow(parquet::arrow::FileReader& reader, int row_group) {
  try {
    std::shared_ptr<arrow::Table> table;
    if (!reader.ReadRowGroup(row_group, &table).ok()) return nullptr;
    return table;
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Column `name` of `table` in one array; null when absent.
std::shared_ptr<arrow::Array> ColumnOf(const arrow::Table* table, const std::string& name) {
  if (table == nullptr) return nullptr;
  const auto column = table->GetColumnByName(name);
  if (column == nullptr) return nullptr;
  auto whole = arrow::Concatenate(column->chunks());
  return whole.ok() ? *whole : nullptr;
}

[[noreturn]] void Disagree(int row_group, int column, int64_t row, const char* what) {
  std::fprintf(stderr,
               "row group %d, column %d, row %lld: the picker and Arrow's reader disagree (%s)\n",
               row_group, column, static_cast<long long>(row), what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a of the input: the chosen rows' seed
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3ULL;
  std::mt19937_64 rng(hash);
  const uint64_t density_shift = std::array<uint64_t, 4>{6, 3, 1, 0}[hash >> 62];
  auto buffer = std::make_shared<arrow::Buffer>(data, static_cast<int64_t>(size));
  std::unique_ptr<parquet::ParquetFileReader> pages;
  std::unique_ptr<parquet::arrow::FileReader> values;
  try {
    pages = parquet::ParquetFileReader::Open(std::make_shared<arrow::io::BufferReader>(buffer));
    auto arrow_reader = parquet::arrow::FileReader::Make(
        arrow::default_memory_pool(),
        parquet::ParquetFileReader::Open(std::make_shared<arrow::io::BufferReader>(buffer)));
    if (arrow_reader.ok()) values = std::move(*arrow_reader);
  } catch (const std::exception&) {
    return 0;  // not a Parquet file whose footer parses
  }
  const std::shared_ptr<parquet::FileMetaData> metadata = pages->metadata();
  const int row_groups = std::min(metadata->num_row_groups(), kMaxRowGroups);
  const int columns = std::min(metadata->num_columns(), kMaxColumns);
  for (int rg = 0; rg < row_groups; ++rg) {
    std::shared_ptr<parquet::RowGroupReader> row_group;
    int64_t rows = 0;
    try {
      row_group = pages->RowGroup(rg);
      rows = row_group->metadata()->num_rows();
    } catch (const std::exception&) {
      continue;
    }
    if (rows <= 0 || rows > kMaxRows) continue;
    std::shared_ptr<arrow::Table> decoded_row_group;  // read once, when a pick needs checking
    bool read = false;
    for (int c = 0; c < columns; ++c) {
      const parquet::ColumnDescriptor& column = *metadata->schema()->Column(c);
      // Top-level columns only, as the gather picks them (a struct's leaf has its parents' nulls).
      if (!granary::PickSupports(column) || column.path()->ToDotVector().size() != 1) continue;
      const int width = granary::PickValueWidth(column);
      std::vector<int64_t> chosen;
      for (int64_t r = 0; r < rows; ++r) {
        if ((rng() & ((uint64_t{1} << density_shift) - 1)) == 0) chosen.push_back(r);
      }
      if (chosen.empty()) chosen.push_back(static_cast<int64_t>(rng() % rows));
      std::vector<uint8_t> out(chosen.size() * width);
      std::vector<uint8_t> valid(chosen.size(), 2);
      const granary::Status st = granary::PickChosenValues(
          *row_group, c, chosen.data(), static_cast<int64_t>(chosen.size()),
          granary::PickedValues{out.data(), valid.data()});
      if (!st.ok()) {
        if (st.code() != granary::StatusCode::kCorruption &&
            st.code() != granary::StatusCode::kNotImplemented) {
          std::fprintf(stderr, "unexpected error: %s\n", st.ToString().c_str());
          std::abort();
        }
        continue;
      }
      if (values == nullptr) continue;
      // Where Arrow's reader reads the row group, the picked rows agree with it.
      if (!read) {
        decoded_row_group = ReadWithArrow(*values, rg);
        read = true;
      }
      std::shared_ptr<arrow::Array> decoded = ColumnOf(decoded_row_group.get(), column.name());
      if (decoded == nullptr || decoded->length() != rows || !SameBytes(*decoded->type(), width)) {
        continue;
      }
      const uint8_t* from = decoded->data()->buffers[1]->data() + decoded->offset() * width;
      for (size_t i = 0; i < chosen.size(); ++i) {
        const int64_t row = chosen[i];
        if (valid[i] > 1) Disagree(rg, c, row, "no value written");
        if ((valid[i] == 1) != decoded->IsValid(row)) Disagree(rg, c, row, "validity");
        if (valid[i] == 1 && std::memcmp(out.data() + i * width, from + row * width, width) != 0) {
          Disagree(rg, c, row, "value");
        }
      }
    }
  }
  return 0;
}
