// Fuzzes the feature server's gRPC GetOnlineFeatures request as `granary serve --grpc-port` takes
// it from any client: the bytes of a feast.serving.GetOnlineFeaturesRequest (decoded by protobuf,
// as gRPC does), converted to the transport-free request (serving/grpc/feast_proto.h), resolved
// against the served definitions, and answered for an all-NOT_FOUND read in Feast's messages.
// Properties beyond "never crash": the answer has one FeatureVector per entity and feature
// column, each with one value, status and event time per entity row, it serializes, and the bytes
// the server sends (WriteFeastResponse, feast_wire.h) are exactly protobuf's serialization.
// Run with -max_len up to the gRPC server's message limit (4 MiB: fuzz/grpc_request.flags).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "feast/serving/ServingService.pb.h"
#include "granary/online/online_features.h"
#include "granary/serving/grpc/feast_proto.h"
#include "granary/serving/grpc/feast_wire.h"
#include "serving_fixture.h"

namespace {

[[noreturn]] void Fail(const char* what, const feast::serving::GetOnlineFeaturesRequest& request) {
  std::fprintf(stderr, "%s\nrequest: %s\n", what, request.ShortDebugString().c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const granary::fuzz::ServingFixture& f = granary::fuzz::GetServingFixture();
  feast::serving::GetOnlineFeaturesRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto parsed = granary::serving::FromFeastProto(request);
  if (!parsed.ok()) return 0;
  auto resolved = f.service->Resolve(*parsed);
  if (!resolved.ok()) return 0;
  granary::OnlineFeaturesBuilder builder(resolved->read);
  auto features = builder.Finish(granary::Timestamp::FromSeconds(1'800'000'000));
  if (!features.ok()) Fail("an empty read must finish", request);
  feast::serving::GetOnlineFeaturesResponse response;
  granary::serving::ToFeastProto(*resolved, *features, &response);
  const size_t columns = resolved->entities.size() + resolved->columns.size();
  if (static_cast<size_t>(response.results_size()) != columns ||
      static_cast<size_t>(response.metadata().feature_names().val_size()) != columns) {
    Fail("one result and one name per column", request);
  }
  for (const auto& vector : response.results()) {
    const size_t rows = resolved->num_rows;
    if (static_cast<size_t>(vector.values_size()) != rows ||
        static_cast<size_t>(vector.statuses_size()) != rows ||
        static_cast<size_t>(vector.event_timestamps_size()) != rows) {
      Fail("one value, status and event time per row", request);
    }
  }
  std::string bytes;
  if (!response.SerializeToString(&bytes)) Fail("the answer does not serialize", request);
  std::string wire;
  granary::serving::WriteFeastResponse(*resolved, *features, &wire);
  if (wire != bytes) Fail("the answer's bytes differ from protobuf's serialization", request);
  return 0;
}
