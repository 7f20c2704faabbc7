// What the data generator makes: sizes per scale and the options of one run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "granary/common/progress.h"
#include "granary/common/result.h"
#include "granary/common/time.h"

namespace granary::datagen {

// The sizes of one run. The named scales (tiny, small, seed) are fixed; tests may make others.
struct ScaleParams {
  std::string name;
  int64_t customers = 0;
  int64_t bays = 0;
  int64_t zones = 0;
  int64_t days = 0;  // length of the telemetry and feature period, ending at `end`
  // Customers per generation shard (the unit of parallel work; the output does not depend on it
  // because every customer has its own random stream and shards are written in order).
  int64_t customers_per_shard = 2000;
  // Bays per telemetry group: each group writes its own file per day, so this fixes the layout.
  int64_t bays_per_group = 1250;
};

// "tiny" (2K customers, 50 bays, 60 days), "small" (50K, 500, 182), "seed" (500K, 5K, 730).
Result<ScaleParams> NamedScale(std::string_view name);

struct DatagenOptions {
  ScaleParams scale;
  uint64_t seed = 42;
  // The instant the data is a snapshot of: midnight UTC of a date. No generated timestamp
  // (event, created or ingested) is later than this.
  Timestamp end;
  std::filesystem::path out;  // created if missing; existing outputs of the same names are replaced
  int threads = 0;            // 0: the number of hardware threads
  ProgressOptions progress;
};

// The period covered by features and telemetry: (end - days, end].
inline Timestamp PeriodStart(const DatagenOptions& o) {
  return o.end - Duration::Days(o.scale.days);
}

// Raw customer events start this long before the period, so that every 90-day window feature
// in the period can be recomputed from the raw tables.
inline constexpr Duration kCustomerHistory = Duration::Days(90);

}  // namespace granary::datagen
