// A Spark Connect server's answers as the client reads them (spark_answers.h), built as a server
// sends them (Arrow IPC streams written by Arrow, granary/testing/arrow_ipc_stream.h, in
// ExecutePlanResponse messages), including the ones no Spark sends, which must be IOErrors and
// not crashes.
#include "granary/spark_connect/spark_answers.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "granary/testing/arrow_ipc_stream.h"
#include "spark/connect/base.pb.h"

namespace granary::spark_connect {
namespace {

namespace proto = ::spark::connect;

constexpr const char* kWhat = "spark at sc://localhost:15002: query 'SELECT 1'";

proto::ExecutePlanResponse BatchResponse(std::string data, int64_t chunk = -1, int64_t chunks = 0) {
  proto::ExecutePlanResponse response;
  response.mutable_arrow_batch()->set_data(std::move(data));
  if (chunk >= 0) {
    response.mutable_arrow_batch()->set_chunk_index(chunk);
    response.mutable_arrow_batch()->set_num_chunks_in_batch(chunks);
  }
  return response;
}

TEST(ExecuteAnswers, ReadsWholeAndChunkedBatches) {
  ExecuteAnswers answers(kWhat);
  auto whole = BatchResponse(granary::testing::CitiesIpcStream());
  ASSERT_TRUE(answers.Add(&whole).ok());
  const std::string stream = granary::testing::CitiesIpcStream();
  auto first = BatchResponse(stream.substr(0, 100), 0, 2);
  auto second = BatchResponse(stream.substr(100), 1, 2);
  ASSERT_TRUE(answers.Add(&first).ok());
  EXPECT_EQ(answers.pending().size(), 1u);
  ASSERT_TRUE(answers.Add(&second).ok());
  ASSERT_TRUE(answers.End().ok());
  ASSERT_EQ(answers.pending().size(), 2u);
  EXPECT_EQ(answers.schema()->field(1)->name(), "city");
  EXPECT_EQ(answers.pending()[1]->num_rows(), 3);
}

// Found auditing what the client reads (fuzz/corpus/spark_answers/crash_string_offset_5000 replays
// it in fuzz/spark_answers_fuzz.cc): Arrow's IPC reader takes a string offset past the column's
// data as it is, and the engine reading the batch next would read past the message.
TEST(ExecuteAnswers, RefusesBatchesWithOffsetsPastTheData) {
  ExecuteAnswers answers(kWhat);
  auto response = BatchResponse(granary::testing::CitiesIpcStream(/*damage_offsets=*/true));
  Status st = answers.Add(&response);
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_EQ(st.message().rfind(std::string(kWhat) + ": decoding an Arrow batch", 0), 0u)
      << st.message();
  EXPECT_NE(st.message().find("5000"), std::string::npos) << st.message();
  EXPECT_TRUE(answers.pending().empty());
}

TEST(ExecuteAnswers, RefusesChunksOutOfOrderAndAnUnfinishedBatch) {
  const std::string stream = granary::testing::CitiesIpcStream();
  ExecuteAnswers skipped(kWhat);
  auto second = BatchResponse(stream.substr(100), 1, 2);
  Status st = skipped.Add(&second);
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("chunk 1 of 2 of an Arrow batch where chunk 0 was due"),
            std::string::npos)
      << st.message();

  ExecuteAnswers unfinished(kWhat);
  auto first = BatchResponse(stream.substr(0, 100), 0, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(unfinished.Add(&first).ok());
  st = unfinished.End();
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("the result ended inside a chunked batch"), std::string::npos);
}

TEST(ExecuteAnswers, ScanMetricsSaturate) {
  ExecuteAnswers answers(kWhat);
  for (int i = 0; i < 2; ++i) {
    proto::ExecutePlanResponse response;
    auto* node = response.mutable_metrics()->add_metrics();
    node->set_name("Scan parquet");
    (*node->mutable_execution_metrics())["numFiles"].set_value(std::numeric_limits<int64_t>::max() -
                                                               1);
    ASSERT_TRUE(answers.Add(&response).ok());
  }
  EXPECT_EQ(answers.scan_metrics().at("numFiles"), std::numeric_limits<int64_t>::max());
}

// Found auditing what the client reads (fuzz/corpus/spark_answers/crash_decimal_precision_0
// replays it in fuzz/spark_answers_fuzz.cc): Arrow's decimal128() aborts the process on a
// precision outside 1..38.
TEST(ArrowSchemaOfSpark, DecimalsArrowCannotHoldAreErrors) {
  proto::DataType schema;
  auto* field = schema.mutable_struct_()->add_fields();
  field->set_name("amount");
  field->mutable_data_type()->mutable_decimal()->set_precision(38);
  field->mutable_data_type()->mutable_decimal()->set_scale(2);
  auto ok = ArrowSchemaOfSpark(schema, kWhat);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)->field(0)->type()->ToString(), "decimal128(38, 2)");

  for (int32_t precision : {0, 39, -5}) {
    field->mutable_data_type()->mutable_decimal()->set_precision(precision);
    auto bad = ArrowSchemaOfSpark(schema, kWhat);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kIOError);
    EXPECT_NE(bad.status().message().find("column 'amount'"), std::string::npos)
        << bad.status().message();
    EXPECT_NE(bad.status().message().find("the server sent the type decimal(" +
                                          std::to_string(precision) + ", 2)"),
              std::string::npos)
        << bad.status().message();
  }
}

}  // namespace
}  // namespace granary::spark_connect
