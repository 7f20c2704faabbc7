#include "granary/offline/spark/spark_sql.h"

#include <fmt/format.h>

#include "granary/common/strings.h"
#include "granary/offline/spark/spark_aggregations.h"
#include "granary/spark_connect/spark_connect_client.h"

namespace granary::spark_sql {

using spark_connect::QuoteIdentifier;
using spark_connect::QuoteString;

namespace {

constexpr int64_t kMicrosPerDay = int64_t{86'400'000'000};

std::string ScalarName(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return "BOOLEAN";
    case ScalarType::kInt32:
      return "INT";
    case ScalarType::kInt64:
      return "BIGINT";
    case ScalarType::kFloat32:
      return "FLOAT";
    case ScalarType::kFloat64:
      return "DOUBLE";
    case ScalarType::kString:
      return "STRING";
    case ScalarType::kBytes:
      return "BINARY";
    case ScalarType::kTimestamp:
      return "TIMESTAMP";
  }
  return "STRING";
}

bool IsUri(const std::string& path) {
  size_t colon = path.find(':');
  if (colon == std::string::npos || colon < 2) return false;  // "C:" is no scheme
  for (size_t i = 0; i < colon; ++i) {
    char c = path[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

std::string DateLiteral(int64_t micros) {
  CivilDate d = CivilFromDays(FloorDiv(micros, kMicrosPerDay));
  return fmt::format("DATE'{:04d}-{:02d}-{:02d}'", d.year, d.month, d.day);
}

}  // namespace

// Filtered on the source's own columns in the scan's WHERE: a filter above
// monotonically_increasing_id() would not be pushed into the reader.
std::string SourceRowsSql(const JoinView& v, const std::filesystem::path& root,
                          const std::string& csv_view, std::optional<Timestamp> start,
                          std::optional<Timestamp> end, bool none, bool keep_null_keys,
                          const std::vector<std::string>& extra) {
  const DataSource& s = *v.source;
  std::vector<std::string> where;
  std::string ev =
      fmt::format("CAST({} AS TIMESTAMP)", QuoteIdentifier(s.SourceColumnFor(s.timestamp_field)));
  if (none) {
    where.push_back("false");
  } else {
    std::string partition = PartitionPredicate(s, start, end);
    if (!partition.empty()) where.push_back(partition);
    where.push_back(ev + " IS NOT NULL");
    for (const auto& key : v.join_keys) {
      if (keep_null_keys) break;
      where.push_back(QuoteIdentifier(s.SourceColumnFor(key)) + " IS NOT NULL");
    }
    if (start) where.push_back(fmt::format("{} >= {}", ev, TimestampLiteral(*start)));
    if (end) where.push_back(fmt::format("{} <= {}", ev, TimestampLiteral(*end)));
  }
  std::vector<std::string> cols;
  for (size_t k = 0; k < v.join_keys.size(); ++k) {
    cols.push_back(fmt::format("CAST({} AS {}) AS __g_k{}",
                               QuoteIdentifier(s.SourceColumnFor(v.join_keys[k])),
                               SparkTypeName(v.join_key_types[k]), k));
  }
  cols.push_back(fmt::format("CAST({} AS TIMESTAMP) AS __g_ev",
                             QuoteIdentifier(s.SourceColumnFor(s.timestamp_field))));
  if (!s.created_timestamp_column.empty()) {
    cols.push_back(fmt::format("CAST({} AS TIMESTAMP) AS __g_cr",
                               QuoteIdentifier(s.SourceColumnFor(s.created_timestamp_column))));
  } else {
    cols.push_back("CAST(NULL AS TIMESTAMP) AS __g_cr");
  }
  if (!s.path.empty() && s.format != SourceFormat::kCsv) {
    cols.push_back("_metadata.file_path AS __g_file");
  } else {
    // A CSV view, a table or a query: _metadata may be hidden; input_file_name() is "" where
    // Spark cannot tell.
    cols.push_back("input_file_name() AS __g_file");
  }
  cols.push_back(HasRowIndex(s) ? "_metadata.row_index AS __g_pos"
                                : "monotonically_increasing_id() AS __g_pos");
  for (size_t f = 0; f < v.features.size(); ++f) {
    cols.push_back(fmt::format("CAST({} AS {}) AS __g_f{}",
                               QuoteIdentifier(s.SourceColumnFor(v.features[f])),
                               SparkTypeName(v.feature_types[f]), f));
  }
  for (const auto& e : extra) cols.push_back(e);
  return fmt::format("SELECT {} FROM {} WHERE {}", Join(cols, ", "),
                     SourceRelation(s, root, csv_view), Join(where, " AND "));
}

namespace {

// named_struct of the read-order key: (event, has created, created, file, position).
constexpr const char* kOrderStruct =
    "named_struct('ev', __g_ev, 'hc', __g_cr IS NOT NULL, 'cr', coalesce(__g_cr, "
    "TIMESTAMP'1970-01-01 00:00:00'), 'file', __g_file, 'pos', __g_pos)";
constexpr const char* kOrderType =
    "STRUCT<ev: TIMESTAMP, hc: BOOLEAN, cr: TIMESTAMP, file: STRING, pos: BIGINT>";

}  // namespace

std::string SparkTypeName(ValueType type) {
  std::string scalar = ScalarName(type.scalar);
  return type.is_list ? "ARRAY<" + scalar + ">" : scalar;
}

std::string TimestampLiteral(Timestamp t) {
  int64_t micros = t.micros;
  int64_t days = FloorDiv(micros, kMicrosPerDay);
  int64_t rest = micros - days * kMicrosPerDay;
  CivilDate d = CivilFromDays(days);
  return fmt::format("TIMESTAMP'{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{:06d}'", d.year, d.month,
                     d.day, rest / 3'600'000'000, rest / 60'000'000 % 60, rest / 1'000'000 % 60,
                     rest % 1'000'000);
}

std::string SourcePath(const DataSource& source, const std::filesystem::path& repo_root) {
  if (IsUri(source.path)) return source.path;
  std::filesystem::path p(source.path);
  if (p.is_relative()) p = repo_root / p;
  return p.lexically_normal().string();
}

bool HasRowIndex(const DataSource& source) {
  // Delta's reader does not offer _metadata.row_index (it keeps row indexes to itself, for
  // deletion vectors).
  return !source.path.empty() && source.format == SourceFormat::kParquet;
}

std::string SourceRelation(const DataSource& source, const std::filesystem::path& repo_root,
                           const std::string& csv_view) {
  // A table name as the user wrote it (catalog.schema.name, quoted parts allowed); a query as a
  // subquery.
  if (!source.table.empty()) return source.table;
  if (!source.query.empty()) return "(" + source.query + ") AS __g_query";
  if (source.format == SourceFormat::kCsv) {
    return QuoteIdentifier(csv_view);
  }
  std::string format = source.format == SourceFormat::kDelta ? "delta" : "parquet";
  return fmt::format("{}.{}", format, QuoteIdentifier(SourcePath(source, repo_root)));
}

std::string PartitionPredicate(const DataSource& source, std::optional<Timestamp> start,
                               std::optional<Timestamp> end) {
  if (source.date_partition_column.empty() || (!start && !end)) return "";
  // try_cast: a value that is not a date never prunes its partition away.
  std::string day =
      fmt::format("try_cast({} AS DATE)",
                  QuoteIdentifier(source.SourceColumnFor(source.date_partition_column)));
  std::vector<std::string> bounds;
  if (start) bounds.push_back(fmt::format("{} >= {}", day, DateLiteral(start->micros)));
  if (end) bounds.push_back(fmt::format("{} <= {}", day, DateLiteral(end->micros)));
  return fmt::format("({} IS NULL OR ({}))", day, Join(bounds, " AND "));
}

std::string FeatureColumn(size_t view, size_t feature) {
  return fmt::format("__g_v{}_f{}", view, feature);
}

std::string MatchedColumn(size_t view) { return fmt::format("__g_v{}_matched", view); }

std::string WithEventsColumn(size_t view) { return fmt::format("__g_v{}_events", view); }

std::string PointInTimeSql(const PointInTimeQuery& q) {
  std::vector<std::string> ctes;
  std::string select = fmt::format("SELECT e.{}", kRowColumn);
  std::string summary;  // the summary's columns, after every feature
  std::string joins;
  for (size_t i = 0; i < q.views.size(); ++i) {
    const JoinView& full = q.views[i];
    // The plain features go through the point-in-time join below (as `v` from here on), the
    // aggregations through their own CTEs; the output takes each from where it was computed.
    JoinView v = full;
    v.features.clear();
    v.feature_types.clear();
    v.aggregations.clear();
    std::vector<size_t> plain_index;  // v's feature j is full's feature plain_index[j]
    bool any_aggregation = false;
    for (size_t f = 0; f < full.features.size(); ++f) {
      if (f < full.aggregations.size() && full.aggregations[f] != nullptr) {
        any_aggregation = true;
        continue;
      }
      plain_index.push_back(f);
      v.features.push_back(full.features[f]);
      v.feature_types.push_back(full.feature_types[f]);
    }
    if (any_aggregation) {
      for (auto& cte : WindowAggregationCtes(q, i)) ctes.push_back(std::move(cte));
      joins += fmt::format(" LEFT JOIN w{0} ON e.{1} = w{0}.{1}", i, kRowColumn);
      summary += fmt::format(", coalesce(w{0}.{1}, false) AS {1}", i, WithEventsColumn(i));
    }
    for (size_t f = 0; f < full.features.size(); ++f) {
      const bool aggregated = f < full.aggregations.size() && full.aggregations[f] != nullptr;
      select += fmt::format(", {}{}.{}", aggregated ? "w" : "v", i, FeatureColumn(i, f));
    }
    if (any_aggregation && v.features.empty()) continue;
    const size_t nk = v.join_keys.size();
    std::optional<Timestamp> start;
    if (q.min_time && v.view->ttl.micros > 0) {
      start = Timestamp::FromMicros(q.min_time->micros - v.view->ttl.micros);
    }
    const std::string csv_view = i < q.csv_views.size() ? q.csv_views[i] : "";
    // Only rows that can be candidates; none at all when no entity row has a time.
    ctes.push_back(fmt::format("v{}_rows AS ({})", i,
                               SourceRowsSql(v, q.repo_root, csv_view, start, q.max_time,
                                             /*none=*/!q.max_time.has_value())));

    std::vector<std::string> value_fields = {"'ev', __g_ev"};
    std::vector<std::string> value_types = {"ev: TIMESTAMP"};
    for (size_t f = 0; f < v.features.size(); ++f) {
      value_fields.push_back(fmt::format("'f{0}', __g_f{0}", f));
      value_types.push_back(fmt::format("f{}: {}", f, SparkTypeName(v.feature_types[f])));
    }
    std::string keys_select, entity_keys, partition_by;
    for (size_t k = 0; k < nk; ++k) {
      keys_select += fmt::format("__g_k{}, ", k);
      entity_keys += fmt::format("CAST({} AS {}) AS __g_k{}, ", QuoteIdentifier(v.join_keys[k]),
                                 SparkTypeName(v.join_key_types[k]), k);
      partition_by += (k == 0 ? "" : ", ") + fmt::format("__g_k{}", k);
    }
    // Activation time: when a feature row becomes a candidate for later entity rows.
    std::string activation =
        q.created_timestamp_cutoff ? "greatest(__g_ev, coalesce(__g_cr, __g_ev))" : "__g_ev";
    std::string entity_filter = fmt::format("{} IS NOT NULL", kTimeColumn);
    for (size_t k = 0; k < nk; ++k) {
      entity_filter += fmt::format(" AND {} IS NOT NULL", QuoteIdentifier(v.join_keys[k]));
    }
    ctes.push_back(fmt::format(
        "v{0}_u AS (SELECT {1}{2} AS __g_at, 0 AS __g_kind, CAST(NULL AS BIGINT) AS {3}, "
        "CAST(NULL AS TIMESTAMP) AS {4}, {5} AS __g_ord, named_struct({6}) AS __g_val "
        "FROM v{0}_rows "
        "UNION ALL SELECT {7}{4} AS __g_at, 1 AS __g_kind, {3}, {4}, CAST(NULL AS {8}) AS __g_ord, "
        "CAST(NULL AS STRUCT<{9}>) AS __g_val FROM {10} WHERE {11})",
        i, keys_select, activation, kRowColumn, kTimeColumn, kOrderStruct, Join(value_fields, ", "),
        entity_keys, kOrderType, Join(value_types, ", "), QuoteIdentifier(q.entity_view),
        entity_filter));
    std::string window = fmt::format(
        "max_by(__g_val, __g_ord) OVER ({}ORDER BY __g_at, __g_kind ROWS BETWEEN UNBOUNDED "
        "PRECEDING AND CURRENT ROW)",
        partition_by.empty() ? "" : "PARTITION BY " + partition_by + " ");
    ctes.push_back(fmt::format("v{0}_m AS (SELECT {1}, {2}, __g_kind, {3} AS __g_best FROM v{0}_u)",
                               i, kRowColumn, kTimeColumn, window));
    // The greatest candidate older than t - ttl means no candidate in the window at all.
    std::string in_ttl = v.view->ttl.micros > 0
                             ? fmt::format("unix_micros(__g_best.ev) >= unix_micros({}) - {}",
                                           kTimeColumn, v.view->ttl.micros)
                             : "__g_best IS NOT NULL";
    std::vector<std::string> outputs;
    for (size_t f = 0; f < v.features.size(); ++f) {
      outputs.push_back(fmt::format("CASE WHEN {} THEN __g_best.f{} END AS {}", in_ttl, f,
                                    FeatureColumn(i, plain_index[f])));
    }
    outputs.push_back(fmt::format("coalesce({}, false) AS {}", in_ttl, MatchedColumn(i)));
    ctes.push_back(fmt::format("v{0} AS (SELECT {1}, {2} FROM v{0}_m WHERE __g_kind = 1)", i,
                               kRowColumn, Join(outputs, ", ")));
    joins += fmt::format(" LEFT JOIN v{0} ON e.{1} = v{0}.{1}", i, kRowColumn);
    // Entity rows left out of the join (no time, a null key) matched nothing.
    summary += fmt::format(", coalesce(v{0}.{1}, false) AS {1}", i, MatchedColumn(i));
  }
  std::string with = ctes.empty() ? "" : "WITH " + Join(ctes, ",\n") + "\n";
  return fmt::format("{}{}{} FROM {} e{} ORDER BY e.{}", with, select, summary,
                     QuoteIdentifier(q.entity_view), joins, kRowColumn);
}

std::string LatestRowsSql(const LatestRowsQuery& q) {
  const JoinView& v = q.view;
  const size_t nk = v.join_keys.size();
  // Rows with a null key stay in the scan, as groups of their own, only to be counted.
  std::string src = SourceRowsSql(v, q.repo_root, q.csv_view, q.start, q.end, /*none=*/false,
                                  /*keep_null_keys=*/true);
  std::vector<std::string> value_fields = {"'ev', __g_ev", "'cr', __g_cr"};
  for (size_t f = 0; f < v.features.size(); ++f) {
    value_fields.push_back(fmt::format("'f{0}', __g_f{0}", f));
  }
  std::vector<std::string> group, outputs, null_key;
  for (size_t k = 0; k < nk; ++k) {
    group.push_back(fmt::format("__g_k{}", k));
    outputs.push_back(fmt::format("__g_k{} AS {}", k, QuoteIdentifier(v.join_keys[k])));
    null_key.push_back(fmt::format("__g_k{} IS NULL", k));
  }
  outputs.push_back("__g_best.ev AS event_timestamp");
  if (!v.source->created_timestamp_column.empty()) {
    outputs.push_back("__g_best.cr AS created_timestamp");
  }
  for (size_t f = 0; f < v.features.size(); ++f) {
    outputs.push_back(fmt::format("__g_best.f{} AS {}", f, QuoteIdentifier(v.features[f])));
  }
  outputs.push_back(fmt::format("__g_n AS {}", kCountColumn));
  outputs.push_back(
      fmt::format("{} AS {}", null_key.empty() ? "false" : Join(null_key, " OR "), kNullKeyColumn));
  std::string inner = fmt::format(
      "SELECT {}{}count(*) AS __g_n, max_by(named_struct({}), {}) AS __g_best FROM ({}){}",
      Join(group, ", "), group.empty() ? "" : ", ", Join(value_fields, ", "), kOrderStruct, src,
      group.empty() ? "" : " GROUP BY " + Join(group, ", "));
  return fmt::format("SELECT {} FROM ({}) WHERE __g_n > 0", Join(outputs, ", "), inner);
}

}  // namespace granary::spark_sql
