// What the offline source fuzz targets (csv_source, parquet_source) check of a feature view's
// scan over a file written by anyone: FeatureSourceScan over [2000-01-01, 2100-01-01] in batches
// of `batch_rows` rows (7 by default: many batch boundaries in a small file); every batch has the
// scan's schema, every row
// is inside the event-time range, and the row counts add up. A scan that fails to open or to read
// is an error the user is shown, not a finding; anything else stops the process.
#pragma once

#include <arrow/api.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "granary/offline/source_scan.h"
#include "granary/registry/definitions.h"

namespace granary::fuzz {

[[noreturn]] inline void FailScan(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

inline void CheckSourceScan(const std::filesystem::path& repo, const Definitions& defs,
                            const FeatureView& view, int64_t batch_rows = 7) {
  SourceScanOptions options;
  options.start = Timestamp::FromSeconds(946684800);  // 2000-01-01
  options.end = Timestamp::FromSeconds(4102444800);   // 2100-01-01
  options.batch_rows = batch_rows;
  auto scan = FeatureSourceScan::Open(repo, defs, view, options);
  if (!scan.ok()) return;
  const auto& schema = (*scan)->schema();
  const int ts = (*scan)->event_timestamp_index();
  int64_t rows = 0;
  while (true) {
    auto batch = (*scan)->Next();
    if (!batch.ok() || *batch == nullptr) break;
    const arrow::RecordBatch& b = **batch;
    if (!b.schema()->Equals(*schema)) FailScan("a batch does not have the scan's schema");
    const auto& times = static_cast<const arrow::TimestampArray&>(*b.column(ts));
    for (int64_t r = 0; r < b.num_rows(); ++r) {
      if (times.IsNull(r) || times.Value(r) < options.start->micros ||
          times.Value(r) > options.end->micros) {
        FailScan("a row outside the event-time range");
      }
    }
    rows += b.num_rows();
  }
  const auto& stats = (*scan)->stats();
  if (stats.rows_returned != rows || stats.rows_returned > stats.rows_scanned) {
    FailScan("row counts do not add up");
  }
}

}  // namespace granary::fuzz
