#include "granary/common/hash.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

namespace granary {
namespace {

TEST(ProcessLocalHash64, EveryChangedByteOrLengthChangesTheHash) {
  std::mt19937_64 rng(7);
  // Lengths around the 8-byte steps, and a footer-sized buffer.
  for (size_t size : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 4099}) {
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    const uint64_t h = ProcessLocalHash64(data);
    EXPECT_EQ(h, ProcessLocalHash64(data)) << "the same bytes hash the same";
    for (size_t i = 0; i < size; ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string changed = data;
        changed[i] = static_cast<char>(changed[i] ^ (1 << bit));
        ASSERT_NE(h, ProcessLocalHash64(changed))
            << "size " << size << ", byte " << i << " bit " << bit;
      }
    }
    // A trailing zero byte (the tail word is zero-padded): the length tells them apart.
    EXPECT_NE(h, ProcessLocalHash64(data + std::string(1, '\0'))) << "size " << size;
  }
}

TEST(ProcessLocalHash64, DistinctSmallBuffersDoNotCollide) {
  // Every buffer of 0-2 bytes, and 100,000 random 8-24 byte ones: no two hash alike.
  std::set<uint64_t> seen;
  size_t count = 0;
  seen.insert(ProcessLocalHash64(""));
  ++count;
  for (int a = 0; a < 256; ++a) {
    seen.insert(ProcessLocalHash64(std::string(1, static_cast<char>(a))));
    ++count;
    for (int b = 0; b < 256; ++b) {
      const char two[2] = {static_cast<char>(a), static_cast<char>(b)};
      seen.insert(ProcessLocalHash64(std::string_view(two, 2)));
      ++count;
    }
  }
  std::mt19937_64 rng(11);
  std::set<std::string> inputs;
  while (inputs.size() < 100'000) {
    std::string s(8 + rng() % 17, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    inputs.insert(s);
  }
  for (const std::string& s : inputs) seen.insert(ProcessLocalHash64(s));
  count += inputs.size();
  EXPECT_EQ(seen.size(), count);
}

}  // namespace
}  // namespace granary
