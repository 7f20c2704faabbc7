// The online tiles of one aggregation view in a materialization run (docs/ONLINE_LAYOUT.md,
// "Tiles"): events read from the offline engine, folded into tiles and written to the online
// store, within the run's memory budget. Internal to materialize/.
#pragma once

#include <optional>

#include "granary/common/status.h"
#include "granary/common/time.h"
#include "granary/materialize/run_context.h"
#include "granary/online/view_layout.h"

namespace granary {

// Materializes the tiles of `view` (layout `tiles`) for [.., out->end]; after a watermark
// (`incremental_after`) only from the coarse tile holding it. Fills the tile counts of `out`.
Status MaterializeTiles(const RunContext& ctx, const FeatureView& view, const ViewLayout& tiles,
                        std::optional<Timestamp> incremental_after, ViewMaterialization* out);

}  // namespace granary
