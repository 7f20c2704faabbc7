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

TEST(ProcessLocalHash64, ChangesSpreadOverWordsDoNotCancel) {
  // A multiply-only step carries a change of a word's top bit into the state's top bit alone, so
  // three such changes 4 bytes apart cancelled (found in review); and random changes of 2-4
  // bytes anywhere in a footer-sized buffer.
  std::mt19937_64 rng(13);
  std::string data(4096, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const uint64_t h = ProcessLocalHash64(data);
  for (size_t word = 0; word + 16 <= data.size(); word += 8) {
    std::string changed = data;
    for (size_t at : {word + 7, word + 11, word + 15})
      changed[at] = static_cast<char>(changed[at] ^ 0x80);
    ASSERT_NE(h, ProcessLocalHash64(changed)) << "top bits flipped from byte " << word + 7;
  }
  // Every change of one, two or three bits of a 32-byte buffer (2.8 M of them).
  std::string small = data.substr(0, 32);
  const uint64_t small_hash = ProcessLocalHash64(small);
  auto flip = [&small](int bit) {
    small[bit / 8] = static_cast<char>(small[bit / 8] ^ (1 << (bit % 8)));
  };
  for (int a = 0; a < 256; ++a) {
    flip(a);
    for (int b = a + 1; b < 256; ++b) {
      flip(b);
      ASSERT_NE(small_hash, ProcessLocalHash64(small)) << "bits " << a << ", " << b;
      for (int c = b + 1; c < 256; ++c) {
        flip(c);
        ASSERT_NE(small_hash, ProcessLocalHash64(small)) << "bits " << a << ", " << b << ", " << c;
        flip(c);
      }
      flip(b);
    }
    flip(a);
  }
  for (int i = 0; i < 20'000; ++i) {
    std::string changed = data;
    const int bytes = 2 + static_cast<int>(rng() % 3);
    for (int b = 0; b < bytes; ++b) {
      changed[rng() % changed.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    if (changed == data) continue;
    ASSERT_NE(h, ProcessLocalHash64(changed)) << "change " << i;
  }
}

TEST(ProcessLocalHash64, AnEmptyViewHashes) {
  EXPECT_EQ(ProcessLocalHash64(std::string_view()), ProcessLocalHash64(""));
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
