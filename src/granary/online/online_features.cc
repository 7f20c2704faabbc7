#include "granary/online/online_features.h"

#include <fmt/format.h>

#include <algorithm>

#include "granary/types/arrow_convert.h"

namespace granary {

std::string_view FeatureStatusName(FeatureStatus status) {
  switch (status) {
    case FeatureStatus::kInvalid:
      return "INVALID";
    case FeatureStatus::kPresent:
      return "PRESENT";
    case FeatureStatus::kNullValue:
      return "NULL_VALUE";
    case FeatureStatus::kNotFound:
      return "NOT_FOUND";
    case FeatureStatus::kOutsideMaxAge:
      return "OUTSIDE_MAX_AGE";
  }
  return "INVALID";
}

Status OnlineReadRequest::Validate() const {
  for (size_t v = 0; v < views.size(); ++v) {
    const ViewRead& read = views[v];
    if (read.view == nullptr || read.keys == nullptr) {
      return Status::InvalidArgument(fmt::format("view read {} has no layout or no keys", v));
    }
    if (read.keys->size() != num_rows()) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}' has {} entity keys, the first view has {}",
                      read.view->name(), read.keys->size(), num_rows()));
    }
    for (int f : read.features) {
      if (f < 0 || static_cast<size_t>(f) >= read.view->features().size()) {
        return Status::InvalidArgument(
            fmt::format("feature view '{}' has no feature #{}", read.view->name(), f));
      }
    }
  }
  return Status::OK();
}

Result<std::shared_ptr<arrow::Array>> OnlineFeatures::ToArrow(size_t v, size_t j) const {
  const ValueType type = views_[v].view->features()[views_[v].features[j]].type;
  std::vector<Value> values;
  values.reserve(num_rows_);
  for (size_t r = 0; r < num_rows_; ++r) values.push_back(value(v, j, r).ToValue());
  return MakeArray(type, values);
}

OnlineFeaturesBuilder::OnlineFeaturesBuilder(const OnlineReadRequest& request, size_t max_bytes)
    : max_bytes_(std::min(max_bytes, kMaxOnlineReadBytes)) {
  out_.num_rows_ = request.num_rows();
  out_.views_ = request.views;
  out_.cells_.resize(out_.views_.size() * out_.num_rows_);
  bodies_.resize(out_.cells_.size());
  size_t total = 0;
  for (const ViewRead& read : out_.views_) {
    out_.offset_base_.push_back(total);
    total += read.features.size() * out_.num_rows_;
  }
  out_.offsets_.resize(total, kNullOffset);
}

Status OnlineFeaturesBuilder::FoldTileBodies(Timestamp now) {
  std::string body;
  std::vector<Value> values;
  for (size_t v = 0; v < out_.views_.size(); ++v) {
    const ViewLayout& view = *out_.views_[v].view;
    const aggregation::TileSpec* spec = view.tiles();
    if (spec == nullptr) continue;
    for (size_t r = 0; r < out_.num_rows_; ++r) {
      Span& span = bodies_[out_.cell(v, r)];
      if (out_.cells_[out_.cell(v, r)].status == FeatureStatus::kInvalid) continue;
      // No tiles (an entity without events, or whose events all expired) is an empty window, as
      // offline: count 0, the others null. The fold reads the arena in place (its values own
      // their bytes); the arena grows only after it.
      const uint32_t fingerprint = spec->Fingerprint();
      std::string_view tiles(reinterpret_cast<const char*>(&fingerprint), sizeof(fingerprint));
      if (span.size != 0) tiles = std::string_view(out_.arena_.data() + span.offset, span.size);
      int64_t last_event = 0;
      bool matches = false;
      Status st = aggregation::FoldTiles(*spec, tiles, now.micros, &values, &last_event, &matches);
      if (!st.ok()) {
        return st.WithContext(
            fmt::format("feature view '{}', the tiles of entity row {} (materialize "
                        "the view again to replace them)",
                        view.name(), r));
      }
      if (!matches) {  // tiles of other aggregations: not this view's data any more
        tiles = std::string_view(reinterpret_cast<const char*>(&fingerprint), sizeof(fingerprint));
        GRANARY_RETURN_NOT_OK(
            aggregation::FoldTiles(*spec, tiles, now.micros, &values, &last_event, &matches));
      }
      body.clear();
      GRANARY_RETURN_NOT_OK(EncodeBody(view, WriteOrder{last_event}, values, &body));
      span = {static_cast<uint32_t>(out_.arena_.size()), static_cast<uint32_t>(body.size())};
      out_.arena_.append(body);
    }
  }
  return Status::OK();
}

Result<OnlineFeatures> OnlineFeaturesBuilder::Finish(Timestamp now) {
  if (out_.arena_.size() > max_bytes_) {
    return Status::InvalidArgument(fmt::format(
        "an online read of {} entity rows fetched {} bytes of stored values, more than the "
        "limit of {} bytes per read; ask for fewer entity rows (or fewer views) per request",
        out_.num_rows_, out_.arena_.size(), max_bytes_));
  }
  GRANARY_RETURN_NOT_OK(FoldTileBodies(now));
  std::vector<uint32_t> all_offsets;
  for (size_t v = 0; v < out_.views_.size(); ++v) {
    const ViewRead& read = out_.views_[v];
    const ViewLayout& view = *read.view;
    const bool has_ttl = view.ttl().micros > 0;
    const int64_t oldest = has_ttl ? (now - view.ttl()).micros : 0;
    for (size_t r = 0; r < out_.num_rows_; ++r) {
      const Span span = bodies_[out_.cell(v, r)];
      OnlineFeatures::Cell& cell = out_.cells_[out_.cell(v, r)];
      if (span.size == 0) continue;  // NOT_FOUND
      std::string_view body(out_.arena_.data() + span.offset, span.size);
      if (body.size() < 12) {
        return Status::Corruption(fmt::format(
            "feature view '{}': the stored value of entity row {} is {} bytes, too short for a "
            "value header; it is corrupt: materialize the view again to replace it",
            view.name(), r, span.size));
      }
      // A value written under an earlier schema of the view is read through that schema, each
      // feature by name and type; under any other schema it is not this view's data any more.
      const ViewLayout* written = &view;
      const ViewLayout::Earlier* earlier = nullptr;
      if (const uint32_t fingerprint = layout::LoadFixed<uint32_t>(body.data());
          fingerprint != view.fingerprint()) {
        earlier = view.FindEarlier(fingerprint);
        if (earlier == nullptr) continue;
        written = earlier->layout.get();
      }
      BodyHeader header;
      all_offsets.resize(written->features().size());
      if (!ParseBodyHeader(body, written->features().size(), &header)) {
        return Status::Corruption(fmt::format(
            "feature view '{}': the stored value of entity row {} is {} bytes, too short for a "
            "value header; it is corrupt: materialize the view again to replace it",
            view.name(), r, span.size));
      }
      if (!IndexBody(*written, body, header, all_offsets.data())) {
        return Status::Corruption(fmt::format(
            "feature view '{}': a stored value of {} bytes does not match the {}schema of its "
            "fingerprint; rewrite the view (materialize) to repair it",
            view.name(), span.size, earlier != nullptr ? "earlier " : ""));
      }
      cell.event_micros = header.order.event_micros;
      cell.status = has_ttl && header.order.event_micros < oldest ? FeatureStatus::kOutsideMaxAge
                                                                  : FeatureStatus::kPresent;
      uint32_t* offsets = &out_.offsets_[out_.offset_index(v, 0, r)];
      for (size_t j = 0; j < read.features.size(); ++j) {
        int f = read.features[j];
        if (earlier != nullptr) f = earlier->from_current[f];
        if (f < 0) {
          offsets[j] = kMissingOffset;
          continue;
        }
        uint32_t at = all_offsets[f];
        offsets[j] = at == kNullOffset ? kNullOffset : static_cast<uint32_t>(span.offset + at);
      }
    }
  }
  return std::move(out_);
}

}  // namespace granary
