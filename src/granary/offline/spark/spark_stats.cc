#include "granary/offline/spark/spark_stats.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "granary/common/strings.h"
#include "granary/offline/spark/spark_sql.h"
#include "granary/spark_connect/spark_connect_client.h"

namespace granary {
namespace spark_sql {

using spark_connect::QuoteIdentifier;
using spark_connect::QuoteString;

namespace {

enum class Kind { kNumber, kFloat, kTimestamp, kBool, kString, kBytes, kList };

Kind KindOf(ValueType type) {
  if (type.is_list) return Kind::kList;
  switch (type.scalar) {
    case ScalarType::kBool:
      return Kind::kBool;
    case ScalarType::kString:
      return Kind::kString;
    case ScalarType::kBytes:
      return Kind::kBytes;
    case ScalarType::kTimestamp:
      return Kind::kTimestamp;
    case ScalarType::kFloat32:
    case ScalarType::kFloat64:
      return Kind::kFloat;
    default:
      return Kind::kNumber;
  }
}

std::string Feature(size_t j) { return fmt::format("__g_f{}", j); }

// A feature's value as a double for min, max, mean and the histogram; NULL for null and NaN.
std::string NumericValue(const StatsQuery& q, size_t j) {
  const std::string x = Feature(j);
  switch (KindOf(q.feature_types[j])) {
    case Kind::kFloat:
      return fmt::format("CASE WHEN isnan({0}) THEN NULL ELSE CAST({0} AS DOUBLE) END", x);
    case Kind::kTimestamp:
      return fmt::format("CAST(unix_micros({}) AS DOUBLE)", x);
    case Kind::kBool:
      return fmt::format("CAST(CAST({} AS INT) AS DOUBLE)", x);
    default:
      return fmt::format("CAST({} AS DOUBLE)", x);
  }
}

// A double as a SQL literal that Spark reads back to the same double (Java's parseDouble is
// correctly rounded; fmt prints the shortest text that round-trips).
std::string DoubleLiteral(double v) { return fmt::format("CAST('{}' AS DOUBLE)", v); }

// The source's rows in range: __g_k<i> (keys, declared types), __g_ev, __g_f<j> (features,
// declared types). The filters are on the source's own columns so that Spark pushes them down.
std::string Rows(const StatsQuery& q) {
  const DataSource& s = *q.source;
  const std::string ev =
      fmt::format("CAST({} AS TIMESTAMP)", QuoteIdentifier(s.SourceColumnFor(s.timestamp_field)));
  std::vector<std::string> where;
  std::string partition = PartitionPredicate(s, q.start, q.end);
  if (!partition.empty()) where.push_back(partition);
  where.push_back(ev + " IS NOT NULL");
  if (q.start) where.push_back(fmt::format("{} >= {}", ev, TimestampLiteral(*q.start)));
  if (q.end) where.push_back(fmt::format("{} <= {}", ev, TimestampLiteral(*q.end)));
  std::vector<std::string> cols;
  for (size_t k = 0; k < q.join_keys.size(); ++k) {
    cols.push_back(fmt::format("CAST({} AS {}) AS __g_k{}",
                               QuoteIdentifier(s.SourceColumnFor(q.join_keys[k])),
                               SparkTypeName(q.join_key_types[k]), k));
  }
  cols.push_back(ev + " AS __g_ev");
  for (size_t j = 0; j < q.features.size(); ++j) {
    cols.push_back(fmt::format("CAST({} AS {}) AS {}",
                               QuoteIdentifier(s.SourceColumnFor(q.features[j])),
                               SparkTypeName(q.feature_types[j]), Feature(j)));
  }
  return fmt::format("SELECT {} FROM {} WHERE {}", Join(cols, ", "),
                     SourceRelation(s, q.repo_root, q.csv_view), Join(where, " AND "));
}

}  // namespace

std::string StatsSummarySql(const StatsQuery& q) {
  std::vector<std::string> cols = {"count(*) AS `rows`", "unix_micros(min(__g_ev)) AS lo",
                                   "unix_micros(max(__g_ev)) AS hi"};
  for (size_t j = 0; j < q.features.size(); ++j) {
    const std::string x = Feature(j);
    const Kind kind = KindOf(q.feature_types[j]);
    cols.push_back(fmt::format("count({}) AS c{}", x, j));
    switch (kind) {
      case Kind::kList:
        cols.push_back(
            fmt::format("avg(CASE WHEN {0} IS NOT NULL THEN size({0}) END) AS mean{1}", x, j));
        break;
      case Kind::kString:
      case Kind::kBytes:
        cols.push_back(fmt::format("min({}) AS tmin{}", x, j));
        cols.push_back(fmt::format("max({}) AS tmax{}", x, j));
        cols.push_back(fmt::format("approx_count_distinct({}, 0.01) AS d{}", x, j));
        break;
      default: {
        const std::string v = NumericValue(q, j);
        if (kind == Kind::kFloat) {
          cols.push_back(fmt::format("count_if(isnan({})) AS nan{}", x, j));
        }
        cols.push_back(fmt::format("min({}) AS min{}", v, j));
        cols.push_back(fmt::format("max({}) AS max{}", v, j));
        cols.push_back(fmt::format("avg({}) AS mean{}", v, j));
        // Floats: NaN is no value (NULL), -0.0 the same value as 0.0.
        const std::string distinct_of =
            kind == Kind::kFloat ? fmt::format(
                                       "CASE WHEN isnan({0}) THEN NULL WHEN {0} = 0 THEN "
                                       "CAST(0 AS DOUBLE) ELSE CAST({0} AS DOUBLE) END",
                                       x)
                                 : x;
        cols.push_back(fmt::format("approx_count_distinct({}, 0.01) AS d{}", distinct_of, j));
        break;
      }
    }
  }
  return fmt::format("SELECT {} FROM ({}) AS __g_rows", Join(cols, ", "), Rows(q));
}

std::string StatsHistogramSql(const StatsQuery& q, const std::vector<HistogramSpec>& specs) {
  std::vector<std::string> entries;
  for (const HistogramSpec& h : specs) {
    // HistogramBinOf's rule: floor((v - min) / (max - min) * bins), clamped to the bins; NULL
    // for null and NaN (LEAST and GREATEST skip NULLs, hence the CASE).
    const std::string v = NumericValue(q, h.feature);
    const std::string bin = fmt::format(
        "CASE WHEN {0} IS NOT NULL THEN LEAST(GREATEST(CAST(FLOOR(({0} - {1}) / ({2} - {1}) * {3}) "
        "AS INT), 0), {4}) END",
        v, DoubleLiteral(h.min), DoubleLiteral(h.max), DoubleLiteral(static_cast<double>(h.bins)),
        h.bins - 1);
    entries.push_back(fmt::format("named_struct('f', {}, 'b', {})", h.feature, bin));
  }
  return fmt::format(
      "SELECT f, b, count(*) AS n FROM (SELECT inline(array({})) FROM ({}) AS __g_rows) AS "
      "__g_bins WHERE b IS NOT NULL GROUP BY f, b",
      Join(entries, ", "), Rows(q));
}

std::string StatsTopValuesSql(const StatsQuery& q, const std::vector<size_t>& features, int top) {
  std::vector<std::string> entries;
  for (size_t j : features) {
    const std::string x = Feature(j);
    std::string text;
    switch (KindOf(q.feature_types[j])) {
      case Kind::kBool:
        text = fmt::format("CASE WHEN {0} THEN 'true' WHEN NOT {0} THEN 'false' END", x);
        break;
      case Kind::kBytes:
        text = fmt::format("hex({})", x);
        break;
      default:
        text = x;
        break;
    }
    entries.push_back(fmt::format("named_struct('f', {}, 'v', {})", j, text));
  }
  return fmt::format(
      "SELECT f, v, n FROM (SELECT f, v, n, row_number() OVER (PARTITION BY f ORDER BY n DESC, v) "
      "AS r FROM (SELECT f, v, count(*) AS n FROM (SELECT inline(array({})) FROM ({}) AS "
      "__g_rows) AS __g_values WHERE v IS NOT NULL GROUP BY f, v) AS __g_counts) AS __g_ranked "
      "WHERE r <= {}",
      Join(entries, ", "), Rows(q), top);
}

std::string StatsSampleSql(const StatsQuery& q, int limit) {
  std::vector<std::string> keys;
  std::vector<std::string> order;
  for (size_t k = 0; k < q.join_keys.size(); ++k) {
    keys.push_back(fmt::format("coalesce(CAST(__g_k{0} AS STRING), '') AS k{0}", k));
    order.push_back(fmt::format("k{}", k));
  }
  return fmt::format(
      "SELECT {0}, unix_micros(max(__g_ev)) AS t FROM ({1}) AS __g_rows GROUP BY {2} ORDER BY t "
      "DESC, {2} LIMIT {3}",
      Join(keys, ", "), Rows(q), Join(order, ", "), limit);
}

}  // namespace spark_sql

namespace {

using spark_connect::SparkConnectClient;

// A small result, whole; `scan` (may be null) gets the query's scan metrics.
Result<std::shared_ptr<arrow::Table>> Collect(SparkConnectClient& client, const std::string& sql,
                                              const CancelFlag* cancel,
                                              std::map<std::string, int64_t>* scan) {
  GRANARY_ASSIGN_OR_RAISE(auto stream, client.ExecuteSql(sql, cancel));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, stream->Next());
    if (batch == nullptr) break;
    batches.push_back(std::move(batch));
  }
  if (scan != nullptr) *scan = stream->scan_metrics();
  auto table = arrow::Table::FromRecordBatches(stream->schema(), batches);
  if (!table.ok()) return Status::Internal(table.status().ToString());
  return *table;
}

// The value of `column` at `row`, as Spark typed it; nullopt for null or a missing column.
std::shared_ptr<arrow::Scalar> At(const arrow::Table& table, const std::string& column,
                                  int64_t row) {
  auto c = table.GetColumnByName(column);
  if (c == nullptr) return nullptr;
  auto scalar = c->GetScalar(row);
  if (!scalar.ok() || !(*scalar)->is_valid) return nullptr;
  return *scalar;
}

std::optional<double> DoubleAt(const arrow::Table& t, const std::string& column, int64_t row = 0) {
  auto s = At(t, column, row);
  if (s == nullptr) return std::nullopt;
  auto cast = s->CastTo(arrow::float64());
  if (!cast.ok()) return std::nullopt;
  return std::static_pointer_cast<arrow::DoubleScalar>(*cast)->value;
}

std::optional<int64_t> IntAt(const arrow::Table& t, const std::string& column, int64_t row = 0) {
  auto s = At(t, column, row);
  if (s == nullptr) return std::nullopt;
  auto cast = s->CastTo(arrow::int64());
  if (!cast.ok()) return std::nullopt;
  return std::static_pointer_cast<arrow::Int64Scalar>(*cast)->value;
}

std::optional<std::string> BytesAt(const arrow::Table& t, const std::string& column,
                                   int64_t row = 0) {
  auto s = At(t, column, row);
  if (s == nullptr) return std::nullopt;
  auto* binary = dynamic_cast<const arrow::BaseBinaryScalar*>(s.get());
  if (binary == nullptr || binary->value == nullptr) return s->ToString();
  return binary->value->ToString();
}

std::string FromHex(std::string_view hex) {
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : (c >= 'A' && c <= 'F' ? c - 'A' + 10 : c - 'a' + 10);
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  }
  return out;
}

bool IsNumeric(ValueType type) {
  return !type.is_list && type.scalar != ScalarType::kString && type.scalar != ScalarType::kBytes &&
         type.scalar != ScalarType::kBool;
}

}  // namespace

Result<FeatureStatsReport> ComputeSparkFeatureStats(SparkConnectClient& client,
                                                    const spark_sql::StatsQuery& query,
                                                    const FeatureView& view,
                                                    const FeatureStatsOptions& options) {
  const auto began = std::chrono::steady_clock::now();
  GRANARY_ASSIGN_OR_RAISE(FeatureStatsReport report, NewFeatureStatsReport(view, options));
  const std::string what = fmt::format("feature view '{}': statistics in the cluster", view.name);
  report.join_keys = query.join_keys;
  report.scan.view = view.name;

  std::map<std::string, int64_t> metrics;
  auto summary = Collect(client, spark_sql::StatsSummarySql(query), options.cancel, &metrics);
  if (!summary.ok()) return summary.status().WithContext(what);
  const arrow::Table& s = **summary;
  if (s.num_rows() != 1) {
    return Status::Internal(
        fmt::format("{}: the summary came back with {} rows, not 1", what, s.num_rows()));
  }
  report.rows = IntAt(s, "rows").value_or(0);
  if (auto lo = IntAt(s, "lo")) report.first_event = Timestamp::FromMicros(*lo);
  if (auto hi = IntAt(s, "hi")) report.last_event = Timestamp::FromMicros(*hi);
  auto metric = [&](const char* name) {
    auto it = metrics.find(name);
    return it == metrics.end() ? int64_t{0} : it->second;
  };
  report.scan.files_total = metric("numFiles");
  report.scan.rows_scanned = metric("numOutputRows");
  report.scan.rows_returned = report.rows;
  report.scan.engine_detail =
      fmt::format("{}: {} files read, {} partitions read, {} rows scanned", client.Describe(),
                  metric("numFiles"), metric("numPartitions"), metric("numOutputRows"));

  std::vector<spark_sql::HistogramSpec> histograms;
  std::vector<size_t> counted;  // features with top values
  for (size_t j = 0; j < query.features.size(); ++j) {
    FeatureStats f;
    f.name = query.features[j];
    f.type = query.feature_types[j];
    f.count = report.rows;
    f.nulls = report.rows - IntAt(s, fmt::format("c{}", j)).value_or(0);
    f.nan = IntAt(s, fmt::format("nan{}", j)).value_or(0);
    f.mean = DoubleAt(s, fmt::format("mean{}", j));
    if (!f.type.is_list) {
      f.distinct_estimate = IntAt(s, fmt::format("d{}", j)).value_or(0);
    }
    if (f.type.is_list) {
      // count, nulls and the mean length only
    } else if (f.type.scalar == ScalarType::kString || f.type.scalar == ScalarType::kBytes) {
      const bool bytes = f.type.scalar == ScalarType::kBytes;
      auto lo = BytesAt(s, fmt::format("tmin{}", j));
      auto hi = BytesAt(s, fmt::format("tmax{}", j));
      if (lo) f.min_text = bytes ? PrintableBytes(*lo) : *lo;
      if (hi) f.max_text = bytes ? PrintableBytes(*hi) : *hi;
      counted.push_back(j);
    } else {
      f.min = DoubleAt(s, fmt::format("min{}", j));
      f.max = DoubleAt(s, fmt::format("max{}", j));
      if (f.type.scalar == ScalarType::kBool) counted.push_back(j);
      if (f.type.scalar == ScalarType::kTimestamp && f.min && f.max) {
        f.min_text = FormatTimestamp(Timestamp::FromMicros(static_cast<int64_t>(*f.min)));
        f.max_text = FormatTimestamp(Timestamp::FromMicros(static_cast<int64_t>(*f.max)));
      }
      if (IsNumeric(f.type) && f.min && f.max) {
        f.histogram = HistogramBins(*f.min, *f.max, options.histogram_bins);
        if (f.histogram.size() == 1) {
          f.histogram[0].count = f.count - f.nulls - f.nan;  // every value is min
        } else {
          histograms.push_back({j, *f.min, *f.max, static_cast<int>(f.histogram.size())});
        }
      }
    }
    report.features.push_back(std::move(f));
  }

  if (!histograms.empty()) {
    auto bins =
        Collect(client, spark_sql::StatsHistogramSql(query, histograms), options.cancel, nullptr);
    if (!bins.ok()) return bins.status().WithContext(what + " (histograms)");
    for (int64_t r = 0; r < (*bins)->num_rows(); ++r) {
      auto j = IntAt(**bins, "f", r);
      auto b = IntAt(**bins, "b", r);
      auto n = IntAt(**bins, "n", r);
      if (!j || !b || !n || *j < 0 || static_cast<size_t>(*j) >= report.features.size()) continue;
      auto& histogram = report.features[static_cast<size_t>(*j)].histogram;
      if (*b >= 0 && static_cast<size_t>(*b) < histogram.size()) histogram[*b].count += *n;
    }
  }

  if (!counted.empty() && options.top_values > 0) {
    auto top = Collect(client, spark_sql::StatsTopValuesSql(query, counted, options.top_values),
                       options.cancel, nullptr);
    if (!top.ok()) return top.status().WithContext(what + " (top values)");
    for (int64_t r = 0; r < (*top)->num_rows(); ++r) {
      auto j = IntAt(**top, "f", r);
      auto v = BytesAt(**top, "v", r);
      auto n = IntAt(**top, "n", r);
      if (!j || !v || !n || *j < 0 || static_cast<size_t>(*j) >= report.features.size()) continue;
      FeatureStats& f = report.features[static_cast<size_t>(*j)];
      f.top_values.push_back(
          {f.type.scalar == ScalarType::kBytes ? PrintableBytes(FromHex(*v)) : *v, *n});
    }
    for (FeatureStats& f : report.features) SortTopValues(f.top_values, options.top_values);
  }

  if (options.sample_entities > 0 && !query.join_keys.empty() && report.rows > 0) {
    auto sample = Collect(client, spark_sql::StatsSampleSql(query, options.sample_entities),
                          options.cancel, nullptr);
    if (!sample.ok()) return sample.status().WithContext(what + " (sample entities)");
    for (int64_t r = 0; r < (*sample)->num_rows(); ++r) {
      std::vector<std::string> key;
      for (size_t k = 0; k < query.join_keys.size(); ++k) {
        key.push_back(BytesAt(**sample, fmt::format("k{}", k), r).value_or(""));
      }
      report.sample_keys.push_back(std::move(key));
    }
  }
  report.elapsed = Duration::Microseconds(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::steady_clock::now() - began)
                                              .count());
  return report;
}

}  // namespace granary
