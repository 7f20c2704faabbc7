// PositionList: a set of read positions (FeatureSourceScan's ReadPositions), ascending and
// delta-encoded, for the first pass of latest rows to hand its chosen rows to the second
// (latest_rows.h, latest_stream.h) in about one byte each where a plain list takes eight.
//
// Encoding: positions in blocks of kBlockPositions; a block's first position is kept whole in an
// index (with where the block's bytes start), every other one as the gap to the one before it
// (>= 1), an unsigned LEB128 varint: 1 byte for gaps below 2^7, 2 below 2^14, 3 below 2^21, ...,
// at most 10. So a dense list (a chosen row every few rows) costs about 1 byte a position plus
// 16 bytes a block; a sparse one, the bytes of its gaps. Lookups (AnyIn) search the index, then
// decode one block.
//
// A value: built once by a Builder, then only read. Reading (const members, Reader) is
// thread-compatible: several threads may read one list at once.
#pragma once

#include <cstdint>
#include <vector>

namespace granary {

class PositionList {
 public:
  static constexpr int64_t kBlockPositions = 128;

  // Builds a list from positions appended in strictly ascending order, each >= 0.
  class Builder {
   public:
    // `position` > every position appended before, and >= 0 (a caller's bug otherwise: checked
    // in debug builds only).
    void Append(int64_t position);
    int64_t size() const { return size_; }
    // The list; the builder is empty again.
    PositionList Finish();

   private:
    std::vector<int64_t> block_first_;
    std::vector<int64_t> block_offset_;
    std::vector<uint8_t> bytes_;
    int64_t size_ = 0;
    int64_t last_ = -1;
  };

  // Reads the positions in ascending order. The list must outlive it.
  class Reader {
   public:
    explicit Reader(const PositionList& list);
    // Whether every position was read (value() is then invalid).
    bool done() const { return index_ >= list_->size_; }
    // The current position.
    int64_t value() const { return value_; }
    // How many positions come before the current one (its rank in the list).
    int64_t index() const { return index_; }
    void Next();

   private:
    const PositionList* list_;
    int64_t index_ = 0;
    int64_t value_ = -1;
    int64_t byte_ = 0;  // where the next gap starts in list_->bytes_
  };

  PositionList() = default;

  // The union of `lists`, which hold no position in common (the read positions of different
  // entities' rows). Reads each once, holding one Reader per list.
  static PositionList Merge(const std::vector<PositionList>& lists);

  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes held (the encoded gaps and the block index).
  int64_t memory_bytes() const;
  // Whether the list holds a position p with begin <= p < end.
  bool AnyIn(int64_t begin, int64_t end) const;

 private:
  // Decodes the varint at `*at` in bytes_ and moves `*at` past it.
  uint64_t ReadGap(int64_t* at) const;

  std::vector<int64_t> block_first_;   // each block's first position
  std::vector<int64_t> block_offset_;  // where each block's gaps start in bytes_
  std::vector<uint8_t> bytes_;         // the gaps, block after block
  int64_t size_ = 0;
};

}  // namespace granary
