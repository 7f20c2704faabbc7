// Online tiles of window aggregations (docs/ONLINE_LAYOUT.md, "Tiles"): per entity, one partial
// aggregate per aggregation and per tile of the view's granularity, and the fold that combines
// the tiles of the window ending at a read's `now` into values by the same sawtooth rule as the
// kernel (window_kernel.h): tiles with WindowStart(now, window, G) <= tile start <= now.
//
// A tile holds every event e with start <= e < start + G; so a read at `now` counts exactly the
// kernel's events start <= e <= now as long as no stored event is later than `now` (events from
// the future, which only a read at a past instant meets, count in the tile holding `now`).
//
// Stored form (the body of an entity's tile section, opaque to the stores except for the record
// headers, which the Redis script and the RocksDB writer read to drop expired records):
//
//   fingerprint  4 bytes LE: TileSpec::Fingerprint(); records under another are discarded
//   records      each: tile start (8 bytes LE, UTC us, a multiple of G), last event time of
//                the record (8 bytes LE, us), payload length (4 bytes LE), payload
//   payload      per aggregation, in definition order: count (8 bytes LE), then
//                  sum: integer sum (8) and float sum (8); mean: float sum (8);
//                  stddev: mean (8) and sum of squared deviations (8);
//                  min, max: the value when count > 0; first, last: its event time (8) and the
//                  value when count > 0; count_distinct: number of values (4), each value's
//                  canonical bytes (entity-key encoding) with a 4-byte length.
//                values: bool 1 byte, int32 and float32 4, int64, float64, timestamp 8, string
//                and bytes a 4-byte length then the bytes.
//
// Several records may hold the same tile (a push appends one record per event batch); the fold
// combines them in stored order (later records win ties of first/last as later reads do in the
// kernel). Stateless functions; TileAccumulator is one per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"
#include "granary/types/value.h"

namespace arrow {
class Array;
}

namespace granary::aggregation {

// What the tiles of one feature view hold.
struct TileSpec {
  struct Item {
    std::string name;
    AggregationFunction function = AggregationFunction::kCount;
    Duration window;
    ValueType output;
  };
  Duration granularity;
  std::vector<Item> items;  // the view's aggregations, in definition order
  Duration longest_window;

  // The start of the oldest tile any read at `now` needs: tiles before it may be dropped.
  int64_t ExpireBefore(int64_t now_micros) const;
  // A hash of the granularity and the items (function, window, type), stored with the tiles.
  uint32_t Fingerprint() const;
};

// The tile spec of a view with aggregations. InvalidArgument when an aggregation's type is not
// known yet or is a list (lists are not kept in tiles).
Result<TileSpec> TileSpecOf(const FeatureView& view);

// The partial aggregate of one aggregation over some events.
struct TilePartial {
  int64_t count = 0;
  int64_t int_sum = 0;
  double sum = 0;
  double mean = 0;   // stddev
  double m2 = 0;     // stddev
  int64_t time = 0;  // first, last: the chosen event's time
  Value value;       // min, max, first, last
  std::set<std::string> distinct;
};

struct Tile {
  int64_t start = 0;               // UTC us, a multiple of the granularity
  int64_t last_event = 0;          // the latest event time in the tile (UTC us)
  std::vector<TilePartial> parts;  // one per TileSpec item
};

// Builds tiles from events, per entity key. One per thread.
class TileAccumulator {
 public:
  explicit TileAccumulator(const TileSpec& spec) : spec_(spec) {}

  // Adds events: `keys[i]` the entity key of event i, `times` int64 UTC us (no nulls), and per
  // spec item its values column (null for count of every event) and where column (bool; null:
  // every event). InvalidArgument naming the item for a column of a type the function cannot
  // read.
  Status Add(const std::vector<std::string>& keys, const int64_t* times,
             const std::vector<std::shared_ptr<arrow::Array>>& values,
             const std::vector<std::shared_ptr<arrow::Array>>& wheres);

  // Every entity's tiles, by key, oldest tile first.
  const std::map<std::string, std::map<int64_t, Tile>>& entities() const { return entities_; }

 private:
  const TileSpec& spec_;
  std::map<std::string, std::map<int64_t, Tile>> entities_;
};

// Appends the records of `tiles` (no fingerprint) to `out`.
void EncodeTileRecords(const TileSpec& spec, const std::map<int64_t, Tile>& tiles,
                       std::string* out);

// The tile body that results from appending `records` to a `stored` body (empty: none) with
// `fingerprint`, after dropping the stored records of another fingerprint (or a malformed body),
// of tiles before `expire_before`, and, with `replace_through`, those whose last event is not
// after it (OnlineStore::WriteTiles; the Redis script does the same on the server).
std::string MergeTileBody(std::string_view stored, uint32_t fingerprint,
                          std::optional<int64_t> replace_through, int64_t expire_before,
                          std::string_view records);

// The values of the spec's items at `now` from a stored tile body (fingerprint and records),
// one per item (count and count_distinct 0, others null when the window is empty), and the
// latest event time of the records read into `*last_event` (0 when none). Returns false in
// `*matches` when the body's fingerprint is not the spec's (the values are then empty).
// Corruption when the body is malformed.
Status FoldTiles(const TileSpec& spec, std::string_view body, int64_t now_micros,
                 std::vector<Value>* values, int64_t* last_event, bool* matches);

}  // namespace granary::aggregation
