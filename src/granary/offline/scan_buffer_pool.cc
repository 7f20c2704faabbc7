#include "granary/offline/scan_buffer_pool.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

namespace granary {

namespace {

// Kept blocks are allocated with Arrow's alignment, which serves any smaller one.
constexpr int64_t kAlignment = arrow::kDefaultBufferAlignment;

}  // namespace

ScanBufferPool* ScanBufferPool::Get() {
  // Never destroyed: buffers allocated from it may be freed during the process's exit.
  static ScanBufferPool* pool = new ScanBufferPool(arrow::default_memory_pool());
  return pool;
}

ScanBufferPool::ScanBufferPool(arrow::MemoryPool* backing) : backing_(backing) {}

ScanBufferPool::~ScanBufferPool() {
  MutexLock lock(&mu_);
  TrimTo(0);
}

ScanBufferPool::Retention::Retention(Retention&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), cap_bytes_(other.cap_bytes_) {}

ScanBufferPool::Retention& ScanBufferPool::Retention::operator=(Retention&& other) noexcept {
  if (this != &other) {
    if (pool_ != nullptr) pool_->EndRetention(cap_bytes_);
    pool_ = std::exchange(other.pool_, nullptr);
    cap_bytes_ = other.cap_bytes_;
  }
  return *this;
}

ScanBufferPool::Retention::~Retention() {
  if (pool_ != nullptr) pool_->EndRetention(cap_bytes_);
}

ScanBufferPool::Retention ScanBufferPool::Retain(int64_t cap_bytes) {
  cap_bytes = std::max<int64_t>(cap_bytes, 0);
  MutexLock lock(&mu_);
  if (caps_.empty()) large_peak_ = large_in_use_;
  caps_.insert(cap_bytes);
  TrimTo(*caps_.begin());
  return Retention(this, cap_bytes);
}

void ScanBufferPool::EndRetention(int64_t cap_bytes) {
  MutexLock lock(&mu_);
  caps_.erase(caps_.find(cap_bytes));
  if (caps_.empty()) {
    TrimTo(0);
    large_peak_ = large_in_use_;
  } else {
    TrimTo(*caps_.begin());
  }
}

int64_t ScanBufferPool::ClassBytes(int64_t bytes) {
  if (bytes < kMinBlockBytes) return bytes;
  const int64_t step = static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(bytes))) / 8;
  return (bytes + step - 1) / step * step;
}

bool ScanBufferPool::Keepable(int64_t size, int64_t alignment) {
  return size >= kMinBlockBytes && alignment > 0 && alignment <= kAlignment;
}

int64_t ScanBufferPool::kept_bytes() const {
  MutexLock lock(&mu_);
  return kept_bytes_;
}

int64_t ScanBufferPool::reuses() const {
  MutexLock lock(&mu_);
  return reuses_;
}

void ScanBufferPool::TrimTo(int64_t bytes) {
  while (kept_bytes_ > bytes) {
    SizeClass* oldest = nullptr;
    int64_t oldest_bytes = 0;
    for (auto& [class_bytes, size_class] : kept_) {
      if (size_class.blocks.empty()) continue;
      if (oldest == nullptr || size_class.last_use < oldest->last_use) {
        oldest = &size_class;
        oldest_bytes = class_bytes;
      }
    }
    if (oldest == nullptr) break;
    while (kept_bytes_ > bytes && !oldest->blocks.empty()) {
      backing_->Free(oldest->blocks.back(), oldest_bytes, kAlignment);
      oldest->blocks.pop_back();
      kept_bytes_ -= oldest_bytes;
    }
  }
}

int64_t ScanBufferPool::TrueClass(uint8_t* block, int64_t size) const {
  auto it = larger_class_.find(block);
  return it != larger_class_.end() ? it->second : ClassBytes(size);
}

arrow::Status ScanBufferPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  allocations_.fetch_add(1, std::memory_order_relaxed);
  total_.fetch_add(size, std::memory_order_relaxed);
  if (Keepable(size, alignment)) {
    const int64_t wanted = ClassBytes(size);
    int64_t class_bytes = wanted;
    {
      MutexLock lock(&mu_);
      // The smallest class with a kept block, up to twice the size's class.
      SizeClass* source = nullptr;
      for (auto it = kept_.lower_bound(wanted); it != kept_.end() && it->first <= 2 * wanted;
           ++it) {
        if (!it->second.blocks.empty()) {
          source = &it->second;
          class_bytes = it->first;
          break;
        }
      }
      if (source == nullptr) {
        source = &kept_[wanted];
        class_bytes = wanted;
      }
      source->last_use = ++use_clock_;
      large_in_use_ += class_bytes;
      if (!source->blocks.empty()) {
        *out = source->blocks.back();
        source->blocks.pop_back();
        kept_bytes_ -= class_bytes;
        ++reuses_;
        if (class_bytes != wanted) larger_class_[*out] = class_bytes;
      } else {
        // In use and kept together stay within the most in use at once.
        large_peak_ = std::max(large_peak_, large_in_use_);
        TrimTo(large_peak_ - large_in_use_);
        *out = nullptr;
      }
    }
    if (*out == nullptr) {
      arrow::Status st = backing_->Allocate(class_bytes, kAlignment, out);
      if (!st.ok()) {
        MutexLock lock(&mu_);
        large_in_use_ -= class_bytes;
        return st;
      }
    }
  } else {
    ARROW_RETURN_NOT_OK(backing_->Allocate(size, alignment, out));
  }
  const int64_t now = in_use_.fetch_add(size, std::memory_order_relaxed) + size;
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return arrow::Status::OK();
}

void ScanBufferPool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  in_use_.fetch_sub(size, std::memory_order_relaxed);
  if (!Keepable(size, alignment)) {
    backing_->Free(buffer, size, alignment);
    return;
  }
  int64_t class_bytes = 0;
  {
    MutexLock lock(&mu_);
    class_bytes = TrueClass(buffer, size);
    larger_class_.erase(buffer);
    large_in_use_ -= class_bytes;
    if (!caps_.empty() && kept_bytes_ + class_bytes <= *caps_.begin()) {
      SizeClass& size_class = kept_[class_bytes];
      size_class.blocks.push_back(buffer);
      size_class.last_use = ++use_clock_;
      kept_bytes_ += class_bytes;
      return;
    }
  }
  backing_->Free(buffer, class_bytes, kAlignment);
}

arrow::Status ScanBufferPool::Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                                         uint8_t** ptr) {
  const bool old_kept = Keepable(old_size, alignment);
  const bool new_kept = Keepable(new_size, alignment);
  bool in_place = false;
  if (!old_kept && !new_kept) {
    ARROW_RETURN_NOT_OK(backing_->Reallocate(old_size, new_size, alignment, ptr));
    in_place = true;
  } else if (old_kept && new_kept) {
    // The block serves sizes from half its class up to its class.
    const int64_t wanted = ClassBytes(new_size);
    MutexLock lock(&mu_);
    const int64_t block_class = TrueClass(*ptr, old_size);
    if (wanted <= block_class && 2 * wanted >= block_class) {
      in_place = true;
      if (wanted == block_class) {
        larger_class_.erase(*ptr);
      } else {
        larger_class_[*ptr] = block_class;
      }
    }
  }
  if (!in_place) {
    uint8_t* moved = nullptr;
    ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &moved));
    std::memcpy(moved, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
    Free(*ptr, old_size, alignment);
    *ptr = moved;
    return arrow::Status::OK();
  }
  allocations_.fetch_add(1, std::memory_order_relaxed);
  total_.fetch_add(std::max<int64_t>(new_size - old_size, 0), std::memory_order_relaxed);
  const int64_t now =
      in_use_.fetch_add(new_size - old_size, std::memory_order_relaxed) + new_size - old_size;
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return arrow::Status::OK();
}

void ScanBufferPool::ReleaseUnused() {
  {
    MutexLock lock(&mu_);
    TrimTo(0);
  }
  backing_->ReleaseUnused();
}

int64_t ScanBufferPool::bytes_allocated() const { return in_use_.load(std::memory_order_relaxed); }

int64_t ScanBufferPool::max_memory() const { return peak_.load(std::memory_order_relaxed); }

int64_t ScanBufferPool::total_bytes_allocated() const {
  return total_.load(std::memory_order_relaxed);
}

int64_t ScanBufferPool::num_allocations() const {
  return allocations_.load(std::memory_order_relaxed);
}

std::string ScanBufferPool::backend_name() const { return backing_->backend_name(); }

}  // namespace granary
