// The SQL text builders; the queries themselves run against a real cluster in
// spark_engine_test.cc.
#include "granary/offline/spark/spark_sql.h"

#include <gtest/gtest.h>

#include "granary/aggregation/window_kernel.h"
#include "granary/offline/spark/spark_aggregations.h"

namespace granary::spark_sql {
namespace {

TEST(SparkSql, TypeNames) {
  EXPECT_EQ(SparkTypeName(ValueType::Scalar(ScalarType::kInt64)), "BIGINT");
  EXPECT_EQ(SparkTypeName(ValueType::Scalar(ScalarType::kInt32)), "INT");
  EXPECT_EQ(SparkTypeName(ValueType::Scalar(ScalarType::kBytes)), "BINARY");
  EXPECT_EQ(SparkTypeName(ValueType::List(ScalarType::kFloat32)), "ARRAY<FLOAT>");
}

TEST(SparkSql, TimestampLiteralsAreUtcWithMicroseconds) {
  EXPECT_EQ(TimestampLiteral(Timestamp::FromMicros(0)), "TIMESTAMP'1970-01-01 00:00:00.000000'");
  EXPECT_EQ(TimestampLiteral(Timestamp::FromMicros(1'709'285'400'000'001)),
            "TIMESTAMP'2024-03-01 09:30:00.000001'");
  // Before the epoch: floored to the day before.
  EXPECT_EQ(TimestampLiteral(Timestamp::FromMicros(-1)), "TIMESTAMP'1969-12-31 23:59:59.999999'");
}

TEST(SparkSql, SourcesResolveRelativePathsAndKeepUris) {
  DataSource s;
  s.path = "data/trips";
  s.format = SourceFormat::kDelta;
  EXPECT_EQ(SourceRelation(s, "/repo"), "delta.`/repo/data/trips`");
  s.format = SourceFormat::kParquet;
  s.path = "s3a://bucket/trips/*.parquet";
  EXPECT_EQ(SourceRelation(s, "/repo"), "parquet.`s3a://bucket/trips/*.parquet`");
  s.path = "/abs/we`ird";
  EXPECT_EQ(SourceRelation(s, "/repo"), "parquet.`/abs/we``ird`");
  s.format = SourceFormat::kCsv;
  EXPECT_EQ(SourceRelation(s, "/repo", "__g_csv_1"), "`__g_csv_1`");
  DataSource table;
  table.table = "main.parking.payments";
  EXPECT_EQ(SourceRelation(table, "/repo"), "main.parking.payments");
  DataSource query;
  query.query = "SELECT * FROM t WHERE amount > 0";
  EXPECT_EQ(SourceRelation(query, "/repo"), "(SELECT * FROM t WHERE amount > 0) AS __g_query");
  EXPECT_TRUE(HasRowIndex(DataSource{.format = SourceFormat::kParquet, .path = "x"}));
  EXPECT_FALSE(HasRowIndex(table));
  EXPECT_FALSE(HasRowIndex(DataSource{.format = SourceFormat::kDelta, .path = "x"}));
  EXPECT_FALSE(HasRowIndex(DataSource{.format = SourceFormat::kCsv, .path = "x"}));
}

TEST(SparkSql, PartitionPredicateKeepsTheDaysOfTheRangeAndUnparseableValues) {
  DataSource s;
  s.date_partition_column = "day";
  EXPECT_EQ(PartitionPredicate(s, Timestamp::FromMicros(86'400'000'000 + 5),
                               Timestamp::FromMicros(3 * 86'400'000'000LL)),
            "(try_cast(`day` AS DATE) IS NULL OR (try_cast(`day` AS DATE) >= DATE'1970-01-02' AND "
            "try_cast(`day` AS DATE) <= DATE'1970-01-04'))");
  EXPECT_EQ(PartitionPredicate(s, std::nullopt, Timestamp::FromMicros(0)),
            "(try_cast(`day` AS DATE) IS NULL OR (try_cast(`day` AS DATE) <= DATE'1970-01-01'))");
  s.field_mapping = {{"dt", "day"}};
  EXPECT_NE(PartitionPredicate(s, std::nullopt, Timestamp::FromMicros(0)).find("`dt`"),
            std::string::npos);
  DataSource none;
  EXPECT_EQ(PartitionPredicate(none, std::nullopt, Timestamp::FromMicros(0)), "");
}

TEST(SparkSql, PointInTimeQueryBoundsTheScanAndOrdersByEntityRow) {
  FeatureView view;
  view.name = "driver_stats";
  view.ttl = Duration::Hours(1);
  DataSource source;
  source.path = "/data/stats";
  source.timestamp_field = "ts";
  source.created_timestamp_column = "created";
  source.field_mapping = {{"driver", "driver_id"}};
  PointInTimeQuery q;
  q.entity_view = "__g_entities_0";
  q.views.push_back(JoinView{&view,
                             &source,
                             {"driver_id"},
                             {ValueType::Scalar(ScalarType::kInt64)},
                             {"rate"},
                             {ValueType::Scalar(ScalarType::kFloat64)}});
  q.min_time = Timestamp::FromMicros(10 * 3'600'000'000LL);
  q.max_time = Timestamp::FromMicros(12 * 3'600'000'000LL);
  std::string sql = PointInTimeSql(q);
  // The source column of the mapped key, the scan's time range (min - ttl, max), the read
  // position, the ttl check and the order of the output.
  for (const char* part :
       {"CAST(`driver` AS BIGINT) AS __g_k0",
        "CAST(`ts` AS TIMESTAMP) >= TIMESTAMP'1970-01-01 09:00:00.000000'", "`driver` IS NOT NULL",
        "CAST(`ts` AS TIMESTAMP) <= TIMESTAMP'1970-01-01 12:00:00.000000'",
        "_metadata.row_index AS __g_pos",
        "unix_micros(__g_best.ev) >= unix_micros(__g_t) - 3600000000",
        "PARTITION BY __g_k0 ORDER BY __g_at, __g_kind", "ORDER BY e.__g_row",
        // The summary's column after the features: matched within the ttl; rows left out of
        // the join (no time, a null key) matched nothing.
        "coalesce(unix_micros(__g_best.ev) >= unix_micros(__g_t) - 3600000000, false) AS "
        "__g_v0_matched",
        "SELECT e.__g_row, v0.__g_v0_f0, coalesce(v0.__g_v0_matched, false) AS __g_v0_matched "
        "FROM"}) {
    EXPECT_NE(sql.find(part), std::string::npos) << part << "\n" << sql;
  }
  EXPECT_EQ(sql.find("__g_v0_events"), std::string::npos) << sql;  // no aggregation asked
  q.created_timestamp_cutoff = true;
  EXPECT_NE(PointInTimeSql(q).find("greatest(__g_ev, coalesce(__g_cr, __g_ev)) AS __g_at"),
            std::string::npos);
  // No entity row has a time: nothing is a candidate.
  q.min_time.reset();
  q.max_time.reset();
  EXPECT_NE(PointInTimeSql(q).find("WHERE false"), std::string::npos);
}

TEST(SparkSql, WindowStartsAreTheKernelsFlooredToTheGranularity) {
  const int64_t h = 3'600'000'000LL;
  for (int64_t t : std::vector<int64_t>{0, 10 * h, 10 * h + 1, 11 * h - 1, -1, -h, -5 * h - 7}) {
    for (int64_t w : std::vector<int64_t>{h, 2 * h, 90 * 60'000'000LL}) {
      EXPECT_EQ(WindowStartMicros(t, w, h),
                aggregation::WindowStart(t, Duration::Microseconds(w), Duration::Microseconds(h)))
          << t << " " << w;
    }
  }
  EXPECT_EQ(WindowStartMicros(10 * h + 30 * 60'000'000LL, 2 * h, h), 8 * h);
  EXPECT_EQ(WindowStartMicros(-1, h, h), -2 * h);
}

// A view with a plain feature and two aggregations, the second of a longer window and a where.
struct AggregationFixture {
  FeatureView view;
  DataSource source;
  PointInTimeQuery q;
  AggregationFixture() {
    view.name = "pay";
    view.ttl = Duration::Hours(1);
    view.granularity = Duration::Hours(1);
    view.schema.push_back(Field{"plan", ValueType::Scalar(ScalarType::kString), "", {}});
    Aggregation spend{.name = "spend_2h",
                      .function = AggregationFunction::kSum,
                      .column = "amount",
                      .window = Duration::Hours(2),
                      .type = ValueType::Scalar(ScalarType::kFloat64)};
    Aggregation failures{.name = "failures_1d",
                         .function = AggregationFunction::kCount,
                         .where = "failed",
                         .window = Duration::Days(1),
                         .type = ValueType::Scalar(ScalarType::kInt64)};
    view.aggregations = {spend, failures};
    source.path = "/data/pay";
    source.timestamp_field = "ts";
    source.date_partition_column = "day";
    q.entity_view = "__g_entities_0";
    q.views.push_back(
        JoinView{&view,
                 &source,
                 {"customer_id"},
                 {ValueType::Scalar(ScalarType::kInt64)},
                 {"failures_1d", "plan", "spend_2h"},
                 {ValueType::Scalar(ScalarType::kInt64), ValueType::Scalar(ScalarType::kString),
                  ValueType::Scalar(ScalarType::kFloat64)},
                 {&view.aggregations[1], nullptr, &view.aggregations[0]}});
    q.min_time = Timestamp::FromMicros(30 * 3'600'000'000LL);
    q.max_time = Timestamp::FromMicros(40 * 3'600'000'000LL);
  }
};

TEST(SparkSql, AggregationsJoinEventsInTheLongestWindowAndFilterEachToItsOwn) {
  AggregationFixture f;
  const std::string sql = PointInTimeSql(f.q);
  for (const char* part :
       {// The scan: from the longest window's start at the first entity row (30h - 1d = 6h),
        // to the last entity row; days pruned; no null keys.
        "CAST(`ts` AS TIMESTAMP) >= TIMESTAMP'1970-01-01 06:00:00.000000'",
        "CAST(`ts` AS TIMESTAMP) <= TIMESTAMP'1970-01-02 16:00:00.000000'",
        "try_cast(`day` AS DATE) >= DATE'1970-01-01'", "`customer_id` IS NOT NULL",
        "CAST(`failed` AS BOOLEAN) AS __g_c0", "`amount` AS __g_c1",
        // Each window's start, floored to the granularity in integer microseconds.
        "(unix_micros(__g_t) - 7200000000) - pmod(unix_micros(__g_t) - 7200000000, "
        "3600000000) AS __g_s1",
        // The range join on the key and [start of the longest window, t], per entity row; a
        // sort-merge join (a broadcast of events misjudged as small fills the driver).
        "w0 AS (SELECT /*+ MERGE(e) */ r.__g_row",
        "LEFT JOIN w0_e e ON r.__g_k0 = e.__g_k0 AND e.__g_us <= r.__g_tus AND e.__g_us >= "
        "r.__g_s0 GROUP BY r.__g_row, r.__g_tus",
        "count(CASE WHEN e.__g_us >= r.__g_s0 AND e.__g_c0 IS TRUE THEN 1 END)",
        "sum(CASE WHEN e.__g_us >= r.__g_s1 AND e.__g_c1 IS NOT NULL THEN CAST(e.__g_c1 AS "
        "DOUBLE) END)",
        "CASE WHEN r.__g_tus IS NULL THEN NULL",
        // The plain feature still goes through the point-in-time join; the output takes each
        // feature from where it was computed, in request order.
        "SELECT e.__g_row, w0.__g_v0_f0, v0.__g_v0_f1, w0.__g_v0_f2",
        "LEFT JOIN w0 ON e.__g_row = w0.__g_row", "LEFT JOIN v0 ON e.__g_row = v0.__g_row",
        // The summary's columns after the features: rows with an event of their key in the
        // longest window (the join's bounds), and rows that matched the plain feature.
        "count(e.__g_us) > 0 AS __g_v0_events",
        "w0.__g_v0_f2, coalesce(w0.__g_v0_events, false) AS __g_v0_events, "
        "coalesce(v0.__g_v0_matched, false) AS __g_v0_matched FROM"}) {
    EXPECT_NE(sql.find(part), std::string::npos) << part << "\n" << sql;
  }
  // Only aggregations: no point-in-time part at all.
  f.q.views[0].features = {"spend_2h"};
  f.q.views[0].feature_types = {ValueType::Scalar(ScalarType::kFloat64)};
  f.q.views[0].aggregations = {&f.view.aggregations[0]};
  const std::string only = PointInTimeSql(f.q);
  EXPECT_EQ(only.find("v0_rows"), std::string::npos) << only;
  EXPECT_EQ(only.find("`failed`"), std::string::npos) << only;
  EXPECT_EQ(only.find("__g_v0_matched"), std::string::npos) << only;
  EXPECT_NE(only.find("__g_v0_events"), std::string::npos) << only;
}

TEST(SparkSql, EventsOfAViewAreReadOnceEachInReadOrderAndCsvColumnsAreCast) {
  AggregationFixture f;
  EventsQuery q;
  q.view = f.q.views[0];
  q.columns = AggregationEventColumns(f.view, f.source);
  ASSERT_EQ(q.columns.size(), 2u);
  EXPECT_EQ(q.columns[0].name, "amount");
  EXPECT_EQ(q.columns[0].cast, "");  // Parquet keeps its types
  EXPECT_TRUE(q.columns[1].is_where);
  q.start = Timestamp::FromMicros(0);
  q.end = Timestamp::FromMicros(3'600'000'000LL);
  const std::string sql = EventsSql(q);
  for (const char* part :
       {"__g_k0 AS `customer_id`", "__g_ev AS event_timestamp", "__g_c0 AS `amount`",
        "__g_c1 AS `failed`", "ORDER BY __g_file, __g_pos"}) {
    EXPECT_NE(sql.find(part), std::string::npos) << part << "\n" << sql;
  }
  // CSV: text cast to the type its strongest aggregation gives (min over mean over count).
  f.source.format = SourceFormat::kCsv;
  f.view.aggregations.push_back(Aggregation{.name = "amounts",
                                            .function = AggregationFunction::kCountDistinct,
                                            .column = "amount",
                                            .window = Duration::Hours(1),
                                            .type = ValueType::Scalar(ScalarType::kInt64)});
  EXPECT_EQ(AggregationEventColumns(f.view, f.source)[0].cast, "DOUBLE");
  f.view.aggregations.push_back(Aggregation{.name = "low",
                                            .function = AggregationFunction::kMin,
                                            .column = "amount",
                                            .window = Duration::Hours(1),
                                            .type = ValueType::Scalar(ScalarType::kFloat32)});
  EXPECT_EQ(AggregationEventColumns(f.view, f.source)[0].cast, "FLOAT");
}

}  // namespace
}  // namespace granary::spark_sql
