#include "granary/datagen/parquet_output.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "granary/common/temp_dir.h"

namespace granary::datagen {
namespace {

TEST(TurnTaker, RunsTurnsInOrderWhateverTheThreadsArrivalOrder) {
  TurnTaker turns;
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int turn = 7; turn >= 0; --turn) {  // started in reverse
    threads.emplace_back([&, turn] {
      EXPECT_TRUE(turns
                      .RunInTurn(turn,
                                 [&] {
                                   order.push_back(turn);
                                   return Status::OK();
                                 })
                      .ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(TurnTaker, CancelWakesAWaiterWithCancelled) {
  TurnTaker turns;
  Status waited;
  std::thread waiter([&] { waited = turns.RunInTurn(3, [] { return Status::OK(); }); });
  turns.Cancel();
  waiter.join();
  EXPECT_EQ(waited.code(), StatusCode::kCancelled);
}

TEST(ParquetFileWriter, CountsRowsAndReportsTheFileSize) {
  auto dir = TempDir::Make("granary-pq-").ValueOrDie();
  auto schema = arrow::schema({arrow::field("x", arrow::int64())});
  auto writer = ParquetFileWriter::Open(dir.path() / "x.parquet", schema);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  arrow::Int64Builder b;
  ASSERT_TRUE(b.AppendValues({1, 2, 3}).ok());
  auto batch = arrow::RecordBatch::Make(schema, 3, {b.Finish().ValueOrDie()});
  ASSERT_TRUE((*writer)->Write(*batch).ok());
  ASSERT_TRUE((*writer)->Write(*batch).ok());
  EXPECT_EQ((*writer)->rows(), 6);
  auto size = (*writer)->Close();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, static_cast<int64_t>(std::filesystem::file_size(dir.path() / "x.parquet")));
  EXPECT_EQ((*writer)->Write(*batch).code(), StatusCode::kInternal);

  auto bad = ParquetFileWriter::Open(dir.path() / "missing" / "x.parquet", schema);
  EXPECT_EQ(bad.status().code(), StatusCode::kIOError);
  EXPECT_NE(bad.status().message().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace granary::datagen
