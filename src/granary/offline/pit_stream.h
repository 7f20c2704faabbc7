// StreamingMatcher: the point-in-time match with memory that depends on the entity rows only.
//
// The entity rows are grouped by join key (a hash table of groups, each group's rows sorted by
// time). Each feature row, as it streams by, is "offered" to the first entity row of its key whose
// time is at or after the feature row's activation time: its event time, or with the created
// timestamp cutoff the later of its event and created times. An entity row's choice is then the
// greatest offer (by event time, created time, read order) made to it or to an earlier row of its
// group, a running maximum along the group; it is dropped when its event time is older than the
// entity row's time minus the ttl (then every other offer is older too). This gives exactly the
// rules of docs/POINT_IN_TIME.md without sorting or holding the feature rows.
//
// Offer() may be called from one thread at a time (not always the same one); it uses `threads`
// workers inside, each taking the rows of the keys whose hash falls to it, so that one array of
// best offers serves them all: the calling thread and `threads - 1` helper threads that the
// matcher starts at its first Offer and keeps, asleep between batches, until it is destroyed.
//
// The grouping depends on the entity rows only, so one matcher serves several views in turn
// (Restart: every offer forgotten, another ttl), and the grouping is built once.
#pragma once

#include <memory>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/pit_join.h"

namespace granary {

class StreamingMatcher {
 public:
  // `entity_keys` and `entity_ts` (timestamp[us, UTC]) must outlive the matcher.
  static Result<std::unique_ptr<StreamingMatcher>> Make(const KeyColumns* entity_keys,
                                                        const arrow::Array* entity_ts, Duration ttl,
                                                        bool created_timestamp_cutoff, int threads);

  // Bytes the matcher needs at its peak for `entity_rows` entity rows (any number of threads),
  // for budgeting.
  static int64_t MemoryFor(int64_t entity_rows, int threads);

  // Offers the rows of one batch. Row i's read index is `row_index[i]` (int64, ascending,
  // after every index of earlier batches) when given, else `index_offset + i`. `keys` must have
  // the entity keys' types.
  Status Offer(const KeyColumns& keys, const arrow::Array& event_ts, const arrow::Array* created_ts,
               int64_t index_offset, const arrow::Array* row_index = nullptr);

  // The chosen row of each entity row. Call once, after the last Offer.
  std::vector<ChosenRow> Finish();

  // Makes the matcher new again over the same entity rows, for another view's feature rows:
  // every offer forgotten, `ttl` and `created_timestamp_cutoff` as Make's. The grouping of the
  // entity rows (the sort) is kept, and with it the memory: nothing is allocated.
  void Restart(Duration ttl, bool created_timestamp_cutoff);

  ~StreamingMatcher();

 private:
  StreamingMatcher() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
