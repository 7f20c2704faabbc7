#include "granary/datagen/options.h"

#include <fmt/format.h>

namespace granary::datagen {

Result<ScaleParams> NamedScale(std::string_view name) {
  if (name == "tiny") return ScaleParams{"tiny", 2'000, 50, 5, 60};
  if (name == "small") return ScaleParams{"small", 50'000, 500, 12, 182};
  if (name == "seed") return ScaleParams{"seed", 500'000, 5'000, 50, 730};
  return Status::InvalidArgument(
      fmt::format("unknown scale '{}'; use tiny (2K customers, 50 bays, 60 days), small (50K, "
                  "500, 182 days) or seed (500K, 5K, 730 days)",
                  name));
}

}  // namespace granary::datagen
