#include "granary/online/view_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "granary/common/hash.h"

namespace granary {
namespace {

uint32_t Fold(uint64_t h) { return static_cast<uint32_t>(h ^ (h >> 32)); }

}  // namespace

uint32_t ViewIdOf(std::string_view view_name) {
  return Fold(Fnv1a64(view_name, Fnv1a64("granary.view_id.v1")));
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
  int64_t fixed = 0;
  for (const Column& f : layout->features_) {
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
      layout->fixed_offsets_.clear();
      break;
    }
    layout->fixed_offsets_.push_back(static_cast<uint32_t>(fixed));
    fixed += width;
  }
  layout->fixed_values_size_ = fixed;

  // The fingerprint covers everything that decides how a body is read and which entity it
  // belongs to. Integer join keys are one key type (see entity_key.h), so int32 <-> int64 is left
  // out of it on purpose: such a change keeps the stored values readable.
  std::string text = "granary.schema.v1|" + view.name + "|";
  for (const Column& k : layout->join_keys_) {
    bool integer = !k.type.is_list &&
                   (k.type.scalar == ScalarType::kInt32 || k.type.scalar == ScalarType::kInt64);
    text += k.name + ":" + (integer ? std::string("integer") : k.type.ToString()) + ",";
  }
  text += "|";
  for (const Column& f : layout->features_) text += f.name + ":" + f.type.ToString() + ",";
  layout->fingerprint_ = Fold(Fnv1a64(text));
  return std::shared_ptr<const ViewLayout>(std::move(layout));
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
    out.emplace(view.name, std::move(layout));
  }
  return out;
}

}  // namespace granary
