// SortedMultiGet: one RocksDB MultiGet of keys given in sorted order, its buffers kept between
// calls, so a benchmark's loop times the read and not the allocation. Not thread-safe.
#pragma once

#include <rocksdb/db.h>

#include <string>
#include <vector>

namespace granary {

class SortedMultiGet {
 public:
  // Reads `keys` (sorted); the values stay valid until the next call.
  const std::vector<rocksdb::PinnableSlice>& Run(rocksdb::DB* db,
                                                 const std::vector<std::string>& keys) {
    slices_.assign(keys.begin(), keys.end());
    values_.clear();
    values_.resize(keys.size());
    statuses_.resize(keys.size());
    db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), keys.size(), slices_.data(),
                 values_.data(), statuses_.data(), /*sorted_input=*/true);
    return values_;
  }

 private:
  std::vector<rocksdb::Slice> slices_;
  std::vector<rocksdb::PinnableSlice> values_;
  std::vector<rocksdb::Status> statuses_;
};

}  // namespace granary
