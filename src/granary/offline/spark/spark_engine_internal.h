// What the files of the Spark engine share: the SparkEngine class (its sources, latest rows,
// events, appends and statistics in spark_engine.cc, its training sets in
// spark_training_set.cc), SparkStream (the results streamed back) and the conversions of
// definitions and results (spark_engine_internal.cc). Internal to
// granary/offline/spark: the product opens the engine through spark_engine.h.
// Thread-safety as spark_engine.h says: SparkEngine is thread-safe, a SparkStream is used by
// one thread at a time.
#pragma once

#include <arrow/api.h>
#include <fmt/format.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granary/offline/offline_engine.h"
#include "granary/offline/spark/spark_engine.h"
#include "granary/offline/spark/spark_sql.h"
#include "granary/spark_connect/spark_connect_client.h"

namespace granary::spark_engine {

using spark_connect::QuoteIdentifier;
using spark_connect::QuoteString;
using spark_connect::ResultStream;
using spark_connect::SparkConnectClient;

// An Arrow error as an Internal status naming `what`.
Status FromArrow(const arrow::Status& st, std::string_view what);

// The column as one array (concatenated when chunked).
Result<std::shared_ptr<arrow::Array>> Combined(const std::shared_ptr<arrow::ChunkedArray>& column);

// A view's source and its join keys with the declared types.
Result<spark_sql::JoinView> MakeJoinView(const Definitions& defs, const FeatureView& view,
                                         const std::vector<std::string>& features);

// Converts a result column from Spark to the Arrow type Granary gives `type` (Spark returns
// the same values in its own types: timestamps in the session's zone, FLOAT as float32, ...).
Result<std::shared_ptr<arrow::Array>> ToGranaryType(const std::shared_ptr<arrow::Array>& array,
                                                    ValueType type, std::string_view column);

// Adds a result batch's summary columns (spark_sql::MatchedColumn, WithEventsColumn: view i's
// are counted into stats[i]) to the training-set summary's counts.
Status CountSummary(const arrow::RecordBatch& batch, std::vector<OfflineReadStats>* stats);

// Streams a query's batches through a per-batch conversion; drops its temporary views and
// releases its checkpoints when destroyed.
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

// The offline engine on Spark (spark_engine.h has its semantics). Thread-safe: one Spark Connect
// session, shared; temporary views and checkpoints are named uniquely per call (NewName).
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

  Status ValidateSource(const DataSource& source) const override;

  Result<std::optional<InspectedSchema>> Inspect(const DataSource& source) override;

  Result<std::unique_ptr<OfflineBatchStream>> GetHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request) override;

  Result<std::vector<OfflineReadStats>> WriteHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request,
      const HistoricalOutput& output) override;

  Result<std::unique_ptr<OfflineBatchStream>> LatestRows(const Definitions& defs,
                                                         const LatestRowsRequest& request) override;

  // The events of a view with aggregations, for its online tiles (spark_aggregations.h): the
  // cluster filters and orders them; they stream back a batch at a time.
  Result<std::unique_ptr<OfflineBatchStream>> ReadEvents(const Definitions& defs,
                                                         const EventsRequest& request) override;

  Result<OfflineAppendResult> Append(const DataSource& source, const arrow::Table& rows,
                                     const Clock& clock) override;

  // Aggregates in the cluster (spark_stats.h); only the figures come back.
  Result<FeatureStatsReport> FeatureStatistics(const Definitions& defs, const FeatureView& view,
                                               const FeatureStatsOptions& options) override;

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

  // The stream of one view's rows (LatestRows, ReadEvents): its stats name the view; `views`
  // (temporary) are dropped with it.
  std::unique_ptr<OfflineBatchStream> ViewStream(const FeatureView& view,
                                                 std::unique_ptr<ResultStream> result,
                                                 std::shared_ptr<arrow::Schema> schema,
                                                 SparkStream::Convert convert,
                                                 std::vector<std::string> views);

  Result<Prepared> Prepare(const Definitions& defs, const HistoricalRequest& request,
                           bool upload_all);

  // The training set as one query over `all_view e`: the entity columns, then the features, in
  // entity row order; then, `with_summary`, the summary's columns (CountSummary), which a
  // training set written in the cluster leaves out.
  static std::string TrainingSetSql(const Prepared& prepared, bool with_summary);

  // A training set whose entity rows live in the cluster: every column comes back from it.
  Result<std::unique_ptr<OfflineBatchStream>> StreamInCluster(Prepared prepared,
                                                              const HistoricalRequest& request);

  // The per-view part of preparing a training set, the same for entity rows here and in the
  // cluster: each requested view's source checked, its output names checked against the entity
  // columns (`entity_schema`), its join keys found among them (else "<entities_have> no column"),
  // its CSV source registered as a view; the output's feature fields, types and names and one
  // stats entry per view appended to `out`. On an error every view registered is dropped.
  Status AddJoinViews(const Definitions& defs, const ResolvedFeatures& resolved,
                      const arrow::Schema& entity_schema, const std::string& entities_have,
                      Prepared& out, arrow::FieldVector& out_fields,
                      std::vector<std::string>& view_names);

  // Entity rows given as SQL or a table name: they stay in the cluster. They are cached there
  // (CACHE TABLE, memory and disk of the executors) with a row identity
  // (monotonically_increasing_id(): increasing in the query's order, so an ORDER BY in the SQL
  // is the training set's order) and the entity time as a TIMESTAMP; nothing but their schema,
  // count and time bounds comes to this process.
  Result<Prepared> PrepareInCluster(const Definitions& defs, const HistoricalRequest& request);

  std::shared_ptr<SparkConnectClient> client_;
  SparkEngineOptions options_;
  std::atomic<int64_t> counter_{0};
};

}  // namespace granary::spark_engine
