// The gather mode's read of one Parquet row group: only the chosen rows' values, copied from the
// pages where the column allows it (chosen_values.h), for FragmentPrefetcher's reader threads
// (FragmentRequest::chosen_rows). Functions only; safe to call from several threads at once, each
// with an OpenedParquet of its own.
#pragma once

#include <memory>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/source_fragment.h"

namespace granary {

// Gather mode: the rows `rows` (positions within row group `row_group` of `fragment`, ascending,
// distinct, each below the row group's row count) of the requested columns, as one batch of
// rows.size() rows in the file's names and types, as OpenFragment's batches (columns the file
// lacks are left out). Columns whose file type is their request.pick_types entry have only the
// chosen values copied from their pages (PickChosenValues, chosen_values.h); the others, and a
// column chunk with pages the picker does not support (BYTE_STREAM_SPLIT, DELTA_*), are read
// by Arrow's reader over the row group and the rows taken from its batches. A fragment with a
// deletion vector is not read this way (its rows' positions are not the file's). Memory: the
// chosen values, a read buffer, a page and a dictionary a column, and a fallback column's batch.
// Errors name the file. `columns_picked` (may be null): set to the number of columns whose
// values came from their pages. Read through `opened`, the fragment opened with
// OpenParquetFragment and the same request (a reader keeps it for its next row group of the same
// file: each open parses the whole footer).
Result<std::shared_ptr<arrow::RecordBatch>> ReadChosenRows(
    const OpenedParquet& opened, const Fragment& fragment, const FragmentRequest& request,
    int row_group, const std::vector<int64_t>& rows, int* columns_picked = nullptr);

}  // namespace granary
