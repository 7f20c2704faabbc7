#include "granary/materialize/interval.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "granary/common/hash.h"
#include "granary/online/view_layout.h"

namespace granary {
namespace {

constexpr Duration kOneMicrosecond = Duration::Microseconds(1);

// The watermark that still stands for what the online store holds.
std::optional<Timestamp> ValidWatermark(const std::optional<WatermarkState>& state,
                                        const std::string& layout_tag, bool* layout_changed) {
  *layout_changed = false;
  if (!state) return std::nullopt;
  if (state->layout != layout_tag) {
    *layout_changed = true;
    return std::nullopt;
  }
  return state->watermark;
}

}  // namespace

namespace {

// What tells one online store apart from another: its type and where it lives.
std::string StoreIdentity(const OnlineStoreConfig& store) {
  if (store.type == "redis") {
    // "host:port[,password=...][,username=...][,db=N]": the address and the database only.
    std::string out = "redis|";
    size_t pos = 0;
    bool first = true;
    while (pos <= store.connection_string.size()) {
      size_t comma = store.connection_string.find(',', pos);
      if (comma == std::string::npos) comma = store.connection_string.size();
      std::string_view part(store.connection_string.data() + pos, comma - pos);
      if (first || part.starts_with("db=")) out.append(part).push_back('|');
      first = false;
      pos = comma + 1;
    }
    return out;
  }
  if (store.type == "redis_cluster") {
    std::vector<std::string> nodes = store.nodes;
    std::sort(nodes.begin(), nodes.end());
    return fmt::format("redis_cluster|{}", fmt::join(nodes, ","));
  }
  return fmt::format("{}|{}", store.type, store.path);
}

}  // namespace

std::string LayoutTag(const ViewLayout& layout, const OnlineStoreConfig& store) {
  const uint64_t identity = Fnv1a64(StoreIdentity(store));
  uint32_t schema = layout.fingerprint();
  if (layout.tile_layout() != nullptr) {
    // The tiles' spec too (granularity, windows, functions): an incremental run keeps the stored
    // tiles before its read (IncrementalTileStart), which is sound only for the same spec.
    const uint64_t both =
        Fnv1a64(fmt::format("{:08x}/{:08x}", schema, layout.tile_layout()->fingerprint()));
    schema = static_cast<uint32_t>(both ^ (both >> 32));
  }
  return fmt::format("{:08x}-{:08x}", schema, static_cast<uint32_t>(identity ^ (identity >> 32)));
}

ViewInterval PlanIncremental(const std::optional<WatermarkState>& state,
                             const std::string& layout_tag, Duration ttl, Timestamp end) {
  ViewInterval out;
  out.end = end;
  out.watermark = ValidWatermark(state, layout_tag, &out.layout_changed);
  if (out.watermark) {
    if (*out.watermark >= end) {
      out.up_to_date = true;
      out.watermark_note =
          fmt::format("already materialized up to {}", FormatTimestamp(*out.watermark));
      return out;
    }
    out.start = *out.watermark + kOneMicrosecond;
  } else if (!ttl.is_zero()) {
    out.start = end - ttl;
  }
  out.advances_watermark = true;
  return out;
}

ViewInterval PlanInterval(const std::optional<WatermarkState>& state, const std::string& layout_tag,
                          Timestamp start, Timestamp end) {
  ViewInterval out;
  out.start = start;
  out.end = end;
  out.watermark = ValidWatermark(state, layout_tag, &out.layout_changed);
  if (!out.watermark || start <= *out.watermark + kOneMicrosecond) {
    out.advances_watermark = true;
  } else {
    out.watermark_note = fmt::format(
        "the watermark stays at {}: the interval starts after it, so rows in between were not "
        "materialized; run materialize-incremental, or materialize from {} on",
        FormatTimestamp(*out.watermark), FormatTimestamp(*out.watermark));
  }
  return out;
}

std::string FormatIntervalStart(std::optional<Timestamp> start) {
  if (!start || *start == kUnboundedStart) return "the first row";
  return FormatTimestamp(*start);
}

}  // namespace granary
