#include "granary/offline/spark/spark_engine.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <atomic>
#include <map>

#include "granary/common/progress.h"
#include "granary/common/strings.h"
#include "granary/offline/spark/spark_aggregations.h"
#include "granary/offline/spark/spark_sql.h"
#include "granary/offline/spark/spark_stats.h"
#include "granary/spark_connect/spark_connect_client.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

using spark_connect::QuoteIdentifier;
using spark_connect::QuoteString;
using spark_connect::ResultStream;
using spark_connect::SparkConnectClient;

Status FromArrow(const arrow::Status& st, std::string_view what) {
  if (st.ok()) return Status::OK();
  return Status::Internal(fmt::format("{}: {}", what, st.ToString()));
}

Result<std::shared_ptr<arrow::Array>> Combined(const std::shared_ptr<arrow::ChunkedArray>& column) {
  if (column->num_chunks() == 1) return column->chunk(0);
  auto out = arrow::Concatenate(column->chunks());
  if (!out.ok()) return FromArrow(out.status(), "combining a column");
  return *out;
}

// A view's source and its join keys with the declared types.
Result<spark_sql::JoinView> MakeJoinView(const Definitions& defs, const FeatureView& view,
                                         const std::vector<std::string>& features) {
  spark_sql::JoinView out;
  out.view = &view;
  out.source = defs.FindOfflineSource(view.source);
  if (out.source == nullptr) {
    return Status::InvalidArgument(
        fmt::format("feature view '{}': its source '{}' is not defined", view.name, view.source));
  }
  for (const auto& entity_name : view.entities) {
    const Entity* entity = defs.FindEntity(entity_name);
    if (entity == nullptr) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}': its entity '{}' is not defined", view.name, entity_name));
    }
    for (size_t k = 0; k < entity->join_keys.size(); ++k) {
      out.join_keys.push_back(entity->join_keys[k]);
      out.join_key_types.push_back(entity->join_key_types[k]);
    }
  }
  for (const auto& f : features) {
    // A plain feature (the point-in-time join) or a window aggregation (spark_aggregations.h).
    const Field* field = view.FindFeature(f);
    const Aggregation* aggregation = field == nullptr ? view.FindAggregation(f) : nullptr;
    if (field == nullptr && (aggregation == nullptr || !aggregation->type)) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}' has no feature '{}'", view.name, f));
    }
    out.features.push_back(f);
    out.feature_types.push_back(field != nullptr ? field->type : *aggregation->type);
    out.aggregations.push_back(aggregation);
  }
  return out;
}

// Converts a result column from Spark to the Arrow type Granary gives `type` (Spark returns
// the same values in its own types: timestamps in the session's zone, FLOAT as float32, ...).
Result<std::shared_ptr<arrow::Array>> ToGranaryType(const std::shared_ptr<arrow::Array>& array,
                                                    ValueType type, std::string_view column) {
  if (array->type()->Equals(*ToArrowType(type))) return array;
  return CastToValueType(array, type, column);
}

class SparkEngine;

// Streams a query's batches through a per-batch conversion.
// Adds a result batch's summary columns (spark_sql::MatchedColumn, WithEventsColumn: view i's
// are counted into stats[i]) to the training-set summary's counts.
Status CountSummary(const arrow::RecordBatch& batch, std::vector<OfflineReadStats>* stats) {
  for (size_t i = 0; i < stats->size(); ++i) {
    for (bool matched : {true, false}) {
      const int c = batch.schema()->GetFieldIndex(matched ? spark_sql::MatchedColumn(i)
                                                          : spark_sql::WithEventsColumn(i));
      if (c < 0) continue;
      if (batch.column(c)->type_id() != arrow::Type::BOOL) {
        return Status::Internal(fmt::format("the cluster returned {} as {}, not a boolean",
                                            batch.schema()->field(c)->name(),
                                            batch.column(c)->type()->ToString()));
      }
      const int64_t n = static_cast<const arrow::BooleanArray&>(*batch.column(c)).true_count();
      (matched ? (*stats)[i].rows_matched : (*stats)[i].rows_with_events) += n;
    }
  }
  return Status::OK();
}

class SparkStream final : public OfflineBatchStream {
 public:
  // A batch from the cluster to the stream's schema (may drop rows, and count them in `stats`).
  using Convert = std::function<Result<std::shared_ptr<arrow::RecordBatch>>(
      const std::shared_ptr<arrow::RecordBatch>&, std::vector<OfflineReadStats>* stats)>;

  SparkStream(std::shared_ptr<SparkConnectClient> client, std::unique_ptr<ResultStream> result,
              std::shared_ptr<arrow::Schema> schema, Convert convert,
              std::vector<OfflineReadStats> stats, std::vector<std::string> cleanup)
      : client_(std::move(client)),
        result_(std::move(result)),
        schema_(std::move(schema)),
        convert_(std::move(convert)),
        stats_(std::move(stats)),
        cleanup_(std::move(cleanup)) {}

  ~SparkStream() override {
    result_.reset();  // interrupts the job if it still runs
    for (const auto& view : cleanup_) {
      (void)client_->RunSql("DROP VIEW IF EXISTS " + QuoteIdentifier(view));
    }
    for (const auto& id : checkpoints_) (void)client_->ReleaseCheckpoint(id);
  }

  const std::shared_ptr<arrow::Schema>& schema() const override { return schema_; }

  Result<std::shared_ptr<arrow::RecordBatch>> Next() override {
    while (!done_) {
      GRANARY_ASSIGN_OR_RAISE(auto batch, result_->Next());
      if (batch == nullptr) {
        done_ = true;
        RecordScanMetrics();
        if (finish_) GRANARY_RETURN_NOT_OK(finish_());
        break;
      }
      GRANARY_ASSIGN_OR_RAISE(auto out, convert_(batch, &stats_));
      if (out->num_rows() > 0) return out;  // never an empty batch
    }
    return std::shared_ptr<arrow::RecordBatch>();
  }

  std::vector<OfflineReadStats> stats() const override { return stats_; }

  void set_finish(std::function<Status()> finish) { finish_ = std::move(finish); }
  // Checkpoints (SparkConnectClient::CheckpointSqlAsView) the stream reads, released with it.
  void set_checkpoints(std::vector<std::string> ids) { checkpoints_ = std::move(ids); }

 private:
  // The cluster's scan metrics: exact for one view; for a training set of several views (one
  // query) the totals go into each view's detail only.
  void RecordScanMetrics() {
    const auto& m = result_->scan_metrics();
    auto get = [&](const char* name) {
      auto it = m.find(name);
      return it == m.end() ? int64_t{0} : it->second;
    };
    const int64_t files = get("numFiles");
    const int64_t partitions = get("numPartitions");
    const int64_t rows = get("numOutputRows");
    for (auto& s : stats_) {
      s.engine_detail = fmt::format("{}: {} files read, {} partitions read, {} rows scanned{}",
                                    client_->Describe(), files, partitions, rows,
                                    stats_.size() > 1 ? " (all views of the query)" : "");
      if (stats_.size() == 1) {
        s.files_total = files;
        s.rows_scanned = rows;
      }
    }
  }

  std::shared_ptr<SparkConnectClient> client_;
  std::unique_ptr<ResultStream> result_;
  std::shared_ptr<arrow::Schema> schema_;
  Convert convert_;
  std::vector<OfflineReadStats> stats_;
  std::vector<std::string> cleanup_;
  std::vector<std::string> checkpoints_;
  std::function<Status()> finish_;
  bool done_ = false;
};

class SparkEngine final : public OfflineEngine {
 public:
  SparkEngine(std::shared_ptr<SparkConnectClient> client, SparkEngineOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  std::string Describe() const override { return client_->Describe(); }

  OfflineEngineCapabilities capabilities() const override {
    OfflineEngineCapabilities c;
    c.append = true;
    c.path_sources = true;
    c.table_sources = true;
    c.query_sources = true;
    c.historical_to_store = true;
    c.entity_sql = true;
    c.window_aggregations = true;  // spark_aggregations.h
    return c;
  }

  Status ValidateSource(const DataSource& source) const override {
    if (source.is_push()) return Status::OK();
    int forms = !source.path.empty() + !source.table.empty() + !source.query.empty();
    if (forms != 1) {
      return Status::InvalidArgument(fmt::format(
          "data source '{}' needs exactly one of path, table and query; {} reads any of them",
          source.name, Describe()));
    }
    return Status::OK();
  }

  Result<std::optional<InspectedSchema>> Inspect(const DataSource& source) override {
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

  Result<std::unique_ptr<OfflineBatchStream>> GetHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request) override {
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

  Result<std::vector<OfflineReadStats>> WriteHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request,
      const HistoricalOutput& output) override {
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

  Result<std::unique_ptr<OfflineBatchStream>> LatestRows(
      const Definitions& defs, const LatestRowsRequest& request) override {
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
    OfflineReadStats stats;
    stats.view = view.name;
    stats.engine_detail = Describe();
    return std::unique_ptr<OfflineBatchStream>(
        std::make_unique<SparkStream>(client_, std::move(*result), schema, std::move(convert),
                                      std::vector<OfflineReadStats>{stats}, views));
  }

  // The events of a view with aggregations, for its online tiles (spark_aggregations.h): the
  // cluster filters and orders them; they stream back a batch at a time.
  Result<std::unique_ptr<OfflineBatchStream>> ReadEvents(const Definitions& defs,
                                                         const EventsRequest& request) override {
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
        GRANARY_ASSIGN_OR_RAISE(auto col,
                                ToGranaryType(in->column(static_cast<int>(c)), types[c],
                                              schema->field(static_cast<int>(c))->name()));
        columns.push_back(col);
      }
      (*stats)[0].rows_returned += in->num_rows();
      return arrow::RecordBatch::Make(schema, in->num_rows(), std::move(columns));
    };
    OfflineReadStats stats;
    stats.view = view.name;
    stats.engine_detail = Describe();
    return std::unique_ptr<OfflineBatchStream>(
        std::make_unique<SparkStream>(client_, std::move(*result), schema, std::move(convert),
                                      std::vector<OfflineReadStats>{stats}, views));
  }

  Result<OfflineAppendResult> Append(const DataSource& source, const arrow::Table& rows,
                                     const Clock& clock) override {
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
    if (!st.ok())
      return st.WithContext(fmt::format("{}: appending {} rows", where, rows.num_rows()));
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

  // Aggregates in the cluster (spark_stats.h); only the figures come back.
  Result<FeatureStatsReport> FeatureStatistics(const Definitions& defs, const FeatureView& view,
                                               const FeatureStatsOptions& options) override {
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

 private:
  struct Prepared {
    spark_sql::PointInTimeQuery query;
    std::shared_ptr<arrow::Table> entities;  // the output's entity columns (time normalized)
    std::shared_ptr<arrow::Schema> schema;   // the output's schema
    std::vector<ValueType> feature_types;    // per output feature column
    std::vector<std::string> feature_names;
    std::vector<std::string> views;  // temporary views to drop afterwards
    std::string all_view;            // with upload_all: every entity column and the row
    // The output's entity columns as the training set's SELECT names them (from `all_view e`).
    std::vector<std::string> entity_select;
    int64_t entity_rows = 0;
    std::vector<std::string> checkpoints;  // the cluster's copies of entity rows, to release
    std::vector<OfflineReadStats> stats;
    std::string what;
  };

  std::string NewName(std::string_view kind) {
    return fmt::format("__g_{}_{}", kind, counter_.fetch_add(1));
  }

  std::string ResolvePath(const std::string& path) const {
    DataSource s;
    s.path = path;
    return spark_sql::SourcePath(s, options_.repo_root);
  }

  void DropViews(const std::vector<std::string>& views) {
    for (const auto& v : views) (void)client_->RunSql("DROP VIEW IF EXISTS " + QuoteIdentifier(v));
  }
  void Release(const std::vector<std::string>& views, const std::vector<std::string>& checkpoints) {
    DropViews(views);
    for (const auto& id : checkpoints) (void)client_->ReleaseCheckpoint(id);
  }

  // CSV as Spark reads it for Granary: a header, every column as text (the definitions cast).
  Status RegisterCsv(const DataSource& source, const std::string& view) {
    return client_->RunSql(fmt::format(
        "CREATE OR REPLACE TEMPORARY VIEW {} USING csv OPTIONS (path {}, header 'true', "
        "inferSchema 'false')",
        QuoteIdentifier(view), QuoteString(spark_sql::SourcePath(source, options_.repo_root))));
  }

  Result<Prepared> Prepare(const Definitions& defs, const HistoricalRequest& request,
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
    GRANARY_ASSIGN_OR_RAISE(int time_index, EntityTimeColumn(schema));
    const std::string time_name = schema.field(time_index)->name();
    GRANARY_ASSIGN_OR_RAISE(auto time_raw, Combined(table->column(time_index)));
    auto time_or = ToUtcMicros(time_raw, time_name);
    if (!time_or.ok()) return time_or.status().WithContext(request.entities_name);
    std::shared_ptr<arrow::Array> entity_time = *time_or;
    std::optional<int64_t> min_t, max_t;
    const int64_t* t = entity_time->data()->GetValues<int64_t>(1);
    for (int64_t i = 0; i < n; ++i) {
      if (entity_time->IsNull(i)) continue;
      min_t = std::min(min_t.value_or(t[i]), t[i]);
      max_t = std::max(max_t.value_or(t[i]), t[i]);
    }
    // The output's entity columns: as given, the time normalized to timestamp[us, UTC].
    arrow::FieldVector out_fields;
    std::vector<std::shared_ptr<arrow::ChunkedArray>> out_columns;
    for (int i = 0; i < schema.num_fields(); ++i) {
      if (i == time_index) {
        out_fields.push_back(arrow::field(time_name, entity_time->type()));
        out_columns.push_back(std::make_shared<arrow::ChunkedArray>(entity_time));
      } else {
        out_fields.push_back(schema.field(i));
        out_columns.push_back(table->column(i));
      }
    }
    out.entities = arrow::Table::Make(arrow::schema(out_fields), out_columns, n);
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
    out.what = fmt::format("the training set of {} ({} entity rows; views {})",
                           request.entities_name, n, Join(view_names, ", "));
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
    if (min_t) out.query.min_time = Timestamp::FromMicros(*min_t);
    if (max_t) out.query.max_time = Timestamp::FromMicros(*max_t);
    out.query.created_timestamp_cutoff = request.created_timestamp_cutoff;
    out.query.repo_root = options_.repo_root;
    return out;
  }

  // The training set as one query over `all_view e`: the entity columns, then the features, in
  // entity row order; then, `with_summary`, the summary's columns (CountSummary), which a
  // training set written in the cluster leaves out.
  static std::string TrainingSetSql(const Prepared& prepared, bool with_summary) {
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

  // A training set whose entity rows live in the cluster: every column comes back from it.
  Result<std::unique_ptr<OfflineBatchStream>> StreamInCluster(Prepared prepared,
                                                              const HistoricalRequest& request) {
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

  // The per-view part of preparing a training set, the same for entity rows here and in the
  // cluster: each requested view's source checked, its output names checked against the entity
  // columns (`entity_schema`), its join keys found among them (else "<entities_have> no column"),
  // its CSV source registered as a view; the output's feature fields, types and names and one
  // stats entry per view appended to `out`. On an error every view registered is dropped.
  Status AddJoinViews(const Definitions& defs, const ResolvedFeatures& resolved,
                      const arrow::Schema& entity_schema, const std::string& entities_have,
                      Prepared& out, arrow::FieldVector& out_fields,
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
        out_fields.push_back(
            arrow::field(group.output_names[f], ToArrowType(jv->feature_types[f])));
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

  // Entity rows given as SQL or a table name: they stay in the cluster. They are cached there
  // (CACHE TABLE, memory and disk of the executors) with a row identity
  // (monotonically_increasing_id(): increasing in the query's order, so an ORDER BY in the SQL
  // is the training set's order) and the entity time as a TIMESTAMP; nothing but their schema,
  // count and time bounds comes to this process.
  Result<Prepared> PrepareInCluster(const Definitions& defs, const HistoricalRequest& request) {
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
    out.what = fmt::format("the training set of {} ({} entity rows; views {})", name,
                           out.entity_rows, Join(view_names, ", "));
    return out;
  }

  std::shared_ptr<SparkConnectClient> client_;
  SparkEngineOptions options_;
  std::atomic<int64_t> counter_{0};
};

}  // namespace

Result<std::unique_ptr<OfflineEngine>> OpenSparkEngine(const SparkEngineOptions& options) {
  if (options.remote.empty()) {
    return Status::InvalidArgument(
        "offline_store type spark needs remote: the Spark Connect URL, e.g. "
        "remote: \"sc://127.0.0.1:15002\" (scripts/spark-cluster start runs a local cluster)");
  }
  (void)arrow::compute::Initialize();  // the kernels of Filter; fails only when done already
  GRANARY_ASSIGN_OR_RAISE(auto client, SparkConnectClient::Open(options.remote));
  std::shared_ptr<SparkConnectClient> shared = std::move(client);
  // Times are instants in UTC everywhere in Granary; naive timestamps and the SQL's literals too.
  GRANARY_RETURN_NOT_OK(shared->RunSql("SET spark.sql.session.timeZone=UTC"));
  return std::unique_ptr<OfflineEngine>(std::make_unique<SparkEngine>(shared, options));
}

}  // namespace granary
