#include "granary/materialize/interval.h"

#include <fmt/format.h>

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

std::string LayoutTag(const ViewLayout& layout) {
  return fmt::format("{:08x}", layout.fingerprint());
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
