#include "granary/offline/pit_stream.h"

#include <arrow/api.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <limits>
#include <string>
#include <thread>

#include "granary/common/fork_join.h"
#include "granary/common/threads.h"

namespace granary {
namespace {

// A feature row offered to an entity row; index -1 means none. Ordered by (ts, created, index).
struct Candidate {
  int64_t ts = 0;
  int64_t created = INT64_MIN;
  int64_t index = -1;

  bool Beats(const Candidate& o) const {
    if (o.index < 0) return index >= 0;
    if (ts != o.ts) return ts > o.ts;
    if (created != o.created) return created > o.created;
    return index > o.index;
  }
};

struct Group {
  uint64_t hash;
  // The key's last offer went to slot `cursor` (from begin; -1: after the group's last slot),
  // and every activation time in (low, high] goes there too: low and high are the times of the
  // slots before and at the cursor (INT64_MIN before the first, INT64_MAX after the last).
  // Sources are usually written in time order, so most offers find their slot here without a
  // look at the slots' times (a cache miss a row, the largest part of Offer's time). Written only
  // by the worker that owns the key.
  int64_t low;
  int64_t high;
  int32_t begin;  // its slots: begin .. the next group's begin; slot_row[begin] is a row of its key
  int32_t cursor;
};

// std::lower_bound over values[first, last) for `key`, searched outwards from `hint` (in
// [first, last]) in steps that double: a step or two when the answer is near the hint, about
// twice a binary search's when it is far.
inline int64_t LowerBoundFrom(const int64_t* values, int64_t first, int64_t last, int64_t hint,
                              int64_t key) {
  if (hint < last && values[hint] < key) {
    int64_t below = hint;  // values[below] < key: the answer is after it
    int64_t step = 1;
    int64_t probe = below + 1;
    while (probe < last && values[probe] < key) {
      below = probe;
      step *= 2;
      probe = below + step;
    }
    probe = std::min(probe, last);  // the answer is in (below, probe]
    return std::lower_bound(values + below + 1, values + probe, key) - values;
  }
  int64_t above = hint;  // values[above] >= key, or above == last: the answer is at or before it
  int64_t step = 1;
  int64_t probe = above - 1;
  while (probe >= first && values[probe] >= key) {
    above = probe;
    step *= 2;
    probe = above - step;
  }
  probe = std::max(probe, first - 1);  // the answer is in (probe, above]
  return std::lower_bound(values + probe + 1, values + above, key) - values;
}

}  // namespace

struct StreamingMatcher::Impl {
  const KeyColumns* entity_keys;
  Duration ttl;
  bool cutoff;
  int threads;
  bool injective;
  // Slots: the usable entity rows grouped by key, each group sorted by time.
  std::vector<int64_t> slot_row;
  std::vector<int64_t> slot_ts;
  std::vector<Group> groups;   // in slot order
  std::vector<int32_t> table;  // open addressing over groups; -1 empty
  uint64_t mask = 0;
  // Per slot. Each key belongs to one worker (by its hash), so workers never share a slot.
  std::vector<Candidate> best;
  int64_t entity_rows = 0;
  // Offer's workers beside the caller, kept for the matcher's life: a thread started and ended
  // per batch (about 500 a run of bench/pit_join) cost its creation, its stack's pages faulted
  // and given back, and the allocator's per-thread set-up and clean-up each time.
  std::unique_ptr<ForkJoinPool> helpers;
  // Offer's scratch: the batch's key hashes and each worker's rows, kept from batch to batch
  // rather than allocated (and, past glibc's mmap threshold, faulted in) for each.
  std::vector<uint64_t> hashes;
  std::vector<std::vector<int32_t>> rows_of;

  int64_t SizeOf(const Group& group) const {
    const size_t g = static_cast<size_t>(&group - groups.data());
    const int64_t end =
        g + 1 < groups.size() ? groups[g + 1].begin : static_cast<int64_t>(slot_row.size());
    return end - group.begin;
  }

  // Points the group's cursor at `slot` (from begin; `size` for after its last slot), with the
  // window of activation times that lead there.
  void MoveCursor(Group* group, int64_t slot, int64_t size) const {
    const int64_t* times = slot_ts.data() + group->begin;
    group->low = slot > 0 ? times[slot - 1] : INT64_MIN;
    group->high = slot < size ? times[slot] : INT64_MAX;
    group->cursor = slot < size ? static_cast<int32_t>(slot) : -1;
  }
};

namespace {

// The worker that offers the rows of a key with this hash: high bits, unrelated to the table's
// low bits.
inline int WorkerOf(uint64_t hash, int workers) {
  return static_cast<int>(((hash >> 32) * static_cast<uint64_t>(workers)) >> 32);
}

}  // namespace

StreamingMatcher::~StreamingMatcher() = default;

int64_t StreamingMatcher::MemoryFor(int64_t entity_rows, int threads) {
  // The peak, at the worst of one key per row: slots (16 B), groups (32 B) and their table (up
  // to 16 B), and then either the sort records while they are built (24 B) or the best offers
  // (24 B). Workers share the offers, so threads cost nothing here.
  (void)threads;
  return entity_rows * 88;
}

Result<std::unique_ptr<StreamingMatcher>> StreamingMatcher::Make(const KeyColumns* entity_keys,
                                                                 const arrow::Array* entity_ts,
                                                                 Duration ttl,
                                                                 bool created_timestamp_cutoff,
                                                                 int threads) {
  std::unique_ptr<StreamingMatcher> m(new StreamingMatcher());
  m->impl_ = std::make_unique<Impl>();
  Impl& s = *m->impl_;
  s.entity_keys = entity_keys;
  s.ttl = ttl;
  s.cutoff = created_timestamp_cutoff;
  s.threads = ThreadCount(threads);
  s.injective = entity_keys->hash_is_injective();
  const int64_t n = entity_keys->length();
  if (n > std::numeric_limits<int32_t>::max()) {
    return Status::InvalidArgument(
        "a point-in-time join of " + std::to_string(n) +
        " entity rows at once: at most 2,147,483,647; split the entity rows into several "
        "retrievals");
  }
  s.entity_rows = n;
  struct Record {
    uint64_t hash;
    int64_t ts;
    int64_t row;
  };
  // Records sorted by (hash, time, row): placed first into buckets of the hash's top bits (about
  // 64 records each), which in order are ordered by hash, then each bucket sorted on its own
  // (a few records, in the cache), the threads taking runs of buckets in turn. A key's records
  // share a bucket, so a hot key makes one large bucket, sorted by one thread.
  std::vector<Record> records;
  {
    std::vector<uint64_t> hashes(n);
    entity_keys->HashRows(hashes.data());
    const int64_t* ts = entity_ts->data()->GetValues<int64_t>(1);
    const int bits =
        std::clamp(static_cast<int>(std::bit_width(static_cast<uint64_t>(n))) - 6, 0, 16);
    const int64_t buckets = int64_t{1} << bits;
    auto bucket_of = [bits](uint64_t hash) {
      return bits == 0 ? int64_t{0} : static_cast<int64_t>(hash >> (64 - bits));
    };
    std::vector<int64_t> starts(buckets + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
      if (entity_keys->IsNull(i) || entity_ts->IsNull(i)) continue;
      ++starts[bucket_of(hashes[i]) + 1];
    }
    for (int64_t b = 0; b < buckets; ++b) starts[b + 1] += starts[b];
    records.resize(static_cast<size_t>(starts[buckets]));
    {
      std::vector<int64_t> at(starts.begin(), starts.end() - 1);
      for (int64_t i = 0; i < n; ++i) {
        if (entity_keys->IsNull(i) || entity_ts->IsNull(i)) continue;
        records[at[bucket_of(hashes[i])]++] = {hashes[i], ts[i], i};
      }
    }
    hashes = {};
    constexpr int64_t kBucketsATurn = 256;
    std::atomic<int64_t> next_bucket{0};
    auto sort_buckets = [&] {
      while (true) {
        const int64_t first = next_bucket.fetch_add(kBucketsATurn);
        if (first >= buckets) return;
        for (int64_t b = first; b < std::min(buckets, first + kBucketsATurn); ++b) {
          std::sort(records.begin() + starts[b], records.begin() + starts[b + 1],
                    [](const Record& a, const Record& b) {
                      if (a.hash != b.hash) return a.hash < b.hash;
                      if (a.ts != b.ts) return a.ts < b.ts;
                      return a.row < b.row;
                    });
        }
      }
    };
    const int sorters = n >= 65536 ? s.threads : 1;
    std::vector<std::thread> pool;
    for (int t = 1; t < sorters; ++t) pool.emplace_back(sort_buckets);
    sort_buckets();
    for (auto& t : pool) t.join();
  }
  // The slots are the records in this order; a group per key.
  s.slot_row.reserve(records.size());
  s.slot_ts.reserve(records.size());
  {
    size_t runs = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      runs += i == 0 || records[i].hash != records[i - 1].hash;
    }
    s.groups.reserve(runs);
  }
  // Runs of equal hash are one key, unless hashes collide: then split the run by exact key,
  // keeping each key's rows in time order.
  for (size_t begin = 0; begin < records.size();) {
    size_t end = begin;
    while (end < records.size() && records[end].hash == records[begin].hash) ++end;
    std::vector<int64_t> reps;  // representative row of each key in the run
    std::vector<int> key_of(end - begin, 0);
    if (!s.injective) {
      for (size_t i = begin; i < end; ++i) {
        size_t k = 0;
        while (k < reps.size() && !entity_keys->Equals(reps[k], *entity_keys, records[i].row)) ++k;
        if (k == reps.size()) reps.push_back(records[i].row);
        key_of[i - begin] = static_cast<int>(k);
      }
    } else {
      reps.push_back(records[begin].row);
    }
    for (size_t k = 0; k < reps.size(); ++k) {
      Group g{records[begin].hash, INT64_MIN, INT64_MIN, static_cast<int32_t>(s.slot_row.size()),
              0};
      for (size_t i = begin; i < end; ++i) {
        if (key_of[i - begin] != static_cast<int>(k)) continue;
        if (static_cast<int32_t>(s.slot_row.size()) == g.begin) g.high = records[i].ts;
        s.slot_row.push_back(records[i].row);
        s.slot_ts.push_back(records[i].ts);
      }
      s.groups.push_back(g);
    }
    begin = end;
  }
  records = {};
  size_t capacity = 16;
  while (capacity < s.groups.size() * 2) capacity <<= 1;
  s.mask = capacity - 1;
  s.table.assign(capacity, -1);
  for (size_t g = 0; g < s.groups.size(); ++g) {
    uint64_t at = s.groups[g].hash & s.mask;
    while (s.table[at] >= 0) at = (at + 1) & s.mask;
    s.table[at] = static_cast<int32_t>(g);
  }
  s.best.assign(s.slot_row.size(), Candidate{});
  return m;
}

Status StreamingMatcher::Offer(const KeyColumns& keys, const arrow::Array& event_ts,
                               const arrow::Array* created_ts, int64_t index_offset,
                               const arrow::Array* row_index) {
  Impl& s = *impl_;
  const int64_t rows = keys.length();
  if (rows == 0 || s.groups.empty()) return Status::OK();
  // Scratch of the matcher's, reused batch after batch (Offer runs on one thread at a time).
  std::vector<uint64_t>& hashes = s.hashes;
  hashes.resize(static_cast<size_t>(rows));
  keys.HashRows(hashes.data());
  const int64_t* ts = event_ts.data()->GetValues<int64_t>(1);
  const int64_t* created = created_ts ? created_ts->data()->GetValues<int64_t>(1) : nullptr;
  const int64_t* indices = row_index ? row_index->data()->GetValues<int64_t>(1) : nullptr;
  const bool injective = s.injective && keys.hash_is_injective();
  const int workers = rows >= 4096 ? s.threads : 1;
  // The rows of each worker's keys, in order.
  std::vector<std::vector<int32_t>>& rows_of = s.rows_of;
  rows_of.resize(static_cast<size_t>(std::max<int>(workers, static_cast<int>(rows_of.size()))));
  for (auto& r : rows_of) {
    r.clear();
    r.reserve(static_cast<size_t>(rows / workers + 64));
  }
  for (int64_t i = 0; i < rows; ++i) {
    rows_of[workers == 1 ? 0 : WorkerOf(hashes[i], workers)].push_back(static_cast<int32_t>(i));
  }
  // Each row costs dependent cache misses (its table entry, then its group, then its best
  // offer), so they are fetched ahead: the table entry 16 rows ahead, the group 8 ahead (its
  // entry is in the cache by then); the loads only warm the cache, the lookup below repeats
  // them. The best offers are compared in blocks, after the block's slots are all known and
  // their best offers fetched. Offers to one slot keep their order (and the greatest wins
  // whatever the order).
  constexpr int kBlock = 32;
  auto work = [&](int worker) {
    std::vector<Candidate>& best = s.best;
    const std::vector<int32_t>& mine = rows_of[worker];
    const int64_t count = static_cast<int64_t>(mine.size());
    int64_t block_slots[kBlock];
    Candidate block_offers[kBlock];
    int pending = 0;
    auto settle = [&] {
      for (int k = 0; k < pending; ++k) {
        Candidate& current = best[block_slots[k]];
        if (block_offers[k].Beats(current)) current = block_offers[k];
      }
      pending = 0;
    };
    for (int64_t j = 0; j < count; ++j) {
      if (j + 16 < count) __builtin_prefetch(&s.table[hashes[mine[j + 16]] & s.mask]);
      if (j + 8 < count) {
        const int32_t g = s.table[hashes[mine[j + 8]] & s.mask];
        if (g >= 0) __builtin_prefetch(&s.groups[g]);
      }
      const int64_t i = mine[j];
      if (keys.IsNull(i) || event_ts.IsNull(i)) continue;
      Group* group = nullptr;
      for (uint64_t at = hashes[i] & s.mask;; at = (at + 1) & s.mask) {
        const int32_t g = s.table[at];
        if (g < 0) break;
        Group& candidate = s.groups[g];
        if (candidate.hash == hashes[i] &&
            (injective || s.entity_keys->Equals(s.slot_row[candidate.begin], keys, i))) {
          group = &candidate;
          break;
        }
      }
      if (group == nullptr) continue;
      Candidate offer;
      offer.ts = ts[i];
      offer.created = created != nullptr && created_ts->IsValid(i) ? created[i] : INT64_MIN;
      offer.index = indices != nullptr ? indices[i] : index_offset + i;
      const int64_t activation = s.cutoff ? std::max(offer.ts, offer.created) : offer.ts;
      if (activation <= group->low || activation > group->high) {
        const int64_t size = s.SizeOf(*group);
        const int64_t hint = group->cursor < 0 ? size : group->cursor;
        s.MoveCursor(group,
                     LowerBoundFrom(s.slot_ts.data() + group->begin, 0, size, hint, activation),
                     size);
      }
      if (group->cursor < 0) continue;  // after every entity row of its key
      const int64_t at = int64_t{group->begin} + group->cursor;
      __builtin_prefetch(&best[at], 1);
      block_slots[pending] = at;
      block_offers[pending] = offer;
      if (++pending == kBlock) settle();
    }
    settle();
  };
  if (workers == 1) {
    work(0);
    return Status::OK();
  }
  if (s.helpers == nullptr) s.helpers = std::make_unique<ForkJoinPool>(s.threads - 1);
  s.helpers->Run(static_cast<size_t>(workers), [&](size_t w) { work(static_cast<int>(w)); });
  return Status::OK();
}

void StreamingMatcher::Restart(Duration ttl, bool created_timestamp_cutoff) {
  Impl& s = *impl_;
  s.ttl = ttl;
  s.cutoff = created_timestamp_cutoff;
  std::fill(s.best.begin(), s.best.end(), Candidate{});
  for (Group& group : s.groups) s.MoveCursor(&group, 0, s.SizeOf(group));
}

std::vector<ChosenRow> StreamingMatcher::Finish() {
  Impl& s = *impl_;
  std::vector<ChosenRow> out(s.entity_rows);
  for (const Group& group : s.groups) {
    Candidate running;
    const int64_t end = group.begin + s.SizeOf(group);
    for (int64_t slot = group.begin; slot < end; ++slot) {
      if (s.best[slot].Beats(running)) running = s.best[slot];
      if (running.index < 0) continue;
      const int64_t t = s.slot_ts[slot];
      if (s.ttl.micros > 0 && running.ts < t - s.ttl.micros) continue;
      out[s.slot_row[slot]] = {running.index, running.ts};
    }
  }
  return out;
}

}  // namespace granary
