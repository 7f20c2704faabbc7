#include "granary/common/hash.h"

#include <fmt/format.h>

#include <cstring>

namespace granary {

std::string HexFingerprint(std::string_view data) { return fmt::format("{:016x}", Fnv1a64(data)); }

namespace {

// The 128-bit product of a and b, its halves xored: a changed bit of `a` changes the product
// from that bit up, and the high half brings those changes down over the low bits.
uint64_t MultiplyFold(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

}  // namespace

uint64_t ProcessLocalHash64(std::string_view data) {
  // Each 8-byte word is xored into the state, which is then folded by a 64 x 64 -> 128-bit
  // multiplication (a plain 64-bit one carries a change of the top bit into the top bit alone,
  // which the next word can cancel); the tail is one zero-padded word and the length seeds the
  // state (buffers that differ only by trailing zeros differ).
  constexpr uint64_t kMul = 0x9fb21c651e98df25ULL;
  const char* p = data.data();
  size_t n = data.size();
  uint64_t h = MultiplyFold(0x243f6a8885a308d3ULL ^ n, kMul);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = MultiplyFold(h ^ w, kMul);
  }
  uint64_t w = 0;
  if (n > 0) std::memcpy(&w, p, n);
  h = MultiplyFold(h ^ w, kMul);
  return MultiplyFold(h ^ 0xc4ceb9fe1a85ec53ULL, kMul);
}

}  // namespace granary
