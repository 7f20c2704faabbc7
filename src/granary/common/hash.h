// Stable, non-cryptographic hashing for fingerprints (registry versions) and partitioning.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace granary {

// 64-bit FNV-1a. Stable across platforms and releases: stored fingerprints depend on it.
constexpr uint64_t Fnv1a64(std::string_view data, uint64_t seed = 0xcbf29ce484222325ULL) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// 16 lower-case hex digits.
std::string HexFingerprint(std::string_view data);

// A hash of a buffer for comparisons inside one process (whether a file's bytes changed between
// two reads), 8 bytes a step: 3-4x faster than Fnv1a64's byte a step on a 5 KB buffer.
// Not stable across releases or platforms: never store it.
uint64_t ProcessLocalHash64(std::string_view data);

}  // namespace granary
