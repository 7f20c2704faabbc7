// RocksDbOnlineStore's bulk load (StartBulkLoad): a view known to hold no record is written as
// sorted SST files and ingested in one step (docs/ONLINE_LAYOUT.md, "Bulk loading").
//
// Rows are encoded into a sort buffer (key and record, as WriteChunk would store them); a full
// buffer is sorted and written as an uncompressed run file. Finish sorts the rest: with no run
// before it, it becomes the one file to ingest; otherwise every run is merged into the final
// files. Duplicate keys keep the newest row (WriteOrder), as WriteBatch would. The ingest runs
// with every stripe lock held: when no WriteBatch of the view ran since the load started, the
// view's keys are known absent and the files are ingested; otherwise the files' records go
// through the same compare-and-write as WriteChunk, still under the locks.
#include <arrow/api.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <optional>
#include <queue>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/online/rocksdb/records.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/online/rocksdb/sst_compression.h"
#include "granary/online/value_codec.h"

namespace granary {

using rocksdb_records::kNever;
using rocksdb_records::kRecordHeader;
using rocksdb_records::kRecordVersion;

namespace {

// A final file is closed past this size (the next one starts at a larger key).
constexpr uint64_t kFinalFileBytes = uint64_t{256} << 20;
// A final buffer of at least this many rows is written by two threads.
constexpr size_t kParallelFinalRows = 100'000;
// Records compared per MultiGet when the load falls back to write-if-newer.
constexpr size_t kFallbackChunk = 256;
// Sample blocks taken, evenly spaced, from the first sorted buffer to decide the final files'
// compression (sst_compression.h): 64 blocks of 4 KiB.
constexpr size_t kCompressionSampleBlocks = 64;

Status FromRocks(const rocksdb::Status& s, std::string_view what, const std::string& where) {
  if (s.ok()) return Status::OK();
  std::string msg = fmt::format("rocksdb bulk load: {} in {}: {}", what, where, s.ToString());
  if (s.IsCorruption()) return Status::Corruption(msg);
  return Status::IOError(msg);
}

// One encoded row in a sort buffer: the key at `offset`, the record right after it.
struct Entry {
  // The key's first 16 bytes, big-endian, zero-padded: keys of up to 16 bytes (an integer entity
  // key is 13) compare without reading the buffer, whose entries are scattered once sorted.
  uint64_t prefix;
  uint64_t prefix2;
  uint64_t offset;
  uint32_t key_size;
  uint32_t record_size;
  uint64_t seq;  // order of arrival: of two equal write orders the later wins
};

struct SortBuffer {
  std::string bytes;
  std::vector<Entry> entries;

  std::string_view key(const Entry& e) const {
    return std::string_view(bytes.data() + e.offset, e.key_size);
  }
  std::string_view record(const Entry& e) const {
    return std::string_view(bytes.data() + e.offset + e.key_size, e.record_size);
  }
};

constexpr uint32_t kPrefixBytes = 16;

// Bytes [from, from + 8) of `key` as a big-endian number, zero past its end.
uint64_t KeyPrefix(std::string_view key, size_t from) {
  uint64_t p = 0;
  for (size_t i = from; i < from + 8; ++i) {
    p = (p << 8) | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0);
  }
  return p;
}

// Key order of two entries of `buffer`: <0, 0 or >0. With both keys within the prefix, zero
// padding makes a key that is a prefix of the other compare equal, so the shorter goes first.
int CompareKeys(const SortBuffer& buffer, const Entry& a, const Entry& b) {
  if (a.prefix != b.prefix) return a.prefix < b.prefix ? -1 : 1;
  if (a.prefix2 != b.prefix2) return a.prefix2 < b.prefix2 ? -1 : 1;
  if (a.key_size <= kPrefixBytes && b.key_size <= kPrefixBytes) {
    return a.key_size == b.key_size ? 0 : (a.key_size < b.key_size ? -1 : 1);
  }
  return buffer.key(a).compare(buffer.key(b));
}

bool SameKey(const SortBuffer& buffer, const Entry& a, const Entry& b) {
  if (a.prefix != b.prefix || a.prefix2 != b.prefix2 || a.key_size != b.key_size) return false;
  return a.key_size <= kPrefixBytes || buffer.key(a) == buffer.key(b);
}

// The write order of a record; nullopt when its body cannot be parsed (never for our own).
std::optional<WriteOrder> OrderOf(std::string_view record, size_t num_features) {
  BodyHeader header;
  if (record.size() < kRecordHeader ||
      !ParseBodyHeader(record.substr(kRecordHeader), num_features, &header)) {
    return std::nullopt;
  }
  return header.order;
}

// Whether record `a`, written after `b` for the same key, replaces it (write-if-newer: not older).
bool Replaces(std::string_view a, std::string_view b, size_t num_features) {
  auto oa = OrderOf(a, num_features), ob = OrderOf(b, num_features);
  if (!oa || !ob) return true;
  return oa->Compare(*ob) >= 0;
}

}  // namespace

class RocksDbBulkLoad final : public OnlineBulkLoad {
 public:
  RocksDbBulkLoad(RocksDbOnlineStore* store, const ViewLayout& view, const BulkLoadOptions& options,
                  TempDir dir)
      : store_(store),
        view_(view),
        options_(options),
        dir_(std::move(dir)),
        fill_bytes_(std::max<int64_t>(1, options.sort_buffer_bytes)) {}

  Result<int64_t> Add(const arrow::RecordBatch& rows) override {
    GRANARY_ASSIGN_OR_RAISE(EntityKeyColumn keys, EncodeEntityKeys(view_, rows));
    GRANARY_ASSIGN_OR_RAISE(BodyEncoder encoder, BodyEncoder::Make(view_, rows));
    const int64_t now = store_->options_.clock->Now().micros;
    const int64_t ttl = view_.key_ttl().micros;
    const int64_t expiry = ttl <= 0 || now > kNever - ttl ? kNever : now + ttl;
    const int64_t n = rows.num_rows();
    const uint64_t first_seq = next_seq_.fetch_add(static_cast<uint64_t>(n));
    // Encoded on this thread (in parallel with the other writers), then copied into the shared
    // buffer under the lock; kept between calls, so that its memory is not faulted in again.
    thread_local SortBuffer local;
    local.bytes.clear();
    local.entries.clear();
    for (int64_t i = 0; i < n; ++i) {
      Entry e;
      e.offset = local.bytes.size();
      local.bytes.append(keys.key(i));
      layout::PutBigEndian32(&local.bytes, view_.view_id());
      e.key_size = static_cast<uint32_t>(local.bytes.size() - e.offset);
      const std::string_view key(local.bytes.data() + e.offset, e.key_size);
      e.prefix = KeyPrefix(key, 0);
      e.prefix2 = KeyPrefix(key, 8);
      local.bytes.push_back(kRecordVersion);
      layout::PutFixed<int64_t>(&local.bytes, expiry);
      GRANARY_RETURN_NOT_OK(encoder.Append(i, &local.bytes));
      e.record_size = static_cast<uint32_t>(local.bytes.size() - e.offset - e.key_size);
      e.seq = first_seq + static_cast<uint64_t>(i);
      local.entries.push_back(e);
    }
    std::optional<SortBuffer> full;
    {
      MutexLock lock(&mu_);
      while (exclusive_run_ && error_.ok()) run_written_.Wait(&mu_);
      if (!error_.ok()) return error_;
      const uint64_t base = buffer_.bytes.size();
      if (buffer_.bytes.capacity() == 0) {
        buffer_.bytes.reserve(static_cast<size_t>(fill_bytes_) + local.bytes.size());
        buffer_.entries.reserve(entries_per_buffer_);
      }
      buffer_.bytes.append(local.bytes);
      for (Entry e : local.entries) {
        e.offset += base;
        buffer_.entries.push_back(e);
      }
      if (HeldBytes(buffer_) >= fill_bytes_) {
        // The load holds sort_buffer_bytes whatever the number of writers (with four writers,
        // four buffers used to be in flight). The first buffer fills all of it, so that a load
        // that fits writes no run and merges nothing: when it is full, the writers wait while it
        // is sorted and written. Later buffers fill half of it each, one filling while the one
        // before is sorted and written; a writer that fills the next before that run is written
        // waits for it.
        while (writing_run_ && error_.ok()) run_written_.Wait(&mu_);
        if (!error_.ok()) return error_;
        if (HeldBytes(buffer_) >= fill_bytes_) {
          const bool first = !filled_once_;
          filled_once_ = true;
          entries_per_buffer_ =
              std::max(entries_per_buffer_, buffer_.entries.size() / (first ? 2 : 1));
          full.emplace(std::move(buffer_));
          buffer_ = SortBuffer();
          writing_run_ = true;
          exclusive_run_ = first;
          fill_bytes_ = std::max<int64_t>(1, options_.sort_buffer_bytes / 2);
        }
      }
    }
    if (full) {
      // Sorted and written outside the lock: after the first run, the other writers go on
      // filling the next buffer.
      Status st = WriteRun(&*full);
      full.reset();
      MutexLock lock(&mu_);
      writing_run_ = false;
      exclusive_run_ = false;
      if (!st.ok() && error_.ok()) error_ = st;
      run_written_.SignalAll();
      if (!st.ok()) return st;
    }
    return n;
  }

  Result<WriteStats> Finish() override {
    std::vector<std::string> runs;
    SortBuffer rest;
    {
      MutexLock lock(&mu_);
      GRANARY_RETURN_NOT_OK(error_);
      runs = runs_;
      rest = std::move(buffer_);
    }
    WriteStats stats;
    std::vector<std::string> files;
    if (runs.empty()) {
      if (rest.entries.empty()) return stats;
      GRANARY_ASSIGN_OR_RAISE(files, WriteSorted(&rest, /*final_files=*/true, &stats));
    } else {
      if (!rest.entries.empty()) {
        GRANARY_RETURN_NOT_OK(WriteRun(&rest));
        MutexLock lock(&mu_);
        runs = runs_;
      }
      rest = SortBuffer();
      GRANARY_ASSIGN_OR_RAISE(files, MergeRuns(runs, &stats));
      MutexLock lock(&mu_);
      stats.skipped_older += run_duplicates_;
    }
    return Ingest(files, stats);
  }

 private:
  rocksdb::Options FileOptions(bool final_file) {
    rocksdb::Options o = store_->db_->GetOptions();
    if (!final_file) {
      o.compression = rocksdb::kNoCompression;  // read once, at the merge
    } else {
      MutexLock lock(&mu_);
      if (compress_final_.has_value() && !*compress_final_) {
        o.compression = rocksdb::kNoCompression;  // the sample did not compress (see below)
      }
    }
    return o;
  }

  // Decides, once per load, whether the final files are compressed, from blocks of consecutive
  // records spread over the first sorted buffer (sst_compression.h).
  void DecideCompression(const SortBuffer& buffer) {
    {
      MutexLock lock(&mu_);
      if (compress_final_.has_value()) return;
    }
    const auto& entries = buffer.entries;
    SstCompressionSample sample;
    for (size_t b = 0; b < kCompressionSampleBlocks; ++b) {
      for (size_t i = entries.size() * b / kCompressionSampleBlocks; i < entries.size(); ++i) {
        if (sample.Add(buffer.key(entries[i]), buffer.record(entries[i]))) break;
      }
    }
    sample.Finish();
    MutexLock lock(&mu_);
    if (!compress_final_.has_value()) compress_final_ = sample.WorthCompressing();
  }

  // Sorts `buffer`, keeps the newest row of each key, writes a run file.
  Status WriteRun(SortBuffer* buffer) {
    std::string path;
    {
      MutexLock lock(&mu_);
      path = (dir_.path() / fmt::format("run-{:05d}.sst", run_count_++)).string();
    }
    WriteStats counted;  // rows kept are counted at the merge
    GRANARY_ASSIGN_OR_RAISE(auto files, WriteSorted(buffer, /*final_files=*/false, &counted, path));
    MutexLock lock(&mu_);
    runs_.insert(runs_.end(), files.begin(), files.end());
    run_duplicates_ += counted.skipped_older;
    return Status::OK();
  }

  // Sorts `buffer` and writes it to one run file (`run_path`) or to final files; counts in
  // `stats` the rows kept (written) and the duplicates dropped for an older order.
  Result<std::vector<std::string>> WriteSorted(SortBuffer* buffer, bool final_files,
                                               WriteStats* stats, std::string run_path = {}) {
    auto& entries = buffer->entries;
    std::sort(entries.begin(), entries.end(), [buffer](const Entry& a, const Entry& b) {
      const int c = CompareKeys(*buffer, a, b);
      return c != 0 ? c < 0 : a.seq < b.seq;
    });
    DecideCompression(*buffer);
    const size_t features = view_.features().size();
    // Entries [begin, end) into `sink`, the newest row of each key.
    auto write_range = [&](size_t begin, size_t end, FileSink* sink, WriteStats* counts) -> Status {
      constexpr size_t kAhead = 16;  // rows whose scattered records are fetched ahead
      for (size_t i = begin; i < end;) {
        if (i + kAhead < end) {
          const Entry& e = entries[i + kAhead];
          const char* ahead = buffer->bytes.data() + e.offset;
          const uint32_t bytes = std::min<uint32_t>(e.key_size + e.record_size, 1024);
          for (uint32_t at = 0; at < bytes; at += 64) __builtin_prefetch(ahead + at);
        }
        size_t winner = i, j = i + 1;
        const std::string_view key = buffer->key(entries[i]);
        for (; j < end && SameKey(*buffer, entries[j], entries[i]); ++j) {
          if (Replaces(buffer->record(entries[j]), buffer->record(entries[winner]), features)) {
            winner = j;
          }
        }
        counts->written += 1;
        counts->skipped_older += static_cast<int64_t>(j - i - 1);
        GRANARY_RETURN_NOT_OK(sink->Put(key, buffer->record(entries[winner])));
        i = j;
      }
      return Status::OK();
    };
    std::vector<std::string> files;
    size_t split = entries.size();
    if (final_files && entries.size() >= kParallelFinalRows) {
      // The final files are built (compression included) on two threads, one per half of the keys.
      split = entries.size() / 2;
      while (split < entries.size() && SameKey(*buffer, entries[split], entries[split - 1])) {
        ++split;
      }
    }
    FileSink sink(this, final_files, std::move(run_path));
    Status second_status;
    WriteStats second_stats;
    std::vector<std::string> second_files;
    std::thread second;
    if (split < entries.size()) {
      second = std::thread([&] {
        FileSink second_sink(this, true, {});
        second_status = write_range(split, entries.size(), &second_sink, &second_stats);
        if (!second_status.ok()) return;
        auto closed = second_sink.Close();
        if (closed.ok()) {
          second_files = std::move(*closed);
        } else {
          second_status = closed.status();
        }
      });
    }
    Status first_status = write_range(0, split, &sink, stats);
    if (second.joinable()) second.join();
    GRANARY_RETURN_NOT_OK(first_status);
    GRANARY_RETURN_NOT_OK(second_status);
    *stats += second_stats;
    GRANARY_ASSIGN_OR_RAISE(files, sink.Close());
    files.insert(files.end(), second_files.begin(), second_files.end());
    *buffer = SortBuffer();  // free it before the next one fills
    return files;
  }

  // Merges the sorted runs into final files (several runs may hold one key: the newest wins).
  Result<std::vector<std::string>> MergeRuns(const std::vector<std::string>& runs,
                                             WriteStats* stats) {
    const rocksdb::Options options = FileOptions(false);
    std::vector<std::unique_ptr<rocksdb::SstFileReader>> readers;
    std::vector<std::unique_ptr<rocksdb::Iterator>> its;
    for (const std::string& run : runs) {
      readers.push_back(std::make_unique<rocksdb::SstFileReader>(options));
      GRANARY_RETURN_NOT_OK(FromRocks(readers.back()->Open(run), "open", run));
      rocksdb::ReadOptions read;
      read.fill_cache = false;
      read.verify_checksums = false;  // written by this process a moment ago
      its.emplace_back(readers.back()->NewIterator(read));
      its.back()->SeekToFirst();
      GRANARY_RETURN_NOT_OK(FromRocks(its.back()->status(), "read", run));
    }
    // A min-heap of run indexes by their current key.
    auto greater = [&its](size_t a, size_t b) {
      const int c = its[a]->key().compare(its[b]->key());
      return c != 0 ? c > 0 : a > b;
    };
    std::priority_queue<size_t, std::vector<size_t>, decltype(greater)> heap(greater);
    for (size_t r = 0; r < its.size(); ++r) {
      if (its[r]->Valid()) heap.push(r);
    }
    FileSink sink(this, /*final_files=*/true, {});
    const size_t features = view_.features().size();
    std::string key, record;
    while (!heap.empty()) {
      size_t r = heap.top();
      heap.pop();
      key.assign(its[r]->key().data(), its[r]->key().size());
      record.assign(its[r]->value().data(), its[r]->value().size());
      auto advance = [&](size_t run) -> Status {
        its[run]->Next();
        if (its[run]->Valid()) {
          heap.push(run);
          return Status::OK();
        }
        return FromRocks(its[run]->status(), "read", runs[run]);
      };
      GRANARY_RETURN_NOT_OK(advance(r));
      while (!heap.empty() && its[heap.top()]->key() == rocksdb::Slice(key)) {
        const size_t d = heap.top();
        heap.pop();
        const std::string_view other(its[d]->value().data(), its[d]->value().size());
        if (Replaces(other, record, features)) record.assign(other);
        ++stats->skipped_older;
        GRANARY_RETURN_NOT_OK(advance(d));
      }
      ++stats->written;
      GRANARY_RETURN_NOT_OK(sink.Put(key, record));
    }
    its.clear();
    readers.clear();
    for (const std::string& run : runs) std::filesystem::remove(run);
    return sink.Close();
  }

  // Ingests the final files when the view's keys are known absent; else writes their records
  // if newer. Every stripe lock is held throughout, so no WriteBatch runs meanwhile.
  Result<WriteStats> Ingest(const std::vector<std::string>& files, WriteStats stats) {
    if (files.empty()) return stats;
    auto& stripes = *store_->stripes_;
    for (auto& m : stripes) m.lock();
    struct UnlockAll {
      std::array<std::mutex, RocksDbOnlineStore::kStripes>& m;
      ~UnlockAll() {
        for (auto it = m.rbegin(); it != m.rend(); ++it) it->unlock();
      }
    } unlock{stripes};
    int64_t writes = 0;
    {
      MutexLock lock(&store_->views_mu_);
      writes = store_->view_writes_[view_.view_id()];
      ++store_->view_writes_[view_.view_id()];  // the view holds records from now on
    }
    if (writes == 0) {
      rocksdb::IngestExternalFileOptions ingest;
      ingest.move_files = true;  // hard links: the files are in the store's folder
      GRANARY_RETURN_NOT_OK(FromRocks(store_->db_->IngestExternalFile(files, ingest),
                                      "ingesting the sorted files", store_->path_.string()));
      return stats;
    }
    return WriteIfNewer(files, stats.skipped_older);
  }

  // The fallback: each record of `files` (sorted, unique keys) compared with the stored one as
  // WriteChunk does. The caller holds every stripe lock.
  Result<WriteStats> WriteIfNewer(const std::vector<std::string>& files, int64_t duplicates) {
    WriteStats stats;
    stats.skipped_older = duplicates;
    rocksdb::DB& db = *store_->db_;
    const std::string& where = store_->path_.string();
    const size_t features = view_.features().size();
    const int64_t now = store_->options_.clock->Now().micros;
    const rocksdb::Options options = FileOptions(true);
    std::vector<std::string> keys, records;
    auto flush = [&]() -> Status {
      std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
      std::vector<rocksdb::PinnableSlice> stored(keys.size());
      std::vector<rocksdb::Status> statuses(keys.size());
      db.MultiGet(rocksdb::ReadOptions(), db.DefaultColumnFamily(), slices.size(), slices.data(),
                  stored.data(), statuses.data(), /*sorted_input=*/true);
      rocksdb::WriteBatch batch;
      std::string kept;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (!statuses[i].ok() && !statuses[i].IsNotFound()) {
          return FromRocks(statuses[i], "read", where);
        }
        // The stored row competes only when it is live and of this schema (as WriteChunk).
        if (statuses[i].ok() && stored[i].size() >= kRecordHeader &&
            stored[i][0] == kRecordVersion) {
          const std::string_view rec(stored[i].data(), stored[i].size());
          BodyHeader header;
          const std::string_view body = rec.substr(kRecordHeader);
          if (layout::LoadFixed<int64_t>(rec.data() + 1) > now &&
              ParseBodyHeader(body, features, &header) &&
              header.fingerprint == view_.fingerprint()) {
            auto mine = OrderOf(records[i], features);
            if (mine && mine->Compare(header.order) < 0) {
              ++stats.skipped_older;
              // Keep the newer row, with this write's expiry (WriteChunk does the same).
              kept.assign(records[i].data(), kRecordHeader).append(body);
              batch.Put(slices[i], kept);
              continue;
            }
          }
        }
        ++stats.written;
        batch.Put(slices[i], records[i]);
      }
      keys.clear();
      records.clear();
      return FromRocks(db.Write(rocksdb::WriteOptions(), &batch), "write", where);
    };
    for (const std::string& file : files) {
      rocksdb::SstFileReader reader(options);
      GRANARY_RETURN_NOT_OK(FromRocks(reader.Open(file), "open", file));
      std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(rocksdb::ReadOptions()));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        keys.emplace_back(it->key().data(), it->key().size());
        records.emplace_back(it->value().data(), it->value().size());
        if (keys.size() == kFallbackChunk) GRANARY_RETURN_NOT_OK(flush());
      }
      GRANARY_RETURN_NOT_OK(FromRocks(it->status(), "read", file));
      if (!keys.empty()) GRANARY_RETURN_NOT_OK(flush());
    }
    return stats;
  }

  // Writes sorted, unique records to one run file or to final files of kFinalFileBytes.
  class FileSink {
   public:
    FileSink(RocksDbBulkLoad* load, bool final_files, std::string run_path)
        : load_(load), final_(final_files), run_path_(std::move(run_path)) {}
    Status Put(std::string_view key, std::string_view record) {
      if (writer_ && final_ && writer_->FileSize() >= kFinalFileBytes) {
        GRANARY_RETURN_NOT_OK(CloseFile());
      }
      if (!writer_) {
        std::string path = run_path_;
        if (final_) {
          MutexLock lock(&load_->mu_);
          path = (load_->dir_.path() / fmt::format("final-{:05d}.sst", load_->final_count_++))
                     .string();
        }
        writer_ = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(),
                                                           load_->FileOptions(final_));
        GRANARY_RETURN_NOT_OK(FromRocks(writer_->Open(path), "create", path));
        path_ = path;
      }
      return FromRocks(writer_->Put(rocksdb::Slice(key.data(), key.size()),
                                    rocksdb::Slice(record.data(), record.size())),
                       "write", path_);
    }
    Result<std::vector<std::string>> Close() {
      if (writer_) GRANARY_RETURN_NOT_OK(CloseFile());
      return std::move(files_);
    }

   private:
    Status CloseFile() {
      GRANARY_RETURN_NOT_OK(FromRocks(writer_->Finish(), "finish", path_));
      writer_.reset();
      files_.push_back(path_);
      return Status::OK();
    }
    RocksDbBulkLoad* load_;
    bool final_;
    std::string run_path_;
    std::unique_ptr<rocksdb::SstFileWriter> writer_;
    std::string path_;
    std::vector<std::string> files_;
  };

  static int64_t HeldBytes(const SortBuffer& buffer) {
    return static_cast<int64_t>(buffer.bytes.size() + buffer.entries.size() * sizeof(Entry));
  }

  RocksDbOnlineStore* store_;
  const ViewLayout& view_;
  const BulkLoadOptions options_;
  TempDir dir_;  // run and final files; removed with the load (ingested files are hard links)
  std::atomic<uint64_t> next_seq_{0};
  Mutex mu_;
  SortBuffer buffer_ GUARDED_BY(mu_);
  // Bytes (records and sort entries) at which the filling buffer is full: all of
  // sort_buffer_bytes for the first, half of it for the next ones.
  int64_t fill_bytes_ GUARDED_BY(mu_);
  bool writing_run_ GUARDED_BY(mu_) = false;    // a full buffer is being sorted and written
  bool exclusive_run_ GUARDED_BY(mu_) = false;  // ... and it is the first: no buffer fills
  bool filled_once_ GUARDED_BY(mu_) = false;    // the first buffer was full
  CondVar run_written_;                         // writing_run_ went false
  // Entries the largest full buffer held: the next buffers reserve as many, so that the entries
  // are not reallocated (and copied) while the buffer fills.
  size_t entries_per_buffer_ GUARDED_BY(mu_) = 0;
  std::vector<std::string> runs_ GUARDED_BY(mu_);
  int run_count_ GUARDED_BY(mu_) = 0;
  int final_count_ GUARDED_BY(mu_) = 0;
  int64_t run_duplicates_ GUARDED_BY(mu_) = 0;
  Status error_ GUARDED_BY(mu_);
  // Whether the final files are compressed (with the store's LZ4); decided by the first sorted
  // buffer, before any final file is opened.
  std::optional<bool> compress_final_ GUARDED_BY(mu_);
};

Result<std::unique_ptr<OnlineBulkLoad>> RocksDbOnlineStore::StartBulkLoad(
    const ViewLayout& view, const BulkLoadOptions& options) {
  if (secondary_dir_ || view.tiles() != nullptr || !empty_at_open_) {
    return std::unique_ptr<OnlineBulkLoad>();
  }
  {
    MutexLock lock(&views_mu_);
    // A view written (or being loaded) since the open may hold records: WriteBatch.
    if (!view_writes_.emplace(view.view_id(), 0).second) return std::unique_ptr<OnlineBulkLoad>();
  }
  GRANARY_ASSIGN_OR_RAISE(TempDir dir, TempDir::MakeIn(path_, "bulk-"));
  return std::unique_ptr<OnlineBulkLoad>(new RocksDbBulkLoad(this, view, options, std::move(dir)));
}

}  // namespace granary
