#include "granary/materialize/online_check.h"

#include <fmt/format.h>

#include "granary/materialize/interval.h"
#include "granary/online/view_layout.h"

namespace granary {

std::string_view ViewDataStateName(ViewDataCheck::State state) {
  switch (state) {
    case ViewDataCheck::State::kIntact:
      return "intact";
    case ViewDataCheck::State::kLost:
      return "lost";
    case ViewDataCheck::State::kNotChecked:
      break;
  }
  return "not_checked";
}

std::vector<ViewDataCheck> CheckViewMarkers(const std::vector<std::string>& views,
                                            const std::vector<std::string>& layout_tags,
                                            const std::map<std::string, WatermarkState>& states,
                                            const Result<std::vector<ShardMarkers>>& markers) {
  std::vector<ViewDataCheck> out;
  for (size_t v = 0; v < views.size(); ++v) {
    ViewDataCheck check;
    check.view = views[v];
    auto it = states.find(check.view);
    if (it == states.end() || it->second.layout != layout_tags[v]) {
      check.reason = "nothing materialized under the current schema and store yet";
    } else if (!it->second.online_marker) {
      check.reason =
          "its watermark was set before Granary kept markers in the online store; the next "
          "materialize-incremental writes one";
    } else if (!markers.ok()) {
      check.reason = fmt::format("the markers could not be read: {}", markers.status().message());
      check.markers_unreadable = true;
    } else {
      const WatermarkState& state = it->second;
      check.shards = static_cast<int>(markers->size());
      std::vector<std::string> found;
      for (const ShardMarkers& shard : *markers) {
        auto m = shard.views.find(check.view);
        std::string what;
        if (m == shard.views.end()) {
          what = fmt::format("no marker on {}", shard.shard);
        } else if (m->second.layout != state.layout) {
          what = fmt::format("the marker on {} is of another layout ({})", shard.shard,
                             m->second.layout);
        } else if (m->second.watermark < state.watermark) {
          what = fmt::format("the marker on {} promises only {}", shard.shard,
                             FormatTimestamp(m->second.watermark));
        } else {
          continue;
        }
        check.lost_shards.push_back(shard.shard);
        found.push_back(std::move(what));
      }
      if (found.empty()) {
        check.state = ViewDataCheck::State::kIntact;
      } else {
        check.state = ViewDataCheck::State::kLost;
        check.reason = fmt::format("online data lost: {} (of {} shard{}) while the watermark is {}",
                                   fmt::join(found, "; "), check.shards,
                                   check.shards == 1 ? "" : "s", FormatTimestamp(state.watermark));
      }
    }
    out.push_back(std::move(check));
  }
  return out;
}

Result<std::vector<ViewDataCheck>> CheckOnlineData(RegistryStore& registry, const Definitions& defs,
                                                   const RepoConfig& config, OnlineStore& store) {
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts, MakeViewLayouts(defs, config.online_store.key_ttl));
  std::vector<std::string> views, tags;
  for (const FeatureView& v : defs.feature_views) {
    if (!v.online) continue;
    views.push_back(v.name);
    tags.push_back(LayoutTag(*layouts.at(v.name), config.online_store));
  }
  GRANARY_ASSIGN_OR_RAISE(auto states, registry.WatermarkStates());
  bool promised = false;  // read the store only when some watermark has a marker to check
  for (const auto& [view, state] : states) promised = promised || state.online_marker;
  return CheckViewMarkers(views, tags, states,
                          promised
                              ? store.ReadViewMarkers()
                              : Result<std::vector<ShardMarkers>>(std::vector<ShardMarkers>()));
}

}  // namespace granary
