#include "granary/offline/scan_buffer_pool.h"

#include <arrow/buffer.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "granary/testing/test_seed.h"

namespace granary {
namespace {

constexpr int64_t kMiB = 1 << 20;

TEST(ScanBufferPool, SizeClassesRoundUpByAnEighthOfTheirPowerOfTwo) {
  EXPECT_EQ(ScanBufferPool::ClassBytes(100), 100);  // below the smallest kept block: as asked
  EXPECT_EQ(ScanBufferPool::ClassBytes(64 * 1024), 64 * 1024);
  EXPECT_EQ(ScanBufferPool::ClassBytes(512 * 1024), 512 * 1024);
  EXPECT_EQ(ScanBufferPool::ClassBytes(512 * 1024 + 1), 576 * 1024);
  EXPECT_EQ(ScanBufferPool::ClassBytes(1000 * 1000), 1024 * 1024);
  EXPECT_EQ(ScanBufferPool::ClassBytes(kMiB + 1), kMiB + kMiB / 8);
}

TEST(ScanBufferPool, KeepsFreedBlocksOnlyWhileRetained) {
  arrow::ProxyMemoryPool backing(arrow::default_memory_pool());
  ScanBufferPool pool(&backing);
  uint8_t* first = nullptr;
  ASSERT_TRUE(pool.Allocate(kMiB, &first).ok());
  pool.Free(first, kMiB);
  EXPECT_EQ(pool.kept_bytes(), 0);  // no Retention: straight back
  EXPECT_EQ(backing.bytes_allocated(), 0);
  {
    ScanBufferPool::Retention retained = pool.Retain(16 * kMiB);
    ASSERT_TRUE(pool.Allocate(kMiB, &first).ok());
    std::memset(first, 7, kMiB);
    pool.Free(first, kMiB);
    EXPECT_EQ(pool.kept_bytes(), kMiB);
    EXPECT_EQ(pool.bytes_allocated(), 0);
    EXPECT_EQ(backing.bytes_allocated(), kMiB);
    // A block of the same class comes back, not a new one.
    uint8_t* again = nullptr;
    ASSERT_TRUE(pool.Allocate(kMiB - 4096, &again).ok());
    EXPECT_EQ(again, first);
    EXPECT_EQ(pool.reuses(), 1);
    EXPECT_EQ(pool.kept_bytes(), 0);
    EXPECT_EQ(pool.bytes_allocated(), kMiB - 4096);
    pool.Free(again, kMiB - 4096);
    // Small blocks are never kept.
    uint8_t* small = nullptr;
    ASSERT_TRUE(pool.Allocate(4096, &small).ok());
    pool.Free(small, 4096);
    EXPECT_EQ(pool.kept_bytes(), kMiB);
  }
  // The last Retention gone, what was kept goes back.
  EXPECT_EQ(pool.kept_bytes(), 0);
  EXPECT_EQ(backing.bytes_allocated(), 0);
}

TEST(ScanBufferPool, KeepsNoMoreThanItsCap) {
  arrow::ProxyMemoryPool backing(arrow::default_memory_pool());
  ScanBufferPool pool(&backing);
  ScanBufferPool::Retention retained = pool.Retain(kMiB);
  uint8_t* a = nullptr;
  uint8_t* b = nullptr;
  ASSERT_TRUE(pool.Allocate(kMiB, &a).ok());
  ASSERT_TRUE(pool.Allocate(kMiB, &b).ok());
  pool.Free(a, kMiB);
  pool.Free(b, kMiB);
  EXPECT_EQ(pool.kept_bytes(), kMiB);
  EXPECT_EQ(backing.bytes_allocated(), kMiB);
  {
    // A second Retention with a smaller cap trims to it while it lives.
    ScanBufferPool::Retention tighter = pool.Retain(0);
    EXPECT_EQ(pool.kept_bytes(), 0);
    EXPECT_EQ(backing.bytes_allocated(), 0);
    ASSERT_TRUE(pool.Allocate(kMiB, &a).ok());
    pool.Free(a, kMiB);
    EXPECT_EQ(pool.kept_bytes(), 0);
  }
}

TEST(ScanBufferPool, KeptAndInUseStayWithinTheMostInUseAtOnce) {
  arrow::ProxyMemoryPool backing(arrow::default_memory_pool());
  ScanBufferPool pool(&backing);
  ScanBufferPool::Retention retained = pool.Retain(64 * kMiB);
  // A pass of 1 MiB blocks, then one of 2 MiB blocks: the second's first miss hands the first's
  // blocks back rather than hold both passes' blocks.
  std::vector<uint8_t*> blocks(4);
  for (auto& block : blocks) ASSERT_TRUE(pool.Allocate(kMiB, &block).ok());
  for (auto* block : blocks) pool.Free(block, kMiB);
  EXPECT_EQ(pool.kept_bytes(), 4 * kMiB);
  uint8_t* big = nullptr;
  ASSERT_TRUE(pool.Allocate(2 * kMiB, &big).ok());
  EXPECT_EQ(pool.kept_bytes(), 2 * kMiB);  // 2 MiB in use + 2 kept = the 4 MiB of the first
  EXPECT_EQ(backing.bytes_allocated(), 4 * kMiB);
  uint8_t* bigger = nullptr;
  ASSERT_TRUE(pool.Allocate(2 * kMiB, &bigger).ok());
  EXPECT_EQ(pool.kept_bytes(), 0);
  EXPECT_EQ(backing.bytes_allocated(), 4 * kMiB);
  pool.Free(big, 2 * kMiB);
  pool.Free(bigger, 2 * kMiB);
  EXPECT_EQ(pool.kept_bytes(), 4 * kMiB);
}

TEST(ScanBufferPool, ReallocateKeepsTheContents) {
  arrow::ProxyMemoryPool backing(arrow::default_memory_pool());
  ScanBufferPool pool(&backing);
  ScanBufferPool::Retention retained = pool.Retain(64 * kMiB);
  auto made = arrow::AllocateResizableBuffer(1000, &pool);
  ASSERT_TRUE(made.ok());
  std::unique_ptr<arrow::ResizableBuffer> buffer = std::move(*made);
  for (int64_t i = 0; i < buffer->size(); ++i) buffer->mutable_data()[i] = static_cast<uint8_t>(i);
  // Small to kept, within a class, across classes, and back down to small.
  for (int64_t size : {int64_t{200'000}, int64_t{210'000}, int64_t{3'000'000}, int64_t{500}}) {
    ASSERT_TRUE(buffer->Resize(size, /*shrink_to_fit=*/true).ok());
    for (int64_t i = 0; i < std::min<int64_t>(size, 1000); ++i) {
      ASSERT_EQ(buffer->data()[i], static_cast<uint8_t>(i)) << "size " << size << " byte " << i;
    }
    if (size > 1000) std::memset(buffer->mutable_data() + 1000, 1, size - 1000);
  }
  buffer.reset();
  EXPECT_EQ(pool.bytes_allocated(), 0);
  EXPECT_EQ(backing.bytes_allocated(), pool.kept_bytes());
}

TEST(ScanBufferPool, ABlockServesSizesDownToHalfItsClassInPlace) {
  arrow::ProxyMemoryPool backing(arrow::default_memory_pool());
  ScanBufferPool pool(&backing);
  ScanBufferPool::Retention retained = pool.Retain(64 * kMiB);
  uint8_t* block = nullptr;
  ASSERT_TRUE(pool.Allocate(kMiB, &block).ok());
  for (int64_t i = 0; i < kMiB; ++i) block[i] = static_cast<uint8_t>(i % 251);
  uint8_t* const first = block;
  // A shrink to fit (a record reader handing its values out) stays where it is, and so does a
  // grow back within the block's class.
  ASSERT_TRUE(pool.Reallocate(kMiB, 600 * 1024, &block).ok());
  EXPECT_EQ(block, first);
  EXPECT_EQ(pool.bytes_allocated(), 600 * 1024);
  ASSERT_TRUE(pool.Reallocate(600 * 1024, kMiB, &block).ok());
  EXPECT_EQ(block, first);
  ASSERT_TRUE(pool.Reallocate(kMiB, kMiB / 2, &block).ok());
  EXPECT_EQ(block, first);
  // Below half its class it moves, contents kept.
  ASSERT_TRUE(pool.Reallocate(kMiB / 2, 300 * 1024, &block).ok());
  EXPECT_NE(block, first);
  for (int64_t i = 0; i < 300 * 1024; ++i) {
    ASSERT_EQ(block[i], static_cast<uint8_t>(i % 251)) << "byte " << i;
  }
  pool.Free(block, 300 * 1024);
  // The first block went back under its own class (1 MiB), not its last size's.
  EXPECT_EQ(pool.kept_bytes(), kMiB + 320 * 1024);
  EXPECT_EQ(backing.bytes_allocated(), pool.kept_bytes());

  // With no block of its class kept, a request takes one up to twice as large, which then grows
  // in place to its class; freed at its smaller size, it is kept under its class again.
  uint8_t* reused = nullptr;
  ASSERT_TRUE(pool.Allocate(520 * 1024, &reused).ok());
  EXPECT_EQ(reused, first);
  ASSERT_TRUE(pool.Reallocate(520 * 1024, kMiB, &reused).ok());
  EXPECT_EQ(reused, first);
  ASSERT_TRUE(pool.Reallocate(kMiB, 520 * 1024, &reused).ok());
  EXPECT_EQ(reused, first);
  pool.Free(reused, 520 * 1024);
  EXPECT_EQ(pool.kept_bytes(), kMiB + 320 * 1024);
  EXPECT_EQ(backing.bytes_allocated(), pool.kept_bytes());
  // A block of the request's own class is taken before a larger one.
  uint8_t* exact = nullptr;
  ASSERT_TRUE(pool.Allocate(300 * 1024, &exact).ok());
  EXPECT_NE(exact, first);
  // Nothing more than twice the class: a 256 KiB request does not take the 1 MiB block.
  uint8_t* quarter = nullptr;
  ASSERT_TRUE(pool.Allocate(256 * 1024, &quarter).ok());
  EXPECT_NE(quarter, first);
  pool.Free(exact, 300 * 1024);
  pool.Free(quarter, 256 * 1024);
  EXPECT_EQ(pool.bytes_allocated(), 0);
  EXPECT_EQ(backing.bytes_allocated(), pool.kept_bytes());
}

TEST(ScanBufferPool, ThreadsAllocatingAndFreeingAtOnceLoseNoBlock) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  arrow::ProxyMemoryPool backing(arrow::default_memory_pool());
  ScanBufferPool pool(&backing);
  {
    ScanBufferPool::Retention retained = pool.Retain(8 * kMiB);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&pool, seed, t] {
        std::mt19937_64 rng(seed + t);
        std::vector<std::pair<uint8_t*, int64_t>> held;
        for (int i = 0; i < 2000; ++i) {
          if (held.size() < 8 && rng() % 2 == 0) {
            const int64_t size = 1000 + static_cast<int64_t>(rng() % (1 << 20));
            uint8_t* block = nullptr;
            if (!pool.Allocate(size, &block).ok()) std::abort();
            block[0] = static_cast<uint8_t>(t);
            block[size - 1] = static_cast<uint8_t>(t);
            held.emplace_back(block, size);
          } else if (!held.empty() && rng() % 3 == 0) {
            // Resized up or down: in place within half its class, else moved.
            auto& [block, size] = held.back();
            const int64_t resized = 1000 + static_cast<int64_t>(rng() % (1 << 20));
            if (!pool.Reallocate(size, resized, &block).ok()) std::abort();
            if (block[0] != t) std::abort();
            block[resized - 1] = static_cast<uint8_t>(t);
            size = resized;
          } else if (!held.empty()) {
            auto [block, size] = held.back();
            held.pop_back();
            if (block[0] != t || block[size - 1] != t) std::abort();  // a block given out twice
            pool.Free(block, size);
          }
        }
        for (auto [block, size] : held) pool.Free(block, size);
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(pool.bytes_allocated(), 0);
    EXPECT_LE(pool.kept_bytes(), 8 * kMiB);
    EXPECT_EQ(backing.bytes_allocated(), pool.kept_bytes());
  }
  EXPECT_EQ(backing.bytes_allocated(), 0);
}

}  // namespace
}  // namespace granary
