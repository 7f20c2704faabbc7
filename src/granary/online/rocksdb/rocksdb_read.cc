// RocksDbOnlineStore's reads (rocksdb_store.h): an entity's records by one Seek, a large read
// split over the request's pool.
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "granary/common/fork_join.h"
#include "granary/online/rocksdb/records.h"
#include "granary/online/rocksdb/rocksdb_store.h"

namespace granary {

using rocksdb_records::ExpiryOf;
using rocksdb_records::FromRocks;
using rocksdb_records::kRecordHeader;
using rocksdb_records::kRecordVersion;

namespace {

// The views of a read that share one key column: an entity's views are adjacent (key = entity
// key + view id), so one Seek per entity and a few Next() read them all, which costs less than a
// point lookup per view (MultiGet).
struct ReadGroup {
  const EntityKeyColumn* keys;
  std::vector<std::pair<uint32_t, size_t>> views;  // (view id, index in the request)
};

// Reads entity rows [begin, end) of every group with one iterator: appends each live record's
// body to *arena and calls found(view index, row, offset in *arena, size).
template <typename Found>
Status ReadRows(rocksdb::DB* db, const std::vector<ReadGroup>& groups, size_t begin, size_t end,
                Timestamp now, const OnlineStore& store, const std::filesystem::path& path,
                std::string* arena, Found&& found) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (const ReadGroup& group : groups) {
    for (size_t r = begin; r < end; ++r) {
      const std::string_view entity = group.keys->key(r);
      const rocksdb::Slice prefix(entity.data(), entity.size());
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        const rocksdb::Slice key = it->key();
        if (key.size() != entity.size() + 4) continue;  // a longer entity key with this prefix
        const unsigned char* id_bytes =
            reinterpret_cast<const unsigned char*>(key.data()) + entity.size();
        const uint32_t id = (uint32_t{id_bytes[0]} << 24) | (uint32_t{id_bytes[1]} << 16) |
                            (uint32_t{id_bytes[2]} << 8) | uint32_t{id_bytes[3]};
        for (const auto& [view_id, v] : group.views) {
          if (view_id != id) continue;
          const rocksdb::Slice value = it->value();
          std::string_view rec(value.data(), value.size());
          if (rec.size() < kRecordHeader || rec[0] != kRecordVersion) {
            return Status::Corruption(fmt::format(
                "{}: a record of {} bytes has an unknown layout version; it was written by "
                "another Granary release",
                store.Describe(), rec.size()));
          }
          if (ExpiryOf(rec) <= now.micros) continue;  // expired, not compacted away yet
          const size_t at = arena->size();
          arena->append(rec.substr(kRecordHeader));
          found(v, r, at, rec.size() - kRecordHeader);
        }
      }
      if (!it->status().ok()) return FromRocks(it->status(), "read", path.string());
    }
  }
  return Status::OK();
}

}  // namespace

Result<OnlineFeatures> RocksDbOnlineStore::Read(const OnlineReadRequest& request) {
  GRANARY_RETURN_NOT_OK(request.Validate());
  if (secondary_dir_) GRANARY_RETURN_NOT_OK(CatchUpWithWriter());
  std::vector<ReadGroup> groups;
  size_t records = 0;
  for (size_t v = 0; v < request.views.size(); ++v) {
    const ViewRead& read = request.views[v];
    auto same = [&](const ReadGroup& g) { return g.keys == read.keys.get(); };
    auto g = std::find_if(groups.begin(), groups.end(), same);
    if (g == groups.end()) g = groups.insert(groups.end(), ReadGroup{read.keys.get(), {}});
    g->views.emplace_back(read.view->view_id(), v);
    records += read.keys->size();
  }
  const Timestamp now = options_.clock->Now();
  OnlineFeaturesBuilder builder(request);
  const size_t rows = request.num_rows();
  ForkJoinPool* split = request.split;
  if (split == nullptr || split->parallelism() < 2 || records < kSplitReadRecords || rows < 2) {
    GRANARY_RETURN_NOT_OK(ReadRows(
        db_.get(), groups, 0, rows, now, *this, path_, builder.arena(),
        [&](size_t v, size_t r, size_t at, size_t size) { builder.SetBody(v, r, at, size); }));
    return builder.Finish(now);
  }
  // A large read: ranges of entity rows read on the pool's threads, each into an arena of its
  // own, then appended in order (the bodies are a small part of the time: the seeks dominate).
  struct Part {
    std::string arena;
    struct Body {
      uint32_t v;
      uint32_t r;
      size_t at;
      size_t size;
    };
    std::vector<Body> bodies;
    Status status;
  };
  const size_t num_parts = std::min(rows, 2 * static_cast<size_t>(split->parallelism()));
  std::vector<Part> parts(num_parts);
  split->Run(num_parts, [&](size_t p) {
    Part& part = parts[p];
    part.status = ReadRows(
        db_.get(), groups, rows * p / num_parts, rows * (p + 1) / num_parts, now, *this, path_,
        &part.arena, [&part](size_t v, size_t r, size_t at, size_t size) {
          part.bodies.push_back({static_cast<uint32_t>(v), static_cast<uint32_t>(r), at, size});
        });
  });
  std::string* arena = builder.arena();
  size_t total = 0;
  for (const Part& part : parts) {
    GRANARY_RETURN_NOT_OK(part.status);
    total += part.arena.size();
  }
  arena->reserve(total);
  for (const Part& part : parts) {
    const size_t base = arena->size();
    arena->append(part.arena);
    for (const Part::Body& b : part.bodies) builder.SetBody(b.v, b.r, base + b.at, b.size);
  }
  return builder.Finish(now);
}

void RocksDbOnlineStore::AsyncRead(const boost::asio::any_io_executor& executor,
                                   OnlineReadRequest request, ReadCallback done) {
  auto result = std::make_shared<Result<OnlineFeatures>>(Read(request));
  boost::asio::post(executor,
                    [result, done = std::move(done)]() mutable { done(std::move(*result)); });
}

}  // namespace granary
