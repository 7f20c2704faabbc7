// The definitions and the get-online-features service that the feature server's request fuzz
// targets (serving_request over HTTP's JSON, grpc_request over Feast's gRPC messages) resolve
// requests against: entities of every join key form (int64, string, and a two-key entity), a
// push source, a feature service. Made once per process; read-only afterwards.
#pragma once

#include <memory>

#include "fixed_definitions.h"
#include "granary/serving/online_features.h"

namespace granary::fuzz {

inline constexpr const char* kServingDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: bay, join_keys: [bay_id], value_type: string}
  - {name: trip, join_keys: [driver_id, rider_id], value_type: [int32, bytes]}
data_sources:
  - {name: src, path: data/src, timestamp_field: event_timestamp, created_timestamp_column: created}
  - {name: src_push, type: push, batch_source: src}
feature_views:
  - name: risk
    entities: [customer]
    source: src_push
    ttl: 1d
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
      - {name: labels, type: list<string>}
      - {name: seen, type: timestamp}
  - name: bay_stats
    entities: [bay]
    source: src
    schema:
      - {name: score, type: float32}
      - {name: open, type: bool}
  - name: trip_stats
    entities: [trip]
    source: src
    schema:
      - {name: minutes, type: int32}
      - {name: blob, type: bytes}
feature_services:
  - name: all
    features: [risk, bay_stats, "trip_stats:minutes"]
)yaml";

struct ServingFixture {
  std::shared_ptr<const Definitions> defs;
  std::unique_ptr<OnlineFeaturesService> service;
};

inline const ServingFixture& GetServingFixture() {
  static const ServingFixture fixture = [] {
    auto defs = std::make_shared<Definitions>(FixedDefinitions(kServingDefinitions));
    ServingFixture f;
    f.defs = defs;
    f.service = OnlineFeaturesService::Make(defs, nullptr, Duration::Days(1)).ValueOrDie();
    return f;
  }();
  return fixture;
}

}  // namespace granary::fuzz
