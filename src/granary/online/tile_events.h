// From raw events (Arrow batches) to the arguments of OnlineStore::WriteTiles: the one place that
// materialization and pushes turn a view's events into tile records (aggregation/tiles.h,
// docs/ONLINE_LAYOUT.md "Tiles"). Stateless functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "granary/aggregation/tiles.h"
#include "granary/common/result.h"
#include "granary/online/entity_key.h"
#include "granary/online/view_layout.h"

namespace arrow {
class RecordBatch;
}

namespace granary {

// Adds the events of `batch` to `acc`: columns named as `tiles_view`'s join keys,
// `event_timestamp` (any timestamp unit, date or ISO 8601 string; a null time is an error naming
// the row), and the columns `view`'s aggregations read (`column`, `where`), by definition name.
// InvalidArgument naming the missing column, a null key or a `where` that is not bool.
Status AddEventsToTiles(const ViewLayout& tiles_view, const FeatureView& view,
                        const arrow::RecordBatch& batch, aggregation::TileAccumulator* acc);

// The tiles of `acc` as WriteTiles' keys and records (one per entity), with the roll-ups of
// `rollups` (aggregation::EncodeTileRecords: only a write that holds every event of those
// coarse tiles and replaces the stored records through `rollups->through`).
void TileWrites(const aggregation::TileSpec& spec, const aggregation::TileAccumulator& acc,
                EntityKeyColumn* keys, std::vector<std::string>* records,
                std::optional<aggregation::RollupRange> rollups = std::nullopt);

}  // namespace granary
