// What planning a scan reads of each Parquet file's footer (ParquetFooterDigest), kept for the
// process's later plans of the very same file.
//
// Why: a source read in several passes is planned again for each (a training set plans it for its
// row estimate, then in its match pass and its gather pass; materialization twice; a window join
// once per time slice), and each plan opened every file twice and parsed its footer: a training
// set over 3,000 small files parsed 9,000 footers to plan, 0.17 s of one core a plan
// (docs/PERFORMANCE.md, "Training sets over many small files: each footer parsed once to plan").
// A digest is about 1.3 KB for a file of 14 columns in two row groups, whose parsed footer takes
// 39 KB: what planning needs, not what reading needs (a read parses the footer again).
//
// Identity: a digest serves a file whose path, device, inode, size, and modification and status
// change times (nanoseconds) are those of the file it was read from. Rewriting a file in place
// sets its change time to the kernel's clock (no program can set it otherwise), replacing it
// changes its inode. File times are coarse (a kernel tick, 1-10 ms, or whole seconds on some
// file systems), so a file rewritten just after it was written could keep both times: a digest
// is kept only when its file last changed at least the settle time (2 s) before it was read (as
// git treats "racily clean" index entries). Any later change then gets a later change time,
// unless the system clock is set back by more than that.
//
// Memory: at most kParquetDigestBytes in all; a random digest is evicted to make room (a scan over
// more files than fit then still finds a share of them in its next pass, where evicting the least
// recently used would find none). Lives as long as the process.
//
// Thread-safe: digests are immutable once made and shared; one mutex guards the index.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"

namespace granary {

inline constexpr int64_t kParquetDigestBytes = int64_t{16} << 20;

// Which file a footer was read from (see the top of this file).
struct ParquetFileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t modified_ns = 0;
  int64_t changed_ns = 0;

  bool operator==(const ParquetFileIdentity&) const = default;
  // Whether a digest read at `now_ns` (the system clock, nanoseconds since the epoch) from this
  // file may be kept: its change time is at least `settle_ns` older.
  bool Settled(int64_t now_ns, int64_t settle_ns) const;
};
// The identity of the file open as `fd` (fstat); IOError naming `path` when the call fails.
Result<ParquetFileIdentity> IdentityOfDescriptor(int fd, const std::string& path);

// What planning a scan reads of a Parquet file's footer (PlanParquetFragment), whatever the
// columns and range asked: a fraction of the parsed footer's size.
struct ParquetFooterDigest {
  // A value the footer's accessors failed to give (they throw on what they find inconsistent):
  // the message, reported when a plan needs that value.
  using Failures = std::map<size_t, std::string>;

  int64_t num_rows = 0;
  uint64_t stored_hash = 0;  // ProcessLocalHash64 of the stored footer and its 8-byte tail
  std::vector<int64_t> row_group_rows;
  // Leaves (the Parquet schema's columns, in order): the index of each one's top-level column
  // in `columns` (-1: a leaf without a path), and whether it is that column itself (not nested).
  std::vector<std::string> columns;
  std::vector<int> leaf_column;
  std::vector<bool> leaf_is_top;
  // Uncompressed bytes of each leaf's chunk in each row group, at [row_group * leaves + leaf].
  std::vector<int64_t> leaf_bytes;
  Failures leaf_bytes_failures;
  // Leaves that are a top-level date or timestamp column (their statistics are times), and for
  // each row group the range of each, in UTC microseconds, at [row_group * time_leaves + k];
  // nullopt when the statistics do not give it (the row group is then read, never pruned).
  std::vector<int> time_leaves;
  std::vector<std::optional<std::pair<int64_t, int64_t>>> time_ranges;
  Failures time_range_failures;

  size_t leaves() const { return leaf_column.size(); }
  // Bytes the digest takes, as counted against kParquetDigestBytes.
  int64_t Footprint() const;
};

// The digest of the Parquet file at `path`, from the cache when the file is the one it was read
// from, else read (the footer parsed once, its stored bytes hashed through the same open file)
// and kept. The file is opened either way (an open revalidates a network file system's cached
// attributes). IOError when the file does not exist or cannot be opened (permissions),
// InvalidArgument when it is not a readable Parquet file (more than 1,024 of its column chunks
// unreadable included); both name the path.
Result<std::shared_ptr<const ParquetFooterDigest>> ReadParquetFooterDigest(const std::string& path);

// How long before a digest is read its file must have last changed for the digest to be kept
// (nanoseconds; 2 s unless set). Tests shorten it to see their files, written a moment before,
// kept; a deployment has no reason to.
inline constexpr int64_t kParquetFooterSettleNanos = 2'000'000'000;
void SetParquetFooterSettleNanos(int64_t nanos);

// What the cache found since the process started (or the last Clear), and what it holds.
struct ParquetFooterCacheStats {
  int64_t hits = 0, misses = 0;
  int64_t digests = 0, bytes = 0;
};
ParquetFooterCacheStats ParquetFooterCacheCounts();
// Forgets every entry and zeroes the counts (tests; a caller that knows files changed in ways the
// identity cannot see).
void ClearParquetFooterCache();

}  // namespace granary
