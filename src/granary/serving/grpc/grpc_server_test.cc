// Feast's gRPC GetOnlineFeatures over real gRPC on 127.0.0.1, with the client stub generated from
// the same descriptors, against RocksDB and a real redis-server: the answer matches the JSON
// endpoint's, errors map to gRPC codes, the bearer token is checked, metrics are counted. (Feast's
// own Python client against `granary serve --grpc-port` is tested in tests/test_feast_grpc.py.)
#include "granary/serving/grpc/grpc_server.h"

#include <arrow/api.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "feast/serving/ServingService.grpc.pb.h"
#include "granary/online/redis/redis_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/serving/online_write.h"
#include "granary/testing/redis_server.h"
#include "granary/testing/serving_definitions.h"

namespace granary::serving {
namespace {

using granary::testing::kPushDefinitions;
using granary::testing::TestRepo;
namespace fs = feast::serving;

class GrpcServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      redis_ = granary::testing::RedisServer::Start().ValueOrDie();
      RedisOnlineStore::Options options;
      options.nodes = {redis_->address()};
      options.project = "shop";
      store_ = RedisOnlineStore::Open(options).ValueOrDie();
    } else {
      store_ = RocksDbOnlineStore::Open(repo_.root() / "data/online", {}).ValueOrDie();
    }
    FeatureServerOptions options;
    options.repo_root = repo_.root();
    options.registry = RegistryLocation::Sqlite(repo_.registry_path());
    options.default_key_ttl = Duration::Days(90);
    options.store_kind = GetParam();
    options.max_entities = 100;
    options.registry_poll_interval = std::chrono::milliseconds(0);
    options.metrics = &metrics_;
    server_ = FeatureServer::Make(options, store_.get()).ValueOrDie();
    StartGrpc("");
    Write(R"({"feature_view_name": "risk", "df": {"customer_id": [1001, 1002],
        "score": [0.5, null], "failures": [3, 4], "labels": [["a", "b"], null],
        "event_timestamp": [")" +
          FormatTimestamp(now_ - Duration::Minutes(5)) + R"(", ")" +
          FormatTimestamp(now_ - Duration::Days(2)) + R"("]}})");
  }
  void TearDown() override {
    grpc_->Stop();
    server_.reset();
    store_.reset();
    grpc_.reset();
  }

  void StartGrpc(const std::string& token) {
    if (grpc_ != nullptr) grpc_->Stop();
    GrpcServerOptions options;
    options.threads = 2;
    options.bearer_token = token;
    grpc_ = GrpcServer::Start(options, server_->context()).ValueOrDie();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = fs::ServingService::NewStub(channel);
  }

  void Write(const std::string& json) {
    auto snapshot = server_->registry().Current();
    auto request =
        ParseOnlineWriteRequest(json, snapshot->definitions(), snapshot->online->layouts());
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    PushContext pc;
    pc.definitions = &snapshot->definitions();
    pc.layouts = &snapshot->online->layouts();
    pc.store = store_.get();
    auto stats = WriteToOnlineStore(pc, *request);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  }

  static fs::GetOnlineFeaturesRequest Request(std::vector<std::string> features,
                                              std::vector<int64_t> customers) {
    fs::GetOnlineFeaturesRequest request;
    for (auto& f : features) request.mutable_features()->add_val(f);
    auto& ids = (*request.mutable_entities())["customer_id"];
    for (int64_t c : customers) ids.add_val()->set_int64_val(c);
    return request;
  }

  grpc::Status Call(const fs::GetOnlineFeaturesRequest& request,
                    fs::GetOnlineFeaturesResponse* response, const std::string& token = "") {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    return stub_->GetOnlineFeatures(&context, request, response);
  }

  const Timestamp now_ = SystemClock::Default().Now();
  TestRepo repo_{kPushDefinitions};
  MetricsRegistry metrics_;
  std::unique_ptr<granary::testing::RedisServer> redis_;
  std::unique_ptr<OnlineStore> store_;
  std::unique_ptr<FeatureServer> server_;
  std::unique_ptr<GrpcServer> grpc_;
  std::unique_ptr<fs::ServingService::Stub> stub_;
};

TEST_P(GrpcServerTest, AnswersGetOnlineFeaturesInFeastsTypes) {
  fs::GetOnlineFeaturesResponse response;
  auto request = Request({"risk:score", "risk:labels", "risk:failures"}, {1001, 1002, 9});
  request.set_include_feature_view_version_metadata(true);
  grpc::Status st = Call(request, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(response.status());
  const auto& names = response.metadata().feature_names().val();
  ASSERT_EQ(names.size(), 4);
  EXPECT_EQ(names[0], "customer_id");
  EXPECT_EQ(names[1], "score");
  ASSERT_EQ(response.metadata().feature_view_metadata_size(), 1);
  EXPECT_EQ(response.metadata().feature_view_metadata(0).name(), "risk");
  ASSERT_EQ(response.results_size(), 4);
  const auto& keys = response.results(0);
  EXPECT_EQ(keys.values(2).int64_val(), 9);
  EXPECT_EQ(keys.statuses(2), fs::PRESENT);
  const auto& score = response.results(1);
  EXPECT_EQ(score.values(0).double_val(), 0.5);
  EXPECT_EQ(score.statuses(0), fs::PRESENT);
  EXPECT_EQ(score.event_timestamps(0).seconds(), (now_ - Duration::Minutes(5)).micros / 1'000'000);
  EXPECT_EQ(score.statuses(1), fs::OUTSIDE_MAX_AGE);  // risk's ttl is 1d; the row is 2 days old
  EXPECT_EQ(score.values(1).val_case(), feast::types::Value::VAL_NOT_SET);
  EXPECT_EQ(score.statuses(2), fs::NOT_FOUND);
  EXPECT_EQ(score.event_timestamps(2).seconds(), 0);
  const auto& labels = response.results(2);
  ASSERT_EQ(labels.values(0).string_list_val().val_size(), 2);
  EXPECT_EQ(labels.values(0).string_list_val().val(1), "b");
  EXPECT_EQ(response.results(3).values(0).int64_val(), 3);
}

TEST_P(GrpcServerTest, FeatureServicesAndFullNames) {
  fs::GetOnlineFeaturesRequest request;
  request.set_feature_service("risk_v1");
  request.set_full_feature_names(true);
  (*request.mutable_entities())["customer_id"].add_val()->set_int32_val(1001);
  fs::GetOnlineFeaturesResponse response;
  grpc::Status st = Call(request, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const auto& names = response.metadata().feature_names().val();
  ASSERT_EQ(names.size(), 4);
  EXPECT_EQ(names[1], "risk__score");
  EXPECT_EQ(names[3], "risk__labels");
  EXPECT_EQ(response.results(1).values(0).double_val(), 0.5);
}

TEST_P(GrpcServerTest, ErrorsAreGrpcCodesWithTheServicesMessages) {
  fs::GetOnlineFeaturesResponse response;
  grpc::Status st = Call(Request({"rsk:score"}, {1}), &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message().rfind(
                "unknown feature view 'rsk' in 'rsk:score', did you mean 'risk'?", 0),
            0u)
      << st.error_message();

  auto with_context = Request({"risk:score"}, {1});
  (*with_context.mutable_request_context())["amount"].add_val()->set_double_val(1.0);
  st = Call(with_context, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("on-demand feature views"), std::string::npos);

  std::vector<int64_t> many(101, 7);
  st = Call(Request({"risk:score"}, many), &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("the limit is 100 per request"), std::string::npos);

  auto list_key = Request({"risk:score"}, {});
  (*list_key.mutable_entities())["customer_id"].add_val()->mutable_int64_list_val()->add_val(1);
  st = Call(list_key, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("entities.customer_id[0]: a join key value must be a scalar"),
            std::string::npos)
      << st.error_message();

  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("granary_grpc_requests_total{method=\"/feast.serving.ServingService/"
                      "GetOnlineFeatures\",code=\"INVALID_ARGUMENT\"} 4"),
            std::string::npos)
      << text;
}

// GetOnlineFeatures parses its request itself (a raw method, so that it can write its answer as
// bytes): bytes that are no GetOnlineFeaturesRequest are INVALID_ARGUMENT saying so, and the
// server goes on answering.
TEST_P(GrpcServerTest, BytesThatAreNoRequestAreInvalidArgument) {
  grpc::GenericStub generic(grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_->port()),
                                                grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  // A truncated varint, a length past the end, a group end without a start.
  for (std::string bad : {std::string("\x08\xff", 2),
                          std::string("\x12\x7f"
                                      "ab",
                                      4),
                          std::string("\x0c", 1)}) {
    grpc::Slice slice(bad);
    grpc::ByteBuffer send(&slice, 1);
    grpc::ByteBuffer received;
    grpc::Status st;
    grpc::ClientContext context;
    auto call = generic.PrepareUnaryCall(
        &context, "/feast.serving.ServingService/GetOnlineFeatures", send, &cq);
    call->StartCall();
    call->Finish(&received, &st, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("is not a feast.serving.GetOnlineFeaturesRequest"),
              std::string::npos)
        << st.error_message();
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  fs::GetOnlineFeaturesResponse response;
  grpc::Status st = Call(Request({"risk:score"}, {1001}), &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(response.results(1).values(0).double_val(), 0.5);
}

// Found writing fuzz/grpc_request_fuzz.cc (its corpus keeps crash_unix_timestamp_int64_max): a
// join key's unix_timestamp_val was turned into microseconds unchecked (signed overflow).
TEST_P(GrpcServerTest, JoinKeyTimesOutsideTheYearsReadAreRefused) {
  for (int64_t seconds : {INT64_MAX, INT64_MIN, int64_t{253'402'300'800}}) {
    fs::GetOnlineFeaturesRequest request = Request({"risk:score"}, {});
    (*request.mutable_entities())["customer_id"].add_val()->set_unix_timestamp_val(seconds);
    fs::GetOnlineFeaturesResponse response;
    grpc::Status st = Call(request, &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("entities.customer_id[0]: unix_timestamp_val " +
                                      std::to_string(seconds) +
                                      " is not a time Granary reads (years 0000 to 9999"),
              std::string::npos)
        << st.error_message();
  }
}

TEST_P(GrpcServerTest, TheBearerTokenIsMetadata) {
  StartGrpc("s3cret");
  fs::GetOnlineFeaturesResponse response;
  grpc::Status st = Call(Request({"risk:score"}, {1001}), &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  st = Call(Request({"risk:score"}, {1001}), &response, "wrong");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  st = Call(Request({"risk:score"}, {1001}), &response, "s3cret");
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(response.results(1).values(0).double_val(), 0.5);

  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer s3cret");
  fs::GetFeastServingInfoResponse info;
  st = stub_->GetFeastServingInfo(&context, fs::GetFeastServingInfoRequest(), &info);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(info.version().rfind("granary ", 0), 0u) << info.version();
}

TEST_P(GrpcServerTest, ManyConcurrentCallsAllAnswered) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        fs::GetOnlineFeaturesResponse response;
        if (Call(Request({"risk:score"}, {1001, 1002}), &response).ok() &&
            response.results(1).values(0).double_val() == 0.5) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, GrpcServerTest, ::testing::Values("rocksdb", "redis"));

}  // namespace
}  // namespace granary::serving
