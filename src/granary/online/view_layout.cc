#include "granary/online/view_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "granary/common/hash.h"

namespace granary {
namespace {

uint32_t Fold(uint64_t h) { return static_cast<uint32_t>(h ^ (h >> 32)); }

bool IsInteger(const ValueType& t) {
  return !t.is_list && (t.scalar == ScalarType::kInt32 || t.scalar == ScalarType::kInt64);
}

// The same join keys, integer widths aside (OnlineSchemaText writes them all "integer").
template <typename Column>
bool SameJoinKeys(const std::vector<Column>& a, const std::vector<Column>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name) return false;
    if (!(a[i].type == b[i].type || (IsInteger(a[i].type) && IsInteger(b[i].type)))) return false;
  }
  return true;
}

}  // namespace

uint32_t ViewIdOf(std::string_view view_name) {
  return Fold(Fnv1a64(view_name, Fnv1a64("granary.view_id.v1")));
}

uint32_t TileViewIdOf(std::string_view view_name) {
  return ViewIdOf(std::string(view_name) + "#tiles");
}

Result<std::shared_ptr<const ViewLayout>> ViewLayout::Make(const Definitions& defs,
                                                           const FeatureView& view,
                                                           Duration default_key_ttl) {
  std::shared_ptr<ViewLayout> layout(new ViewLayout());
  layout->name_ = view.name;
  layout->view_id_ = ViewIdOf(view.name);
  layout->ttl_ = view.ttl;
  layout->key_ttl_ = view.online_key_ttl.is_zero() ? default_key_ttl : view.online_key_ttl;
  for (const std::string& entity_name : view.entities) {
    const Entity* entity = defs.FindEntity(entity_name);
    if (entity == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': unknown entity '{}'; run 'granary apply' to fix the definitions",
          view.name, entity_name));
    }
    for (size_t i = 0; i < entity->join_keys.size(); ++i) {
      const std::string& key = entity->join_keys[i];
      ValueType type = i < entity->join_key_types.size() ? entity->join_key_types[i]
                                                         : ValueType::Scalar(ScalarType::kString);
      auto same = [&](const Column& c) { return c.name == key; };
      if (std::find_if(layout->join_keys_.begin(), layout->join_keys_.end(), same) ==
          layout->join_keys_.end()) {
        layout->join_keys_.push_back({key, type});
      }
    }
  }
  std::sort(layout->join_keys_.begin(), layout->join_keys_.end(),
            [](const Column& a, const Column& b) { return a.name < b.name; });
  for (const Field& f : view.schema) layout->features_.push_back({f.name, f.type});
  // The fingerprint covers everything that decides how a body is read and which entity it
  // belongs to (OnlineSchemaText).
  layout->Finish(OnlineSchemaText(defs, view));
  for (const std::string& text : view.online_history) {
    std::shared_ptr<const ViewLayout> earlier = FromSchemaText(text);
    // Unreadable or of other entities (other join keys: apply never keeps such a schema, but a
    // registry may be edited): its values read NOT_FOUND, as any other schema's.
    if (earlier == nullptr || earlier->name_ != layout->name_ ||
        earlier->fingerprint_ == layout->fingerprint_ ||
        layout->FindEarlier(earlier->fingerprint_) != nullptr ||
        !SameJoinKeys(earlier->join_keys_, layout->join_keys_)) {
      continue;
    }
    Earlier e;
    e.layout = earlier;
    for (const Column& f : layout->features_) {
      int at = earlier->FeatureIndex(f.name);
      e.from_current.push_back(at >= 0 && earlier->features_[at].type == f.type ? at : -1);
    }
    layout->earlier_.push_back(std::move(e));
  }
  if (view.has_aggregations()) {
    Result<aggregation::TileSpec> spec = aggregation::TileSpecOf(view);
    if (!spec.ok()) {
      layout->tile_error_ = spec.status().message();
    } else {
      std::shared_ptr<ViewLayout> tiles(new ViewLayout());
      tiles->name_ = view.name;
      tiles->view_id_ = TileViewIdOf(view.name);
      tiles->join_keys_ = layout->join_keys_;
      for (const auto& item : spec->items) tiles->features_.push_back({item.name, item.output});
      // Windows age values out; a key lives at least as long as its oldest tile is read.
      const Duration retention{spec->longest_window.micros + spec->granularity.micros};
      tiles->key_ttl_ = layout->key_ttl_.is_zero()
                            ? layout->key_ttl_
                            : Duration{std::max(layout->key_ttl_.micros, retention.micros)};
      tiles->tiles_ = std::make_shared<const aggregation::TileSpec>(*spec);
      tiles->Finish("");
      tiles->fingerprint_ = tiles->tiles_->Fingerprint();
      layout->tile_layout_ = std::move(tiles);
    }
  }
  return std::shared_ptr<const ViewLayout>(std::move(layout));
}

void ViewLayout::Finish(const std::string& schema_text) {
  int64_t fixed = 0;
  for (const Column& f : features_) {
    int width = 0;
    if (!f.type.is_list) {
      switch (f.type.scalar) {
        case ScalarType::kBool:
          width = 1;
          break;
        case ScalarType::kInt32:
        case ScalarType::kFloat32:
          width = 4;
          break;
        case ScalarType::kInt64:
        case ScalarType::kFloat64:
        case ScalarType::kTimestamp:
          width = 8;
          break;
        default:
          break;
      }
    }
    if (width == 0) {
      fixed = -1;
      fixed_offsets_.clear();
      break;
    }
    fixed_offsets_.push_back(static_cast<uint32_t>(fixed));
    fixed += width;
  }
  fixed_values_size_ = fixed;
  fingerprint_ = Fold(Fnv1a64(schema_text));
}

std::shared_ptr<const ViewLayout> ViewLayout::FromSchemaText(std::string_view text) {
  // "granary.schema.v1|<view>|<key>:<type>,...|<feature>:<type>,..."; names never hold '|',
  // ',' or ':' (the validator allows letters, digits and underscores).
  std::vector<std::string_view> parts;
  for (size_t at = 0;;) {
    size_t bar = text.find('|', at);
    parts.push_back(text.substr(at, bar == std::string_view::npos ? bar : bar - at));
    if (bar == std::string_view::npos) break;
    at = bar + 1;
  }
  if (parts.size() != 4 || parts[0] != "granary.schema.v1") return nullptr;
  std::shared_ptr<ViewLayout> layout(new ViewLayout());
  layout->name_ = std::string(parts[1]);
  layout->view_id_ = ViewIdOf(layout->name_);
  auto columns = [](std::string_view list, bool keys, std::vector<Column>* out) {
    for (size_t at = 0; at < list.size();) {
      size_t comma = list.find(',', at);
      if (comma == std::string_view::npos) return false;  // every item ends with ','
      std::string_view item = list.substr(at, comma - at);
      at = comma + 1;
      size_t colon = item.find(':');
      if (colon == std::string_view::npos || colon == 0) return false;
      std::string_view type_text = item.substr(colon + 1);
      Column c{std::string(item.substr(0, colon)), ValueType::Scalar(ScalarType::kInt64)};
      if (!keys || type_text != "integer") {
        auto type = ValueType::Parse(type_text);
        if (!type.ok()) return false;
        c.type = *type;
      }
      out->push_back(std::move(c));
    }
    return true;
  };
  if (!columns(parts[2], true, &layout->join_keys_) ||
      !columns(parts[3], false, &layout->features_) || layout->features_.empty()) {
    return nullptr;
  }
  layout->Finish(std::string(text));
  return layout;
}

int ViewLayout::FeatureIndex(std::string_view name) const {
  for (size_t i = 0; i < features_.size(); ++i) {
    if (features_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Result<ViewLayouts> MakeViewLayouts(const Definitions& defs, Duration default_key_ttl) {
  ViewLayouts out;
  std::map<uint32_t, std::string> by_id;
  for (const FeatureView& view : defs.feature_views) {
    if (!view.online) continue;
    GRANARY_ASSIGN_OR_RAISE(auto layout, ViewLayout::Make(defs, view, default_key_ttl));
    auto [it, inserted] = by_id.emplace(layout->view_id(), view.name);
    if (!inserted) {
      return Status::InvalidArgument(fmt::format(
          "feature views '{}' and '{}' have the same online view id {:08x} (a hash collision); "
          "rename one of them",
          it->second, view.name, layout->view_id()));
    }
    if (layout->tile_layout() != nullptr) {
      auto [at, fresh] = by_id.emplace(layout->tile_layout()->view_id(), view.name + "#tiles");
      if (!fresh) {
        return Status::InvalidArgument(fmt::format(
            "feature views '{}' and '{}' have the same online view id {:08x} (a hash collision); "
            "rename one of them",
            at->second, view.name, layout->tile_layout()->view_id()));
      }
    }
    out.emplace(view.name, std::move(layout));
  }
  return out;
}

}  // namespace granary
