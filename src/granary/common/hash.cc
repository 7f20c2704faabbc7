#include "granary/common/hash.h"

#include <fmt/format.h>

#include <cstring>

namespace granary {

std::string HexFingerprint(std::string_view data) { return fmt::format("{:016x}", Fnv1a64(data)); }

uint64_t ProcessLocalHash64(std::string_view data) {
  // Each 8-byte word is xored in and the state multiplied by an odd constant, its high half
  // folded down so that every input bit reaches the low bits too; the tail is one zero-padded
  // word, and the length seeds the state (so buffers that differ only by trailing zeros differ).
  constexpr uint64_t kMul = 0x9fb21c651e98df25ULL;
  const char* p = data.data();
  size_t n = data.size();
  uint64_t h = 0x243f6a8885a308d3ULL ^ (n * kMul);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * kMul;
  h ^= h >> 29;
  h *= kMul;
  return h ^ (h >> 32);
}

}  // namespace granary
