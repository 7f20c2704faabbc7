// What the embedded store's files hold, shared by its write, read and bulk-load paths
// (docs/ONLINE_LAYOUT.md): a record is a version byte, its expiry (int64 microseconds) and the
// body (value_codec.h), under the key entity key + view id (big-endian uint32). Internal to
// online/rocksdb/.
#pragma once

#include <rocksdb/status.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "granary/common/status.h"
#include "granary/online/value_codec.h"

namespace granary::rocksdb_records {

inline constexpr char kRecordVersion = '\x01';
inline constexpr size_t kRecordHeader = 9;  // version byte + expiry (int64 microseconds)
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

inline int64_t ExpiryOf(std::string_view record) {
  return layout::LoadFixed<int64_t>(record.data() + 1);
}

inline void AppendRecordKey(std::string* out, std::string_view entity, uint32_t view_id) {
  out->append(entity);
  layout::PutBigEndian32(out, view_id);
}

// A RocksDB status of `what` (an operation) in `where` (the store's folder) as Granary's: a lock
// held by another process is Unavailable with the way out, damage is Corruption, the rest
// IOError.
Status FromRocks(const rocksdb::Status& s, std::string_view what, const std::string& where);

}  // namespace granary::rocksdb_records
