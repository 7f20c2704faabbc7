// The SQL of feature statistics on Spark; the queries run against a real cluster in
// tests/test_spark_stats.py (both engines, the same figures).
#include "granary/offline/spark/spark_stats.h"

#include <gtest/gtest.h>

namespace granary::spark_sql {
namespace {

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class SparkStatsSql : public ::testing::Test {
 protected:
  void SetUp() override {
    source_.name = "payments";
    source_.path = "data/payments";
    source_.format = SourceFormat::kParquet;
    source_.timestamp_field = "event_timestamp";
    source_.date_partition_column = "day";
    source_.field_mapping = {{"amt", "amount"}};
    query_.source = &source_;
    query_.join_keys = {"customer_id"};
    query_.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
    query_.features = {"amount", "method", "tags"};
    query_.feature_types = {ValueType::Scalar(ScalarType::kFloat64),
                            ValueType::Scalar(ScalarType::kString),
                            ValueType::List(ScalarType::kInt64)};
    query_.start = Timestamp::FromMicros(86'400'000'000);
    query_.end = Timestamp::FromMicros(2 * 86'400'000'000LL);
    query_.repo_root = "/repo";
  }
  DataSource source_;
  StatsQuery query_;
};

TEST_F(SparkStatsSql, EveryQueryReadsTheRangeWithItsPartitionsPruned) {
  const std::vector<std::string> queries = {
      StatsSummarySql(query_), StatsHistogramSql(query_, {{0, 1.5, 9.25, 4}}),
      StatsTopValuesSql(query_, {1}, 10), StatsSampleSql(query_, 5)};
  for (const std::string& sql : queries) {
    SCOPED_TRACE(sql);
    EXPECT_EQ(Count(sql, "FROM parquet.`/repo/data/payments` WHERE "), 1u);
    EXPECT_EQ(Count(sql, "try_cast(`day` AS DATE) >= DATE'1970-01-02'"), 1u);
    EXPECT_EQ(Count(sql, ">= TIMESTAMP'1970-01-02 00:00:00.000000'"), 1u);
    EXPECT_EQ(Count(sql, "<= TIMESTAMP'1970-01-03 00:00:00.000000'"), 1u);
    EXPECT_EQ(Count(sql, "CAST(`amt` AS DOUBLE) AS __g_f0"), 1u);  // the field mapping
  }
}

TEST_F(SparkStatsSql, SummaryLeavesNanOutAndCountsEachKindItsWay) {
  const std::string sql = StatsSummarySql(query_);
  EXPECT_NE(sql.find("count_if(isnan(__g_f0)) AS nan0"), std::string::npos);
  EXPECT_NE(sql.find("min(CASE WHEN isnan(__g_f0) THEN NULL ELSE CAST(__g_f0 AS DOUBLE) END) AS "
                     "min0"),
            std::string::npos);
  // Distinct floats: NaN is no value and -0.0 is 0.0.
  EXPECT_NE(sql.find("approx_count_distinct(CASE WHEN isnan(__g_f0) THEN NULL WHEN __g_f0 = 0 "
                     "THEN CAST(0 AS DOUBLE)"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find("min(__g_f1) AS tmin1"), std::string::npos);  // strings: lexicographic
  EXPECT_EQ(sql.find("nan1"), std::string::npos);
  // Lists: the mean length of the non-null ones, no distinct count.
  EXPECT_NE(sql.find("avg(CASE WHEN __g_f2 IS NOT NULL THEN size(__g_f2) END) AS mean2"),
            std::string::npos);
  EXPECT_EQ(sql.find("d2"), std::string::npos);
}

TEST_F(SparkStatsSql, HistogramBinsUseTheExactDoublesOfTheSummary) {
  const std::string sql = StatsHistogramSql(query_, {{0, 0.1, 1e300, 20}});
  EXPECT_NE(sql.find("CAST('0.1' AS DOUBLE)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("CAST('1e+300' AS DOUBLE)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("* CAST('20' AS DOUBLE)"), std::string::npos) << sql;
  EXPECT_NE(sql.find(", 19) END"), std::string::npos) << sql;  // clamped to the last bin
  // Null and NaN fall in no bin (GREATEST alone would put them in the first).
  EXPECT_NE(sql.find("CASE WHEN CASE WHEN isnan(__g_f0) THEN NULL ELSE CAST(__g_f0 AS DOUBLE) END "
                     "IS NOT NULL THEN"),
            std::string::npos)
      << sql;
}

TEST_F(SparkStatsSql, TopValuesAndSampleAreBounded) {
  EXPECT_NE(StatsTopValuesSql(query_, {1}, 7).find("WHERE r <= 7"), std::string::npos);
  const std::string sample = StatsSampleSql(query_, 3);
  EXPECT_NE(sample.find("coalesce(CAST(__g_k0 AS STRING), '') AS k0"), std::string::npos);
  EXPECT_NE(sample.find("ORDER BY t DESC, k0 LIMIT 3"), std::string::npos) << sample;
}

}  // namespace
}  // namespace granary::spark_sql
