// Fuzzes reading Parquet files written by anyone, as Granary handles their metadata and data: the
// schema check of `granary plan` (FileSourceInspector, ValidateDefinitions against the data), a
// feature view's scan (source_fragment.cc: the footer, row-group pruning by the event time's
// statistics in any time unit or as a date, then the typing of every column as the definitions
// declare), and an entity file read by ReadTableFile (as `granary historical --entities
// x.parquet` does). The input is the Parquet file, written in one temporary repository reused by
// every run. Properties beyond "never crash" (fuzz/source_scan_check.h): batches have the scan's
// schema, rows are in range, and the row counts add up.
//
// The scans read in batches of 7 rows, at most kScanBatches batches a scan: a file of many rows
// (Parquet's encodings put 21,186 rows in 3 KB) is read in larger batches. Each batch has a fixed
// cost (casts, and for rows outside the time range, which a file without the time column has
// all of, an Arrow Filter of every column: about 0.7 ms under ASan), so such a file took 1.7-5 s
// in 7-row batches, the target ran about 3 inputs/s and inputs timed out on a loaded machine.
#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "fixed_definitions.h"
#include "granary/offline/source_inspector.h"
#include "granary/offline/table_io.h"
#include "granary/registry/validator.h"
#include "scratch_dir.h"
#include "source_scan_check.h"

namespace {

// Two views over the same file: Feast's driver_stats columns (so that real files of Feast's
// examples go through the whole scan), and a feature of every type (the project's seeds).
constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - name: stats
    path: data.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    ttl: 1d
    schema:
      - {name: conv_rate, type: float32}
      - {name: acc_rate, type: float32}
      - {name: avg_daily_trips, type: int32}
  - name: every_type
    entities: [driver]
    source: stats
    schema:
      - {name: trips, type: int64}
      - {name: rate, type: float64}
      - {name: name, type: string}
      - {name: payload, type: bytes}
      - {name: active, type: bool}
      - {name: last_seen, type: timestamp}
      - {name: tags, type: list<string>}
      - {name: scores, type: list<float64>}
)yaml";

// Scans of a file read it in at most this many batches (plus one per row group).
constexpr int64_t kScanBatches = 64;

// 7 rows (many batch boundaries in a small file), or more for a file whose footer says it has
// more than 7 * kScanBatches rows. A footer that does not parse gives 7 (the scan reports it).
int64_t ScanBatchRows(const uint8_t* data, size_t size) {
  constexpr int64_t kSmallBatch = 7;
  try {
    auto buffer = std::make_shared<arrow::Buffer>(data, static_cast<int64_t>(size));
    auto reader =
        parquet::ParquetFileReader::Open(std::make_shared<arrow::io::BufferReader>(buffer));
    const int64_t rows = reader->metadata()->num_rows();
    // A footer may claim any count: past a million rows a batch is 64 Ki rows anyway.
    return std::clamp<int64_t>(rows / kScanBatches + 1, kSmallBatch, 64 * 1024);
  } catch (const std::exception&) {
    return kSmallBatch;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const granary::TempDir& repo = granary::fuzz::ScratchDir("granary-fuzz-parquet-");
  const granary::Definitions& defs = granary::fuzz::TargetDefinitions(kDefinitions);
  const auto file = granary::fuzz::WriteInputFile(repo.path(), "data.parquet", data, size);
  {
    granary::FileSourceInspector inspector(repo.path());
    granary::Diagnostics diag;
    granary::ValidateDefinitions(defs, &inspector, &diag);
  }
  const int64_t batch_rows = ScanBatchRows(data, size);
  for (const granary::FeatureView& view : defs.feature_views) {
    granary::fuzz::CheckSourceScan(repo.path(), defs, view, batch_rows);
  }
  (void)granary::ReadTableFile(file);
  return 0;
}
