// OfflineEngine: the one interface of the offline store (docs/ARCHITECTURE.md, "The offline
// engine"). Everything above offline/ (materialization, push's offline append, get-historical-
// features in the CLI and the SDK, apply / plan / status when they look at sources) reaches
// offline data only through it. Implementations, built by OpenOfflineEngine
// (offline/engine_factory.h) from granary.yaml's `offline_store`:
//   type: file   offline/embedded/: the embedded engine; Parquet, CSV and Delta Lake files read
//                and joined in this process, in bounded memory (spilling past a budget);
//   type: spark  offline/spark/: Apache Spark through Spark Connect; the work runs in the
//                cluster and results come back as Arrow batches.
//
// Semantics every engine keeps (offline_engine_conformance_test.cc runs one suite against each):
//   - Historical retrieval is the point-in-time join of docs/POINT_IN_TIME.md, exactly: one
//     output row per entity row, in the entity rows' order, duplicates kept; the entity columns
//     first, in their order (the entity time as timestamp[us, UTC]), then the features in the
//     requested order; ttl bounds, the created-timestamp tie-break and cutoff, field mapping and
//     full feature names as documented there.
//   - Aggregation features (a view's `aggregations:`) are computed at each entity row by the
//     sawtooth rule of docs/AGGREGATIONS.md, exactly as aggregation/window_kernel.h defines them
//     (capabilities().window_aggregations; else kNotImplemented naming the feature).
//   - Latest rows of a view in [start, end] (both inclusive; no start: unbounded): for each
//     entity with a row there, the row with the greatest (event_timestamp, created_timestamp),
//     a null created timestamp (or a source without that column) older than any value. Of rows
//     tied on both, an engine with a stable read order (the embedded one) takes the row read
//     last; one without may take any of them. Rows with a null join key belong to no entity.
//     Every entity comes exactly once; the order of entities is unspecified.
//     Columns: the view's join keys (named and typed as the entities declare), `event_timestamp`
//     (timestamp[us, UTC]), `created_timestamp` (timestamp[us, UTC]; only when the source has a
//     created_timestamp_column), then the requested features typed as the view declares: the
//     layout OnlineStore::WriteBatch takes.
//   - Append: rows named as the source's columns (before field_mapping) become visible to later
//     reads all at once or not at all; concurrent appends to one source all land.
//   - Sources: a data source names its data by `path` (files, folders, globs, Delta tables),
//     `table` (a catalog table) or `query` (SQL). The engine validates the form (ValidateSource)
//     and refuses, with kNotImplemented, a form it cannot read, naming the engine that can.
//   - What an engine cannot do at all answers StatusCode::kNotImplemented with a message naming
//     the engine, the operation and what to use instead. Callers may ask capabilities() first;
//     they never compare engine type strings.
//   - Feature statistics of a view over an event-time range (FeatureStatistics) follow the
//     rules of offline/feature_stats.h, computed where the engine runs (the cluster for Spark);
//     what may differ between engines (distinct estimates, ties) is stated there.
//   - Errors name the view (or source) and say how to fix; nothing is half-written.
//
// Threading contract:
//   - An OfflineEngine is thread-safe: every method may be called from any number of threads at
//     once (a server runs a materialization and pushes at the same time). It holds no per-call
//     state; the Definitions passed to a call are borrowed for that call (and, for a stream, for
//     the stream's life).
//   - An OfflineBatchStream is used by one thread at a time. Behind Next() it may work on threads
//     of its own (decoding ahead, a cluster job); destroying the stream stops that work (and
//     cancels a cluster job) before returning. Every stream must be destroyed before its engine.
//   - Cancellation: requests carry a CancelFlag (may be null) that another thread may set; the
//     engine polls it between units of work (batches, partitions, views, cluster polls) and the
//     call, or the next Next(), returns kCancelled.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/clock.h"
#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"
#include "granary/registry/validator.h"
#include "granary/types/feature_ref.h"

namespace arrow {
class RecordBatch;
class Schema;
class Table;
}  // namespace arrow

namespace granary {

class Progress;
class PhaseTimings;
struct FeatureStatsOptions;  // offline/feature_stats.h
struct FeatureStatsReport;

// The column names every engine's output uses besides join keys and features.
inline constexpr const char* kEventTimestampColumn = "event_timestamp";
inline constexpr const char* kCreatedTimestampColumn = "created_timestamp";

// What an engine can do (DuckDB's TableFunction flags): callers check these instead of the type.
// An operation an engine does not support answers kNotImplemented all the same.
struct OfflineEngineCapabilities {
  bool append = false;               // Append (offline push)
  bool path_sources = true;          // sources with `path:`
  bool table_sources = false;        // sources with `table:` (a catalog table)
  bool query_sources = false;        // sources with `query:` (SQL)
  bool entity_sql = false;           // HistoricalRequest::entity_sql / entity_table
  bool historical_to_store = false;  // WriteHistoricalFeatures (the result stays in the engine)
  // Historical retrieval of window aggregation features (docs/AGGREGATIONS.md: the sawtooth
  // window, exact at each entity row, computed by or equal to aggregation/window_kernel.h).
  // Without it, a request for an aggregation feature answers kNotImplemented.
  bool window_aggregations = false;
};

// Generic read statistics of one view's read, which every report (materialization runs, the
// training-set summary, the server's JSON) carries. Every engine fills what it knows; 0 means
// "unknown" or "none". Counts grow while a stream is read and are final at its end.
struct OfflineReadStats {
  std::string view;
  int64_t files_total = 0;        // data files of the source (or of its partitions) considered
  int64_t files_pruned = 0;       // skipped by partition values or file statistics
  int64_t row_groups_total = 0;   // Parquet row groups of the files not pruned
  int64_t row_groups_pruned = 0;  // skipped by the timestamp column's min/max statistics
  int64_t rows_scanned = 0;       // rows read from the source before the event-time filter
  int64_t rows_returned = 0;      // rows in the time range (before picking latest / matching)
  int64_t bytes_estimated = 0;    // uncompressed bytes of the columns read, when known
  int64_t rows_estimated = 0;     // rows to read, known before reading (progress); 0: unknown
  int64_t null_key_rows = 0;      // latest rows: rows in range with a null join key
  int64_t rows_matched = 0;       // historical: entity rows that got a feature row
  // Historical, the embedded engine: Parquet row groups the join's second read (the features of
  // the chosen rows) left unread because none of their rows was chosen; 0 when unknown.
  int64_t row_groups_skipped = 0;
  // Historical, views with window aggregations (docs/AGGREGATIONS.md): whether plain features
  // were asked too (rows_matched counts their join), the longest window of the aggregations
  // asked (zero: none was) and the entity rows with at least one event of their key in it (the
  // others read count 0 and null, which is a value, not a miss).
  bool plain_features = true;
  Duration aggregation_window;
  int64_t rows_with_events = 0;
  // Work done on this machine: 0 partitions = in memory in one pass; > 0 = split by entity
  // this many ways (spilling `bytes_spilled` bytes to local files); peak bytes of that state.
  int partitions = 0;
  int64_t bytes_spilled = 0;
  int64_t peak_state_bytes = 0;
  // Rows read a second time because the state outgrew the budget after them and the read
  // started again partitioned (the embedded engine's latest rows); 0 when it did not.
  int64_t rows_read_twice = 0;
  // How the engine fit the work in its memory budget and why, in words ("matched streaming:
  // 12 MiB of state ..."); may be empty.
  std::string memory_plan;
  // Historical, the embedded engine: what became of the view's output columns (held in memory
  // until the training set is written, or spilled to disk past a share of the budget) and why,
  // in words; the bytes spilled so (besides `bytes_spilled`, the join's). May be empty.
  std::string output_plan;
  int64_t output_bytes_spilled = 0;
  // Engine-specific, for messages and logs ("spark: job 12, 3 stages, 40 tasks"); may be empty.
  std::string engine_detail;
};

// A stream of Arrow record batches: a training set or the latest rows of a view.
class OfflineBatchStream {
 public:
  virtual ~OfflineBatchStream() = default;
  // The schema of every batch (known before the first Next()).
  virtual const std::shared_ptr<arrow::Schema>& schema() const = 0;
  // The next batch (never empty), or nullptr at the end. After an error, do not call again.
  virtual Result<std::shared_ptr<arrow::RecordBatch>> Next() = 0;
  // One entry per view read, in the order read. Grows while reading; final after the end.
  virtual std::vector<OfflineReadStats> stats() const = 0;
  // How many rows the stream will return, when the engine knows before they are read (the
  // embedded engine's latest rows); 0: unknown. For progress bars.
  virtual int64_t expected_rows() const { return 0; }
  // What the user should know about how the work went (memory held past a budget, a fallback
  // taken), one sentence each; the CLI prints them as warnings. Final after the end.
  virtual std::vector<std::string> warnings() const { return {}; }
};

// Reads every batch of `stream` into one table (for callers that need it whole).
Result<std::shared_ptr<arrow::Table>> ReadAll(OfflineBatchStream& stream);

// The latest row of each entity of one view in an interval (see the semantics above).
struct LatestRowsRequest {
  const FeatureView* view = nullptr;  // a view of the Definitions passed with the request
  std::optional<Timestamp> start;     // inclusive; nullopt: from the first row
  Timestamp end;                      // inclusive
  std::vector<std::string> features;  // features of the view to return; empty: every feature
  // A hint, in rows, for the size of returned batches: the caller bounds the memory of batches
  // in flight with it. Engines may return smaller (or, when unavoidable, larger) batches.
  int64_t batch_rows = 64 * 1024;
  // Counts source rows read while the engine looks for the latest rows; may be null.
  Progress* progress = nullptr;
  const CancelFlag* cancel = nullptr;  // may be null
};

// The raw events of a view with aggregations, for its online tiles (materialization).
struct EventsRequest {
  const FeatureView* view = nullptr;   // a view of the Definitions passed with the request
  Timestamp start;                     // inclusive
  Timestamp end;                       // inclusive
  int64_t batch_rows = 64 * 1024;      // a hint, as LatestRowsRequest's
  const CancelFlag* cancel = nullptr;  // may be null
};

// A training set: entity rows in, point-in-time-correct feature values out.
struct HistoricalRequest {
  // The entity rows, here: the join keys of every requested view and the entity time (the
  // column `event_timestamp`, or else the only timestamp or date column; ISO 8601 strings are
  // parsed). Other columns pass through unchanged.
  std::shared_ptr<arrow::Table> entities;
  // Or the entity rows where the engine runs (capabilities().entity_sql): a SQL query or a
  // table name. At most one of entities, entity_sql and entity_table.
  std::string entity_sql;
  std::string entity_table;
  // What the entity rows are called in messages: the file they came from, when they did.
  std::string entities_name = "entity rows";
  // Either features ("view:feature") or a feature service's name.
  std::vector<FeatureRef> features;
  std::string feature_service;
  bool full_feature_names = false;        // name output columns "view__feature"
  bool created_timestamp_cutoff = false;  // ignore rows created after the entity row's time
  bool show_progress = false;             // a Progress line per view on stderr
  const CancelFlag* cancel = nullptr;     // may be null
  // Where the engine records its phases (wall and CPU time each), for `--timings`; may be null.
  // Engines that run elsewhere (Spark) record none.
  PhaseTimings* timings = nullptr;
};

// Where WriteHistoricalFeatures leaves a training set, inside the engine's storage.
struct HistoricalOutput {
  std::string table;  // a catalog table name, or
  std::string path;   // a URI the engine's file systems accept (a Delta table is written there)
};

// The requested features resolved to (view, features) in request order with their output
// column names. InvalidArgument for an unknown view, feature or service (with "did you mean"),
// and for two features that would get the same output name (naming both). Engine-independent:
// callers use it to fail fast before any data is read.
struct ResolvedFeatures {
  struct ViewFeatures {
    const FeatureView* view;
    std::vector<std::string> features;
    std::vector<std::string> output_names;
  };
  std::vector<ViewFeatures> views;
};
Result<ResolvedFeatures> ResolveFeatures(const Definitions& defs, const HistoricalRequest& request);

// The entity rows' time column (docs/POINT_IN_TIME.md): `event_timestamp`, or else the only
// timestamp or date column. InvalidArgument, naming the columns and the fix, when there is none
// or several. Engine-independent: every engine reads the entity time by this rule.
Result<int> EntityTimeColumn(const arrow::Schema& schema);

class OfflineEngine;
// kNotImplemented, naming the feature and the engine, when `resolved` asks for what `engine`
// cannot compute (an aggregation feature without capabilities().window_aggregations).
Status CheckEngineSupports(const OfflineEngine& engine, const ResolvedFeatures& resolved);

// What an append wrote.
struct OfflineAppendResult {
  // Data files written, as absolute paths or URIs (a push's answer lists them).
  std::vector<std::string> files;
  int64_t delta_version = -1;  // the new Delta commit; -1 when not a Delta table
  int64_t rows = 0;
};

class OfflineEngine : public SourceInspector {
 public:
  ~OfflineEngine() override = default;

  // "embedded engine (Parquet, CSV, Delta) under /repo", "spark at sc://host:15002".
  virtual std::string Describe() const = 0;
  virtual OfflineEngineCapabilities capabilities() const = 0;

  // Checks that this engine can read `source` as written (its form: path, table or query);
  // kNotImplemented for a form it cannot read, naming the engine that can. Reads no data.
  virtual Status ValidateSource(const DataSource& source) const = 0;

  // SourceInspector (registry/validator.h): the source's columns, for apply and plan; nullopt
  // when its data does not exist yet. Errors as ValidateSource for forms it cannot read.
  Result<std::optional<InspectedSchema>> Inspect(const DataSource& source) override = 0;

  // The training set of `request` (see the semantics above), as a stream of batches. Errors
  // about the request (unknown features, missing entity columns) come back before any data is
  // read; a view's source that is missing or unreadable fails the call or a Next().
  virtual Result<std::unique_ptr<OfflineBatchStream>> GetHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request) = 0;

  // As GetHistoricalFeatures, but the result is written inside the engine's storage
  // (`output`) without passing through this process. Returns the read statistics per view.
  // kNotImplemented unless capabilities().historical_to_store.
  virtual Result<std::vector<OfflineReadStats>> WriteHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request, const HistoricalOutput& output);

  // The latest row of each entity of request.view in the interval, as a stream. The work of
  // finding them may happen in this call (the embedded engine's first pass) or behind Next().
  virtual Result<std::unique_ptr<OfflineBatchStream>> LatestRows(
      const Definitions& defs, const LatestRowsRequest& request) = 0;

  // Every event of request.view's source with start <= event time <= end: the view's join keys,
  // `event_timestamp` (timestamp[us, UTC]), then each source column its aggregations read
  // (`column`s typed as in the source, `where`s as bool), once each, named by definition name;
  // rows with a null join key left out; in the source's read order. kNotImplemented unless
  // capabilities().window_aggregations.
  virtual Result<std::unique_ptr<OfflineBatchStream>> ReadEvents(const Definitions& defs,
                                                                 const EventsRequest& request);

  // Appends `rows` to `source` (a source with a path or table, not a push source): the offline
  // half of a push. `clock` stamps what it writes (a Delta commit's time).
  // kNotImplemented unless capabilities().append.
  virtual Result<OfflineAppendResult> Append(const DataSource& source, const arrow::Table& rows,
                                             const Clock& clock);

  // Statistics of `view`'s data in [options.start, options.end] (offline/feature_stats.h: what
  // each figure means, per engine), computed by the engine: on Spark as aggregate queries in the
  // cluster, only the figures coming back. InvalidArgument for bad options or a feature the view
  // lacks; kNotImplemented for an engine without them.
  virtual Result<FeatureStatsReport> FeatureStatistics(const Definitions& defs,
                                                       const FeatureView& view,
                                                       const FeatureStatsOptions& options);
};

}  // namespace granary
