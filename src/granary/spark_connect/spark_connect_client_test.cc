// SparkConnectClient against a real Spark cluster (testing/spark_cluster.h): one cluster for the
// whole binary, registered with ctest as one entry.
#include "granary/spark_connect/spark_connect_client.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/testing/spark_cluster.h"

namespace granary::spark_connect {
namespace {

testing::SparkCluster* g_cluster = nullptr;

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto cluster = testing::SparkCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
    g_cluster = cluster_.get();
  }
  void TearDown() override {
    g_cluster = nullptr;
    cluster_.reset();
  }

 private:
  std::unique_ptr<testing::SparkCluster> cluster_;
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

std::unique_ptr<SparkConnectClient> Connect() {
  auto client = SparkConnectClient::Open(g_cluster->url());
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

std::shared_ptr<arrow::Table> ReadAll(ResultStream& stream) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    auto batch = stream.Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) break;
    batches.push_back(*batch);
  }
  return arrow::Table::FromRecordBatches(stream.schema(), batches).ValueOrDie();
}

TEST(SparkConnectClient, OpensASessionAndReportsTheServersVersion) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->session_id().empty());
  EXPECT_EQ(client->spark_version().substr(0, 2), "4.");
  EXPECT_NE(client->Describe().find("sc://127.0.0.1:"), std::string::npos);
}

TEST(SparkConnectClient, StreamsAQueryResultInBatches) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto stream = client->ExecuteSql(
      "SELECT id, CAST(id AS STRING) AS s FROM range(0, 300000, 1, 4) ORDER BY id");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  ASSERT_EQ((*stream)->schema()->num_fields(), 2);
  EXPECT_TRUE((*stream)->schema()->field(0)->type()->Equals(arrow::int64()));
  EXPECT_TRUE((*stream)->schema()->field(1)->type()->Equals(arrow::utf8()));
  int batches = 0;
  int64_t expected = 0;
  while (true) {
    auto batch = (*stream)->Next();
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (*batch == nullptr) break;
    ++batches;
    auto ids = std::static_pointer_cast<arrow::Int64Array>((*batch)->column(0));
    for (int64_t i = 0; i < ids->length(); ++i) ASSERT_EQ(ids->Value(i), expected++);
  }
  EXPECT_EQ(expected, 300000);
  EXPECT_EQ((*stream)->rows(), 300000);
  EXPECT_GT(batches, 1);  // streamed, not one message
}

TEST(SparkConnectClient, AnEmptyResultStillHasItsSchema) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto stream = client->ExecuteSql("SELECT 1L AS x, 'a' AS y WHERE false");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  ASSERT_EQ((*stream)->schema()->num_fields(), 2);
  EXPECT_EQ((*stream)->schema()->field(0)->name(), "x");
  auto batch = (*stream)->Next();
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(*batch, nullptr);
}

TEST(SparkConnectClient, AnalyzesASchemaWithoutRunningTheQuery) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto schema = client->AnalyzeSql(
      "SELECT 1L AS a, 'x' AS b, TIMESTAMP'2024-01-01 00:00:00' AS t, 1.5D AS d, "
      "array(1, 2) AS l, DATE'2024-01-01' AS day, CAST(1 AS INT) AS i");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  auto expected = arrow::schema(
      {arrow::field("a", arrow::int64()), arrow::field("b", arrow::utf8()),
       arrow::field("t", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
       arrow::field("d", arrow::float64()), arrow::field("l", arrow::list(arrow::int32())),
       arrow::field("day", arrow::date32()), arrow::field("i", arrow::int32())});
  ASSERT_EQ((*schema)->num_fields(), expected->num_fields());
  for (int i = 0; i < expected->num_fields(); ++i) {
    EXPECT_EQ((*schema)->field(i)->name(), expected->field(i)->name());
    EXPECT_TRUE((*schema)->field(i)->type()->Equals(*expected->field(i)->type()))
        << (*schema)->field(i)->ToString();
  }
}

TEST(SparkConnectClient, ErrorsNameTheQueryAndMapToCodes) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto missing = client->ExecuteSql("SELECT * FROM no_such_table_anywhere");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("no_such_table_anywhere"), std::string::npos);
  EXPECT_NE(missing.status().message().find("spark at sc://127.0.0.1:"), std::string::npos);

  auto syntax = client->RunSql("SELEC 1");
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument) << syntax.ToString();
  EXPECT_NE(syntax.message().find("SELEC 1"), std::string::npos);

  auto column = client->AnalyzeSql("SELECT no_such_column FROM range(1)");
  ASSERT_FALSE(column.ok());
  EXPECT_EQ(column.status().code(), StatusCode::kInvalidArgument) << column.status().ToString();
}

TEST(SparkConnectClient, UnreachableServerIsUnavailable) {
  // A port nothing listens on (bound, then closed).
  auto client = SparkConnectClient::Open("sc://127.0.0.1:1");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable) << client.status().ToString();
  EXPECT_NE(client.status().message().find("sc://127.0.0.1:1"), std::string::npos);
}

std::shared_ptr<arrow::Table> MakeRows(int64_t n) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    if (i % 7 == 3) {
      EXPECT_TRUE(names.AppendNull().ok());
    } else {
      EXPECT_TRUE(names.Append("row-" + std::to_string(i)).ok());
    }
    EXPECT_TRUE(times.Append(1'700'000'000'000'000 + i).ok());
  }
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()),
                     arrow::field("t", times.type())});
  return arrow::Table::Make(schema, {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                     times.Finish().ValueOrDie()});
}

void ExpectRoundTrip(SparkConnectClient& client, const arrow::Table& rows, int64_t chunk_bytes) {
  Status uploaded = client.UploadAsView(rows, "uploaded", chunk_bytes);
  ASSERT_TRUE(uploaded.ok()) << uploaded.ToString();
  auto stream = client.ExecuteSql("SELECT id, name, t FROM uploaded ORDER BY id");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto back = ReadAll(**stream);
  ASSERT_EQ(back->num_rows(), rows.num_rows());
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(back->column(c)->Equals(*rows.column(c)))
        << rows.schema()->field(c)->name() << ": " << back->schema()->field(c)->ToString();
  }
}

TEST(SparkConnectClient, UploadsSmallTablesInline) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ExpectRoundTrip(*client, *MakeRows(100), 8 << 20);
}

TEST(SparkConnectClient, UploadsLargeTablesAsChunkedArtifacts) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // 60,000 rows of ~30 bytes in chunks of 64 KiB: about 30 artifacts.
  ExpectRoundTrip(*client, *MakeRows(60000), 64 << 10);
  // 150,000 rows in chunks of 3 MiB: each chunk sent in several 1 MiB pieces.
  ExpectRoundTrip(*client, *MakeRows(150000), 3 << 20);
}

TEST(SparkConnectClient, ReadsParquetFilesByPathAsAView) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto dir = TempDir::Make("granary-spark-client-").ValueOrDie();
  auto rows = MakeRows(1000);
  std::string path = (dir.path() / "rows.parquet").string();
  auto out = arrow::io::FileOutputStream::Open(path).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*rows, arrow::default_memory_pool(), out).ok());
  ASSERT_TRUE(out->Close().ok());
  ASSERT_TRUE(client->ReadFilesAsView("parquet", {path}, "files").ok());
  auto stream = client->ExecuteSql("SELECT count(*) AS n, sum(id) AS s FROM files");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto result = ReadAll(**stream);
  ASSERT_EQ(result->num_rows(), 1);
  EXPECT_EQ(std::static_pointer_cast<arrow::Int64Array>(result->column(0)->chunk(0))->Value(0),
            1000);
  EXPECT_EQ(std::static_pointer_cast<arrow::Int64Array>(result->column(1)->chunk(0))->Value(0),
            999 * 1000 / 2);

  auto missing = client->ReadFilesAsView("parquet", {(dir.path() / "absent").string()}, "nope");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing.ToString();
}

TEST(SparkConnectClient, CancelFlagInterruptsARunningJobAndTheSessionGoesOn) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  CancelFlag cancel;
  // A job far longer than the test: a cross join counted on two 1-core workers.
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    cancel.Cancel();
  });
  auto stream = client->ExecuteSql(
      "SELECT count(*) FROM range(0, 2000000000, 1, 4) a JOIN range(0, 1000, 1, 2) b "
      "ON a.id % 1000 = b.id",
      &cancel);
  Status status = stream.ok() ? Status::OK() : stream.status();
  if (stream.ok()) {
    while (true) {
      auto batch = (*stream)->Next();
      if (!batch.ok()) {
        status = batch.status();
        break;
      }
      if (*batch == nullptr) break;
    }
  }
  canceller.join();
  EXPECT_EQ(status.code(), StatusCode::kCancelled) << status.ToString();
  // The session still answers.
  auto after = client->ExecuteSql("SELECT 42 AS x");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(ReadAll(**after)->num_rows(), 1);
}

TEST(QuoteIdentifier, DoublesBackticksAndQuotesStrings) {
  EXPECT_EQ(QuoteIdentifier("a`b"), "`a``b`");
  EXPECT_EQ(QuoteString("it's a \\ path"), "'it\\'s a \\\\ path'");
}

}  // namespace
}  // namespace granary::spark_connect
