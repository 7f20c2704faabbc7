// The Spark SQL that the Spark engine runs (docs/SPARK.md, "How a query is planned"). Pure text
// builders over the definitions: no I/O, so they are tested without a cluster, and the SQL a
// training set runs can be printed and read.
//
// The point-in-time join (docs/POINT_IN_TIME.md) is one query per training set. Per view:
//   - the source rows in [min(t) - ttl, max(t)] (and the date partitions that can hold them),
//     keys cast to the entity's declared types, rows with a null key or time left out, each
//     with its read position (file path, row index in the file);
//   - UNION ALL with the entity rows (keys, time, row number), partitioned by the keys and
//     ordered by activation time (event time; with the cutoff, the later of event and created
//     time), feature rows before entity rows of the same time;
//   - for each entity row, MAX_BY over the rows up to it of the ordering (event time, has
//     created, created time, file path, row index): the chosen row, the greatest candidate;
//     then nulls when the chosen row is older than t - ttl.
// One sort per view over its rows in range and the entity rows: no row-by-row range join, so a
// key with a long history costs a sort, not a product.
// The result has the entity row number and the features only; the engine puts the entity
// columns it holds back beside them, in row order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"

namespace granary::spark_sql {

// Names of the columns the generated SQL adds (never a user's column: they start with "__g_").
inline constexpr const char* kRowColumn = "__g_row";
inline constexpr const char* kTimeColumn = "__g_t";

// Spark SQL's name of a Granary value type: BIGINT, ARRAY<FLOAT>, TIMESTAMP, ...
std::string SparkTypeName(ValueType type);

// A SQL literal for an instant: TIMESTAMP'2024-01-01 00:00:00.000000' (UTC; the engine sets the
// session's time zone to UTC).
std::string TimestampLiteral(Timestamp t);

// The relation a source's rows come from: delta.`/abs/path`, parquet.`...`, a table name, or a
// query in parentheses. Relative paths resolve against `repo_root`; URIs (s3://, abfss://,
// dbfs:/, file:/) are passed through. CSV is read by a temporary view the engine creates
// (header, all columns as strings, cast by the definitions): `csv_view` names it.
std::string SourceRelation(const DataSource& source, const std::filesystem::path& repo_root,
                           const std::string& csv_view = "");

// The absolute path or URI of a path source.
std::string SourcePath(const DataSource& source, const std::filesystem::path& repo_root);

// True when Spark gives the source's rows their exact read position (_metadata.row_index):
// Parquet. Delta and CSV rows are ordered within a file by monotonically_increasing_id(), which
// follows the file's row order as Spark reads its splits in offset order (docs/SPARK.md).
bool HasRowIndex(const DataSource& source);

// One view of a training set.
struct JoinView {
  const FeatureView* view = nullptr;
  const DataSource* source = nullptr;
  std::vector<std::string> join_keys;     // the view's entities' join keys, in order
  std::vector<ValueType> join_key_types;  // as the entities declare them
  std::vector<std::string> features;      // requested features, in request order
  std::vector<ValueType> feature_types;
  // Per feature: its window aggregation (spark_aggregations.h), or null for a plain feature of
  // the view's schema (the point-in-time join). Empty: every feature is plain.
  std::vector<const Aggregation*> aggregations;
};

struct PointInTimeQuery {
  std::string entity_view;  // a view with kRowColumn, the join keys (declared types), kTimeColumn
  std::vector<JoinView> views;
  std::optional<Timestamp> min_time;  // over the entity rows; nullopt: no entity row has a time
  std::optional<Timestamp> max_time;
  bool created_timestamp_cutoff = false;
  std::filesystem::path repo_root;
  std::vector<std::string> csv_views;  // per view: its CSV source's temporary view, or ""
};

// The query: kRowColumn, then per view and feature a column `__g_v<i>_f<j>`, then per view the
// BOOLEAN columns of the training-set summary (MatchedColumn for a view with plain features,
// WithEventsColumn for one with aggregations), ordered by kRowColumn, one row per entity row. A
// view's plain features come from the point-in-time join above; its aggregation features from
// WindowAggregationCtes (spark_aggregations.h).
std::string PointInTimeSql(const PointInTimeQuery& query);

// The column name PointInTimeSql gives feature j of view i.
std::string FeatureColumn(size_t view, size_t feature);

// True where the entity row got a feature row of view i within its ttl (the embedded engine's
// rows_matched), false otherwise (also for rows without a time or with a null key).
std::string MatchedColumn(size_t view);
// True where at least one event of the entity row's key lies in the longest window asked of
// view i (the embedded engine's rows_with_events): the others read count 0 and nulls.
std::string WithEventsColumn(size_t view);

// The latest row of each entity of one view in [start, end] (offline_engine.h's rules): the
// join keys (declared names and types), event_timestamp, created_timestamp (when the source has
// one), the features, then kCountColumn (the entity's rows in the interval) and kNullKeyColumn
// (true for the groups of rows with a null key, which the engine counts and drops). Full ties:
// the row read last (file path, row index).
inline constexpr const char* kCountColumn = "__g_rows";
inline constexpr const char* kNullKeyColumn = "__g_null_key";
struct LatestRowsQuery {
  JoinView view;
  std::optional<Timestamp> start;
  Timestamp end;
  std::filesystem::path repo_root;
  std::string csv_view;
};
std::string LatestRowsSql(const LatestRowsQuery& query);

// The rows of a view's source with an event time in [start, end] (either unbounded when
// nullopt) and no null join key (unless `keep_null_keys`), filtered in the scan's WHERE so that
// Spark prunes partitions, files and row groups: __g_k<i> (join keys cast to their declared
// types), __g_ev, __g_cr, __g_file, __g_pos (read position), __g_f<j> (the view's features
// cast to their types: give a view of plain features only), then `extra` (select expressions over
// the source's own columns). No rows at all when `none`.
std::string SourceRowsSql(const JoinView& view, const std::filesystem::path& root,
                          const std::string& csv_view, std::optional<Timestamp> start,
                          std::optional<Timestamp> end, bool none = false,
                          bool keep_null_keys = false, const std::vector<std::string>& extra = {});

// A predicate on the source's date partition column that keeps the days of [start, end]
// (start nullopt: unbounded), or "" when the source has no date_partition_column. Partition
// values are compared as dates (`2024-01-31` strings or DATE columns).
std::string PartitionPredicate(const DataSource& source, std::optional<Timestamp> start,
                               std::optional<Timestamp> end);

}  // namespace granary::spark_sql
