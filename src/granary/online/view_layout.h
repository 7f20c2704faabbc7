// ViewLayout: how one feature view is stored online (docs/ONLINE_LAYOUT.md).
//
// Built from the applied definitions; immutable afterwards, so one instance is shared by every
// thread. It fixes:
//   - the view id: 4 bytes naming the view inside an entity's stored value (a hash of its name);
//   - the schema fingerprint: 4 bytes stored in every value, a hash of the view's name, join keys
//     and features with their types in order. A value written under another schema (features
//     added, removed, renamed or retyped by a later apply) has another fingerprint and is never
//     decoded with the wrong types: it is read through that schema when it is an earlier one
//     (below), else as NOT_FOUND;
//   - the join keys in canonical order (sorted by name) and the features in schema order;
//   - the view's earlier online schemas (FeatureView::online_history) with the same join keys:
//     a value written under one of them is read feature by feature, each current feature taken
//     from the stored feature of the same name and type (NOT_FOUND when there is none), so a
//     schema change does not blank the features it left alone;
//   - for a view with window aggregations, the layout of its tiles (tile_layout()): a layout of
//     its own (view id of "<view>#tiles", features the aggregations' outputs, fingerprint
//     the TileSpec's) whose stored section is the entity's tiles (aggregation/tiles.h), folded
//     into a body of those features at read time (docs/ONLINE_LAYOUT.md, "Tiles").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granary/aggregation/tiles.h"
#include "granary/common/result.h"
#include "granary/registry/definitions.h"

namespace granary {

class ViewLayout {
 public:
  struct Column {
    std::string name;
    ValueType type;
  };

  // The layout of `view`, whose entities must be defined in `defs`. `default_key_ttl` is the
  // online store's key_ttl, used when the view does not set online_key_ttl.
  static Result<std::shared_ptr<const ViewLayout>> Make(const Definitions& defs,
                                                        const FeatureView& view,
                                                        Duration default_key_ttl);

  const std::string& name() const { return name_; }
  uint32_t view_id() const { return view_id_; }
  uint32_t fingerprint() const { return fingerprint_; }
  // The join keys of the view's entities, sorted by name (the canonical key order).
  const std::vector<Column>& join_keys() const { return join_keys_; }
  // The features, in the view's schema order (the order of values in a stored body).
  const std::vector<Column>& features() const { return features_; }
  // The index of a feature in features(), or -1.
  int FeatureIndex(std::string_view name) const;
  // Values older than now - ttl are OUTSIDE_MAX_AGE; 0 = no limit.
  Duration ttl() const { return ttl_; }
  // How long a store keeps an entity after its last write; 0 = forever.
  Duration key_ttl() const { return key_ttl_; }
  // Bytes of the null bitmap in a body: ceil(features / 8).
  int null_bitmap_bytes() const { return static_cast<int>((features_.size() + 7) / 8); }
  // When every feature has a fixed width (no strings, bytes or lists): the bytes of the values of
  // a body without nulls, and where each value starts among them; -1 otherwise.
  int64_t fixed_values_size() const { return fixed_values_size_; }
  const std::vector<uint32_t>& fixed_offsets() const { return fixed_offsets_; }

  // The layout of the view's aggregation tiles, or null when it has none (or when they cannot be
  // kept online: tile_error() says why).
  const std::shared_ptr<const ViewLayout>& tile_layout() const { return tile_layout_; }
  const std::string& tile_error() const { return tile_error_; }
  // For a tile layout: what its tiles hold; else null.
  const aggregation::TileSpec* tiles() const { return tiles_.get(); }

  // An earlier schema of the view, how to read a body written under it.
  struct Earlier {
    std::shared_ptr<const ViewLayout> layout;  // to index such a body (features(), offsets)
    // For each current feature, its index in layout->features() (same name and type), or -1.
    std::vector<int> from_current;
  };
  // The earlier schema whose fingerprint is `fingerprint`, or null.
  const Earlier* FindEarlier(uint32_t fingerprint) const {
    for (const Earlier& e : earlier_) {
      if (e.layout->fingerprint() == fingerprint) return &e;
    }
    return nullptr;
  }

 private:
  ViewLayout() = default;
  // Sets the fixed-width offsets and the fingerprint from features_ and `schema_text`.
  void Finish(const std::string& schema_text);
  // The layout that an OnlineSchemaText describes; null when the text is malformed.
  static std::shared_ptr<const ViewLayout> FromSchemaText(std::string_view text);

  std::string name_;
  uint32_t view_id_ = 0;
  uint32_t fingerprint_ = 0;
  std::vector<Column> join_keys_;
  std::vector<Column> features_;
  Duration ttl_;
  Duration key_ttl_;
  int64_t fixed_values_size_ = -1;
  std::vector<uint32_t> fixed_offsets_;
  std::vector<Earlier> earlier_;
  std::shared_ptr<const ViewLayout> tile_layout_;
  std::string tile_error_;
  std::shared_ptr<const aggregation::TileSpec> tiles_;
};

using ViewLayouts = std::map<std::string, std::shared_ptr<const ViewLayout>, std::less<>>;

// The layouts of every online view of `defs`, by view name. Two views whose ids collide (a 2^-32
// chance per pair) are an InvalidArgument naming both, with the fix (rename one).
Result<ViewLayouts> MakeViewLayouts(const Definitions& defs, Duration default_key_ttl);

// The view id of a view's tiles: ViewIdOf("<view>#tiles").
uint32_t TileViewIdOf(std::string_view view_name);

// The 4-byte view id of a view name (stable across releases: stored data depends on it).
uint32_t ViewIdOf(std::string_view view_name);

}  // namespace granary
