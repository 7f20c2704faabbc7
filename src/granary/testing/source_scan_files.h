// What the tests of FeatureSourceScan share (offline/source_scan_test.cc and
// source_scan_read_test.cc): a view's definitions over a folder, Parquet files of hourly rates,
// and reading a scan whole.
#pragma once

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "granary/offline/source_scan.h"
#include "granary/registry/loader.h"

namespace granary::testing {

inline Definitions Load(const std::string& yaml) {
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml", yaml, &defs, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  return defs;
}

inline std::string Defs(const std::string& path, const std::string& extra_source = "",
                        const std::string& format = "parquet") {
  return "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
         "data_sources:\n  - {name: src, path: '" +
         path + "', format: " + format + ", timestamp_field: event_timestamp" + extra_source +
         "}\nfeature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
         "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n";
}

// A Parquet file of `rows` rows in row groups of `group` rows: driver_id i % 5, one row per
// hour from `first_hour`, rate i * rate_scale; with `null_times`, every 7th row (i % 7 == 3) has
// no event time.
inline void WriteRates(const std::filesystem::path& path, int64_t first_hour, int rows, int group,
                       float rate_scale, bool null_times) {
  arrow::Int32Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MILLI),
                             arrow::default_memory_pool());
  arrow::FloatBuilder rate;
  for (int i = 0; i < rows; ++i) {
    ASSERT_TRUE(ids.Append(i % 5).ok());
    ASSERT_TRUE(
        (null_times && i % 7 == 3 ? ts.AppendNull() : ts.Append((first_hour + i) * 3'600'000))
            .ok());
    ASSERT_TRUE(rate.Append(static_cast<float>(i) * rate_scale).ok());
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("driver_id", arrow::int32()),
                     arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MILLI)),
                     arrow::field("rate", arrow::float32())}),
      {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie()});
  std::filesystem::create_directories(path.parent_path());
  auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, group).ok());
  ASSERT_TRUE(out->Close().ok());
}

// One row per hour from `first_hour`, rate a quarter of the row's number.
inline void WriteHourly(const std::filesystem::path& path, int64_t first_hour, int rows,
                        int group) {
  WriteRates(path, first_hour, rows, group, 0.25f, /*null_times=*/false);
}

inline int64_t CountRows(FeatureSourceScan* scan) {
  int64_t n = 0;
  while (true) {
    auto batch = scan->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) return n;
    n += (*batch)->num_rows();
  }
}

// One row per hour from hour 0, every 7th without an event time; rate is the row's number.
inline void WriteHourlyWithNullTimes(const std::filesystem::path& path, int rows, int group) {
  WriteRates(path, 0, rows, group, 1.0f, /*null_times=*/true);
}

// Every row a scan returns, by read position: its `rate` (the row's number in the file).
// `after_first` (if set) runs once the first batch is in.
inline std::map<int64_t, double> RatesByPosition(
    FeatureSourceScan* scan, const std::function<void()>& after_first = nullptr) {
  std::map<int64_t, double> out;
  bool first = true;
  const int rate = scan->schema()->GetFieldIndex("rate");
  EXPECT_GE(rate, 0);
  while (true) {
    auto batch = scan->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr || rate < 0) return out;
    const ReadPositions& at = scan->positions();
    const auto& values = static_cast<const arrow::DoubleArray&>(*(*batch)->column(rate));
    for (int64_t i = 0; i < (*batch)->num_rows(); ++i) {
      const int64_t position = at.rows == nullptr
                                   ? at.first + i
                                   : static_cast<const arrow::Int64Array&>(*at.rows).Value(i);
      EXPECT_TRUE(out.emplace(position, values.Value(i)).second) << "position " << position;
    }
    if (after_first && first) after_first();
    first = false;
  }
}

}  // namespace granary::testing
