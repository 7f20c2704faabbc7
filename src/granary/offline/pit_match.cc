// The matching step of the point-in-time join: records, buckets, sort, then a sweep or a look-up.
#include <arrow/api.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "granary/common/threads.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/pit_join.h"

namespace granary {
namespace {

// A feature row as the sweep sees it. Sorting by (hash, ts, created, index) puts, within one key,
// the row the rules prefer last among those with ts <= t.
struct FeatureRecord {
  uint64_t hash;
  int64_t ts;
  int64_t created;  // INT64_MIN when null or absent: loses every tie
  int64_t index;    // read order
};

struct EntityRecord {
  uint64_t hash;
  int64_t ts;
  int64_t row;
};

constexpr int kBucketBits = 10;
constexpr int kBuckets = 1 << kBucketBits;

// Buckets use low bits of the hash; partitions use the high bits (EntityPartitioner::PartitionOf).
inline int BucketOf(uint64_t hash) { return static_cast<int>(hash & (kBuckets - 1)); }

// Runs fn(i) for i in [0, n) on `threads` threads; the first error wins.
Status ParallelFor(int64_t n, int threads, const std::function<Status(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::mutex mu;
  Status first;
  auto worker = [&] {
    while (true) {
      int64_t i = next.fetch_add(1);
      if (i >= n) return;
      Status st = fn(i);
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (first.ok()) first = st;
        next.store(n);
      }
    }
  };
  threads = static_cast<int>(std::min<int64_t>(threads, n));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return first;
}

// Scatters records into bucket order; offsets[b]..offsets[b+1] is bucket b.
template <typename Record>
std::vector<Record> Bucketize(std::vector<Record>&& records, std::vector<int64_t>* offsets) {
  offsets->assign(kBuckets + 1, 0);
  for (const Record& r : records) ++(*offsets)[BucketOf(r.hash) + 1];
  for (int b = 0; b < kBuckets; ++b) (*offsets)[b + 1] += (*offsets)[b];
  std::vector<int64_t> next(offsets->begin(), offsets->end() - 1);
  std::vector<Record> out(records.size());
  for (const Record& r : records) out[next[BucketOf(r.hash)]++] = r;
  records.clear();
  records.shrink_to_fit();
  return out;
}

const int64_t* Int64Values(const arrow::Array& array) {
  return array.data()->GetValues<int64_t>(1);
}

}  // namespace

Result<std::vector<ChosenRow>> MatchPointInTime(const KeyColumns& entity_keys,
                                                const arrow::Array& entity_ts,
                                                const std::vector<FeatureRowsView>& features,
                                                Duration ttl, bool created_timestamp_cutoff,
                                                int threads, MatchWay way) {
  threads = ThreadCount(threads);
  const int64_t n = entity_keys.length();
  std::vector<ChosenRow> winners(n);
  bool injective = entity_keys.hash_is_injective();

  // Feature records, written straight into bucket order in two parallel passes over the chunks:
  // count per (chunk, bucket), then place. Within a bucket, chunks keep read order.
  const size_t chunks = features.size();
  // The read-order index of each chunk's first row, ascending, for locating rows by index.
  std::vector<int64_t> chunk_offsets;
  for (const auto& chunk : features) {
    injective = injective && chunk.keys->hash_is_injective();
    chunk_offsets.push_back(chunk.row_index != nullptr && chunk.row_index->length() > 0
                                ? Int64Values(*chunk.row_index)[0]
                                : chunk.index_offset);
  }
  std::vector<std::vector<uint64_t>> chunk_hashes(chunks);
  std::vector<std::vector<int64_t>> chunk_counts(chunks);  // per bucket
  auto usable = [&](const FeatureRowsView& chunk, int64_t i) {
    return !chunk.keys->IsNull(i) && !chunk.event_ts->IsNull(i);
  };
  GRANARY_RETURN_NOT_OK(ParallelFor(static_cast<int64_t>(chunks), threads, [&](int64_t c) {
    const auto& chunk = features[c];
    auto& hashes = chunk_hashes[c];
    hashes.resize(chunk.keys->length());
    chunk.keys->HashRows(hashes.data());
    auto& counts = chunk_counts[c];
    counts.assign(kBuckets, 0);
    for (int64_t i = 0; i < chunk.keys->length(); ++i) {
      if (usable(chunk, i)) ++counts[BucketOf(hashes[i])];
    }
    return Status::OK();
  }));
  std::vector<int64_t> foff(kBuckets + 1, 0);
  for (int b = 0; b < kBuckets; ++b) {
    int64_t at = foff[b];
    for (size_t c = 0; c < chunks; ++c) {
      const int64_t count = chunk_counts[c][b];
      chunk_counts[c][b] = at;  // now: where chunk c starts writing in bucket b
      at += count;
    }
    foff[b + 1] = at;
  }
  std::vector<FeatureRecord> fb(foff[kBuckets]);
  GRANARY_RETURN_NOT_OK(ParallelFor(static_cast<int64_t>(chunks), threads, [&](int64_t c) {
    const auto& chunk = features[c];
    const auto& hashes = chunk_hashes[c];
    auto& next = chunk_counts[c];
    const int64_t* ts = Int64Values(*chunk.event_ts);
    const int64_t* created = chunk.created_ts ? Int64Values(*chunk.created_ts) : nullptr;
    const int64_t* index = chunk.row_index ? Int64Values(*chunk.row_index) : nullptr;
    for (int64_t i = 0; i < chunk.keys->length(); ++i) {
      if (!usable(chunk, i)) continue;
      int64_t cr = INT64_MIN;
      if (created != nullptr && chunk.created_ts->IsValid(i)) cr = created[i];
      fb[next[BucketOf(hashes[i])]++] = {hashes[i], ts[i], cr,
                                         index ? index[i] : chunk.index_offset + i};
    }
    chunk_hashes[c] = {};
    return Status::OK();
  }));
  // Feature index -> (chunk, row), for key comparisons when hashes may collide.
  auto locate = [&](int64_t index) {
    size_t c = std::upper_bound(chunk_offsets.begin(), chunk_offsets.end(), index) -
               chunk_offsets.begin() - 1;
    const auto* rows = features[c].row_index;
    if (rows == nullptr) return std::pair<size_t, int64_t>(c, index - chunk_offsets[c]);
    const int64_t* begin = Int64Values(*rows);
    return std::pair<size_t, int64_t>(
        c, std::lower_bound(begin, begin + rows->length(), index) - begin);
  };
  const int64_t ttl_micros = ttl.micros;
  // Entity row `row` at time `t` takes the greatest candidate among F[group_begin, after): the
  // feature records of its key hash with ts <= t, in the sort's order (the rules' order, the
  // preferred row last). Walks back from the latest over the rows the rules reject.
  auto choose = [&](int64_t row, int64_t t, const FeatureRecord* F, int64_t group_begin,
                    int64_t after) {
    const int64_t lower = ttl_micros > 0 ? t - ttl_micros : INT64_MIN;
    for (int64_t j = after; j-- > group_begin;) {
      if (F[j].ts < lower) return;
      if (created_timestamp_cutoff && F[j].created > t) continue;
      if (!injective) {
        const std::pair<size_t, int64_t> at = locate(F[j].index);
        if (!entity_keys.Equals(row, *features[at.first].keys, at.second)) continue;
      }
      winners[row] = {F[j].index, F[j].ts};
      return;
    }
  };
  auto sort_features = [&](int64_t b) {
    std::sort(fb.begin() + foff[b], fb.begin() + foff[b + 1],
              [](const FeatureRecord& x, const FeatureRecord& y) {
                if (x.hash != y.hash) return x.hash < y.hash;
                if (x.ts != y.ts) return x.ts < y.ts;
                if (x.created != y.created) return x.created < y.created;
                return x.index < y.index;
              });
  };
  if (way == MatchWay::kAuto) {
    way = static_cast<int64_t>(fb.size()) <= n ? MatchWay::kLookUp : MatchWay::kSweep;
  }

  if (way == MatchWay::kLookUp) {
    GRANARY_RETURN_NOT_OK(ParallelFor(kBuckets, threads, [&](int64_t b) {
      sort_features(b);
      return Status::OK();
    }));
    // Blocks of entity rows, each hashed on its own: 512 KiB of hashes a thread at a time.
    constexpr int64_t kBlockRows = 64 * 1024;
    const int64_t* ets = Int64Values(entity_ts);
    GRANARY_RETURN_NOT_OK(
        ParallelFor((n + kBlockRows - 1) / kBlockRows, threads, [&](int64_t block) -> Status {
          const int64_t begin = block * kBlockRows;
          const int64_t end = std::min(n, begin + kBlockRows);
          std::vector<uint64_t> hashes(static_cast<size_t>(end - begin));
          entity_keys.HashRows(begin, end, hashes.data());
          const FeatureRecord* F = fb.data();
          for (int64_t i = begin; i < end; ++i) {
            if (entity_keys.IsNull(i) || entity_ts.IsNull(i)) continue;
            const uint64_t h = hashes[i - begin];
            const int64_t t = ets[i];
            const FeatureRecord* bucket_end = F + foff[BucketOf(h) + 1];
            const FeatureRecord* group = std::lower_bound(
                F + foff[BucketOf(h)], bucket_end, h,
                [](const FeatureRecord& r, uint64_t hash) { return r.hash < hash; });
            // The first record past (h, t): of a later hash, or of this one with ts > t.
            const FeatureRecord* after =
                std::upper_bound(group, bucket_end, t, [h](int64_t time, const FeatureRecord& r) {
                  return h != r.hash ? h < r.hash : time < r.ts;
                });
            choose(i, t, F, group - F, after - F);
          }
          return Status::OK();
        }));
    return winners;
  }

  std::vector<EntityRecord> erecs;
  erecs.reserve(n);
  {
    std::vector<uint64_t> hashes(n);
    entity_keys.HashRows(hashes.data());
    const int64_t* ets = Int64Values(entity_ts);
    for (int64_t i = 0; i < n; ++i) {
      if (entity_keys.IsNull(i) || entity_ts.IsNull(i)) continue;
      erecs.push_back({hashes[i], ets[i], i});
    }
  }
  std::vector<int64_t> eoff;
  std::vector<EntityRecord> eb = Bucketize(std::move(erecs), &eoff);

  Status st = ParallelFor(kBuckets, threads, [&](int64_t b) -> Status {
    FeatureRecord* F = fb.data();
    EntityRecord* E = eb.data();
    sort_features(b);
    std::sort(E + eoff[b], E + eoff[b + 1], [](const EntityRecord& x, const EntityRecord& y) {
      if (x.hash != y.hash) return x.hash < y.hash;
      return x.ts < y.ts;
    });
    int64_t f = foff[b];
    const int64_t fe = foff[b + 1];
    int64_t e = eoff[b];
    const int64_t ee = eoff[b + 1];
    while (e < ee) {
      const uint64_t h = E[e].hash;
      while (f < fe && F[f].hash < h) ++f;
      const int64_t group_begin = f;
      int64_t group_end = f;
      while (group_end < fe && F[group_end].hash == h) ++group_end;
      int64_t after = group_begin;  // first feature row with ts > t
      for (; e < ee && E[e].hash == h; ++e) {
        const int64_t t = E[e].ts;
        while (after < group_end && F[after].ts <= t) ++after;
        choose(E[e].row, t, F, group_begin, after);
      }
      f = group_end;
    }
    return Status::OK();
  });
  GRANARY_RETURN_NOT_OK(st);
  return winners;
}

}  // namespace granary
