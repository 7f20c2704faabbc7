// Feast's write-to-online-store: rows of one feature view written straight to the online store
// (the feature server's POST /write-to-online-store, docs/SERVING.md). Feast's Python SDK sends
// them when its online store is `type: remote`: its `write_to_online_store`, and its `push`, which
// the SDK turns into one such write per view reading the push source.
//
//   {"feature_view_name": "driver_hourly_stats",
//    "df": {"driver_id": [1001], "conv_rate": [0.5], "event_timestamp": ["2026-11-23T02:00:00"],
//           "created": [null]},
//    "allow_registry_cache": false, "transform_on_write": true}
//
// Unlike a push, the columns are named as the view sees them (join keys and feature names, after
// the source's field_mapping). The event time is the column `event_timestamp` (the name Feast's
// client always sends) or the source's timestamp_field; the created time, optional, is `created`
// or the source's created_timestamp_column. Rows are written if newer (online_store.h), not
// overwritten as Feast's own stores do. Thread-safe; WriteToOnlineStore blocks.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "granary/common/result.h"
#include "granary/online/online_store.h"
#include "granary/registry/definitions.h"
#include "granary/serving/push.h"

namespace arrow {
class RecordBatch;
}

namespace granary {

struct OnlineWriteRequest {
  std::string feature_view_name;
  // Columns as OnlineStore::WriteBatch takes them for the view: join keys, event_timestamp,
  // created_timestamp when given, every feature.
  std::shared_ptr<arrow::RecordBatch> rows;
  int64_t num_rows = 0;
};

// Parses and checks a request against the definitions and the online layouts: the view must be
// online; every join key, the event time and every feature given; no other column (the message
// lists the ones there are); no null key or event time. InvalidArgument says what and where.
Result<OnlineWriteRequest> ParseOnlineWriteRequest(std::string_view json, const Definitions& defs,
                                                   const ViewLayouts& layouts);

// Writes the rows (write-if-newer) after checking that no event or created time is later than
// the clock plus the clock-skew tolerance (as Push). Uses context's store, clock, max_clock_skew
// and log; Unavailable when the store is down.
Result<WriteStats> WriteToOnlineStore(const PushContext& context,
                                      const OnlineWriteRequest& request);

// The JSON answer: {"feature_view_name", "rows", "written", "skipped_older"}.
std::string OnlineWriteResultJson(const OnlineWriteRequest& request, const WriteStats& stats);

}  // namespace granary
