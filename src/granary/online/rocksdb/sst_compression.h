// Whether a bulk load's final SST files are worth compressing, judged from a sample of their
// blocks before they are written (rocksdb_bulk_load.cc).
//
// RocksDB compresses every data block it writes (LZ4 in this store) and keeps the compressed form
// only when it saves at least an eighth of the block. On data that does not compress (random
// floats, hashes, identifiers) that is CPU spent for nothing: about 12 % of a first load of
// 500,000 entities x 50 float features (docs/PERFORMANCE.md, "Materialization"). A load therefore
// compresses a sample of blocks as RocksDB would (consecutive records of the sorted buffer, cut
// at the table's block size) and writes its final files with LZ4 only when the sample as a whole
// shrinks by at least a quarter; otherwise uncompressed. Later compactions of those files (once
// later writes overlap them) compress their output with the store's LZ4 as usual.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace granary {

// Collects sample blocks and decides. Not thread-safe (one per decision).
class SstCompressionSample {
 public:
  // RocksDB's default data block size (BlockBasedTableOptions::block_size), in bytes.
  static constexpr size_t kBlockBytes = 4096;
  // The share of bytes the sample must save for LZ4 to be kept: a quarter.
  static constexpr double kMinSaving = 0.25;

  // Appends one record (key and value, as a block would hold them) to the current sample block;
  // a block that reaches kBlockBytes is compressed and counted. Returns whether the current
  // block is complete (the caller may then jump to another part of its data).
  bool Add(std::string_view key, std::string_view value);
  // Counts the last, incomplete block (a load smaller than one block).
  void Finish();

  // Bytes sampled (whole blocks) and what RocksDB would store for them with LZ4 (a block that
  // saves less than an eighth is stored as it is).
  int64_t raw_bytes() const { return raw_bytes_; }
  int64_t stored_bytes() const { return stored_bytes_; }

  // True when the sampled blocks shrink by at least kMinSaving with LZ4, or when nothing was
  // sampled (the store's default stands).
  bool WorthCompressing() const;

 private:
  void CompressBlock();

  std::string block_;
  std::string compressed_;
  int64_t raw_bytes_ = 0;
  int64_t stored_bytes_ = 0;
};

}  // namespace granary
