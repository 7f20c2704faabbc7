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
//   records      each: tile start (8 bytes LE, UTC us), last event time (8 bytes LE, us),
//                length (4 bytes LE: bits 0-30 the payload's length, bit 31 set for a roll-up),
//                payload
//   fine record  a tile of G: start a multiple of G, last the record's latest event, payload
//   roll-up      a coarse tile of R = TileSpec::rollup (a multiple of G): start a multiple of R,
//                last the EARLIEST last event of the fine records it covers (so that the
//                writers' drop rule, "last <= replace_through", drops it whenever it drops any
//                of them), payload: R in us (8 bytes LE), the number of fine records it covers
//                (4 bytes LE), then a payload as a fine record's: the merge of those records
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
// kernel).
//
// Roll-ups bound the work of a read: a read of a 30-day window at 1 h decodes at most the fine
// records of two coarse tiles (the window's tail and head, where it does not cover whole coarse
// tiles) and one roll-up per coarse tile in between (R = 1 day: at most 48 + 30 records instead
// of 720). The fine records stay: the tail of a window moves by G, so every coarse tile is, at
// some read, the partial one at the tail. A roll-up is used for a coarse tile only when it
// covers exactly the fine records of that tile stored BEFORE it: writers add roll-ups only right
// after their own fine records of the same write (no other record of that coarse tile survives
// that write), only ever append records after those they keep, and drop a roll-up whenever they
// drop one of its records (its `last` is the earliest; expiry drops by start, and its start is
// the earliest), so the fine records it covers are always stored before it, and "it covers as
// many fine records as are stored before it in its coarse tile" proves they are the same. A
// push into a coarse tile that has a roll-up appends a fine record after it: reads merge the
// roll-up and then the records stored after it (in stored order, so later records still win
// ties of first/last), until the next materialization rewrites both. Stateless functions;
// TileAccumulator is one per thread.
#pragma once

#include <cstdint>
#include <limits>
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
  // The span of roll-up records (a multiple of the granularity), or zero: no roll-ups. Chosen by
  // TileSpecOf (RollupSpan) from the granularity and the longest window.
  Duration rollup;

  // The start of the oldest tile any read at `now` needs: tiles before it may be dropped.
  int64_t ExpireBefore(int64_t now_micros) const;
  // A hash of the granularity and the items (function, window, type), stored with the tiles.
  uint32_t Fingerprint() const;
};

// The roll-up span that bounds the records a read of `longest` at `granularity` decodes: among
// 15m, 1h, 6h, 1d and 7d, the multiple R of the granularity (R > G) that makes 2 * R / G +
// longest / R (the fine records of a partial coarse tile at each end, and one roll-up per whole
// coarse tile) smallest, when that is fewer than the longest / G fine records alone; otherwise
// zero, no roll-ups (30d at 1h gives 1d, 90d at 1h 1d, 2d at 1h 6h, 1h at 1m 15m, 730d at 1d
// 7d; 3h at 1h and 15m at 1m none).
Duration RollupSpan(Duration granularity, Duration longest);

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

  // Tiles held, and the heap bytes they take, estimated from the sizes of the nodes and values
  // added (map and set nodes, partials, keys and distinct values; not allocator slack), in bytes.
  // What a caller holding several accumulators' worth of events compares with its budget.
  int64_t tiles() const { return tiles_; }
  int64_t ApproximateBytes() const { return bytes_; }

 private:
  const TileSpec& spec_;
  std::map<std::string, std::map<int64_t, Tile>> entities_;
  int64_t tiles_ = 0;
  int64_t bytes_ = 0;
};

// The coarse tiles a write rolls up: those [c, c + spec.rollup) with from <= c and
// c + spec.rollup - 1 <= through, in UTC us. A write must hold every event of such a coarse tile
// and know that no other record of it stays stored: materialization, which reads every event of
// [from, through] and replaces the stored records whose last event is at or before `through`.
struct RollupRange {
  int64_t from = 0;
  int64_t through = 0;
};

// Appends the records of `tiles` (no fingerprint) to `out`: one fine record per tile, then, with
// `rollups` and a spec with a roll-up span, one roll-up per coarse tile in the range that holds
// tiles.
void EncodeTileRecords(const TileSpec& spec, const std::map<int64_t, Tile>& tiles, std::string* out,
                       std::optional<RollupRange> rollups = std::nullopt);

// The tile body that results from appending `records` to a `stored` body (empty: none) with
// `fingerprint`, after dropping the stored records of another fingerprint (or a malformed body),
// of tiles before `expire_before`, and, with `replace_through`, those whose last event is not
// after it and whose start is at or after `replace_from` (OnlineStore::WriteTiles; the Redis
// script does the same on the server). A full materialization replaces from the oldest tile
// (the default); an incremental one from IncrementalTileStart.
std::string MergeTileBody(std::string_view stored, uint32_t fingerprint,
                          std::optional<int64_t> replace_through, int64_t expire_before,
                          std::string_view records,
                          int64_t replace_from = std::numeric_limits<int64_t>::min());

// Where an incremental materialization after one that read every event up to `watermark` (UTC
// us) starts reading again: the start of the coarse tile (the tile, without roll-ups) holding
// watermark + 1 us. Its records and roll-ups are all rebuilt from the events read, so the
// roll-up of that coarse tile, partial at the last run, is written whole; every stored record
// of an earlier tile covers events that the last run read in full. docs/ONLINE_LAYOUT.md,
// "Incremental runs".
int64_t IncrementalTileStart(const TileSpec& spec, int64_t watermark);

// The values of the spec's items at `now` from a stored tile body (fingerprint and records),
// each aggregation from the fine records of its window's partial coarse tiles and the valid
// roll-ups of the whole ones (see above; a roll-up of another span is ignored),
// one per item (count and count_distinct 0, others null when the window is empty), and the
// latest event time of the records read into `*last_event` (0 when none). Returns false in
// `*matches` when the body's fingerprint is not the spec's (the values are then empty).
// Corruption when the body is malformed.
Status FoldTiles(const TileSpec& spec, std::string_view body, int64_t now_micros,
                 std::vector<Value>* values, int64_t* last_event, bool* matches);

}  // namespace granary::aggregation
