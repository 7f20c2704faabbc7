// Fuzzes what the Spark Connect client reads from a server (the Spark offline engine's answers,
// src/granary/spark_connect/spark_answers.h), with the bytes of protobuf messages as gRPC hands
// them over. The input is one of:
//   - 'S' then a spark.connect.DataType: AnalyzePlan's schema, converted to Arrow's;
//   - else the responses of one ExecutePlan call, each a 4-byte little-endian length and that many
//     bytes of a spark.connect.ExecutePlanResponse (Arrow IPC batches whole or in chunks, metrics,
//     a checkpoint's relation id), fed in order until one is refused, then the stream's end.
// Properties beyond "never crash": every batch handed out is valid Arrow data (ValidateFull) of the
// result's schema, and has rows.
#include <arrow/api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "granary/spark_connect/spark_answers.h"
#include "spark/connect/base.pb.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr const char* kWhat = "spark at sc://fuzz:15002: query 'SELECT 1'";
  if (size > 0 && data[0] == 'S') {
    spark::connect::DataType type;
    if (!type.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    auto schema = granary::spark_connect::ArrowSchemaOfSpark(type, kWhat);
    if (schema.ok() && *schema == nullptr) Fail("a converted schema is null");
    return 0;
  }
  granary::spark_connect::ExecuteAnswers answers(kWhat);
  size_t at = 0;
  bool refused = false;
  while (at + 4 <= size && !refused) {
    uint32_t n = 0;
    std::memcpy(&n, data + at, 4);  // little-endian hosts only (the fuzz build's)
    at += 4;
    const size_t take = n < size - at ? n : size - at;
    spark::connect::ExecutePlanResponse response;
    if (response.ParseFromArray(data + at, static_cast<int>(take))) {
      refused = !answers.Add(&response).ok();
    }
    at += take;
  }
  if (!refused) (void)answers.End();
  for (const auto& batch : answers.pending()) {
    if (batch->num_rows() <= 0) Fail("an empty batch was handed out");
    if (!batch->ValidateFull().ok()) Fail("an invalid batch was handed out");
    if (answers.schema() == nullptr || !batch->schema()->Equals(*answers.schema())) {
      Fail("a batch without the result's schema was handed out");
    }
  }
  return 0;
}
