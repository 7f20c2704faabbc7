// The SQL text builders; the queries themselves run against a real cluster in
// spark_engine_test.cc.
#include "granary/offline/spark/spark_sql.h"

#include <gtest/gtest.h>

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
        "PARTITION BY __g_k0 ORDER BY __g_at, __g_kind", "ORDER BY e.__g_row"}) {
    EXPECT_NE(sql.find(part), std::string::npos) << part << "\n" << sql;
  }
  q.created_timestamp_cutoff = true;
  EXPECT_NE(PointInTimeSql(q).find("greatest(__g_ev, coalesce(__g_cr, __g_ev)) AS __g_at"),
            std::string::npos);
  // No entity row has a time: nothing is a candidate.
  q.min_time.reset();
  q.max_time.reset();
  EXPECT_NE(PointInTimeSql(q).find("WHERE false"), std::string::npos);
}

}  // namespace
}  // namespace granary::spark_sql
