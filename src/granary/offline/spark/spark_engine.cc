#include "granary/offline/spark/spark_engine.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "granary/common/progress.h"
#include "granary/offline/spark/spark_aggregations.h"
#include "granary/offline/spark/spark_engine_internal.h"
#include "granary/offline/spark/spark_sql.h"
#include "granary/offline/spark/spark_stats.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace spark_engine {

std::unique_ptr<OfflineBatchStream> SparkEngine::ViewStream(const FeatureView& view,
                                                            std::unique_ptr<ResultStream> result,
                                                            std::shared_ptr<arrow::Schema> schema,
                                                            SparkStream::Convert convert,
                                                            std::vector<std::string> views) {
  OfflineReadStats stats;
  stats.view = view.name;
  stats.engine_detail = Describe();
  return std::make_unique<SparkStream>(client_, std::move(result), std::move(schema),
                                       std::move(convert), std::vector<OfflineReadStats>{stats},
                                       std::move(views));
}

Status SparkEngine::ValidateSource(const DataSource& source) const {
  if (source.is_push()) return Status::OK();
  int forms = !source.path.empty() + !source.table.empty() + !source.query.empty();
  if (forms != 1) {
    return Status::InvalidArgument(fmt::format(
        "data source '{}' needs exactly one of path, table and query; {} reads any of them",
        source.name, Describe()));
  }
  return Status::OK();
}

Result<std::optional<InspectedSchema>> SparkEngine::Inspect(const DataSource& source) {
  GRANARY_RETURN_NOT_OK(ValidateSource(source));
  if (source.is_push()) return std::optional<InspectedSchema>();
  std::string csv_view;
  if (source.format == SourceFormat::kCsv) {
    csv_view = NewName("csv");
    auto st = RegisterCsv(source, csv_view);
    if (st.code() == StatusCode::kNotFound) return std::optional<InspectedSchema>();
    GRANARY_RETURN_NOT_OK(st);
  }
  auto schema = client_->AnalyzeSql(
      "SELECT * FROM " + spark_sql::SourceRelation(source, options_.repo_root, csv_view));
  if (!csv_view.empty()) DropViews({csv_view});
  if (!schema.ok()) {
    if (schema.status().code() == StatusCode::kNotFound) return std::optional<InspectedSchema>();
    return schema.status().WithContext(fmt::format("data source '{}'", source.name));
  }
  return std::optional<InspectedSchema>(
      InspectedSchema{*schema, source.format != SourceFormat::kCsv});
}

Result<std::unique_ptr<OfflineBatchStream>> SparkEngine::LatestRows(
    const Definitions& defs, const LatestRowsRequest& request) {
  if (request.view == nullptr) return Status::InvalidArgument("no feature view given");
  const FeatureView& view = *request.view;
  std::vector<std::string> features = request.features;
  if (features.empty()) {
    for (const auto& f : view.schema) features.push_back(f.name);
  }
  GRANARY_ASSIGN_OR_RAISE(auto join_view, MakeJoinView(defs, view, features));
  GRANARY_RETURN_NOT_OK(ValidateSource(*join_view.source));
  spark_sql::LatestRowsQuery query;
  query.view = join_view;
  query.start = request.start;
  query.end = request.end;
  query.repo_root = options_.repo_root;
  std::vector<std::string> views;
  if (join_view.source->format == SourceFormat::kCsv) {
    query.csv_view = NewName("csv");
    views.push_back(query.csv_view);
    GRANARY_RETURN_NOT_OK(RegisterCsv(*join_view.source, query.csv_view)
                              .WithContext(fmt::format("feature view '{}'", view.name)));
  }
  std::string sql = spark_sql::LatestRowsSql(query);
  std::string what = fmt::format("feature view '{}': the latest rows in the cluster", view.name);
  auto result = client_->ExecuteSql(sql, request.cancel);
  if (!result.ok()) {
    DropViews(views);
    return result.status().WithContext(what);
  }
  // Output: keys, event_timestamp, [created_timestamp], features, in Granary's types.
  std::vector<ValueType> types;
  std::vector<std::string> names;
  for (size_t k = 0; k < join_view.join_keys.size(); ++k) {
    types.push_back(join_view.join_key_types[k]);
    names.push_back(join_view.join_keys[k]);
  }
  types.push_back(ValueType::Scalar(ScalarType::kTimestamp));
  names.push_back(kEventTimestampColumn);
  if (!join_view.source->created_timestamp_column.empty()) {
    types.push_back(ValueType::Scalar(ScalarType::kTimestamp));
    names.push_back(kCreatedTimestampColumn);
  }
  for (size_t f = 0; f < features.size(); ++f) {
    types.push_back(join_view.feature_types[f]);
    names.push_back(features[f]);
  }
  arrow::FieldVector fields;
  for (size_t i = 0; i < types.size(); ++i)
    fields.push_back(arrow::field(names[i], ToArrowType(types[i])));
  auto schema = arrow::schema(fields);
  // The source rows in range, as the cluster counted them per entity: the progress of a
  // materialization (the rows Spark scans stay in the cluster).
  Progress* progress = request.progress;
  SparkStream::Convert convert =
      [schema, types, names, progress](
          const std::shared_ptr<arrow::RecordBatch>& in,
          std::vector<OfflineReadStats>* stats) -> Result<std::shared_ptr<arrow::RecordBatch>> {
    // The last two columns: rows per entity in the interval, and whether the key has a null.
    const int n = in->num_columns();
    auto counts = std::static_pointer_cast<arrow::Int64Array>(in->column(n - 2));
    auto null_key = std::static_pointer_cast<arrow::BooleanArray>(in->column(n - 1));
    arrow::BooleanBuilder keep;
    GRANARY_RETURN_NOT_OK(FromArrow(keep.Reserve(in->num_rows()), "latest rows"));
    for (int64_t i = 0; i < in->num_rows(); ++i) {
      const bool dropped = null_key->IsValid(i) && null_key->Value(i);
      (*stats)[0].rows_returned += counts->Value(i);
      if (dropped) (*stats)[0].null_key_rows += counts->Value(i);
      keep.UnsafeAppend(!dropped);
      if (progress != nullptr) progress->Add(counts->Value(i));
    }
    std::shared_ptr<arrow::Array> mask;
    GRANARY_RETURN_NOT_OK(FromArrow(keep.Finish(&mask), "latest rows"));
    auto filtered = arrow::compute::Filter(in, mask);
    if (!filtered.ok()) return FromArrow(filtered.status(), "latest rows");
    auto batch = filtered->record_batch();
    arrow::ArrayVector columns;
    for (size_t i = 0; i < types.size(); ++i) {
      GRANARY_ASSIGN_OR_RAISE(
          auto col, ToGranaryType(batch->column(static_cast<int>(i)), types[i], names[i]));
      columns.push_back(col);
    }
    return arrow::RecordBatch::Make(schema, batch->num_rows(), std::move(columns));
  };
  return ViewStream(view, std::move(*result), std::move(schema), std::move(convert),
                    std::move(views));
}

Result<std::unique_ptr<OfflineBatchStream>> SparkEngine::ReadEvents(const Definitions& defs,
                                                                    const EventsRequest& request) {
  if (request.view == nullptr) return Status::InvalidArgument("ReadEvents: no view given");
  const FeatureView& view = *request.view;
  GRANARY_ASSIGN_OR_RAISE(auto join_view, MakeJoinView(defs, view, {}));
  GRANARY_RETURN_NOT_OK(
      ValidateSource(*join_view.source).WithContext(fmt::format("feature view '{}'", view.name)));
  spark_sql::EventsQuery query;
  query.view = join_view;
  query.columns = spark_sql::AggregationEventColumns(view, *join_view.source);
  query.start = request.start;
  query.end = request.end;
  query.repo_root = options_.repo_root;
  std::vector<std::string> views;
  if (join_view.source->format == SourceFormat::kCsv && !join_view.source->path.empty()) {
    query.csv_view = NewName("csv");
    views.push_back(query.csv_view);
    Status st = RegisterCsv(*join_view.source, query.csv_view);
    if (!st.ok()) {
      DropViews(views);
      return st.WithContext(fmt::format("feature view '{}'", view.name));
    }
  }
  const std::string sql = spark_sql::EventsSql(query);
  const std::string what = fmt::format("the events of feature view '{}'", view.name);
  // The columns' types as the cluster reads them (keys and time as Granary declares them).
  auto analyzed = client_->AnalyzeSql(sql);
  if (!analyzed.ok()) {
    DropViews(views);
    return analyzed.status().WithContext(what);
  }
  std::vector<ValueType> types;
  arrow::FieldVector fields;
  for (int c = 0; c < (*analyzed)->num_fields(); ++c) {
    const auto& field = (*analyzed)->field(c);
    ValueType type = ValueType::Scalar(ScalarType::kTimestamp);
    if (static_cast<size_t>(c) < join_view.join_keys.size()) {
      type = join_view.join_key_types[c];
    } else if (static_cast<size_t>(c) > join_view.join_keys.size()) {
      auto from = FromArrowType(*field->type());
      if (!from.ok()) {
        DropViews(views);
        return from.status().WithContext(fmt::format("{}: column '{}'", what, field->name()));
      }
      type = *from;
    }
    types.push_back(type);
    fields.push_back(arrow::field(field->name(), ToArrowType(type)));
  }
  auto schema = arrow::schema(fields);
  auto result = client_->ExecuteSql(sql, request.cancel);
  if (!result.ok()) {
    DropViews(views);
    return result.status().WithContext(what);
  }
  SparkStream::Convert convert =
      [schema, types](
          const std::shared_ptr<arrow::RecordBatch>& in,
          std::vector<OfflineReadStats>* stats) -> Result<std::shared_ptr<arrow::RecordBatch>> {
    arrow::ArrayVector columns;
    for (size_t c = 0; c < types.size(); ++c) {
      GRANARY_ASSIGN_OR_RAISE(auto col, ToGranaryType(in->column(static_cast<int>(c)), types[c],
                                                      schema->field(static_cast<int>(c))->name()));
      columns.push_back(col);
    }
    (*stats)[0].rows_returned += in->num_rows();
    return arrow::RecordBatch::Make(schema, in->num_rows(), std::move(columns));
  };
  return ViewStream(view, std::move(*result), std::move(schema), std::move(convert),
                    std::move(views));
}

Result<OfflineAppendResult> SparkEngine::Append(const DataSource& source, const arrow::Table& rows,
                                                const Clock& clock) {
  GRANARY_RETURN_NOT_OK(ValidateSource(source));
  std::string where = fmt::format("data source '{}'", source.name);
  if (source.path.empty() || source.format == SourceFormat::kCsv) {
    return Status::NotImplemented(fmt::format(
        "{}: {} appends to Delta tables and Parquet folders given by path, not to {}; point the "
        "push's batch source at one",
        where, Describe(), source.path.empty() ? source.Where() : std::string("CSV files")));
  }
  std::string view = NewName("append");
  Status st = client_->UploadAsView(rows, view, options_.upload_chunk_bytes);
  const std::string path = spark_sql::SourcePath(source, options_.repo_root);
  const bool delta = source.format == SourceFormat::kDelta;
  if (st.ok()) {
    // Delta: one commit (Delta retries it past a concurrent one). Parquet: new part files,
    // into hive partition folders when the source has a date partition column.
    std::vector<std::string> partition_by;
    if (!delta && !source.date_partition_column.empty() &&
        rows.schema()->GetFieldIndex(source.SourceColumnFor(source.date_partition_column)) >= 0) {
      partition_by.push_back(source.SourceColumnFor(source.date_partition_column));
    }
    st = client_->AppendViewToPath(view, delta ? "delta" : "parquet", path, partition_by);
  }
  DropViews({view});
  if (!st.ok()) return st.WithContext(fmt::format("{}: appending {} rows", where, rows.num_rows()));
  OfflineAppendResult out;
  out.rows = rows.num_rows();
  out.files.push_back(path);
  if (delta) {
    // The newest commit: ours, or a later one made meanwhile (never an older one).
    auto version = client_->ExecuteSql(
        fmt::format("DESCRIBE HISTORY delta.{} LIMIT 1", QuoteIdentifier(path)));
    if (version.ok()) {
      auto batch = (*version)->Next();
      if (batch.ok() && *batch != nullptr && (*batch)->num_rows() > 0) {
        auto column = (*batch)->GetColumnByName("version");
        if (column && column->type_id() == arrow::Type::INT64 && column->IsValid(0)) {
          out.delta_version = std::static_pointer_cast<arrow::Int64Array>(column)->Value(0);
        }
      }
    }
  }
  return out;
}

Result<FeatureStatsReport> SparkEngine::FeatureStatistics(const Definitions& defs,
                                                          const FeatureView& view,
                                                          const FeatureStatsOptions& options) {
  GRANARY_RETURN_NOT_OK(CheckFeatureStatsOptions(view, options));
  std::vector<std::string> features;
  for (const Field* f : RequestedStatsFeatures(view, options)) features.push_back(f->name);
  GRANARY_ASSIGN_OR_RAISE(auto jv, MakeJoinView(defs, view, features));
  GRANARY_RETURN_NOT_OK(
      ValidateSource(*jv.source).WithContext(fmt::format("feature view '{}'", view.name)));
  spark_sql::StatsQuery query{.source = jv.source,
                              .join_keys = jv.join_keys,
                              .join_key_types = jv.join_key_types,
                              .features = jv.features,
                              .feature_types = jv.feature_types,
                              .start = options.start,
                              .end = options.end,
                              .repo_root = options_.repo_root};
  if (jv.source->format == SourceFormat::kCsv) {
    query.csv_view = NewName("csv");
    GRANARY_RETURN_NOT_OK(RegisterCsv(*jv.source, query.csv_view)
                              .WithContext(fmt::format("feature view '{}'", view.name)));
  }
  auto report = ComputeSparkFeatureStats(*client_, query, view, options);
  if (!query.csv_view.empty()) DropViews({query.csv_view});
  return report;
}

}  // namespace spark_engine

Result<std::unique_ptr<OfflineEngine>> OpenSparkEngine(const SparkEngineOptions& options) {
  if (options.remote.empty()) {
    return Status::InvalidArgument(
        "offline_store type spark needs remote: the Spark Connect URL, e.g. "
        "remote: \"sc://127.0.0.1:15002\" (scripts/spark-cluster start runs a local cluster)");
  }
  (void)arrow::compute::Initialize();  // the kernels of Filter; fails only when done already
  GRANARY_ASSIGN_OR_RAISE(auto client, spark_connect::SparkConnectClient::Open(options.remote));
  std::shared_ptr<spark_connect::SparkConnectClient> shared = std::move(client);
  // Times are instants in UTC everywhere in Granary; naive timestamps and the SQL's literals too.
  GRANARY_RETURN_NOT_OK(shared->RunSql("SET spark.sql.session.timeZone=UTC"));
  return std::unique_ptr<OfflineEngine>(
      std::make_unique<spark_engine::SparkEngine>(shared, options));
}

}  // namespace granary
