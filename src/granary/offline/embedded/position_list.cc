#include "granary/offline/embedded/position_list.h"

#include <algorithm>
#include <cassert>
#include <functional>
#include <queue>
#include <utility>

namespace granary {

void PositionList::Builder::Append(int64_t position) {
  assert(position > last_ && position >= 0);
  if (size_ % kBlockPositions == 0) {
    block_first_.push_back(position);
    block_offset_.push_back(static_cast<int64_t>(bytes_.size()));
  } else {
    auto gap = static_cast<uint64_t>(position - last_);
    while (gap >= 0x80) {
      bytes_.push_back(static_cast<uint8_t>(gap | 0x80));
      gap >>= 7;
    }
    bytes_.push_back(static_cast<uint8_t>(gap));
  }
  last_ = position;
  ++size_;
}

PositionList PositionList::Builder::Finish() {
  PositionList out;
  // Exact sizes: the builder's vectors grew by doubling.
  out.block_first_.assign(block_first_.begin(), block_first_.end());
  out.block_offset_.assign(block_offset_.begin(), block_offset_.end());
  out.bytes_.assign(bytes_.begin(), bytes_.end());
  out.size_ = size_;
  *this = Builder();
  return out;
}

int64_t PositionList::memory_bytes() const {
  return static_cast<int64_t>(
      bytes_.capacity() + (block_first_.capacity() + block_offset_.capacity()) * sizeof(int64_t));
}

uint64_t PositionList::ReadGap(int64_t* at) const {
  uint64_t gap = 0;
  int shift = 0;
  uint8_t byte;
  do {
    byte = bytes_[static_cast<size_t>((*at)++)];
    gap |= static_cast<uint64_t>(byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return gap;
}

bool PositionList::AnyIn(int64_t begin, int64_t end) const {
  if (begin >= end || size_ == 0) return false;
  // The last block starting at or before `begin`: the first position >= begin is in it or is
  // the next block's first.
  auto next = std::upper_bound(block_first_.begin(), block_first_.end(), begin);
  if (next == block_first_.begin()) return *next < end;
  const size_t block = static_cast<size_t>(next - block_first_.begin()) - 1;
  int64_t value = block_first_[block];
  if (value >= begin) return value < end;
  const int64_t first_index = static_cast<int64_t>(block) * kBlockPositions;
  const int64_t count = std::min(kBlockPositions, size_ - first_index);
  int64_t at = block_offset_[block];
  for (int64_t i = 1; i < count; ++i) {
    value += static_cast<int64_t>(ReadGap(&at));
    if (value >= begin) return value < end;
  }
  return next != block_first_.end() && *next < end;
}

PositionList::Reader::Reader(const PositionList& list) : list_(&list) {
  if (list.size_ > 0) value_ = list.block_first_[0];
}

void PositionList::Reader::Next() {
  ++index_;
  if (index_ >= list_->size_) return;
  if (index_ % kBlockPositions == 0) {
    const auto block = static_cast<size_t>(index_ / kBlockPositions);
    value_ = list_->block_first_[block];
    byte_ = list_->block_offset_[block];
  } else {
    value_ += static_cast<int64_t>(list_->ReadGap(&byte_));
  }
}

PositionList PositionList::Merge(const std::vector<PositionList>& lists) {
  std::vector<Reader> readers;
  readers.reserve(lists.size());
  // (the reader's current position, which reader), smallest first.
  using Head = std::pair<int64_t, size_t>;
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;
  for (const PositionList& list : lists) {
    readers.emplace_back(list);
    if (!readers.back().done()) heads.emplace(readers.back().value(), readers.size() - 1);
  }
  Builder out;
  while (!heads.empty()) {
    const size_t r = heads.top().second;
    heads.pop();
    Reader& reader = readers[r];
    out.Append(reader.value());
    reader.Next();
    if (!reader.done()) heads.emplace(reader.value(), r);
  }
  return out.Finish();
}

}  // namespace granary
