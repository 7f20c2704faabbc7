#include "granary/common/hash.h"

#include <fmt/format.h>

namespace granary {

std::string HexFingerprint(std::string_view data) { return fmt::format("{:016x}", Fnv1a64(data)); }

}  // namespace granary
