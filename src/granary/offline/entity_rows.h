// The entity rows of a historical retrieval as every engine starts from them
// (docs/POINT_IN_TIME.md): the time column that EntityTimeColumn picks, converted to
// timestamp[us, UTC], the range of its times, and the output's entity columns. Shared by the
// embedded engine (historical.cc) and the Spark engine (spark_training_set.cc), so that both
// read the entity time by one rule. Plain functions of their arguments; thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace arrow {
class Array;
class ChunkedArray;
class Field;
class Table;
}  // namespace arrow

namespace granary {

struct EntityRows {
  int time_index = -1;                          // in the entity rows' schema
  std::shared_ptr<arrow::Array> time;           // timestamp[us, UTC], one per row, nulls kept
  std::optional<Timestamp> min_time, max_time;  // of the non-null times; unset when none
  // The output's entity columns: as given, the time column replaced by `time`.
  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::ChunkedArray>> columns;
};

// Errors: EntityTimeColumn's (no or several time columns); a time column that cannot be
// converted (InvalidArgument, with `entities_name` as its context).
Result<EntityRows> NormalizeEntityRows(const arrow::Table& entities,
                                       const std::string& entities_name);

// `column` as one array: its chunk when it has one; the range of one array, without a copy,
// when its chunks are consecutive slices of that array (the same buffers and children, each
// starting where the one before ended, as CompactChunks makes them); else a concatenation (a
// copy). Internal error when Arrow cannot concatenate.
Result<std::shared_ptr<arrow::Array>> CombinedChunks(const arrow::ChunkedArray& column);

// `table` with every column of several chunks copied into one array and handed out as zero-copy
// slices of it at the same chunk boundaries: the same values and the same chunks (so batches
// and files cut at chunk ends come out the same), while CombinedChunks gives each column whole
// without a second copy. For entity rows read from a file of several row groups, which a
// retrieval holds to its end and also needs whole (the join keys, the time): at the seed's scale
// 56 MiB were held twice. Each column's old chunks are released as it is done when `table` held
// the only reference (one column's copy at a time on top of the table).
Result<std::shared_ptr<arrow::Table>> CompactChunks(std::shared_ptr<arrow::Table> table);

}  // namespace granary
