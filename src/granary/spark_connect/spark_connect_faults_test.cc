// Faults on a real Spark cluster of the test's own (testing/spark_cluster.h, StartOwn): a worker
// killed mid-job (Spark retries its tasks elsewhere: the answer is still right) and the Spark
// Connect server killed mid-query (a clear Unavailable error naming the server).
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <thread>

#include "granary/spark_connect/spark_connect_client.h"
#include "granary/testing/spark_cluster.h"

namespace granary::spark_connect {
namespace {

// 48 rows in 8 partitions, each row sleeping 250 ms on the executor: about 6 s of work on the
// two 1-core workers, long enough to lose one of them halfway.
constexpr const char* kSlowSum =
    "SELECT sum(x) AS s FROM (SELECT id + 0 * coalesce(length(reflect('java.lang.Thread', "
    "'sleep', CAST(250 AS BIGINT))), 0) AS x FROM range(0, 48, 1, 8))";

TEST(SparkConnectFaults, AWorkerKilledMidJobIsRetriedAndTheServerKilledMidQueryIsUnavailable) {
  auto cluster = testing::SparkCluster::StartOwn();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto client = SparkConnectClient::Open((*cluster)->url());
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  // A worker (and its executor) dies while the job runs: the other worker finishes it.
  {
    // ExecuteSql returns with the first batch, which an aggregation sends at its end.
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      EXPECT_TRUE((*cluster)->Kill("worker1").ok());
    });
    auto stream = (*client)->ExecuteSql(kSlowSum);
    killer.join();
    ASSERT_TRUE(stream.ok()) << stream.status().ToString();
    auto batch = (*stream)->Next();
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_NE(*batch, nullptr);
    auto sum = std::static_pointer_cast<arrow::Int64Array>((*batch)->column(0));
    EXPECT_EQ(sum->Value(0), 47 * 48 / 2);
  }

  // The Connect server dies mid-query: the stream ends with Unavailable, naming the server.
  {
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      EXPECT_TRUE((*cluster)->Kill("connect").ok());
    });
    auto stream = (*client)->ExecuteSql(kSlowSum);
    killer.join();
    Status status = stream.ok() ? Status::OK() : stream.status();
    while (stream.ok()) {
      auto batch = (*stream)->Next();
      if (!batch.ok()) {
        status = batch.status();
        break;
      }
      if (*batch == nullptr) break;
    }
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_NE(status.message().find((*cluster)->url()), std::string::npos) << status.message();
    // And a new query finds no server.
    auto again = (*client)->ExecuteSql("SELECT 1");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), StatusCode::kUnavailable) << again.status().ToString();
  }
}

}  // namespace
}  // namespace granary::spark_connect
