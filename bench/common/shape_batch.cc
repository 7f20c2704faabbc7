#include "shape_batch.h"

#include <fmt/format.h>

#include <random>

namespace granary {

std::shared_ptr<arrow::RecordBatch> MakeShapeBatch(const ViewLayout& view, int64_t begin,
                                                   int64_t end, Timestamp event) {
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  (void)ids.Reserve(end - begin);
  (void)ts.Reserve(end - begin);
  for (int64_t i = begin; i < end; ++i) {
    ids.UnsafeAppend(i);
    ts.UnsafeAppend(event.micros);
  }
  arrow::ArrayVector arrays = {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()};
  arrow::FieldVector fields = {arrow::field("customer_id", arrow::int64()),
                               arrow::field("event_timestamp", ts.type())};
  std::mt19937_64 rng(static_cast<uint64_t>(begin) * 31 + view.view_id());
  for (const auto& f : view.features()) {
    if (f.type.scalar == ScalarType::kInt64) {
      arrow::Int64Builder b;
      (void)b.Reserve(end - begin);
      for (int64_t i = begin; i < end; ++i) b.UnsafeAppend(static_cast<int64_t>(rng() % 100000));
      arrays.push_back(b.Finish().ValueOrDie());
      fields.push_back(arrow::field(f.name, arrow::int64()));
    } else {
      arrow::DoubleBuilder b;
      (void)b.Reserve(end - begin);
      for (int64_t i = begin; i < end; ++i) {
        b.UnsafeAppend(static_cast<double>(rng() % 1000000) / 7.0);
      }
      arrays.push_back(b.Finish().ValueOrDie());
      fields.push_back(arrow::field(f.name, arrow::float64()));
    }
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), end - begin, arrays);
}

Definitions MakeShapeDefinitions(int views, int features) {
  Definitions defs;
  defs.project = "bench";
  Entity customer;
  customer.name = "customer";
  customer.join_keys = {"customer_id"};
  customer.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
  defs.entities.push_back(customer);
  for (int v = 0; v < views; ++v) {
    FeatureView view;
    view.name = fmt::format("view_{:02}", v);
    view.entities = {"customer"};
    view.source = "src";
    for (int f = 0; f < features; ++f) {
      Field field;
      field.name = fmt::format("f{:02}", f);
      field.type = ValueType::Scalar(f < features / 2 ? ScalarType::kInt64 : ScalarType::kFloat64);
      view.schema.push_back(field);
    }
    defs.feature_views.push_back(view);
  }
  return defs;
}

}  // namespace granary
