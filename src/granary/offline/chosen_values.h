// Decoding only the chosen values of a Parquet column chunk ("late materialization"): the
// point-in-time join's gather pass reads a row group's feature values through it when it needs
// a few of its rows (FeatureSourceScan's gather mode, SourceScanOptions::chosen_rows), in place
// of decoding every row with Arrow's reader. Measured by bench/pit_join/pick_floor.cc against
// Arrow's reader (docs/PERFORMANCE.md, "Decoding only the chosen values: measured"; issue 18).
//
// The picker reads the column chunk's pages through parquet's PageReader (each page decompressed,
// nothing decoded), counts a page's non-null values from its definition levels (run by run; a V2
// page's header gives it), decodes the levels of a page that has nulls only as far as its last
// chosen row (to count the non-null values before each), and copies the chosen values: from a
// PLAIN page at their offset (value k at k * width), from a dictionary-encoded page through its
// decoded indices. Every other value stays encoded.
//
// Supported: flat columns (no repetition) of the fixed-width physical types INT32, INT64, FLOAT
// and DOUBLE, whose data pages (V1 or V2) are PLAIN, PLAIN_DICTIONARY or RLE_DICTIONARY. Anything
// else is NotImplemented, and the caller reads that column chunk with Arrow's reader instead.
//
// Functions only; no state between calls. Safe to call from several threads on distinct
// RowGroupReaders.
#pragma once

#include <parquet/file_reader.h>

#include <cstdint>

#include "granary/common/result.h"
#include "granary/common/status.h"

namespace granary {

// Where the picked values of one column go: the i-th chosen row's value at values + i * width
// (width: the physical type's bytes, 4 or 8), and valid[i] 1 when it is not null, else 0 (its
// value bytes then zero).
struct PickedValues {
  uint8_t* values = nullptr;
  uint8_t* valid = nullptr;
};

// Whether PickChosenValues supports leaf column `column` of a file of this schema (its type and
// repetition; a page's encoding is only known when it is read). The bytes of one of its values.
bool PickSupports(const parquet::ColumnDescriptor& column);
int PickValueWidth(const parquet::ColumnDescriptor& column);

// Copies the values of the rows `rows[0, count)` (positions within the row group, ascending and
// distinct, each below its row count) of leaf column `column` of `row_group` to `out`.
// NotImplemented when the column or one of its pages is not supported (part of `out` may then
// be written: read the chunk again another way); Corruption when a page's sizes, levels or
// dictionary indices disagree with its header (no read past a page's bytes).
Status PickChosenValues(parquet::RowGroupReader& row_group, int column, const int64_t* rows,
                        int64_t count, PickedValues out);

}  // namespace granary
