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

namespace granary {
namespace {

// The "<join key>:<type>,..." part of an OnlineSchemaText ("" when malformed).
std::string_view JoinKeyPart(std::string_view text) {
  const size_t a = text.find('|');
  const size_t b = a == std::string_view::npos ? a : text.find('|', a + 1);
  const size_t c = b == std::string_view::npos ? b : text.find('|', b + 1);
  if (c == std::string_view::npos) return {};
  return text.substr(b + 1, c - b - 1);
}

}  // namespace

std::string OnlineSchemaText(const Definitions& defs, const FeatureView& view) {
  std::vector<std::pair<std::string, ValueType>> keys;
  for (const std::string& entity_name : view.entities) {
    const Entity* entity = defs.FindEntity(entity_name);
    if (entity == nullptr) continue;
    for (size_t i = 0; i < entity->join_keys.size(); ++i) {
      const std::string& key = entity->join_keys[i];
      ValueType type = i < entity->join_key_types.size() ? entity->join_key_types[i]
                                                         : ValueType::Scalar(ScalarType::kString);
      auto same = [&](const auto& k) { return k.first == key; };
      if (std::find_if(keys.begin(), keys.end(), same) == keys.end()) keys.emplace_back(key, type);
    }
  }
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Integer join keys are one key type (online/entity_key.h), so int32 <-> int64 is left out on
  // purpose: such a change keeps the stored values readable.
  std::string text = "granary.schema.v1|" + view.name + "|";
  for (const auto& [name, type] : keys) {
    bool integer =
        !type.is_list && (type.scalar == ScalarType::kInt32 || type.scalar == ScalarType::kInt64);
    text += name + ":" + (integer ? std::string("integer") : type.ToString()) + ",";
  }
  text += "|";
  for (const Field& f : view.schema) text += f.name + ":" + f.type.ToString() + ",";
  return text;
}

void CarryOnlineHistory(const Definitions& before, Definitions* after) {
  for (FeatureView& view : after->feature_views) {
    view.online_history.clear();
    const FeatureView* old_view = before.FindFeatureView(view.name);
    if (old_view == nullptr || !view.online) continue;
    const std::string current = OnlineSchemaText(*after, view);
    std::vector<std::string> candidates;
    if (old_view->online) candidates.push_back(OnlineSchemaText(before, *old_view));
    candidates.insert(candidates.end(), old_view->online_history.begin(),
                      old_view->online_history.end());
    for (std::string& text : candidates) {
      if (view.online_history.size() >= kOnlineHistoryLimit) break;
      if (text == current || JoinKeyPart(text) != JoinKeyPart(current)) continue;
      if (std::find(view.online_history.begin(), view.online_history.end(), text) !=
          view.online_history.end()) {
        continue;
      }
      view.online_history.push_back(std::move(text));
    }
  }
}

}  // namespace granary
