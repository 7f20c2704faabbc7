// The embedded engine's second pass of latest rows: read the view's source again, now with its
// features, and keep exactly the rows the first pass chose (latest_rows.h), as a stream.
//
// The scan decodes files ahead on its own threads, so the caller's work on one batch (writing it
// online) overlaps reading the next. If the second pass does not find the first pass's rows at the
// same positions with the same event times (files added, removed or rewritten in between), Next()
// fails with FailedPrecondition: a caller that wrote some batches already wrote correct rows
// (each is some entity's row), and its watermark must not move.
#pragma once

#include <memory>
#include <vector>

#include "granary/offline/embedded/latest_rows.h"
#include "granary/offline/offline_engine.h"

namespace granary {

// `chosen` sorted by position, from SelectLatestRows over the same `source` (whose stats were
// `first_pass`). `source.options` gives the range and the features (empty: all). Batches have at
// most `batch_rows` rows of the source each, fewer after keeping the chosen ones.
Result<std::unique_ptr<OfflineBatchStream>> OpenLatestRowsStream(const ViewSource& source,
                                                                 const LatestRowsStats& first_pass,
                                                                 std::vector<ChosenRow> chosen,
                                                                 int64_t batch_rows,
                                                                 const CancelFlag* cancel);

// The generic statistics of a first pass.
OfflineReadStats ToReadStats(const std::string& view, const SourceScanStats& scan);

}  // namespace granary
