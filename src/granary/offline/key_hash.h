// KeyColumns: the join key columns of one batch of rows, for hashing rows (partitioning, grouping)
// and for comparing keys between two batches (entity rows against feature rows).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "granary/common/result.h"

namespace arrow {
class Array;
}

namespace granary {

// 64-bit finalizer of SplitMix64: a bijection on 64-bit values with good avalanche.
inline uint64_t MixBits(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Hashes bytes (strings, binary keys). Stable within a process; not for storage.
uint64_t HashBytes(std::string_view bytes);

// Read-only view over key columns; the arrays must stay alive while it is used. Keys compare
// equal only when every column's values are equal and none is null; equal keys hash equally when
// both sides have the same column types (callers cast both sides to the entity's declared types).
// Thread-compatible: const methods may run concurrently.
class KeyColumns {
 public:
  // Supported column types: bool, int8..int64, uint8..uint32, timestamp, date32, float32, float64,
  // string, binary (and their large forms). Anything else is InvalidArgument.
  static Result<KeyColumns> Make(std::vector<std::shared_ptr<arrow::Array>> columns);

  int64_t length() const { return length_; }
  // Whether any key column of `row` is null (such a row never matches).
  bool IsNull(int64_t row) const;
  // Writes one hash per row into out[0..length).
  void HashRows(uint64_t* out) const { HashRows(0, length_, out); }
  // Writes the hashes of rows [begin, end) into out[0..end - begin).
  void HashRows(int64_t begin, int64_t end, uint64_t* out) const;
  bool Equals(int64_t row, const KeyColumns& other, int64_t other_row) const;
  // True when equal hashes imply equal keys (one integer-like key: MixBits is a bijection), so
  // callers may skip Equals.
  bool hash_is_injective() const {
    return columns_.size() == 1 && columns_[0].kind != Kind::kBytes;
  }

 private:
  enum class Kind { kInt, kFloat32, kFloat64, kBool, kBytes };
  struct Column {
    std::shared_ptr<arrow::Array> array;
    Kind kind;
    int width = 8;  // bytes per value for kInt
  };
  uint64_t ValueBits(const Column& c, int64_t row) const;
  std::string_view BytesAt(const Column& c, int64_t row) const;

  std::vector<Column> columns_;
  int64_t length_ = 0;
  bool may_have_nulls_ = false;
};

}  // namespace granary
