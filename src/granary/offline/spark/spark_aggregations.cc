#include "granary/offline/spark/spark_aggregations.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "granary/common/strings.h"
#include "granary/spark_connect/spark_connect_client.h"

namespace granary::spark_sql {

using spark_connect::QuoteIdentifier;

namespace {

int64_t Granularity(const FeatureView& view) {
  return view.granularity.micros > 0 ? view.granularity.micros : kDefaultGranularity.micros;
}

// The Spark type an aggregation's values are cast to before aggregating ("" for none).
std::string ValueCast(const Aggregation& a) {
  switch (a.function) {
    case AggregationFunction::kCount:
    case AggregationFunction::kCountDistinct:
      return "";
    case AggregationFunction::kMean:
    case AggregationFunction::kStddev:
      return "DOUBLE";
    default:
      return a.type ? SparkTypeName(*a.type) : "";
  }
}

// A view with only the keys and the source of `v` (no features): for event scans.
JoinView KeysOnly(const JoinView& v) {
  JoinView out = v;
  out.features.clear();
  out.feature_types.clear();
  out.aggregations.clear();
  return out;
}

// The select expressions of `columns` over the source's own columns: __g_c<n>.
std::vector<std::string> EventColumnSelects(const DataSource& source,
                                            const std::vector<EventColumn>& columns) {
  std::vector<std::string> out;
  for (size_t n = 0; n < columns.size(); ++n) {
    const std::string raw = QuoteIdentifier(source.SourceColumnFor(columns[n].name));
    const std::string type = columns[n].is_where ? "BOOLEAN" : columns[n].cast;
    out.push_back(type.empty() ? fmt::format("{} AS __g_c{}", raw, n)
                               : fmt::format("CAST({} AS {}) AS __g_c{}", raw, type, n));
  }
  return out;
}

size_t ColumnIndex(const std::vector<EventColumn>& columns, const std::string& name) {
  for (size_t n = 0; n < columns.size(); ++n) {
    if (columns[n].name == name) return n;
  }
  return columns.size();  // not reached: every aggregation's columns are listed
}

}  // namespace

int64_t WindowStartMicros(int64_t t, int64_t window, int64_t granularity) {
  const int64_t raw = t - window;
  int64_t q = raw / granularity;
  if (raw % granularity != 0 && raw < 0) --q;
  return q * granularity;
}

std::vector<EventColumn> AggregationEventColumns(const FeatureView& view,
                                                 const DataSource& source) {
  const bool csv = !source.path.empty() && source.format == SourceFormat::kCsv;
  std::vector<EventColumn> out;
  // CSV: the type a column is cast to, by the strongest claim on it (see EventColumn::cast).
  std::map<std::string, int> rank;
  auto add = [&](const std::string& name, bool is_where, const std::string& cast, int r) {
    if (name.empty()) return;
    size_t n = ColumnIndex(out, name);
    if (n == out.size()) {
      out.push_back(EventColumn{name, is_where, ""});
      rank[name] = 0;
    }
    out[n].is_where = out[n].is_where || is_where;
    if (csv && !cast.empty() && r > rank[name]) {
      out[n].cast = cast;
      rank[name] = r;
    }
  };
  for (const Aggregation& a : view.aggregations) {
    int r = 0;
    switch (a.function) {
      case AggregationFunction::kMin:
      case AggregationFunction::kMax:
      case AggregationFunction::kFirst:
      case AggregationFunction::kLast:
        r = 3;
        break;
      case AggregationFunction::kSum:
        r = 2;
        break;
      case AggregationFunction::kMean:
      case AggregationFunction::kStddev:
        r = 1;
        break;
      default:
        break;
    }
    add(a.column, false, ValueCast(a), r);
    add(a.where, true, "", 0);
  }
  return out;
}

std::vector<std::string> WindowAggregationCtes(const PointInTimeQuery& q, size_t i) {
  const JoinView& v = q.views[i];
  const FeatureView& view = *v.view;
  const int64_t g = Granularity(view);
  const size_t nk = v.join_keys.size();

  // The windows asked for, and the longest: it bounds the join and the scan.
  std::vector<int64_t> windows;
  for (const Aggregation* a : v.aggregations) {
    if (a == nullptr) continue;
    if (std::find(windows.begin(), windows.end(), a->window.micros) == windows.end()) {
      windows.push_back(a->window.micros);
    }
  }
  const int64_t longest = *std::max_element(windows.begin(), windows.end());
  auto window_index = [&](int64_t w) {
    return std::find(windows.begin(), windows.end(), w) - windows.begin();
  };
  size_t widest = window_index(longest);

  std::optional<Timestamp> lo;
  if (q.min_time) lo = Timestamp::FromMicros(WindowStartMicros(q.min_time->micros, longest, g));
  const std::string csv_view = i < q.csv_views.size() ? q.csv_views[i] : "";
  // The columns of the requested aggregations only (a view may declare more).
  FeatureView requested = view;
  requested.aggregations.clear();
  for (const Aggregation* a : v.aggregations) {
    if (a != nullptr) requested.aggregations.push_back(*a);
  }
  const std::vector<EventColumn> columns = AggregationEventColumns(requested, *v.source);

  std::vector<std::string> ctes;
  ctes.push_back(
      fmt::format("w{0}_e AS (SELECT *, unix_micros(__g_ev) AS __g_us FROM ({1}))", i,
                  SourceRowsSql(KeysOnly(v), q.repo_root, csv_view, lo, q.max_time,
                                /*none=*/!q.max_time.has_value(), /*keep_null_keys=*/false,
                                EventColumnSelects(*v.source, columns))));

  std::vector<std::string> entity_cols = {kRowColumn,
                                          fmt::format("unix_micros({}) AS __g_tus", kTimeColumn)};
  for (size_t k = 0; k < nk; ++k) {
    entity_cols.push_back(fmt::format("CAST({} AS {}) AS __g_k{}", QuoteIdentifier(v.join_keys[k]),
                                      SparkTypeName(v.join_key_types[k]), k));
  }
  for (size_t w = 0; w < windows.size(); ++w) {
    // t - W rounded down to G in integer microseconds; pmod is never negative, so this floors
    // before 1970 too.
    entity_cols.push_back(
        fmt::format("(unix_micros({0}) - {1}) - pmod(unix_micros({0}) - {1}, {2}) AS __g_s{3}",
                    kTimeColumn, windows[w], g, w));
  }
  ctes.push_back(fmt::format("w{}_r AS (SELECT {} FROM {})", i, Join(entity_cols, ", "),
                             QuoteIdentifier(q.entity_view)));

  std::vector<std::string> on;
  for (size_t k = 0; k < nk; ++k) on.push_back(fmt::format("r.__g_k{0} = e.__g_k{0}", k));
  on.push_back("e.__g_us <= r.__g_tus");
  on.push_back(fmt::format("e.__g_us >= r.__g_s{}", widest));

  std::vector<std::string> outputs = {fmt::format("r.{}", kRowColumn)};
  for (size_t f = 0; f < v.features.size(); ++f) {
    const Aggregation* a = f < v.aggregations.size() ? v.aggregations[f] : nullptr;
    if (a == nullptr) continue;
    std::vector<std::string> cond = {
        fmt::format("e.__g_us >= r.__g_s{}", window_index(a->window.micros))};
    if (!a->where.empty()) {
      cond.push_back(fmt::format("e.__g_c{} IS TRUE", ColumnIndex(columns, a->where)));
    }
    std::string value;
    if (!a->column.empty()) {
      const std::string c = fmt::format("e.__g_c{}", ColumnIndex(columns, a->column));
      cond.push_back(c + " IS NOT NULL");
      const std::string cast = ValueCast(*a);
      value = cast.empty() ? c : fmt::format("CAST({} AS {})", c, cast);
    }
    const std::string when = Join(cond, " AND ");
    const std::string order = fmt::format(
        "CASE WHEN {} THEN named_struct('ev', e.__g_us, 'file', e.__g_file, 'pos', "
        "e.__g_pos) END",
        when);
    std::string expr;
    switch (a->function) {
      case AggregationFunction::kCount:
        expr = fmt::format("count(CASE WHEN {} THEN 1 END)", when);
        break;
      case AggregationFunction::kCountDistinct:
        expr = fmt::format("count(DISTINCT CASE WHEN {} THEN {} END)", when, value);
        break;
      case AggregationFunction::kSum:
        expr = fmt::format("sum(CASE WHEN {} THEN {} END)", when, value);
        break;
      case AggregationFunction::kMean:
        expr = fmt::format("avg(CASE WHEN {} THEN {} END)", when, value);
        break;
      case AggregationFunction::kStddev:
        // Null below two values (Spark's stddev_samp since 3.1, as the kernel).
        expr = fmt::format("stddev_samp(CASE WHEN {} THEN {} END)", when, value);
        break;
      case AggregationFunction::kMin:
        expr = fmt::format("min(CASE WHEN {} THEN {} END)", when, value);
        break;
      case AggregationFunction::kMax:
        expr = fmt::format("max(CASE WHEN {} THEN {} END)", when, value);
        break;
      case AggregationFunction::kFirst:
        // min_by / max_by skip rows whose ordering is null: the events that do not qualify.
        expr = fmt::format("min_by({}, {})", value, order);
        break;
      case AggregationFunction::kLast:
        expr = fmt::format("max_by({}, {})", value, order);
        break;
    }
    // An entity row without a time gets nulls, counts included; one whose key has no events in
    // its window gets count 0 (no event joined) and nulls.
    const std::string type = a->type ? SparkTypeName(*a->type) : "BIGINT";
    outputs.push_back(
        fmt::format("CASE WHEN r.__g_tus IS NULL THEN NULL ELSE CAST({} AS {}) END "
                    "AS {}",
                    expr, type, FeatureColumn(i, f)));
  }
  // For the training-set summary: any event of the key in the longest window (the join's bounds).
  outputs.push_back(fmt::format("count(e.__g_us) > 0 AS {}", WithEventsColumn(i)));
  // A sort-merge join, never a broadcast: Spark's size estimate of the filtered events can be
  // far below their real size, and broadcasting them runs the driver out of memory.
  ctes.push_back(fmt::format(
      "w{0} AS (SELECT /*+ MERGE(e) */ {1} FROM w{0}_r r LEFT JOIN w{0}_e e ON {2} GROUP BY r.{3}, "
      "r.__g_tus)",
      i, Join(outputs, ", "), Join(on, " AND "), kRowColumn));
  return ctes;
}

std::string EventsSql(const EventsQuery& q) {
  const JoinView& v = q.view;
  std::vector<std::string> outputs;
  for (size_t k = 0; k < v.join_keys.size(); ++k) {
    outputs.push_back(fmt::format("__g_k{} AS {}", k, QuoteIdentifier(v.join_keys[k])));
  }
  outputs.push_back("__g_ev AS event_timestamp");
  for (size_t n = 0; n < q.columns.size(); ++n) {
    outputs.push_back(fmt::format("__g_c{} AS {}", n, QuoteIdentifier(q.columns[n].name)));
  }
  return fmt::format("SELECT {} FROM ({}) ORDER BY __g_file, __g_pos", Join(outputs, ", "),
                     SourceRowsSql(KeysOnly(v), q.repo_root, q.csv_view, q.start, q.end,
                                   /*none=*/false, /*keep_null_keys=*/false,
                                   EventColumnSelects(*v.source, q.columns)));
}

}  // namespace granary::spark_sql
