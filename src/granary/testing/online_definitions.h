// Helpers for online store tests: definitions with a view of every value type, and Arrow rows
// built from values.
#pragma once

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "granary/online/online_store.h"
#include "granary/registry/loader.h"
#include "granary/types/arrow_convert.h"

namespace granary::testing {

inline constexpr const char* kOnlineDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: bay, join_keys: [bay_id], value_type: string}
  - {name: trip, join_keys: [driver_id, rider_id], value_type: [int32, string]}
data_sources:
  - {name: src, path: data/src.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: every_type
    entities: [customer]
    source: src
    schema:
      - {name: f_bool, type: bool}
      - {name: f_int32, type: int32}
      - {name: f_int64, type: int64}
      - {name: f_float32, type: float32}
      - {name: f_float64, type: float64}
      - {name: f_string, type: string}
      - {name: f_bytes, type: bytes}
      - {name: f_timestamp, type: timestamp}
      - {name: l_bool, type: list<bool>}
      - {name: l_int32, type: list<int32>}
      - {name: l_int64, type: list<int64>}
      - {name: l_float32, type: list<float32>}
      - {name: l_float64, type: list<float64>}
      - {name: l_string, type: list<string>}
      - {name: l_bytes, type: list<bytes>}
      - {name: l_timestamp, type: list<timestamp>}
  - name: risk
    entities: [customer]
    source: src
    ttl: 1h
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
  - name: bay_stats
    entities: [bay]
    source: src
    online_key_ttl: 2h
    schema:
      - {name: occupancy, type: float64}
  - name: trip_stats
    entities: [trip]
    source: src
    schema:
      - {name: minutes, type: int32}
  - name: offline_only
    entities: [customer]
    source: src
    online: false
    schema:
      - {name: x, type: int64}
)yaml";

inline Definitions OnlineDefinitions(const std::string& text = kOnlineDefinitions) {
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("defs.yaml", text, &defs, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  defs.project = "test";
  return defs;
}

// One row to write: join key values (in the view's join key order), event time, optional created
// time, feature values (in schema order).
struct Row {
  std::vector<Value> keys;
  Timestamp event;
  std::optional<Timestamp> created;
  std::vector<Value> features;
};

inline std::shared_ptr<arrow::RecordBatch> MakeRows(const ViewLayout& view,
                                                    const std::vector<Row>& rows) {
  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  auto add = [&](const std::string& name, ValueType type, const std::vector<Value>& values) {
    auto array = MakeArray(type, values);
    EXPECT_TRUE(array.ok()) << name << ": " << array.status().ToString();
    fields.push_back(arrow::field(name, ToArrowType(type)));
    arrays.push_back(*array);
  };
  for (size_t k = 0; k < view.join_keys().size(); ++k) {
    std::vector<Value> col;
    for (const Row& r : rows) col.push_back(r.keys.at(k));
    add(view.join_keys()[k].name, view.join_keys()[k].type, col);
  }
  std::vector<Value> event, created;
  bool any_created = false;
  for (const Row& r : rows) {
    event.push_back(r.event);
    created.push_back(r.created ? Value(*r.created) : Value::Null());
    any_created = any_created || r.created.has_value();
  }
  add("event_timestamp", ValueType::Scalar(ScalarType::kTimestamp), event);
  if (any_created) add("created_timestamp", ValueType::Scalar(ScalarType::kTimestamp), created);
  for (size_t f = 0; f < view.features().size(); ++f) {
    std::vector<Value> col;
    for (const Row& r : rows) col.push_back(r.features.at(f));
    add(view.features()[f].name, view.features()[f].type, col);
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), static_cast<int64_t>(rows.size()), arrays);
}

// A read of `features` (all when empty) of `view` for entities with these key values.
inline ViewRead MakeViewRead(std::shared_ptr<const ViewLayout> view,
                             const std::vector<std::vector<Value>>& entity_keys,
                             std::vector<int> features = {}) {
  auto keys = std::make_shared<EntityKeyColumn>();
  for (const auto& values : entity_keys) {
    for (const Value& v : values) EXPECT_TRUE(entity_key::AppendValue(keys->buffer(), v).ok());
    keys->FinishKey();
  }
  if (features.empty()) {
    for (size_t i = 0; i < view->features().size(); ++i) features.push_back(static_cast<int>(i));
  }
  return ViewRead{std::move(view), std::move(features), std::move(keys)};
}

// Values of every type for entity `i` of the every_type view; nulls when `nulls`.
inline std::vector<Value> EveryTypeValues(int64_t i, bool nulls = false) {
  if (nulls) return std::vector<Value>(16);
  const float f32 = 1.5f + static_cast<float>(i);
  return {
      Value(i % 2 == 0),
      Value(static_cast<int32_t>(-7 - i)),
      Value(static_cast<int64_t>(1) << 40 | i),
      Value(f32),
      Value(0.1 + static_cast<double>(i)),
      Value("caf\xc3\xa9 #" + std::to_string(i)),
      Value(Bytes{std::string("\x00\xff\x10", 3) + std::to_string(i)}),
      Value(Timestamp::FromMicros(1'700'000'000'123'456 + i)),
      Value(std::vector<bool>{true, false, i % 2 == 1}),
      Value(std::vector<int32_t>{1, -2, static_cast<int32_t>(i)}),
      Value(std::vector<int64_t>{}),
      Value(std::vector<float>{0.25f, -1e30f, f32}),
      Value(std::vector<double>{3.5, static_cast<double>(i)}),
      Value(std::vector<std::string>{"", "a", std::string(300, 'x')}),
      Value(std::vector<Bytes>{Bytes{std::string(1, '\0')}, Bytes{"zz"}}),
      Value(std::vector<Timestamp>{Timestamp::FromMicros(-5), Timestamp::FromSeconds(i)}),
  };
}

}  // namespace granary::testing
