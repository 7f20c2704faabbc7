// Definitions the point-in-time join's tests over real files share (test code only).
#pragma once

#include <filesystem>
#include <utility>
#include <vector>

#include "granary/registry/definitions.h"

namespace granary {

// Definitions of one view "v" over source "src" at `path` (`format`), keyed by entity
// "driver" (driver_id int64), with the plain features `schema`.
inline Definitions DriverView(const std::filesystem::path& path, std::vector<Field> schema,
                              SourceFormat format = SourceFormat::kParquet) {
  Definitions defs;
  Entity entity;
  entity.name = "driver";
  entity.join_keys = {"driver_id"};
  entity.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
  defs.entities.push_back(entity);
  DataSource source;
  source.name = "src";
  source.path = path.string();
  source.format = format;
  source.timestamp_field = "event_timestamp";
  defs.data_sources.push_back(source);
  FeatureView view;
  view.name = "v";
  view.entities = {"driver"};
  view.source = "src";
  view.schema = std::move(schema);
  defs.feature_views.push_back(view);
  return defs;
}

}  // namespace granary
