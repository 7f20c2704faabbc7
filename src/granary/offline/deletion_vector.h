// Delta Lake deletion vectors: the rows of a data file that a DELETE, UPDATE or MERGE marked as
// deleted without rewriting the file (the Delta protocol, "Deletion Vectors" and its appendix
// "Deletion Vector Format").
//
// Formats read here (all checked; anything else is Corruption naming where the bytes came from):
//   descriptor   the `deletionVector` of an add action: storageType 'u' (a file
//                <table>/<prefix>/deletion_vector_<uuid>.bin, the UUID Z85-encoded in the last 20
//                characters of pathOrInlineDv, the prefix before them), 'p' (an absolute path) or
//                'i' (the bitmap itself, Z85-encoded); offset (bytes, files only; absent reads
//                as 0), sizeInBytes (of the bitmap), cardinality (rows deleted).
//   DV file      byte 0: format version 1; at `offset`, per DV: dataSize (4 bytes, big-endian,
//                equal to sizeInBytes), the bitmap (dataSize bytes), CRC-32 of the bitmap
//                (4 bytes, big-endian; the zlib/IEEE polynomial).
//   bitmap       "RoaringBitmapArray", little-endian: magic 1681511377 (4 bytes), the number of
//                buckets (8 bytes), then per bucket in ascending key order its key (the high 32
//                bits of its row indexes, 4 bytes, top bit 0) and a 32-bit Roaring bitmap of the
//                low 32 bits in the portable format of RoaringFormatSpec (cookie 12346 or 12347,
//                keys and cardinalities, offsets, then array, bitset and run containers).
//                Also read: Delta's older "native" layout (magic 1681511376, big-endian, as in the
//                protocol's inline example): a count of 32-bit bitmaps, each with its byte size,
//                bitmap i holding the rows whose high 32 bits are i.
//
// Why not CRoaring: Debian bookworm packages CRoaring 0.2.66 (2020), which has no
// 64-bit portable reader, and its 32-bit deserializer checks bounds but not container
// invariants (sorted arrays, disjoint runs, cardinalities) that the row filter relies on; this
// reader is small and validates every invariant, and is fuzzed (fuzz/deletion_vector_fuzz.cc).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"

namespace granary {

// The `deletionVector` of a Delta add action, as written in the log.
struct DeletionVectorDescriptor {
  char storage_type = 0;          // 'u', 'p' or 'i'
  std::string path_or_inline_dv;  // as in the log
  std::optional<int64_t> offset;  // bytes from the start of the DV file; absent for 'i'
  int64_t size_in_bytes = 0;      // of the serialized bitmap (before Z85 for 'i')
  int64_t cardinality = 0;        // rows the vector deletes

  // The protocol's uniqueId: storageType + pathOrInlineDv, then "@offset" when there is one.
  // With the data file's path it identifies a logical file in log replay.
  std::string UniqueId() const;
};

// Decodes Z85 (ZeroMQ's Base85; the Delta log's encoding of inline DVs and DV file UUIDs):
// every 5 characters give 4 bytes, big-endian. Corruption when the length is not a multiple of 5,
// a character is outside the alphabet, or a group exceeds 32 bits.
Result<std::vector<uint8_t>> Z85Decode(std::string_view text);

// CRC-32 (IEEE 802.3 polynomial, reflected; zlib's crc32): the checksum after each DV in a file.
uint32_t DeletionVectorCrc32(std::span<const uint8_t> bytes);

// The file that holds a 'u' or 'p' deletion vector: <table>/<prefix>/deletion_vector_<uuid>.bin
// or the (percent-decoded, file: scheme dropped) absolute path. Corruption for a malformed
// descriptor; InvalidArgument for 'i' (it has no file) or an unknown storage type.
Result<std::filesystem::path> DeletionVectorFile(const DeletionVectorDescriptor& descriptor,
                                                 const std::filesystem::path& table);

// The row indexes one deletion vector marks deleted, counted from 0 at the first row of the data
// file (across all its row groups). Stored as Roaring stores them: 16-bit containers of row
// indexes (an array when sparse, a bitset when dense) under a 48-bit key, so memory stays at
// most about 2 bytes per deleted row or 1 bit per row of the file. Immutable after Decode;
// thread-safe to share.
class DeletionVector {
 public:
  // Decodes a serialized RoaringBitmapArray (magic number first). `where` names the bytes'
  // origin (a DV file and offset, or "the inline deletion vector of <data file>") in every error,
  // which is Corruption.
  static Result<DeletionVector> Decode(std::span<const uint8_t> bytes, std::string_view where);

  // Decodes one DV as stored in a DV file: `block` is its dataSize (big-endian), bitmap and
  // CRC-32, and dataSize must equal `size_in_bytes` (the log's). Corruption naming `where`.
  static Result<DeletionVector> DecodeStored(std::span<const uint8_t> block, int64_t size_in_bytes,
                                             std::string_view where);

  // Reads and decodes the vector a descriptor points to (a file of `table`, or inline), and
  // checks the DV file's version, size and CRC-32, and that the bitmap holds `cardinality` rows.
  // `data_file` is for messages. IOError when the DV file cannot be read (e.g. removed by
  // VACUUM); Corruption, naming the file, for anything malformed.
  static Result<DeletionVector> Load(const DeletionVectorDescriptor& descriptor,
                                     const std::filesystem::path& table,
                                     const std::filesystem::path& data_file);

  int64_t cardinality() const { return cardinality_; }
  bool empty() const { return cardinality_ == 0; }
  // The largest row index in the vector; requires !empty().
  uint64_t max() const;
  bool Contains(uint64_t row) const;
  // Calls fn(row) for each deleted row in [first, first + count), ascending.
  template <typename Fn>
  void ForEachInRange(uint64_t first, uint64_t count, Fn&& fn) const;
  // Every row index, ascending (tests and small vectors).
  std::vector<uint64_t> ToVector() const;

 private:
  struct Container {
    uint64_t key = 0;              // row index >> 16
    std::vector<uint16_t> values;  // ascending low 16 bits, when sparse
    std::vector<uint64_t> bits;    // 1024 words when dense (bit i: low 16 bits == i)
    size_t LowerBound(uint64_t key_value) const;
  };
  // Index of the first container whose key is >= key.
  size_t FirstContainerAtOrAfter(uint64_t key) const;

  std::vector<Container> containers_;  // ascending by key
  int64_t cardinality_ = 0;
  friend class DeletionVectorDecoder;
};

template <typename Fn>
void DeletionVector::ForEachInRange(uint64_t first, uint64_t count, Fn&& fn) const {
  if (count == 0) return;
  const uint64_t last = first + count - 1;  // inclusive
  for (size_t c = FirstContainerAtOrAfter(first >> 16); c < containers_.size(); ++c) {
    const Container& container = containers_[c];
    if (container.key > (last >> 16)) break;
    const uint64_t base = container.key << 16;
    const uint32_t lo = container.key == (first >> 16) ? static_cast<uint32_t>(first & 0xFFFF) : 0;
    const uint32_t hi =
        container.key == (last >> 16) ? static_cast<uint32_t>(last & 0xFFFF) : 0xFFFF;
    if (!container.values.empty()) {
      for (size_t i = container.LowerBound(lo); i < container.values.size(); ++i) {
        if (container.values[i] > hi) break;
        fn(base + container.values[i]);
      }
    } else {
      for (uint32_t word = lo / 64; word <= hi / 64; ++word) {
        uint64_t w = container.bits[word];
        while (w != 0) {
          const uint32_t bit = word * 64 + static_cast<uint32_t>(__builtin_ctzll(w));
          w &= w - 1;
          if (bit < lo) continue;
          if (bit > hi) break;
          fn(base + bit);
        }
      }
    }
  }
}

}  // namespace granary
