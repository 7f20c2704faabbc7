// What an online read asks for (OnlineReadRequest) and what it returns (OnlineFeatures): for each
// requested feature of each view and each entity row, a status, the value and the row's event
// timestamp, columnar, read in place from the fetched bytes (no allocation per value).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/fork_join.h"
#include "granary/common/result.h"
#include "granary/online/entity_key.h"
#include "granary/online/value_codec.h"
#include "granary/online/view_layout.h"

namespace arrow {
class Array;
}

namespace granary {

// Feast's field statuses, with its numbering (gRPC FieldStatus).
enum class FeatureStatus : uint8_t {
  // The value could not be read: the store node holding it is down. Only in a partial read
  // (OnlineReadRequest::allow_partial); Feast's name for a value of unknown status.
  kInvalid = 0,
  kPresent = 1,
  kNullValue = 2,  // the entity has a fresh row for the view, and this feature is null in it
  // No row for the entity (or only one written under another schema); or, for one feature, a
  // row written under an earlier schema of the view that did not have the feature (added or
  // retyped since).
  kNotFound = 3,
  kOutsideMaxAge = 4,  // the row is older than now - the view's ttl
};

// "PRESENT", "NULL_VALUE", ...
std::string_view FeatureStatusName(FeatureStatus status);

// The features to read from one view, for every entity row.
struct ViewRead {
  std::shared_ptr<const ViewLayout> view;
  std::vector<int> features;  // indices into view->features(), in output order
  // One key per entity row. Views with the same join keys should share one column: a store then
  // fetches each entity once.
  std::shared_ptr<const EntityKeyColumn> keys;
};

struct OnlineReadRequest {
  std::vector<ViewRead> views;
  // Partial answers: when some of a store's nodes are down (Redis Cluster slots whose master is
  // unreachable), the entity rows stored there read INVALID and the others are answered. The
  // read still fails (Unavailable) when no row could be read. Without it, any unreachable row
  // fails the read. Stores on one node (RocksDB, standalone Redis) answer all or nothing.
  bool allow_partial = false;
  // A large read may be split across this pool's threads (the caller included); null: read on
  // the calling thread. Stores that wait on the network rather than the CPU (Redis) ignore it.
  ForkJoinPool* split = nullptr;
  // Every view's keys have this many rows.
  size_t num_rows() const { return views.empty() ? 0 : views[0].keys->size(); }
  // InvalidArgument when a view has no layout or keys, or the key columns differ in length.
  Status Validate() const;
};

// The result of one read. Movable; thread-compatible.
class OnlineFeatures {
 public:
  OnlineFeatures() = default;
  OnlineFeatures(OnlineFeatures&&) = default;
  OnlineFeatures& operator=(OnlineFeatures&&) = default;

  size_t num_rows() const { return num_rows_; }
  size_t num_views() const { return views_.size(); }
  const ViewRead& view_read(size_t v) const { return views_[v]; }

  // PRESENT (a fresh row), NOT_FOUND or OUTSIDE_MAX_AGE (INVALID: not read, in a partial read),
  // for the view's row of entity `r`.
  FeatureStatus row_status(size_t v, size_t r) const { return cells_[cell(v, r)].status; }
  // The row's event timestamp; the epoch when NOT_FOUND.
  Timestamp event_timestamp(size_t v, size_t r) const {
    return Timestamp::FromMicros(cells_[cell(v, r)].event_micros);
  }
  // Feature j of views[v].features for entity row r: PRESENT, NULL_VALUE, NOT_FOUND or
  // OUTSIDE_MAX_AGE (or INVALID in a partial read).
  FeatureStatus status(size_t v, size_t j, size_t r) const {
    FeatureStatus s = row_status(v, r);
    if (s != FeatureStatus::kPresent) return s;
    const uint32_t at = offsets_[offset_index(v, j, r)];
    if (at == kNullOffset) return FeatureStatus::kNullValue;
    return at == kMissingOffset ? FeatureStatus::kNotFound : FeatureStatus::kPresent;
  }
  // The value; null unless status() is PRESENT.
  ValueRef value(size_t v, size_t j, size_t r) const {
    ValueRef ref;
    ref.type = views_[v].view->features()[views_[v].features[j]].type;
    if (row_status(v, r) == FeatureStatus::kPresent) {
      uint32_t at = offsets_[offset_index(v, j, r)];
      if (at < kMissingOffset) ref.data = arena_.data() + at;
    }
    return ref;
  }
  // Feature j of view v for every row, as an Arrow array of ToArrowType(type); nulls where the
  // status is not PRESENT.
  Result<std::shared_ptr<arrow::Array>> ToArrow(size_t v, size_t j) const;

 private:
  friend class OnlineFeaturesBuilder;
  struct Cell {
    int64_t event_micros = 0;
    FeatureStatus status = FeatureStatus::kNotFound;
  };
  size_t cell(size_t v, size_t r) const { return v * num_rows_ + r; }
  size_t offset_index(size_t v, size_t j, size_t r) const {
    return offset_base_[v] + r * views_[v].features.size() + j;
  }

  size_t num_rows_ = 0;
  std::vector<ViewRead> views_;
  std::string arena_;                // fetched bytes; bodies and values point into it
  std::vector<Cell> cells_;          // per (view, row)
  std::vector<size_t> offset_base_;  // per view: first index into offsets_
  // Per (view, row, requested feature): arena offset, kNullOffset or kMissingOffset.
  std::vector<uint32_t> offsets_;
};

// The most bytes of stored values one read may fetch (just under 4 GiB): values are found by
// 32-bit offsets into them, below kMissingOffset.
inline constexpr size_t kMaxOnlineReadBytes = size_t{kMissingOffset};

// Used by stores to assemble an OnlineFeatures: append fetched bytes to arena(), point each
// (view, row) at its body, then Finish. One per read; not thread-safe.
class OnlineFeaturesBuilder {
 public:
  // `max_bytes`: the limit on arena() (kMaxOnlineReadBytes; tests pass less).
  explicit OnlineFeaturesBuilder(const OnlineReadRequest& request,
                                 size_t max_bytes = kMaxOnlineReadBytes);

  std::string* arena() { return &out_.arena_; }
  // The body of view v for row r is arena()[offset, offset + size).
  void SetBody(size_t v, size_t r, size_t offset, size_t size) {
    bodies_[out_.cell(v, r)] = {static_cast<uint32_t>(offset), static_cast<uint32_t>(size)};
  }
  // View v of row r could not be read (a partial read): INVALID, with no body.
  void SetUnavailable(size_t v, size_t r) {
    out_.cells_[out_.cell(v, r)].status = FeatureStatus::kInvalid;
  }
  // Folds the tiles of aggregation views at `now` (aggregation/tiles.h) into bodies of their
  // values, whose event timestamp is the entity's latest event (an entity without tiles reads as
  // an empty window: count 0, the others null, event time the epoch). Checks fingerprints and ttl
  // against `now`, finds the requested values (through the view's
  // earlier schema for a body written under one: ViewLayout::FindEarlier). Corruption when a
  // body of the right schema is malformed, naming the view; InvalidArgument when the arena holds
  // more than the limit (the offsets set by SetBody would have wrapped).
  Result<OnlineFeatures> Finish(Timestamp now);

 private:
  struct Span {
    uint32_t offset = 0;
    uint32_t size = 0;  // 0: not found
  };
  // Replaces the tile sections of views with tiles by bodies of their values at `now`.
  Status FoldTileBodies(Timestamp now);
  OnlineFeatures out_;
  std::vector<Span> bodies_;  // per (view, row)
  size_t max_bytes_;
};

}  // namespace granary
