#include "granary/serving/flight/feast_offline_command.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <boost/json.hpp>

#include "granary/common/json.h"

namespace granary::serving {
namespace {

// An InvalidArgument that shows what a well-formed command looks like.
Status Invalid(std::string_view what) {
  return Status::InvalidArgument(
      fmt::format("Feast offline command: {} (Feast 0.67's remote offline store client sends "
                  "{{\"api\": \"get_historical_features\", \"feature_refs\": [\"view:feature\", "
                  "...], \"feature_view_names\": [...], \"name_aliases\": [null, ...], "
                  "\"project\": \"...\", \"full_feature_names\": false}})",
                  what));
}

Result<std::vector<std::string>> StringList(const boost::json::value& command,
                                            std::string_view name, bool allow_nulls) {
  const boost::json::value* v = JsonMember(command, name);
  if (v == nullptr) return Invalid(fmt::format("'{}' is missing", name));
  if (!v->is_array()) {
    return Invalid(fmt::format("'{}' must be a list, not {}", name, JsonKindName(*v)));
  }
  std::vector<std::string> out;
  out.reserve(v->as_array().size());
  for (const boost::json::value& item : v->as_array()) {
    if (item.is_null() && allow_nulls) {
      out.emplace_back();
      continue;
    }
    if (!item.is_string()) {
      return Invalid(fmt::format("'{}' must hold strings, not {}", name, JsonKindName(item)));
    }
    out.emplace_back(JsonStringView(item.as_string()));
  }
  return out;
}

Result<std::optional<std::string>> OptionalString(const boost::json::value& command,
                                                  std::string_view name) {
  const boost::json::value* v = JsonMember(command, name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) {
    return Invalid(fmt::format("'{}' must be a string, not {}", name, JsonKindName(*v)));
  }
  return std::optional<std::string>(std::string(JsonStringView(v->as_string())));
}

Result<FeastHistoricalCommand> ParseHistorical(const boost::json::value& command) {
  FeastHistoricalCommand out;
  GRANARY_ASSIGN_OR_RAISE(auto id, OptionalString(command, "command_id"));
  out.command_id = id.value_or("");
  GRANARY_ASSIGN_OR_RAISE(auto project, OptionalString(command, "project"));
  if (!project.has_value()) return Invalid("'project' is missing");
  out.project = std::move(*project);
  GRANARY_ASSIGN_OR_RAISE(std::vector<std::string> refs,
                          StringList(command, "feature_refs", false));
  if (refs.empty()) return Invalid("'feature_refs' is empty: ask for at least one feature");
  for (const std::string& ref : refs) {
    auto parsed = FeatureRef::Parse(ref);
    if (!parsed.ok()) return Invalid(parsed.status().message());
    out.features.push_back(std::move(*parsed));
  }
  GRANARY_ASSIGN_OR_RAISE(out.feature_view_names, StringList(command, "feature_view_names", false));
  // A null alias (Feast's None) reads as "".
  GRANARY_ASSIGN_OR_RAISE(std::vector<std::string> name_aliases,
                          StringList(command, "name_aliases", true));
  if (name_aliases.size() != out.feature_view_names.size()) {
    return Invalid(fmt::format("'name_aliases' has {} items but 'feature_view_names' {}",
                               name_aliases.size(), out.feature_view_names.size()));
  }
  for (size_t i = 0; i < name_aliases.size(); ++i) {
    if (!name_aliases[i].empty()) {
      return Status::NotImplemented(fmt::format(
          "feature view '{}' is projected under the alias '{}' (a feature service's "
          "with_name): Granary's feature services have no aliases; ask for the view's own "
          "features",
          out.feature_view_names[i], name_aliases[i]));
    }
  }
  const boost::json::value* full = JsonMember(command, "full_feature_names");
  if (full != nullptr && !full->is_null()) {
    if (!full->is_bool()) {
      return Invalid(
          fmt::format("'full_feature_names' must be true or false, not {}", JsonKindName(*full)));
    }
    out.full_feature_names = full->as_bool();
  }
  GRANARY_ASSIGN_OR_RAISE(auto sql, OptionalString(command, "entity_df_sql"));
  out.entity_df_sql = sql.value_or("");
  GRANARY_ASSIGN_OR_RAISE(out.start_date, OptionalString(command, "start_date"));
  GRANARY_ASSIGN_OR_RAISE(out.end_date, OptionalString(command, "end_date"));
  return out;
}

}  // namespace

Result<FeastOfflineCommand> ParseFeastOfflineCommand(std::string_view text) {
  JsonParseOptions options;
  options.max_depth = 16;  // Feast's commands are flat: an object of strings, lists and bools
  auto parsed = ParseJson(text, options);
  if (!parsed.ok()) return Invalid("not JSON: " + parsed.status().message());
  const boost::json::value& command = *parsed;
  if (!command.is_object()) {
    return Invalid(fmt::format("the descriptor's command must be a JSON object, not {}",
                               JsonKindName(command)));
  }
  const boost::json::value* api = JsonMember(command, "api");
  if (api == nullptr || !api->is_string()) {
    return Invalid(api == nullptr
                       ? std::string("'api' is missing")
                       : fmt::format("'api' must be a string, not {}", JsonKindName(*api)));
  }
  FeastOfflineCommand out;
  out.api = std::string(JsonStringView(api->as_string()));
  if (out.api == kFeastGetHistoricalFeatures) {
    GRANARY_ASSIGN_OR_RAISE(out.historical, ParseHistorical(command));
  }
  return out;
}

std::string UnsupportedFeastOfflineApi(std::string_view api) {
  std::string what;
  if (api == "pull_latest_from_table_or_query" || api == "pull_all_from_table_or_query") {
    what = fmt::format(
        "Feast calls '{}' to materialize from a remote offline store; materialize with "
        "`granary materialize` (or the feature server's POST /materialize), which reads the "
        "offline store itself",
        api);
  } else if (api == "offline_write_batch") {
    what =
        "Feast calls it for push(..., to=PushMode.OFFLINE); push to Granary's feature server "
        "(`granary serve`, POST /push), which appends to the offline store";
  } else if (api == "persist") {
    what =
        "Feast calls it for create_saved_dataset; write the training set with `granary "
        "get-historical-features -o FILE` instead";
  } else if (api == "write_logged_features") {
    what = "Granary does not log served features";
  } else if (api == "validate_data_source" ||
             api == "get_table_column_names_and_types_from_data_source") {
    what = fmt::format(
        "Feast calls '{}' from `feast apply`/`feast plan` against a remote offline store; "
        "run `granary plan`, which checks every source, on the server's repository",
        api);
  } else {
    what = "Feast 0.67's client sends no such api";
  }
  return fmt::format(
      "Granary's offline server does not serve '{}': {}. It serves Feast's "
      "get_historical_features (through DoExchange), as Feast 0.67's remote offline store "
      "client calls it",
      api, what);
}

Result<std::shared_ptr<arrow::Table>> UploadedEntityTable(
    const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  auto table = arrow::Table::FromRecordBatches(schema, batches);
  if (!table.ok()) {
    return Status::InvalidArgument("the entity rows uploaded: " + table.status().message());
  }
  if (arrow::Status valid = (*table)->ValidateFull(); !valid.ok()) {
    return Status::InvalidArgument(fmt::format(
        "the entity rows uploaded are not valid Arrow data ({}); the client must send the "
        "entity_df as Arrow IPC batches, as Feast's client (pyarrow) writes them",
        valid.message()));
  }
  return *table;
}

bool IsFeastPlaceholder(const arrow::Table& table) {
  return table.num_columns() == 1 && table.schema()->field(0)->name() == "key";
}

}  // namespace granary::serving
