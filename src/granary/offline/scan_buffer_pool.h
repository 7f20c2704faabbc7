// ScanBufferPool: an arrow::MemoryPool over Arrow's default pool that keeps the large blocks the
// offline scans free (their files' read buffers, decompressed pages, decoded batches) for the
// next scan's allocations of the same sizes, while a training-set join holds a Retention.
//
// Why: between the passes of a join, ReleaseFreedMemory (partitioner.h) hands every freed page
// back to the system (it keeps the peak RSS down), and the next pass then faulted its whole
// working set afresh: 60-70 K page faults after each hand-back on bench/pit_join's 4 GiB case
// (docs/PERFORMANCE.md, "Training sets: where the system time goes"). Blocks kept here are in
// use as far as the allocator knows, so they are not handed back, and a scan's next pass reuses
// their pages already faulted.
//
// What it keeps: blocks of at least kMinBlockBytes, 64-byte aligned (Arrow's buffers), their size
// rounded up to a size class (eight a doubling: at most 12.5 % more), held per class. A block
// may serve a size down to half its class, as the allocator's own realloc does: a shrink stays in
// place, a request whose class has no kept block takes one of a class up to twice as large, and
// a block grows in place within its class. Parquet's record readers make this the common case:
// each batch's values buffer grows past its reservation (one more page of levels than the batch
// asked for) and is shrunk to fit when handed out, and without it both copied the buffer. Smaller
// or otherwise aligned blocks go straight to the default pool. Kept blocks never exceed the
// Retention's cap, and the pool's blocks in use and kept together never exceed the most it had in
// use at once since the first Retention began: it holds no more than its scans needed at their
// peak, which a scan reaches anyway; a miss that would pass that first hands kept blocks of the
// classes used least recently back to the default pool (whose allocator reuses their pages at
// once). When the last Retention ends, every kept block goes back to the default pool.
//
// Threading: thread-safe (one mutex; about a dozen large blocks a batch). The pool is process-
// wide and never destroyed: buffers allocated from it may outlive any join (string columns hold
// slices of decoded batches).
#pragma once

#include <arrow/memory_pool.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "granary/common/mutex.h"

namespace granary {

class ScanBufferPool final : public arrow::MemoryPool {
 public:
  // Blocks below this many bytes are not kept (the allocator's small pages serve them).
  static constexpr int64_t kMinBlockBytes = 64 * 1024;

  // The process's pool over arrow::default_memory_pool().
  static ScanBufferPool* Get();

  // A pool over `backing` (tests); must outlive every buffer allocated from it.
  explicit ScanBufferPool(arrow::MemoryPool* backing);
  ~ScanBufferPool() override;

  // While alive, freed blocks are kept (at most `cap_bytes` of them, or the smallest cap of the
  // Retentions alive). Movable, not copyable.
  class Retention {
   public:
    Retention() = default;
    Retention(Retention&& other) noexcept;
    Retention& operator=(Retention&& other) noexcept;
    Retention(const Retention&) = delete;
    Retention& operator=(const Retention&) = delete;
    ~Retention();

   private:
    friend class ScanBufferPool;
    Retention(ScanBufferPool* pool, int64_t cap_bytes) : pool_(pool), cap_bytes_(cap_bytes) {}
    ScanBufferPool* pool_ = nullptr;
    int64_t cap_bytes_ = 0;
  };
  Retention Retain(int64_t cap_bytes);

  // The size class a block of `bytes` is kept under (`bytes` itself below kMinBlockBytes).
  static int64_t ClassBytes(int64_t bytes);

  // Bytes of the blocks kept (freed, not yet reused or handed back).
  int64_t kept_bytes() const;
  // Allocations served from kept blocks.
  int64_t reuses() const;

  // arrow::MemoryPool.
  using arrow::MemoryPool::Allocate;
  using arrow::MemoryPool::Free;
  using arrow::MemoryPool::Reallocate;
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;
  void ReleaseUnused() override;
  int64_t bytes_allocated() const override;
  int64_t max_memory() const override;
  int64_t total_bytes_allocated() const override;
  int64_t num_allocations() const override;
  std::string backend_name() const override;

 private:
  struct SizeClass {
    std::vector<uint8_t*> blocks;
    uint64_t last_use = 0;  // use_clock_ at its last allocation or free
  };
  static bool Keepable(int64_t size, int64_t alignment);
  // Hands kept blocks back, the least recently used classes first, until at most `bytes` stay
  // kept.
  void TrimTo(int64_t bytes) REQUIRES(mu_);
  void EndRetention(int64_t cap_bytes);

  arrow::MemoryPool* const backing_;
  mutable Mutex mu_;
  // The class of a keepable block handed out, when larger than its size's (a shrink in place, a
  // larger kept block reused): Free and Reallocate are told only the size.
  int64_t TrueClass(uint8_t* block, int64_t size) const REQUIRES(mu_);
  std::map<int64_t, SizeClass> kept_ GUARDED_BY(mu_);                   // by class bytes
  std::unordered_map<uint8_t*, int64_t> larger_class_ GUARDED_BY(mu_);  // block -> its class
  int64_t kept_bytes_ GUARDED_BY(mu_) = 0;
  int64_t large_in_use_ GUARDED_BY(mu_) = 0;  // class bytes of keepable blocks handed out
  int64_t large_peak_ GUARDED_BY(mu_) = 0;    // the most of them since the first Retention
  uint64_t use_clock_ GUARDED_BY(mu_) = 0;
  int64_t reuses_ GUARDED_BY(mu_) = 0;
  std::multiset<int64_t> caps_ GUARDED_BY(mu_);  // of the Retentions alive
  std::atomic<int64_t> in_use_{0};               // every block handed out (requested bytes)
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> allocations_{0};
};

}  // namespace granary
