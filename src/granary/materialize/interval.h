// Which rows a materialization reads for one view, and whether it may move the view's watermark.
// The rules (docs/OPERATIONS.md, "Watermarks"):
//   - materialize-incremental END reads event times in (watermark, END]: rows exactly at the
//     watermark were written by the run that set it, so they are not read (and rewritten) again.
//     Without a watermark it reads [END - ttl, END], or everything up to END when the ttl is 0.
//     It always advances the watermark to END on success.
//   - materialize START END reads [START, END] and advances the watermark to END only when the
//     interval leaves no gap after it (START <= watermark + 1 us) or there is none yet; a later
//     START would skip the rows in between silently, so the watermark then stays.
//   - A watermark reached under another online layout (the view's schema changed with a later
//     apply, so the online store reads the old values as NOT_FOUND) or in another online store
//     (granary.yaml now points at a new, empty store) counts as no watermark: the next
//     incremental run starts the view over.
// Plain functions; thread-safe.
#pragma once

#include <limits>
#include <optional>
#include <string>

#include "granary/common/time.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

class ViewLayout;

// The interval start recorded in the run history for "from the first row".
inline constexpr Timestamp kUnboundedStart =
    Timestamp::FromMicros(std::numeric_limits<int64_t>::min());

struct ViewInterval {
  std::optional<Timestamp> start;  // inclusive; nullopt: from the first row
  Timestamp end;                   // inclusive
  // The view's watermark, when it was reached under the current layout.
  std::optional<Timestamp> watermark;
  // A watermark exists but under another (or, from an older registry, unknown) layout.
  bool layout_changed = false;
  bool advances_watermark = false;
  // Incremental: the watermark is at or after END, so there is nothing to read.
  bool up_to_date = false;
  // Why the watermark does not move, for messages; empty when it does.
  std::string watermark_note;
};

// The layout tag stored with a watermark: the schema fingerprint (with the tiles' fingerprint
// for a view with aggregations) and the online store's identity
// (its type and where it is: RocksDB path, Redis host:port and db, cluster seed nodes; never
// credentials), each as 8 hex digits, "5e3a91c0-0b1d44e2".
std::string LayoutTag(const ViewLayout& layout, const OnlineStoreConfig& store);

ViewInterval PlanIncremental(const std::optional<WatermarkState>& state,
                             const std::string& layout_tag, Duration ttl, Timestamp end);
ViewInterval PlanInterval(const std::optional<WatermarkState>& state, const std::string& layout_tag,
                          Timestamp start, Timestamp end);

// "2026-11-25T02:00:00Z", or "the first row" for an unbounded start.
std::string FormatIntervalStart(std::optional<Timestamp> start);

}  // namespace granary
