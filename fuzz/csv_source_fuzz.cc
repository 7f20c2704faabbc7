// Fuzzes reading CSV files written by anyone: a feature view's CSV data source, read by the
// offline store's FeatureSourceScan (Arrow's CSV reader, then Granary's typing of every column
// as the definitions declare: join keys, event and created timestamps in any accepted form,
// features of every scalar type and a list, filtering by an event-time range), and an entity file
// read by ReadTableFile (as `granary historical --entities x.csv` does). The input is the CSV file,
// written in one temporary repository reused by every run. Properties beyond "never crash":
// batches have the scan's schema, rows are in range, and the row counts add up.
#include <arrow/api.h>

#include <cstdint>
#include <string>

#include "fixed_definitions.h"
#include "granary/offline/table_io.h"
#include "scratch_dir.h"
#include "source_scan_check.h"

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const granary::TempDir& repo = granary::fuzz::ScratchDir("granary-fuzz-csv-");
  const granary::Definitions& defs = granary::fuzz::TargetDefinitions(kDefinitions);
  const auto file = granary::fuzz::WriteInputFile(repo.path(), "data.csv", data, size);
  granary::fuzz::CheckSourceScan(repo.path(), defs, defs.feature_views[0]);
  (void)granary::ReadTableFile(file, {{"driver_id", arrow::int64()}});
  return 0;
}
