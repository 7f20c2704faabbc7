// Fuzzes timestamp and duration parsing. Property: whatever parses formats to text that parses
// back to the same value.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "granary/common/time.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ts = granary::ParseTimestamp(text); ts.ok()) {
    const std::string formatted = granary::FormatTimestamp(*ts);
    auto again = granary::ParseTimestamp(formatted);
    if (!again.ok() || *again != *ts) {
      std::fprintf(stderr, "timestamp round trip failed: '%s'\n", formatted.c_str());
      std::abort();
    }
  }
  if (auto d = granary::ParseDuration(text); d.ok()) {
    const std::string formatted = granary::FormatDuration(*d);
    auto again = granary::ParseDuration(formatted);
    if (!again.ok() || *again != *d) {
      std::fprintf(stderr, "duration round trip failed: '%s'\n", formatted.c_str());
      std::abort();
    }
  }
  return 0;
}
