#include "granary/offline/parquet_footers.h"

#include <arrow/io/api.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/statistics.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "granary/common/hash.h"
#include "granary/common/mutex.h"
#include "granary/common/unique_fd.h"
#include "granary/offline/source_fragment.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

std::atomic<int64_t> settle_nanos{kParquetFooterSettleNanos};

ParquetFileIdentity IdentityOf(const struct stat& st) {
  ParquetFileIdentity id;
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<int64_t>(st.st_size);
  id.modified_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  id.changed_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  return id;
}

// What the statistics of a Parquet column count: days (a date) or a timestamp unit.
struct StatsUnit {
  bool days = false;
  arrow::TimeUnit::type unit = arrow::TimeUnit::MICRO;

  // nullopt for a value beyond int64 microseconds (statistics written by anyone).
  std::optional<int64_t> ToMicros(int64_t value) const {
    const int64_t factor = days                              ? Duration::Days(1).micros
                           : unit == arrow::TimeUnit::SECOND ? 1'000'000
                           : unit == arrow::TimeUnit::MILLI  ? 1000
                                                             : 1;
    if (factor == 1) return TimestampToMicros(value, unit);
    int64_t micros = 0;
    if (__builtin_mul_overflow(value, factor, &micros)) return std::nullopt;
    return micros;
  }
};

// The unit of a Parquet timestamp or date column; nullopt for any other column, whose statistics
// are not times.
std::optional<StatsUnit> StatsUnitOf(const parquet::ColumnDescriptor& column) {
  const auto& logical = column.logical_type();
  if (logical == nullptr) return std::nullopt;
  if (logical->is_date()) return StatsUnit{true};
  if (!logical->is_timestamp()) return std::nullopt;
  switch (static_cast<const parquet::TimestampLogicalType&>(*logical).time_unit()) {
    case parquet::LogicalType::TimeUnit::MILLIS:
      return StatsUnit{false, arrow::TimeUnit::MILLI};
    case parquet::LogicalType::TimeUnit::MICROS:
      return StatsUnit{false, arrow::TimeUnit::MICRO};
    case parquet::LogicalType::TimeUnit::NANOS:
      return StatsUnit{false, arrow::TimeUnit::NANO};
    default:
      return std::nullopt;
  }
}

// The min and max of a row group's time column in UTC microseconds, when known.
std::optional<std::pair<int64_t, int64_t>> RowGroupRange(const parquet::RowGroupMetaData& rg,
                                                         int leaf,
                                                         const parquet::ColumnDescriptor& column,
                                                         const StatsUnit& unit) {
  auto chunk = rg.ColumnChunk(leaf);
  if (chunk == nullptr || !chunk->is_stats_set()) return std::nullopt;
  auto stats = chunk->statistics();
  if (stats == nullptr || !stats->HasMinMax()) return std::nullopt;
  std::optional<int64_t> min, max;
  if (column.physical_type() == parquet::Type::INT64) {
    const auto& typed = static_cast<const parquet::Int64Statistics&>(*stats);
    min = unit.ToMicros(typed.min());
    max = unit.ToMicros(typed.max());
  } else if (column.physical_type() == parquet::Type::INT32) {
    const auto& typed = static_cast<const parquet::Int32Statistics&>(*stats);
    min = unit.ToMicros(typed.min());
    max = unit.ToMicros(typed.max());
  }
  if (!min || !max) return std::nullopt;  // unknown: the row group is read, not pruned
  return std::pair(*min, *max);
}

// A hash of the footer as stored (its last 8 bytes and the footer before them), read through
// `file`; 0 when they cannot be read. Not FileMetaData::SerializeToString, which dereferences a
// null encryptor for some footers that open (found by fuzz/parquet_source_fuzz.cc:
// fuzz/corpus/parquet_source/crash_footer_serialize_null_encryptor.parquet).
uint64_t StoredFooterHash(arrow::io::RandomAccessFile& file, int64_t size) {
  if (size < 12) return 0;
  auto tail = file.ReadAt(size - 8, 8);
  if (!tail.ok() || (*tail)->size() != 8) return 0;
  uint32_t length = 0;
  std::memcpy(&length, (*tail)->data(), 4);  // little-endian, as the format stores it
  if (length > size - 8) return 0;
  auto footer = file.ReadAt(size - 8 - length, length + 8);
  if (!footer.ok()) return 0;
  return ProcessLocalHash64(std::string_view(reinterpret_cast<const char*>((*footer)->data()),
                                             static_cast<size_t>((*footer)->size())));
}

// Column chunks whose values a digest records as failures; past it the footer is unreadable (a
// crafted footer whose row groups hold no chunks would otherwise cost an exception and an entry
// for each of its columns in each row group).
constexpr size_t kMaxFailures = 1024;

// Builds the digest of a parsed footer. Throws when the footer's accessors throw for the row
// groups themselves, or for more than kMaxFailures column chunks; a value of one column chunk
// that cannot be had is recorded as a failure.
void Digest(const parquet::FileMetaData& meta, ParquetFooterDigest* d) {
  auto failed = [d](ParquetFooterDigest::Failures* failures, size_t cell, const char* what) {
    (*failures)[cell] = what;
    if (d->leaf_bytes_failures.size() + d->time_range_failures.size() > kMaxFailures) {
      throw std::runtime_error(what);
    }
  };
  const parquet::SchemaDescriptor& schema = *meta.schema();
  d->num_rows = meta.num_rows();
  const int leaves = schema.num_columns();
  std::map<std::string, int> column_index;
  for (int i = 0; i < leaves; ++i) {
    const std::vector<std::string> path = schema.Column(i)->path()->ToDotVector();
    if (path.empty()) {
      d->leaf_column.push_back(-1);
      d->leaf_is_top.push_back(false);
      continue;
    }
    auto [it, added] = column_index.emplace(path[0], static_cast<int>(d->columns.size()));
    if (added) d->columns.push_back(path[0]);
    d->leaf_column.push_back(it->second);
    d->leaf_is_top.push_back(path.size() == 1);
  }
  std::vector<StatsUnit> units;
  for (int i = 0; i < leaves; ++i) {
    if (!d->leaf_is_top[static_cast<size_t>(i)]) continue;
    if (auto unit = StatsUnitOf(*schema.Column(i))) {
      d->time_leaves.push_back(i);
      units.push_back(*unit);
    }
  }
  const int row_groups = meta.num_row_groups();
  // Every row group holds a chunk of every leaf, and a chunk takes tens of bytes of the footer: a
  // footer that declares more chunks than it has bytes is refused before the digest's table of
  // chunks is allocated (a crafted footer of 10,000 empty row groups over 10,000 columns would
  // otherwise ask for 800 MB).
  const uint64_t cells = static_cast<uint64_t>(row_groups) * static_cast<uint64_t>(leaves);
  if (cells > static_cast<uint64_t>(meta.size())) {
    throw std::runtime_error(fmt::format(
        "its footer of {} bytes declares {} row groups of {} columns, more column chunks than it "
        "can hold",
        meta.size(), row_groups, leaves));
  }
  d->leaf_bytes.assign(static_cast<size_t>(row_groups) * static_cast<size_t>(leaves), 0);
  d->time_ranges.assign(static_cast<size_t>(row_groups) * d->time_leaves.size(), std::nullopt);
  for (int rg = 0; rg < row_groups; ++rg) {
    auto rg_meta = meta.RowGroup(rg);
    d->row_group_rows.push_back(rg_meta->num_rows());
    for (int leaf = 0; leaf < leaves; ++leaf) {
      const size_t cell =
          static_cast<size_t>(rg) * static_cast<size_t>(leaves) + static_cast<size_t>(leaf);
      try {
        d->leaf_bytes[cell] = rg_meta->ColumnChunk(leaf)->total_uncompressed_size();
      } catch (const std::exception& e) {
        failed(&d->leaf_bytes_failures, cell, e.what());
      }
    }
    for (size_t k = 0; k < d->time_leaves.size(); ++k) {
      const size_t cell = static_cast<size_t>(rg) * d->time_leaves.size() + k;
      const int leaf = d->time_leaves[k];
      try {
        d->time_ranges[cell] = RowGroupRange(*rg_meta, leaf, *schema.Column(leaf), units[k]);
      } catch (const std::exception& e) {
        failed(&d->time_range_failures, cell, e.what());
      }
    }
  }
}

int64_t FailuresFootprint(const ParquetFooterDigest::Failures& failures) {
  int64_t bytes = 0;
  for (const auto& [cell, message] : failures) {
    bytes += static_cast<int64_t>(64 + message.size());
  }
  return bytes;
}

// The digests, by path. A random entry is evicted to make room (see the header).
class DigestCache {
 public:
  static DigestCache& Get() {
    static auto* cache = new DigestCache();  // never destroyed: used until exit
    return *cache;
  }

  std::shared_ptr<const ParquetFooterDigest> Find(const std::string& path,
                                                  const ParquetFileIdentity& id) {
    MutexLock lock(&mu_);
    auto it = entries_.find(path);
    if (it == entries_.end() || !(it->second.id == id)) {
      if (it != entries_.end()) Erase(it);
      ++stats_.misses;
      return nullptr;
    }
    ++stats_.hits;
    return it->second.digest;
  }

  void Keep(const std::string& path, const ParquetFileIdentity& id,
            std::shared_ptr<const ParquetFooterDigest> digest) {
    const int64_t bytes = digest->Footprint() + static_cast<int64_t>(2 * path.size() + 96);
    if (bytes > kParquetDigestBytes / 8) return;
    std::vector<std::shared_ptr<const ParquetFooterDigest>> evicted;  // freed after unlocking
    MutexLock lock(&mu_);
    auto found = entries_.find(path);
    if (found != entries_.end()) {
      evicted.push_back(found->second.digest);
      Erase(found);
    }
    while (!paths_.empty() && stats_.bytes + bytes > kParquetDigestBytes) {
      const size_t victim = std::uniform_int_distribution<size_t>(0, paths_.size() - 1)(random_);
      auto it = entries_.find(paths_[victim]);
      evicted.push_back(it->second.digest);
      Erase(it);
    }
    paths_.push_back(path);
    entries_.emplace(path, Entry{id, std::move(digest), bytes, paths_.size() - 1});
    stats_.bytes += bytes;
    stats_.digests = static_cast<int64_t>(entries_.size());
  }

  void Clear() {
    MutexLock lock(&mu_);
    entries_.clear();
    paths_.clear();
    stats_ = {};
  }

  void AddTo(ParquetFooterCacheStats* out) {
    MutexLock lock(&mu_);
    out->hits = stats_.hits;
    out->misses = stats_.misses;
    out->digests = stats_.digests;
    out->bytes = stats_.bytes;
  }

 private:
  struct Entry {
    ParquetFileIdentity id;
    std::shared_ptr<const ParquetFooterDigest> digest;
    int64_t bytes = 0;
    size_t slot = 0;  // in paths_
  };
  using Map = std::unordered_map<std::string, Entry>;

  void Erase(Map::iterator it) REQUIRES(mu_) {
    const size_t slot = it->second.slot;
    stats_.bytes -= it->second.bytes;
    if (slot + 1 != paths_.size()) {
      paths_[slot] = std::move(paths_.back());
      entries_.find(paths_[slot])->second.slot = slot;
    }
    paths_.pop_back();
    entries_.erase(it);
    stats_.digests = static_cast<int64_t>(entries_.size());
  }

  Mutex mu_;
  Map entries_ GUARDED_BY(mu_);
  std::vector<std::string> paths_ GUARDED_BY(mu_);  // entries_'s keys, for a random pick
  std::minstd_rand random_ GUARDED_BY(mu_){20261207};
  ParquetFooterCacheStats stats_ GUARDED_BY(mu_);
};

}  // namespace

bool ParquetFileIdentity::Settled(int64_t now_ns, int64_t settle_ns) const {
  return changed_ns <= now_ns - settle_ns;
}

void SetParquetFooterSettleNanos(int64_t nanos) {
  settle_nanos.store(nanos, std::memory_order_relaxed);
}

Result<ParquetFileIdentity> IdentityOfDescriptor(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status::IOError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  return IdentityOf(st);
}

int64_t ParquetFooterDigest::Footprint() const {
  return static_cast<int64_t>(
             sizeof(*this) + row_group_rows.size() * sizeof(int64_t) +
             leaf_column.size() * sizeof(int) + leaf_is_top.size() / 8 +
             leaf_bytes.size() * sizeof(int64_t) + time_leaves.size() * sizeof(int) +
             time_ranges.size() * sizeof(std::optional<std::pair<int64_t, int64_t>>)) +
         [&] {
           int64_t names = 0;
           for (const std::string& c : columns) names += static_cast<int64_t>(32 + c.size());
           return names;
         }() +
         FailuresFootprint(leaf_bytes_failures) + FailuresFootprint(time_range_failures);
}

Result<std::shared_ptr<const ParquetFooterDigest>> ReadParquetFooterDigest(
    const std::string& path) {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);  // before the file is looked at
  const int64_t now_ns = static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  // The file is opened even when its digest is kept, and known by its descriptor: on a network
  // file system (NFS) an open revalidates what a stat may answer from a cache (close-to-open
  // consistency), and the file read on a miss is the one whose identity is kept.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::IOError(fmt::format("cannot open {}: the file does not exist", path));
    }
    return Status::IOError(fmt::format("cannot open {}: {}", path, std::strerror(err)));
  }
  GRANARY_ASSIGN_OR_RAISE(const ParquetFileIdentity id, IdentityOfDescriptor(fd.get(), path));
  if (auto found = DigestCache::Get().Find(path, id)) return found;
  auto digest = std::make_shared<ParquetFooterDigest>();
  std::shared_ptr<parquet::FileMetaData> metadata;
  try {
    auto file = arrow::io::ReadableFile::Open(fd.Release());  // owns the descriptor from here
    if (!file.ok()) {
      return Status::IOError(fmt::format("cannot read {}: {}", path, file.status().message()));
    }
    auto reader = parquet::ParquetFileReader::Open(*file);
    metadata = reader->metadata();
    digest->stored_hash = StoredFooterHash(**file, id.size);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(
        fmt::format("{} is not a readable Parquet file: {}", path, e.what()));
  }
  // The footer's accessors throw on what they find inconsistent (a column chunk's size
  // statistics whose histograms do not match its levels: found by fuzz/parquet_source_fuzz.cc,
  // fuzz/corpus/parquet_source/crash_size_statistics_histogram.parquet).
  try {
    Digest(*metadata, digest.get());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(
        fmt::format("{} is not a readable Parquet file: {}", path, e.what()));
  }
  if (id.Settled(now_ns, settle_nanos.load(std::memory_order_relaxed))) {
    DigestCache::Get().Keep(path, id, digest);
  }
  return std::shared_ptr<const ParquetFooterDigest>(std::move(digest));
}

ParquetFooterCacheStats ParquetFooterCacheCounts() {
  ParquetFooterCacheStats stats;
  DigestCache::Get().AddTo(&stats);
  return stats;
}

void ClearParquetFooterCache() { DigestCache::Get().Clear(); }

}  // namespace granary
