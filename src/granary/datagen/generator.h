// The data generator: writes the parking operator's synthetic data set (docs/DATAGEN.md).
//
// Generate() makes the world (zones, bays, events, holidays), then the customers in shards and
// the bay telemetry in groups of bays, on `threads` threads, streaming: memory is bounded by a
// shard of customers and a day of telemetry per thread, not by the size of the output. Output is
// written into a fresh folder <out>/.tmp-datagen-XXXXXX and moved into <out> at the end, one
// table at a time (a table of the same name already there is replaced; other files in <out>,
// such as a registry, are left alone). Nothing is left behind on failure.
//
// Deterministic: the same scale, seed and end give byte-identical files, whatever `threads` is.
#pragma once

#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/datagen/options.h"

namespace granary::datagen {

struct TableSummary {
  std::string name;
  std::string path;  // relative to the output folder
  int64_t rows = 0;
  int64_t files = 0;
  int64_t bytes = 0;
};

struct DatagenSummary {
  Timestamp start, end;
  std::vector<TableSummary> tables;
  int64_t total_rows() const;
};

// Checks the options (sizes, `end` at midnight UTC) and writes the data set.
// InvalidArgument for bad options, IOError when <out> cannot be created or written.
Result<DatagenSummary> Generate(const DatagenOptions& options);

}  // namespace granary::datagen
