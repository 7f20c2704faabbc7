// Feast 0.67's remote offline store protocol (its client: feast/infra/offline_stores/remote.py;
// its server: feast/offline_server.py), as `granary serve-offline` reads it. docs/FEAST.md,
// "Feast's remote offline store".
//
// Every call of Feast's client is an Arrow Flight call whose FlightDescriptor is a command: a
// JSON object {"command_id": uuid, "api": NAME, ...parameters}. Read APIs go through one
// DoExchange: the client uploads a table (the entity_df, or a one-row placeholder table with the
// single column `key` when there is none), then reads the result's batches back on the same
// stream. Write APIs go through DoPut. Feast 0.67 no longer uses GetFlightInfo/DoGet (older
// clients did: do_put, then get_flight_info, then do_get), so the protocol is not stable across
// Feast's versions: only the pinned version's is supported.
//
// Pure functions; thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/types/feature_ref.h"

namespace arrow {
class RecordBatch;
class Schema;
class Table;
}  // namespace arrow

namespace granary::serving {

// The APIs Feast's remote offline store client calls, by the name it sends in "api".
inline constexpr std::string_view kFeastGetHistoricalFeatures = "get_historical_features";

// One get_historical_features command. Fields are as Feast's client sends them.
struct FeastHistoricalCommand {
  std::string command_id;
  std::string project;
  std::vector<FeatureRef> features;             // "feature_refs": view:feature, request order
  std::vector<std::string> feature_view_names;  // the views of those features
  bool full_feature_names = false;
  std::string entity_df_sql;  // set when the client gave a SQL string instead of a data frame
  // Entity-less retrieval (no entity_df, a time range instead): set when the client sent them.
  std::optional<std::string> start_date;
  std::optional<std::string> end_date;
};

// A parsed command: its api, and the parameters of the one Granary serves.
struct FeastOfflineCommand {
  std::string api;
  std::optional<FeastHistoricalCommand> historical;  // api == get_historical_features
};

// Parses a Flight descriptor's command. InvalidArgument, saying what is wrong and what Feast's
// client sends, for text that is not a JSON object, a missing or non-string "api", and for
// get_historical_features: a missing or mistyped parameter, a feature ref that is not
// "view:feature", a feature view projection with an alias (name_aliases other than null: Granary
// has no aliases), or lists of different lengths. Other apis are returned unparsed (the caller
// answers that it does not serve them, naming what it does).
Result<FeastOfflineCommand> ParseFeastOfflineCommand(std::string_view text);

// The message for an api that Granary does not serve: what Feast does with it, what Granary
// serves, and what to use instead.
std::string UnsupportedFeastOfflineApi(std::string_view api);

// The entity rows a client uploaded on a DoExchange (its batches in order, under the schema it
// sent first) as one table, checked as data from the network must be: Arrow's IPC reader checks
// the messages' layout but not the values in them (offsets of strings and lists, dictionary
// indices, UTF-8), which every later reader of the table trusts. InvalidArgument saying what is
// wrong (the column, the row) and that the client must send valid Arrow data.
Result<std::shared_ptr<arrow::Table>> UploadedEntityTable(
    const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches);

// Whether an uploaded table is the one-row placeholder (the single column `key`) that Feast's
// client sends when a call has no entity_df (remote.py, _create_empty_table).
bool IsFeastPlaceholder(const arrow::Table& table);

}  // namespace granary::serving
