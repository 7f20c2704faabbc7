// Push: rows of a push source written to the online store and/or appended to its batch source
// offline (Feast's push; the feature server's POST /push, docs/SERVING.md, and the Python SDK's
// FeatureStore.push).
//
// A push source (registry/definitions.h) names a batch source; the feature views whose source is
// the push source are written online. Pushed rows are named as the batch source's columns (what
// its files hold, before field_mapping): every join key, feature and the timestamp_field of each
// online view reading the push source, optionally its created_timestamp_column, and for an
// offline append any other column of the source.
//
// Order of a push: everything is checked first (columns, types, nulls in keys and times), then
// the offline append (OfflineEngine::Append: one atomic file, Delta commit or engine write), then
// one write-if-newer batch per online view. A failure after the offline append leaves rows
// offline that the next materialization brings online; a failure before it writes nothing. Each
// view's batch is atomic per entity, not across views.
//
// This is the write path below serving: it takes the offline engine and the online store, and
// knows no transport. The HTTP server parses requests (serving/push.h) and calls Push; the Python
// SDK calls Push with an Arrow table. Thread-safe; Push blocks (run it off the server's workers).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"
#include "granary/online/online_store.h"
#include "granary/push/push_log.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Table;
}

namespace granary {

enum class PushTarget { kOnline, kOffline, kOnlineAndOffline };
// "online", "offline", "online_and_offline" (Feast's names).
std::string_view PushTargetName(PushTarget to);
Result<PushTarget> ParsePushTarget(std::string_view text);

// The type of each column a push to `push_source` may carry (by source column name): the join
// keys and features of every view reading it, and its batch source's timestamp columns.
// InvalidArgument when `push_source` is not a push source, with the push sources there are.
Result<std::map<std::string, ValueType>> PushColumnTypes(const Definitions& defs,
                                                         const std::string& push_source);

// How far ahead of the clock a pushed row's event (or created) time may be: the producers' clock
// skew. A row far in the future would shadow every real value of its entity until then
// (write-if-newer) and be served as PRESENT, so Push refuses it.
inline constexpr Duration kDefaultPushMaxClockSkew = Duration::Minutes(5);

// What a push needs: the applied definitions, the online layouts of their views, the online
// store, the offline engine (for appends; may be null when no push targets offline), and the
// clock with the tolerance the event times are checked against. Not owned; they must outlive
// the call.
struct PushContext {
  const Definitions* definitions = nullptr;
  const ViewLayouts* layouts = nullptr;
  OnlineStore* store = nullptr;
  OfflineEngine* engine = nullptr;
  const Clock* clock = &SystemClock::Default();
  PushLog* log = nullptr;  // records the online writes (push_log.h); may be null
  Duration max_clock_skew = kDefaultPushMaxClockSkew;  // >= 0
};

struct PushResult {
  int64_t rows = 0;
  std::vector<std::string> views;  // online views written, in definition order
  WriteStats online;               // summed over the views
  OfflineAppendResult offline;     // files (and Delta version) appended; empty when online only
};

// The push core (see the header comment). `rows` may use any Arrow types that convert to the
// declared ones without loss (CastToValueType), and timestamps as any timestamp type or RFC 3339
// text. InvalidArgument for a bad push (naming the column and row), including a row whose event
// or created time is later than clock->Now() + max_clock_skew (whatever the target: offline rows
// reach the online store at the next materialization); Unavailable when the store is down,
// IOError when the offline append fails, and the engine's kNotImplemented when it cannot append.
Result<PushResult> Push(const PushContext& context, const std::string& push_source_name,
                        const arrow::Table& rows, PushTarget to);

}  // namespace granary
