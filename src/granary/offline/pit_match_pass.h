// The point-in-time join's first pass (pit_match_pass.cc): a view's join keys and times read and
// each entity row's feature row chosen, streamed through the entity side, matched in memory, or
// partitioned by key with spill (pit_plan.h decides), and MatchAhead's hand-off of that result
// to the join's second pass (the gather, pit_join.cc). Internal to the offline join; one call
// per thread, the result owned by whoever holds it.
#pragma once

#include <arrow/api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/pit_join.h"

namespace granary {

// A view's match pass, as MatchAhead hands it to the join of the same view (JoinOptions::
// matched), or as the join runs it itself.
struct MatchedView {
  const FeatureView* view = nullptr;  // the join it is for: this view over `rows` entity rows
  int64_t rows = 0;
  SourceSnapshot files;  // the listing both passes read
  std::vector<ChosenRow> chosen;
  SourceScanStats scan;  // the match pass's (last) read
  uint64_t fingerprint = 0;
  ViewJoinStats stats;  // how the match ran
  // `chosen` made the gather pass's list already (PutInReadOrder), on the thread that matched:
  // it is held beside the other work at its size, 16 bytes a matched entity row.
  bool in_read_order = false;
};

// Pass 1: each entity row's chosen feature row (by read position, FeatureSourceScan::
// positions), an entry per entity row (index -1: none). `fingerprint`: the files the (last)
// read planned, FilesFingerprint. With `declined` (MatchAhead), only a match that streams with
// the entity side options.entity_side holds runs; any other sets *declined and returns before
// reading a row. `declined` may be null.
Result<std::vector<ChosenRow>> MatchPass(const arrow::RecordBatch& entities,
                                         const ViewSource& source, const SourceSnapshot& files,
                                         const JoinOptions& options, ViewJoinStats* stats,
                                         SourceScanStats* scan_stats, uint64_t* fingerprint,
                                         bool* declined);

// The match pass's list (a ChosenRow per entity row) made the gather pass's: only the matched
// entity rows, each with the entity row that chose it (EntityRowOf), in read order; compacted,
// then sorted into a list of its own size (16 bytes a matched entity row).
void PutInReadOrder(std::vector<ChosenRow>* chosen);

// `values` as an Arrow int64 array (row numbers for Take and for spilled partitions).
Result<std::shared_ptr<arrow::Array>> Int64Array(const std::vector<int64_t>& values);

}  // namespace granary
