// The embedded engine's second pass of latest rows: read the view's source again (the same files:
// one SourceSnapshot for both passes), now with its features, and keep exactly the rows the first
// pass chose (latest_rows.h), found by their read positions, as a stream. The event times are not
// read again when the first pass kept them (they fill the column; otherwise the column is read
// with the features, unfiltered), and row groups holding no chosen row are left unread.
//
// The scan decodes files ahead on its own threads, so the caller's work on one batch (writing it
// online) overlaps reading the next. If the second pass does not plan the same row groups of the
// same files (their Parquet footers: FilesFingerprint), does not find the first pass's rows at
// their positions, or a file's size or time changed by the end (files removed or rewritten in
// between), Open or Next() fails with FailedPrecondition: a caller that wrote some batches
// already wrote correct rows (each is some entity's row), and its watermark must not move.
#pragma once

#include <memory>
#include <vector>

#include "granary/offline/embedded/latest_rows.h"
#include "granary/offline/offline_engine.h"

namespace granary {

// `chosen` from SelectLatestRows over the same `source` and `files` (whose stats were
// `first_pass`). `source.options` gives the range and the features (empty: all).
// Batches have at most `batch_rows` rows of the source each, fewer after keeping the chosen ones;
// their columns are the first pass's scan's with the features (FeatureSourceScan).
Result<std::unique_ptr<OfflineBatchStream>> OpenLatestRowsStream(
    const ViewSource& source, SourceSnapshot files, const LatestRowsStats& first_pass,
    LatestRowsChoice chosen, int64_t batch_rows, const CancelFlag* cancel);

// The generic statistics of a first pass.
OfflineReadStats ToReadStats(const std::string& view, const SourceScanStats& scan);

}  // namespace granary
