// SstCompressionSample: LZ4 is kept for blocks that shrink by a quarter or more, dropped for
// blocks that do not compress.
#include "granary/online/rocksdb/sst_compression.h"

#include <gtest/gtest.h>

#include <random>

namespace granary {
namespace {

std::string RandomBytes(std::mt19937_64* rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>((*rng)() & 0xff);
  return s;
}

TEST(SstCompressionSample, RandomRecordsAreNotWorthCompressing) {
  std::mt19937_64 rng(1);
  SstCompressionSample sample;
  int blocks = 0;
  for (int i = 0; i < 1000; ++i)
    blocks += sample.Add(RandomBytes(&rng, 12), RandomBytes(&rng, 430));
  sample.Finish();
  EXPECT_GE(blocks, 100);
  // RocksDB would store every block as it is: nothing saved.
  EXPECT_EQ(sample.stored_bytes(), sample.raw_bytes());
  EXPECT_FALSE(sample.WorthCompressing());
}

TEST(SstCompressionSample, RepetitiveRecordsAreWorthCompressing) {
  std::mt19937_64 rng(2);
  SstCompressionSample sample;
  for (int i = 0; i < 1000; ++i) {
    // A random key, then a value that is mostly the same header and small integers.
    std::string value(400, '\0');
    value.replace(0, 8, "\x01header!");
    value[100] = static_cast<char>(i % 7);
    sample.Add(RandomBytes(&rng, 12), value);
  }
  sample.Finish();
  EXPECT_LT(sample.stored_bytes(), sample.raw_bytes() / 2);
  EXPECT_TRUE(sample.WorthCompressing());
}

TEST(SstCompressionSample, SavingLessThanAQuarterIsNotWorthIt) {
  // Each record: 80 % random bytes, 20 % zeros. LZ4 saves under a quarter (the zeros, less its
  // own overhead), though more than the eighth RocksDB needs to keep a block compressed.
  std::mt19937_64 rng(3);
  SstCompressionSample sample;
  for (int i = 0; i < 1000; ++i) {
    sample.Add(RandomBytes(&rng, 10), RandomBytes(&rng, 300) + std::string(80, '\0'));
  }
  sample.Finish();
  EXPECT_LT(sample.stored_bytes(), sample.raw_bytes() * 7 / 8);
  EXPECT_GT(sample.stored_bytes(), sample.raw_bytes() * 3 / 4);
  EXPECT_FALSE(sample.WorthCompressing());
}

TEST(SstCompressionSample, ASmallLoadIsJudgedByItsOnlyBlockAndNoSampleKeepsTheDefault) {
  SstCompressionSample empty;
  empty.Finish();
  EXPECT_EQ(empty.raw_bytes(), 0);
  EXPECT_TRUE(empty.WorthCompressing()) << "nothing sampled: the store's LZ4 stands";
  SstCompressionSample small;
  EXPECT_FALSE(small.Add("key", std::string(200, 'a')));
  small.Finish();
  EXPECT_EQ(small.raw_bytes(), 203);
  EXPECT_TRUE(small.WorthCompressing());
}

}  // namespace
}  // namespace granary
