#include "granary/types/feature_ref.h"

#include <fmt/format.h>

namespace granary {

Result<FeatureRef> FeatureRef::Parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size() ||
      text.find(':', colon + 1) != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format(
        "invalid feature reference '{}': write it as view:feature, e.g. customer_risk:tenure_days",
        text));
  }
  return FeatureRef{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

std::string EntityKey::ToString() const {
  std::string out;
  for (size_t i = 0; i < join_keys.size(); ++i) {
    if (i > 0) out += ',';
    out += join_keys[i] + "=" + (i < values.size() ? values[i].ToString() : "?");
  }
  return out;
}

}  // namespace granary
