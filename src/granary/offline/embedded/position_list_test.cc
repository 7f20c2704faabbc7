// PositionList against a plain sorted vector on random lists: dense runs, gaps past every varint
// width (2^7, 2^14, 2^16, 2^21, 2^32) and positions near 2^62, lookups at and around every
// position and block boundary, and the merge of disjoint lists.
#include "granary/offline/embedded/position_list.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "granary/testing/test_seed.h"

namespace granary {
namespace {

// `count` ascending positions whose gaps are drawn from a mix of sizes (1 most often, then up
// to 2^8, 2^17 and 2^33), starting at `first`.
std::vector<int64_t> RandomPositions(std::mt19937_64& rng, int64_t count, int64_t first) {
  std::vector<int64_t> out;
  int64_t at = first;
  for (int64_t i = 0; i < count; ++i) {
    out.push_back(at);
    switch (rng() % 8) {
      case 0:
        at += 1 + static_cast<int64_t>(rng() % (int64_t{1} << 8));
        break;
      case 1:
        at += 1 + static_cast<int64_t>(rng() % (int64_t{1} << 17));  // past 2^16
        break;
      case 2:
        at += 1 + static_cast<int64_t>(rng() % (int64_t{1} << 33));  // past 2^32
        break;
      default:
        at += 1 + static_cast<int64_t>(rng() % 3);  // dense
    }
  }
  return out;
}

PositionList Encode(const std::vector<int64_t>& positions) {
  PositionList::Builder builder;
  for (int64_t p : positions) builder.Append(p);
  EXPECT_EQ(builder.size(), static_cast<int64_t>(positions.size()));
  return builder.Finish();
}

std::vector<int64_t> Decode(const PositionList& list) {
  std::vector<int64_t> out;
  for (PositionList::Reader r(list); !r.done(); r.Next()) {
    EXPECT_EQ(r.index(), static_cast<int64_t>(out.size()));
    out.push_back(r.value());
  }
  return out;
}

bool AnyInOracle(const std::vector<int64_t>& sorted, int64_t begin, int64_t end) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), begin);
  return it != sorted.end() && *it < end;
}

TEST(PositionList, RandomListsRoundTripAndAnswerLookupsAtEveryBoundary) {
  const uint64_t seed = testing::TestSeed();
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(testing::SeedTrace(seed + round));
    std::mt19937_64 rng(seed + round);
    // Sizes around the block size (0, 1, 127, 128, 129, ...) and larger.
    const int64_t sizes[] = {0, 1, 2, 127, 128, 129, 255, 256, 257, 1000, 5000};
    const int64_t count = round < 11 ? sizes[round] : 1 + static_cast<int64_t>(rng() % 20000);
    const int64_t first = rng() % 4 == 0 ? 0 : static_cast<int64_t>(rng() % 1000000);
    const std::vector<int64_t> positions = RandomPositions(rng, count, first);
    const PositionList list = Encode(positions);
    ASSERT_EQ(list.size(), count);
    ASSERT_EQ(list.empty(), count == 0);
    ASSERT_EQ(Decode(list), positions);

    // Every position, its neighbours, and ranges that end at it, start after it or span gaps.
    for (size_t i = 0; i < positions.size(); ++i) {
      const int64_t p = positions[i];
      for (int64_t begin : {p - 1, p, p + 1}) {
        for (int64_t end : {begin, begin + 1, p, p + 1, p + 2, p + 1000}) {
          ASSERT_EQ(list.AnyIn(begin, end), AnyInOracle(positions, begin, end))
              << "[" << begin << ", " << end << ") at index " << i;
        }
      }
      if (i + 1 < positions.size()) {
        // Strictly inside the gap after p: nothing.
        ASSERT_EQ(list.AnyIn(p + 1, positions[i + 1]),
                  AnyInOracle(positions, p + 1, positions[i + 1]));
      }
    }
    // Random ranges, and ranges before the first and after the last position.
    const int64_t span = positions.empty() ? 1000 : positions.back() + 1000;
    for (int k = 0; k < 2000; ++k) {
      const int64_t begin = static_cast<int64_t>(rng() % static_cast<uint64_t>(span));
      const int64_t end = begin + static_cast<int64_t>(rng() % (rng() % 2 ? 4 : 1 << 20));
      ASSERT_EQ(list.AnyIn(begin, end), AnyInOracle(positions, begin, end))
          << "[" << begin << ", " << end << ")";
    }
    ASSERT_FALSE(list.AnyIn(0, 0));
    if (!positions.empty()) {
      ASSERT_EQ(list.AnyIn(0, positions.front()), false);
      ASSERT_TRUE(list.AnyIn(0, positions.front() + 1));
      ASSERT_TRUE(list.AnyIn(positions.back(), positions.back() + 1));
      ASSERT_FALSE(list.AnyIn(positions.back() + 1, INT64_MAX));
    }
  }
}

TEST(PositionList, DensePositionsTakeAboutAByteEach) {
  PositionList::Builder builder;
  for (int64_t p = 0; p < 1000000; p += 1 + p % 3) builder.Append(p);
  const int64_t count = builder.size();
  const PositionList list = builder.Finish();
  // One byte a gap, plus 16 bytes a block of 128: well under the 8 bytes of a plain list.
  EXPECT_LE(list.memory_bytes(), count + count / 128 * 16 + 64);
}

TEST(PositionList, GapsOfEveryVarintWidthUpTo2To62) {
  std::vector<int64_t> positions = {0};
  for (int bits = 1; bits <= 62; ++bits) {
    positions.push_back(positions.back() + (int64_t{1} << (bits - 1)));  // gaps of 2^(bits-1)
    positions.push_back(positions.back() + 1);
  }
  // A gap of about 2^62 (a 9-byte varint) to the largest position a half-open range can name.
  positions.push_back(INT64_MAX - 2);
  positions.push_back(INT64_MAX - 1);
  ASSERT_TRUE(std::is_sorted(positions.begin(), positions.end()));
  ASSERT_EQ(std::adjacent_find(positions.begin(), positions.end()), positions.end());
  const PositionList list = Encode(positions);
  ASSERT_EQ(Decode(list), positions);
  for (size_t i = 0; i < positions.size(); ++i) {
    const int64_t p = positions[i];
    EXPECT_TRUE(list.AnyIn(p, p + 1)) << p;
    if (i > 0 && positions[i - 1] + 1 < p) EXPECT_FALSE(list.AnyIn(positions[i - 1] + 1, p)) << p;
  }
  EXPECT_FALSE(list.AnyIn(INT64_MAX - 3, INT64_MAX - 2));
}

TEST(PositionList, MergeOfDisjointListsIsTheirSortedUnion) {
  const uint64_t seed = testing::TestSeed();
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(testing::SeedTrace(seed + round));
    std::mt19937_64 rng(seed + round);
    // Positions dealt to lists at random, as the partitions of entities deal rows.
    const int lists = 1 + static_cast<int>(rng() % 40);
    const std::vector<int64_t> all = RandomPositions(rng, rng() % 30000, rng() % 50);
    std::vector<std::vector<int64_t>> dealt(lists);
    for (int64_t p : all) dealt[rng() % lists].push_back(p);
    std::vector<PositionList> encoded;
    for (const auto& d : dealt) encoded.push_back(Encode(d));
    if (round == 0) encoded.emplace_back();  // an empty list among them
    const PositionList merged = PositionList::Merge(encoded);
    ASSERT_EQ(merged.size(), static_cast<int64_t>(all.size()));
    ASSERT_EQ(Decode(merged), all);
  }
  EXPECT_TRUE(PositionList::Merge({}).empty());
}

}  // namespace
}  // namespace granary
