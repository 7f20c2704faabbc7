// The Spark engine's training sets (SparkEngine::GetHistoricalFeatures and
// WriteHistoricalFeatures): entity rows uploaded from this process or kept in the cluster,
// one point-in-time query (spark_sql.h), results streamed back or written as a Delta table.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <map>

#include "granary/common/strings.h"
#include "granary/offline/entity_rows.h"
#include "granary/offline/spark/spark_engine_internal.h"
#include "granary/offline/spark/spark_sql.h"
#include "granary/types/arrow_convert.h"

namespace granary::spark_engine {

Result<std::unique_ptr<OfflineBatchStream>> SparkEngine::GetHistoricalFeatures(
    const Definitions& defs, const HistoricalRequest& request) {
  GRANARY_ASSIGN_OR_RAISE(Prepared prepared, Prepare(defs, request, /*upload_all=*/false));
  if (prepared.entities == nullptr) return StreamInCluster(std::move(prepared), request);
  std::string sql = spark_sql::PointInTimeSql(prepared.query);
  auto result = client_->ExecuteSql(sql, request.cancel);
  if (!result.ok()) {
    DropViews(prepared.views);
    return result.status().WithContext(prepared.what);
  }
  auto entities = prepared.entities;
  auto schema = prepared.schema;
  auto features = prepared.feature_types;
  auto names = prepared.feature_names;
  const int n_entity_columns = entities->num_columns();
  auto next_row = std::make_shared<int64_t>(0);
  const std::string what = prepared.what;
  SparkStream::Convert convert =
      [entities, schema, features, names, n_entity_columns, next_row, what](
          const std::shared_ptr<arrow::RecordBatch>& batch,
          std::vector<OfflineReadStats>* stats) -> Result<std::shared_ptr<arrow::RecordBatch>> {
    const int64_t len = batch->num_rows();
    GRANARY_RETURN_NOT_OK(CountSummary(*batch, stats));
    auto rows = std::static_pointer_cast<arrow::Int64Array>(batch->column(0));
    for (int64_t i = 0; i < len; ++i) {
      if (rows->IsNull(i) || rows->Value(i) != *next_row + i) {
        return Status::Internal(
            fmt::format("{}: the cluster returned entity row {} where row {} was expected", what,
                        rows->IsNull(i) ? -1 : rows->Value(i), *next_row + i));
      }
    }
    arrow::ArrayVector columns;
    auto slice = entities->Slice(*next_row, len);
    for (int c = 0; c < n_entity_columns; ++c) {
      GRANARY_ASSIGN_OR_RAISE(auto col, Combined(slice->column(c)));
      columns.push_back(col);
    }
    for (size_t f = 0; f < features.size(); ++f) {
      GRANARY_ASSIGN_OR_RAISE(
          auto col, ToGranaryType(batch->column(static_cast<int>(f) + 1), features[f], names[f]));
      columns.push_back(col);
    }
    *next_row += len;
    return arrow::RecordBatch::Make(schema, len, std::move(columns));
  };
  const int64_t expected = entities->num_rows();
  auto stream = std::make_unique<SparkStream>(client_, std::move(*result), schema,
                                              std::move(convert), prepared.stats, prepared.views);
  stream->set_finish([next_row, expected, what]() -> Status {
    if (*next_row != expected) {
      return Status::Internal(fmt::format("{}: the cluster returned {} rows for {} entity rows",
                                          what, *next_row, expected));
    }
    return Status::OK();
  });
  return std::unique_ptr<OfflineBatchStream>(std::move(stream));
}

Result<std::vector<OfflineReadStats>> SparkEngine::WriteHistoricalFeatures(
    const Definitions& defs, const HistoricalRequest& request, const HistoricalOutput& output) {
  if (output.table.empty() == output.path.empty()) {
    return Status::InvalidArgument("give exactly one of --output-table and --output-path");
  }
  GRANARY_ASSIGN_OR_RAISE(Prepared prepared, Prepare(defs, request, /*upload_all=*/true));
  std::string target =
      output.table.empty() ? "delta." + QuoteIdentifier(ResolvePath(output.path)) : output.table;
  std::string sql = fmt::format("CREATE OR REPLACE TABLE {} USING delta AS {}", target,
                                TrainingSetSql(prepared, /*with_summary=*/false));
  Status st = client_->RunSql(sql, request.cancel);
  Release(prepared.views, prepared.checkpoints);
  if (!st.ok()) return st.WithContext(prepared.what);
  return prepared.stats;
}

Result<SparkEngine::Prepared> SparkEngine::Prepare(const Definitions& defs,
                                                   const HistoricalRequest& request,
                                                   bool upload_all) {
  const int given =
      (request.entities != nullptr) + !request.entity_sql.empty() + !request.entity_table.empty();
  if (given != 1) {
    return Status::InvalidArgument(
        given == 0 ? "no entity rows given: give a file, a SQL query or a table name"
                   : "give the entity rows one way: a file, a SQL query or a table name");
  }
  if (request.entities == nullptr) return PrepareInCluster(defs, request);
  GRANARY_ASSIGN_OR_RAISE(ResolvedFeatures resolved, ResolveFeatures(defs, request));
  Prepared out;
  const auto& table = request.entities;
  const auto& schema = *table->schema();
  const int64_t n = table->num_rows();
  GRANARY_ASSIGN_OR_RAISE(EntityRows rows, NormalizeEntityRows(*table, request.entities_name));
  const std::shared_ptr<arrow::Array>& entity_time = rows.time;
  // The output's entity columns: as given, the time normalized to timestamp[us, UTC].
  arrow::FieldVector out_fields = std::move(rows.fields);
  out.entities = arrow::Table::Make(arrow::schema(out_fields), rows.columns, n);
  out.entity_rows = n;
  for (const auto& field : out_fields) {
    out.entity_select.push_back("e." + QuoteIdentifier(field->name()));
  }

  // The upload: the row number, each join key cast to its declared type, the time.
  arrow::Int64Builder row_builder;
  GRANARY_RETURN_NOT_OK(FromArrow(row_builder.Reserve(n), "entity row numbers"));
  for (int64_t i = 0; i < n; ++i) row_builder.UnsafeAppend(i);
  std::shared_ptr<arrow::Array> row_numbers;
  GRANARY_RETURN_NOT_OK(FromArrow(row_builder.Finish(&row_numbers), "entity row numbers"));
  arrow::FieldVector up_fields = {arrow::field(spark_sql::kRowColumn, arrow::int64())};
  arrow::ArrayVector up_columns = {row_numbers};
  std::vector<std::string> view_names;
  GRANARY_RETURN_NOT_OK(
      AddJoinViews(defs, resolved, schema, "the entity rows have", out, out_fields, view_names));
  // Each join key once, cast to its declared type (the upload's, or the SQL's with upload_all).
  std::map<std::string, ValueType> uploaded_keys;
  for (const auto& jv : out.query.views) {
    for (size_t k = 0; k < jv.join_keys.size(); ++k) {
      const std::string& key = jv.join_keys[k];
      if (!uploaded_keys.emplace(key, jv.join_key_types[k]).second) continue;
      auto raw = Combined(table->column(schema.GetFieldIndex(key)));
      auto cast = raw.ok() ? CastToValueType(*raw, jv.join_key_types[k], key) : raw;
      if (!cast.ok()) {
        DropViews(out.views);
        return cast.status().WithContext(request.entities_name);
      }
      if (!upload_all) {
        up_fields.push_back(arrow::field(key, (*cast)->type()));
        up_columns.push_back(*cast);
      }
    }
  }
  out.schema = arrow::schema(out_fields);
  out.what = fmt::format("the training set of {} ({} entity rows; views {})", request.entities_name,
                         n, Join(view_names, ", "));
  std::string entity_view = NewName("entities");
  std::shared_ptr<arrow::Table> upload;
  if (upload_all) {
    // Every entity column (time normalized; keys as given, the SQL casts them) and the row.
    arrow::FieldVector f = {arrow::field(spark_sql::kRowColumn, arrow::int64())};
    std::vector<std::shared_ptr<arrow::ChunkedArray>> c = {
        std::make_shared<arrow::ChunkedArray>(row_numbers)};
    for (int i = 0; i < out.entities->num_columns(); ++i) {
      f.push_back(out.entities->schema()->field(i));
      c.push_back(out.entities->column(i));
    }
    f.push_back(arrow::field(spark_sql::kTimeColumn, entity_time->type()));
    c.push_back(std::make_shared<arrow::ChunkedArray>(entity_time));
    upload = arrow::Table::Make(arrow::schema(f), c, n);
    out.all_view = entity_view;
  } else {
    up_fields.push_back(arrow::field(spark_sql::kTimeColumn, entity_time->type()));
    up_columns.push_back(entity_time);
    upload = arrow::Table::Make(arrow::schema(up_fields), up_columns, n);
  }
  Status uploaded =
      client_->UploadAsView(*upload, entity_view, options_.upload_chunk_bytes, request.cancel);
  out.views.push_back(entity_view);
  if (!uploaded.ok()) {
    DropViews(out.views);
    return uploaded.WithContext(request.entities_name);
  }
  out.query.entity_view = entity_view;
  if (rows.min_time) out.query.min_time = *rows.min_time;
  if (rows.max_time) out.query.max_time = *rows.max_time;
  out.query.created_timestamp_cutoff = request.created_timestamp_cutoff;
  out.query.repo_root = options_.repo_root;
  return out;
}

std::string SparkEngine::TrainingSetSql(const Prepared& prepared, bool with_summary) {
  std::vector<std::string> columns = prepared.entity_select;
  for (size_t i = 0, col = 0; i < prepared.query.views.size(); ++i) {
    for (size_t f = 0; f < prepared.query.views[i].features.size(); ++f, ++col) {
      columns.push_back(fmt::format("j.{} AS {}", spark_sql::FeatureColumn(i, f),
                                    QuoteIdentifier(prepared.feature_names[col])));
    }
  }
  for (size_t i = 0; with_summary && i < prepared.stats.size(); ++i) {
    if (prepared.stats[i].aggregation_window.micros > 0) {
      columns.push_back("j." + spark_sql::WithEventsColumn(i));
    }
    if (prepared.stats[i].plain_features) columns.push_back("j." + spark_sql::MatchedColumn(i));
  }
  return fmt::format("SELECT {} FROM {} e JOIN ({}) j ON e.{} = j.{} ORDER BY e.{}",
                     Join(columns, ", "), QuoteIdentifier(prepared.all_view),
                     spark_sql::PointInTimeSql(prepared.query), spark_sql::kRowColumn,
                     spark_sql::kRowColumn, spark_sql::kRowColumn);
}

Result<std::unique_ptr<OfflineBatchStream>> SparkEngine::StreamInCluster(
    Prepared prepared, const HistoricalRequest& request) {
  auto result =
      client_->ExecuteSql(TrainingSetSql(prepared, /*with_summary=*/true), request.cancel);
  if (!result.ok()) {
    Release(prepared.views, prepared.checkpoints);
    return result.status().WithContext(prepared.what);
  }
  auto schema = prepared.schema;
  const size_t n_entity = prepared.entity_select.size();
  auto features = prepared.feature_types;
  auto rows = std::make_shared<int64_t>(0);
  SparkStream::Convert convert =
      [schema, n_entity, features, rows](
          const std::shared_ptr<arrow::RecordBatch>& batch,
          std::vector<OfflineReadStats>* stats) -> Result<std::shared_ptr<arrow::RecordBatch>> {
    GRANARY_RETURN_NOT_OK(CountSummary(*batch, stats));
    arrow::ArrayVector columns;
    for (int c = 0; c < schema->num_fields(); ++c) {
      const auto& field = schema->field(c);
      std::shared_ptr<arrow::Array> column = batch->column(c);
      if (static_cast<size_t>(c) >= n_entity) {
        GRANARY_ASSIGN_OR_RAISE(column,
                                ToGranaryType(column, features[c - n_entity], field->name()));
      } else if (!column->type()->Equals(*field->type())) {
        auto cast = arrow::compute::Cast(*column, field->type());
        if (!cast.ok()) return FromArrow(cast.status(), "entity column " + field->name());
        column = *cast;
      }
      columns.push_back(std::move(column));
    }
    *rows += batch->num_rows();
    return arrow::RecordBatch::Make(schema, batch->num_rows(), std::move(columns));
  };
  const int64_t expected = prepared.entity_rows;
  const std::string what = prepared.what;
  auto stream = std::make_unique<SparkStream>(client_, std::move(*result), schema,
                                              std::move(convert), prepared.stats, prepared.views);
  stream->set_checkpoints(prepared.checkpoints);
  stream->set_finish([rows, expected, what]() -> Status {
    if (*rows != expected) {
      return Status::Internal(fmt::format("{}: the cluster returned {} rows for {} entity rows",
                                          what, *rows, expected));
    }
    return Status::OK();
  });
  return std::unique_ptr<OfflineBatchStream>(std::move(stream));
}

Status SparkEngine::AddJoinViews(const Definitions& defs, const ResolvedFeatures& resolved,
                                 const arrow::Schema& entity_schema,
                                 const std::string& entities_have, Prepared& out,
                                 arrow::FieldVector& out_fields,
                                 std::vector<std::string>& view_names) {
  for (const auto& group : resolved.views) {
    const FeatureView& view = *group.view;
    view_names.push_back(view.name);
    auto jv = MakeJoinView(defs, view, group.features);
    Status valid = jv.ok() ? ValidateSource(*jv->source) : jv.status();
    for (const auto& output_name : group.output_names) {
      if (valid.ok() && entity_schema.GetFieldIndex(output_name) >= 0) {
        valid = Status::InvalidArgument(
            fmt::format("feature '{}' of view '{}' has the name of an entity column; use "
                        "--full-feature-names or rename the entity column",
                        output_name, view.name));
      }
    }
    for (size_t k = 0; valid.ok() && k < jv->join_keys.size(); ++k) {
      if (entity_schema.GetFieldIndex(jv->join_keys[k]) < 0) {
        valid = Status::InvalidArgument(fmt::format(
            "{} no column '{}', a join key of feature view '{}' (columns: {})", entities_have,
            jv->join_keys[k], view.name, Join(entity_schema.field_names(), ", ")));
      }
    }
    std::string csv_view;
    if (valid.ok() && jv->source->format == SourceFormat::kCsv) {
      csv_view = NewName("csv");
      out.views.push_back(csv_view);
      valid = RegisterCsv(*jv->source, csv_view)
                  .WithContext(fmt::format("feature view '{}'", view.name));
    }
    if (!valid.ok()) {
      DropViews(out.views);
      return valid;
    }
    out.query.csv_views.push_back(csv_view);
    for (size_t f = 0; f < group.features.size(); ++f) {
      out.feature_types.push_back(jv->feature_types[f]);
      out.feature_names.push_back(group.output_names[f]);
      out_fields.push_back(arrow::field(group.output_names[f], ToArrowType(jv->feature_types[f])));
    }
    OfflineReadStats stats;
    stats.view = view.name;
    stats.engine_detail = Describe();
    // What the summary tells of this view (rows matched, rows with events in the longest
    // window), as the embedded engine does; the counts come with the result (CountSummary).
    stats.plain_features = false;
    for (size_t f = 0; f < jv->features.size(); ++f) {
      const Aggregation* a = f < jv->aggregations.size() ? jv->aggregations[f] : nullptr;
      if (a == nullptr) {
        stats.plain_features = true;
      } else {
        stats.aggregation_window = std::max(stats.aggregation_window, a->window);
      }
    }
    out.stats.push_back(stats);
    out.query.views.push_back(std::move(*jv));
  }
  return Status::OK();
}

Result<SparkEngine::Prepared> SparkEngine::PrepareInCluster(const Definitions& defs,
                                                            const HistoricalRequest& request) {
  GRANARY_ASSIGN_OR_RAISE(ResolvedFeatures resolved, ResolveFeatures(defs, request));
  const bool is_table = !request.entity_table.empty();
  const std::string relation =
      is_table ? request.entity_table : "(" + request.entity_sql + ") AS __g_entity_rows";
  const std::string name =
      is_table ? "entity table " + request.entity_table : "the entity rows' query";
  auto analyzed = client_->AnalyzeSql("SELECT * FROM " + relation);
  if (!analyzed.ok()) return analyzed.status().WithContext(name);
  const arrow::Schema& schema = **analyzed;
  for (const auto& field : schema.fields()) {
    if (field->name().rfind("__g_", 0) == 0) {
      return Status::InvalidArgument(
          fmt::format("{}: column '{}': names starting with __g_ are Granary's own; rename it",
                      name, field->name()));
    }
  }
  auto time_index = EntityTimeColumn(schema);
  if (!time_index.ok()) return time_index.status().WithContext(name);
  const std::string time_name = schema.field(*time_index)->name();
  Prepared out;
  arrow::FieldVector out_fields;
  for (int i = 0; i < schema.num_fields(); ++i) {
    if (i == *time_index) {
      out_fields.push_back(
          arrow::field(time_name, arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
      out.entity_select.push_back(
          fmt::format("e.{} AS {}", spark_sql::kTimeColumn, QuoteIdentifier(time_name)));
    } else {
      out_fields.push_back(schema.field(i));
      out.entity_select.push_back("e." + QuoteIdentifier(schema.field(i)->name()));
    }
  }
  std::vector<std::string> view_names;
  GRANARY_RETURN_NOT_OK(
      AddJoinViews(defs, resolved, schema, name + " has", out, out_fields, view_names));
  out.schema = arrow::schema(out_fields);
  const std::string entity_view = NewName("entities");
  out.views.push_back(entity_view);
  // A checkpoint, not a view: the training set's query reads the entity rows several times,
  // and each read must see the same rows with the same identities. (A plain view of a query
  // with an ORDER BY also trips Spark's analyzer when the query refers to it twice.)
  auto checkpoint = client_->CheckpointSqlAsView(
      fmt::format("SELECT *, monotonically_increasing_id() AS {}, CAST({} AS TIMESTAMP) AS {} "
                  "FROM {}",
                  spark_sql::kRowColumn, QuoteIdentifier(time_name), spark_sql::kTimeColumn,
                  relation),
      entity_view, request.cancel);
  Status cached = checkpoint.status();
  if (checkpoint.ok()) out.checkpoints.push_back(*checkpoint);
  // Their count and time bounds: the training set's row count and the sources' pruning.
  Result<std::shared_ptr<arrow::RecordBatch>> bounds = std::shared_ptr<arrow::RecordBatch>();
  if (cached.ok()) {
    auto result = client_->ExecuteSql(
        fmt::format("SELECT unix_micros(min({0})) AS lo, unix_micros(max({0})) AS hi, count(*) "
                    "AS n FROM {1}",
                    spark_sql::kTimeColumn, QuoteIdentifier(entity_view)),
        request.cancel);
    bounds = result.ok() ? (*result)->Next() : result.status();
    if (!bounds.ok()) cached = bounds.status();
  }
  if (cached.ok() && (*bounds == nullptr || (*bounds)->num_rows() != 1 ||
                      (*bounds)->schema()->field(0)->type()->id() != arrow::Type::INT64)) {
    cached = Status::Internal("the entity rows' count and time bounds did not come back");
  }
  if (!cached.ok()) {
    Release(out.views, out.checkpoints);
    return cached.WithContext(name);
  }
  auto value = [&](int c) -> std::optional<int64_t> {
    auto column = std::static_pointer_cast<arrow::Int64Array>((*bounds)->column(c));
    if (column->IsNull(0)) return std::nullopt;
    return column->Value(0);
  };
  if (auto lo = value(0)) out.query.min_time = Timestamp::FromMicros(*lo);
  if (auto hi = value(1)) out.query.max_time = Timestamp::FromMicros(*hi);
  out.entity_rows = value(2).value_or(0);
  out.query.entity_view = entity_view;
  out.all_view = entity_view;
  out.query.created_timestamp_cutoff = request.created_timestamp_cutoff;
  out.query.repo_root = options_.repo_root;
  out.what = fmt::format("the training set of {} ({} entity rows; views {})", name, out.entity_rows,
                         Join(view_names, ", "));
  return out;
}

}  // namespace granary::spark_engine
