// Fuzzes reading CSV files written by anyone: a feature view's CSV data source, read by the
// offline store's FeatureSourceScan (Arrow's CSV reader, then Granary's typing of every column
// as the definitions declare: join keys, event and created timestamps in any accepted form,
// features of every scalar type and a list, filtering by an event-time range), and an entity file
// read by ReadTableFile (as `granary historical --entities x.csv` does). The input is the CSV file,
// written in one temporary repository reused by every run. Properties beyond "never crash":
// batches have the scan's schema, rows are in range, and the row counts add up.
#include <arrow/api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fixed_definitions.h"
#include "granary/offline/source_scan.h"
#include "granary/offline/table_io.h"
#include "granary/registry/loader.h"
#include "scratch_dir.h"

namespace {

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - name: stats
    path: data.csv
    format: csv
    timestamp_field: event_timestamp
    created_timestamp_column: created_timestamp
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    ttl: 1d
    schema:
      - {name: completed_bookings, type: int64}
      - {name: conv_rate, type: float64}
      - {name: acc_rate, type: float32}
      - {name: avg_daily_trips, type: int32}
      - {name: name, type: string}
      - {name: payload, type: bytes}
      - {name: active, type: bool}
      - {name: last_seen, type: timestamp}
      - {name: tags, type: list<string>}
)yaml";

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

const granary::Definitions& Defs() {
  static const granary::Definitions defs = granary::fuzz::FixedDefinitions(kDefinitions);
  return defs;
}

void Scan(const std::filesystem::path& repo) {
  const granary::Definitions& defs = Defs();
  granary::SourceScanOptions options;
  options.start = granary::Timestamp::FromSeconds(946684800);  // 2000-01-01
  options.end = granary::Timestamp::FromSeconds(4102444800);   // 2100-01-01
  options.batch_rows = 7;  // many batch boundaries in a small file
  auto scan = granary::FeatureSourceScan::Open(repo, defs, defs.feature_views[0], options);
  if (!scan.ok()) return;
  const auto& schema = (*scan)->schema();
  const int ts = (*scan)->event_timestamp_index();
  int64_t rows = 0;
  while (true) {
    auto batch = (*scan)->Next();
    if (!batch.ok() || *batch == nullptr) break;
    const arrow::RecordBatch& b = **batch;
    if (!b.schema()->Equals(*schema)) Fail("a batch does not have the scan's schema");
    const auto& times = static_cast<const arrow::TimestampArray&>(*b.column(ts));
    for (int64_t r = 0; r < b.num_rows(); ++r) {
      if (times.IsNull(r) || times.Value(r) < options.start->micros ||
          times.Value(r) > options.end->micros) {
        Fail("a row outside the event-time range");
      }
    }
    rows += b.num_rows();
  }
  const auto& stats = (*scan)->stats();
  if (stats.rows_returned != rows || stats.rows_returned > stats.rows_scanned) {
    Fail("row counts do not add up");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const granary::TempDir& repo = granary::fuzz::ScratchDir("granary-fuzz-csv-");
  const auto file = repo.path() / "data.csv";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  Scan(repo.path());
  (void)granary::ReadTableFile(file, {{"driver_id", arrow::int64()}});
  return 0;
}
