#include "granary/registry/definitions.h"

#include <algorithm>

namespace granary {

std::string SourceLocation::ToString() const {
  if (file.empty()) return "";
  return line > 0 ? file + ":" + std::to_string(line) : file;
}

std::string_view ObjectKindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kEntity:
      return "entity";
    case ObjectKind::kDataSource:
      return "data source";
    case ObjectKind::kFeatureView:
      return "feature view";
    case ObjectKind::kFeatureService:
      return "feature service";
  }
  return "object";
}

std::string_view SourceFormatName(SourceFormat format) {
  switch (format) {
    case SourceFormat::kParquet:
      return "parquet";
    case SourceFormat::kCsv:
      return "csv";
    case SourceFormat::kDelta:
      return "delta";
  }
  return "unknown";
}

std::string DataSource::Where() const {
  if (!table.empty()) return "table " + table;
  if (!query.empty()) return "query";
  return path;
}

std::string DataSource::SourceColumnFor(const std::string& name) const {
  for (const auto& [column, mapped] : field_mapping) {
    if (mapped == name) return column;
  }
  return name;
}

const Field* FeatureView::FindFeature(const std::string& feature) const {
  for (const Field& f : schema) {
    if (f.name == feature) return &f;
  }
  return nullptr;
}

namespace {
template <typename T>
const T* FindByName(const std::vector<T>& items, const std::string& name) {
  for (const T& item : items) {
    if (item.name == name) return &item;
  }
  return nullptr;
}
template <typename T>
void SortItems(std::vector<T>& items) {
  std::stable_sort(items.begin(), items.end(),
                   [](const T& a, const T& b) { return a.name < b.name; });
}
}  // namespace

const Entity* Definitions::FindEntity(const std::string& name) const {
  return FindByName(entities, name);
}
const DataSource* Definitions::FindDataSource(const std::string& name) const {
  return FindByName(data_sources, name);
}
const DataSource* Definitions::FindOfflineSource(const std::string& name) const {
  const DataSource* source = FindDataSource(name);
  if (source == nullptr || !source->is_push()) return source;
  const DataSource* batch = FindDataSource(source->batch_source);
  return batch == nullptr || batch->is_push() ? nullptr : batch;
}
const FeatureView* Definitions::FindFeatureView(const std::string& name) const {
  return FindByName(feature_views, name);
}
const FeatureService* Definitions::FindFeatureService(const std::string& name) const {
  return FindByName(feature_services, name);
}

void Definitions::SortByName() {
  SortItems(entities);
  SortItems(data_sources);
  SortItems(feature_views);
  SortItems(feature_services);
}

}  // namespace granary
