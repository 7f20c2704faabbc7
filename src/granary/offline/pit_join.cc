#include "granary/offline/pit_join.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "granary/common/progress.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"

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

int ThreadCount(int requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

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

Result<std::vector<int64_t>> MatchPointInTime(const KeyColumns& entity_keys,
                                              const arrow::Array& entity_ts,
                                              const std::vector<FeatureRowsView>& features,
                                              Duration ttl, bool created_timestamp_cutoff,
                                              int threads) {
  threads = ThreadCount(threads);
  const int64_t n = entity_keys.length();
  std::vector<int64_t> winners(n, -1);
  bool injective = entity_keys.hash_is_injective();

  // Feature records, written straight into bucket order in two parallel passes over the chunks:
  // count per (chunk, bucket), then place. Within a bucket, chunks keep read order.
  const size_t chunks = features.size();
  std::vector<int64_t> chunk_offsets;
  for (const auto& chunk : features) {
    injective = injective && chunk.keys->hash_is_injective();
    chunk_offsets.push_back(chunk.index_offset);
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
    for (int64_t i = 0; i < chunk.keys->length(); ++i) {
      if (!usable(chunk, i)) continue;
      int64_t cr = INT64_MIN;
      if (created != nullptr && chunk.created_ts->IsValid(i)) cr = created[i];
      fb[next[BucketOf(hashes[i])]++] = {hashes[i], ts[i], cr, chunk.index_offset + i};
    }
    chunk_hashes[c] = {};
    return Status::OK();
  }));
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

  // Feature index -> (chunk, row), for key comparisons when hashes may collide.
  auto locate = [&](int64_t index) {
    size_t c = std::upper_bound(chunk_offsets.begin(), chunk_offsets.end(), index) -
               chunk_offsets.begin() - 1;
    return std::pair<size_t, int64_t>(c, index - chunk_offsets[c]);
  };
  const int64_t ttl_micros = ttl.micros;
  Status st = ParallelFor(kBuckets, threads, [&](int64_t b) -> Status {
    FeatureRecord* F = fb.data();
    EntityRecord* E = eb.data();
    std::sort(F + foff[b], F + foff[b + 1], [](const FeatureRecord& x, const FeatureRecord& y) {
      if (x.hash != y.hash) return x.hash < y.hash;
      if (x.ts != y.ts) return x.ts < y.ts;
      if (x.created != y.created) return x.created < y.created;
      return x.index < y.index;
    });
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
        const int64_t lower = ttl_micros > 0 ? t - ttl_micros : INT64_MIN;
        for (int64_t j = after; j-- > group_begin;) {
          if (F[j].ts < lower) break;
          if (created_timestamp_cutoff && F[j].created > t) continue;
          if (!injective) {
            auto [c, row] = locate(F[j].index);
            if (!entity_keys.Equals(E[e].row, *features[c].keys, row)) continue;
          }
          winners[E[e].row] = F[j].index;
          break;
        }
      }
      f = group_end;
    }
    return Status::OK();
  });
  GRANARY_RETURN_NOT_OK(st);
  return winners;
}

namespace {

int64_t BatchBytes(const arrow::RecordBatch& batch) {
  int64_t total = 0;
  for (const auto& column : batch.columns()) total += arrow::util::TotalBufferSize(*column);
  return total;
}

// Join state per feature row besides the data: its 32-byte record and 8 bytes of hash.
constexpr int64_t kStateBytesPerRow = 40;

// Joins entity rows to feature batches held in memory; returns the feature columns (the batches'
// columns from `first_feature` on), one value per entity row.
Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> JoinInMemory(
    const arrow::RecordBatch& entities, const std::vector<std::string>& join_keys,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
    const std::shared_ptr<arrow::Schema>& feature_schema, int created_index, int first_feature,
    Duration ttl, const JoinOptions& options, int64_t* matched) {
  std::vector<std::shared_ptr<arrow::ChunkedArray>> out;
  if (batches.empty()) {  // no feature rows: every value is null
    for (int c = first_feature; c < feature_schema->num_fields(); ++c) {
      auto nulls = arrow::MakeArrayOfNull(feature_schema->field(c)->type(), entities.num_rows());
      if (!nulls.ok()) return Status::Internal(nulls.status().ToString());
      out.push_back(std::make_shared<arrow::ChunkedArray>(*nulls));
    }
    return out;
  }
  std::vector<std::shared_ptr<arrow::Array>> entity_key_arrays;
  for (const auto& k : join_keys) entity_key_arrays.push_back(entities.GetColumnByName(k));
  GRANARY_ASSIGN_OR_RAISE(KeyColumns entity_keys, KeyColumns::Make(entity_key_arrays));
  auto entity_ts = entities.GetColumnByName(kEventTimestampColumn);

  std::vector<KeyColumns> feature_keys;
  feature_keys.reserve(batches.size());
  std::vector<FeatureRowsView> views;
  int64_t offset = 0;
  const int key_count = static_cast<int>(join_keys.size());
  for (const auto& batch : batches) {
    std::vector<std::shared_ptr<arrow::Array>> keys(batch->columns().begin(),
                                                    batch->columns().begin() + key_count);
    GRANARY_ASSIGN_OR_RAISE(KeyColumns kc, KeyColumns::Make(std::move(keys)));
    feature_keys.push_back(std::move(kc));
  }
  for (size_t i = 0; i < batches.size(); ++i) {
    const auto& batch = batches[i];
    views.push_back({&feature_keys[i], batch->column(key_count).get(),
                     created_index >= 0 ? batch->column(created_index).get() : nullptr, offset});
    offset += batch->num_rows();
  }
  GRANARY_ASSIGN_OR_RAISE(auto winners,
                          MatchPointInTime(entity_keys, *entity_ts, views, ttl,
                                           options.created_timestamp_cutoff, options.threads));
  arrow::Int64Builder builder;
  if (!builder.Reserve(static_cast<int64_t>(winners.size())).ok()) {
    return Status::Internal("out of memory");
  }
  for (int64_t w : winners) {
    if (w < 0) {
      builder.UnsafeAppendNull();
    } else {
      builder.UnsafeAppend(w);
      ++*matched;
    }
  }
  std::shared_ptr<arrow::Array> indices;
  if (!builder.Finish(&indices).ok()) return Status::Internal("out of memory");
  for (int c = first_feature; c < feature_schema->num_fields(); ++c) {
    arrow::ArrayVector chunks;
    for (const auto& batch : batches) chunks.push_back(batch->column(c));
    auto column = std::make_shared<arrow::ChunkedArray>(chunks, feature_schema->field(c)->type());
    auto taken = arrow::compute::Take(column, indices);
    if (!taken.ok()) return Status::Internal(taken.status().ToString());
    out.push_back(taken->chunked_array());
  }
  return out;
}

}  // namespace

Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> PointInTimeJoin(
    const arrow::RecordBatch& entities, FeatureSourceScan* scan, Duration ttl,
    const JoinOptions& options, ViewJoinStats* stats) {
  const auto& schema = scan->schema();
  const auto& join_keys = scan->join_keys();
  const int key_count = static_cast<int>(join_keys.size());
  const int created_index = scan->has_created_timestamp() ? key_count + 1 : -1;
  const int first_feature = key_count + 1 + (scan->has_created_timestamp() ? 1 : 0);
  for (const auto& k : join_keys) {
    if (entities.GetColumnByName(k) == nullptr) {
      return Status::Internal(fmt::format("entity rows lack join key '{}'", k));
    }
  }
  const int64_t budget = std::max<int64_t>(options.memory_budget_bytes, 1);
  int64_t matched = 0;

  // Read into memory while it fits; past the budget, switch to partitions that spill.
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  int64_t bytes = 0, rows = 0;
  std::unique_ptr<EntityPartitioner> partitioner;
  int64_t reported = 0;  // rows read from files, as told to the progress reporter
  while (true) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
    if (options.progress != nullptr) {
      options.progress->Add(scan->stats().rows_scanned - reported);
      reported = scan->stats().rows_scanned;
    }
    if (batch == nullptr) break;
    if (partitioner != nullptr) {
      GRANARY_RETURN_NOT_OK(partitioner->Append(batch));
      continue;
    }
    bytes += BatchBytes(*batch);
    rows += batch->num_rows();
    batches.push_back(std::move(batch));
    if (bytes + rows * kStateBytesPerRow > budget) {
      const int64_t estimate =
          std::max(scan->stats().bytes_estimated, bytes) + rows * kStateBytesPerRow;
      // A partition holds about a quarter of the budget, so it and its join state fit.
      const int64_t parts = std::clamp<int64_t>((estimate * 4 + budget - 1) / budget, 2, 4096);
      PartitionerOptions popts;
      popts.num_partitions = static_cast<int>(parts);
      popts.memory_budget_bytes = budget / 2;
      popts.spill_parent = options.spill_dir;
      GRANARY_ASSIGN_OR_RAISE(partitioner, EntityPartitioner::Make(schema, join_keys, popts));
      for (auto& b : batches) {
        GRANARY_RETURN_NOT_OK(partitioner->Append(b));
        b.reset();
      }
      batches.clear();
    }
  }
  if (stats != nullptr) stats->scan = scan->stats();
  if (partitioner == nullptr) {
    if (stats != nullptr) stats->partitions = 1;
    auto out = JoinInMemory(entities, join_keys, batches, schema, created_index, first_feature, ttl,
                            options, &matched);
    if (stats != nullptr) stats->rows_matched = matched;
    return out;
  }
  GRANARY_RETURN_NOT_OK(partitioner->Finish());
  const int parts = partitioner->num_partitions();
  // Entity rows by partition, in input order within each.
  std::vector<std::shared_ptr<arrow::Array>> entity_key_arrays;
  for (const auto& k : join_keys) entity_key_arrays.push_back(entities.GetColumnByName(k));
  GRANARY_ASSIGN_OR_RAISE(KeyColumns entity_keys, KeyColumns::Make(entity_key_arrays));
  const int64_t n = entities.num_rows();
  std::vector<uint64_t> hashes(n);
  entity_keys.HashRows(hashes.data());
  std::vector<std::vector<int64_t>> rows_of(parts);
  for (int64_t i = 0; i < n; ++i) {
    rows_of[entity_keys.IsNull(i) ? 0 : EntityPartitioner::PartitionOf(hashes[i], parts)].push_back(
        i);
  }
  hashes = {};
  // Results per partition, then put back into input order with one Take.
  std::vector<arrow::ArrayVector> result_chunks(schema->num_fields() - first_feature);
  std::vector<int64_t> position(n);  // entity row -> row in the concatenated results
  int64_t produced = 0;
  for (int p = 0; p < parts; ++p) {
    if (rows_of[p].empty()) {
      partitioner->Release(p);
      continue;
    }
    GRANARY_ASSIGN_OR_RAISE(auto table, partitioner->ReadPartition(p));
    partitioner->Release(p);
    arrow::Int64Builder ib;
    if (!ib.AppendValues(rows_of[p]).ok()) return Status::Internal("out of memory");
    std::shared_ptr<arrow::Array> entity_rows;
    if (!ib.Finish(&entity_rows).ok()) return Status::Internal("out of memory");
    auto part_entities = arrow::compute::Take(
        arrow::RecordBatch::Make(entities.schema(), n, entities.columns()), entity_rows);
    if (!part_entities.ok()) return Status::Internal(part_entities.status().ToString());
    arrow::TableBatchReader reader(*table);
    auto part_batches = reader.ToRecordBatches();
    if (!part_batches.ok()) return Status::Internal("cannot read a partition");
    GRANARY_ASSIGN_OR_RAISE(
        auto columns, JoinInMemory(*part_entities->record_batch(), join_keys, *part_batches, schema,
                                   created_index, first_feature, ttl, options, &matched));
    for (size_t c = 0; c < columns.size(); ++c) {
      for (const auto& chunk : columns[c]->chunks()) result_chunks[c].push_back(chunk);
    }
    for (int64_t row : rows_of[p]) position[row] = produced++;
    rows_of[p] = {};
  }
  if (stats != nullptr) {
    stats->partitions = parts;
    stats->bytes_spilled = partitioner->stats().bytes_spilled;
    stats->rows_matched = matched;
  }
  partitioner.reset();
  arrow::Int64Builder pb;
  if (!pb.AppendValues(position).ok()) return Status::Internal("out of memory");
  std::shared_ptr<arrow::Array> order;
  if (!pb.Finish(&order).ok()) return Status::Internal("out of memory");
  std::vector<std::shared_ptr<arrow::ChunkedArray>> out;
  for (size_t c = 0; c < result_chunks.size(); ++c) {
    if (n == 0) {
      out.push_back(std::make_shared<arrow::ChunkedArray>(
          arrow::ArrayVector{}, schema->field(first_feature + static_cast<int>(c))->type()));
      continue;
    }
    auto column = std::make_shared<arrow::ChunkedArray>(
        result_chunks[c], schema->field(first_feature + static_cast<int>(c))->type());
    auto taken = arrow::compute::Take(column, order);
    if (!taken.ok()) return Status::Internal(taken.status().ToString());
    out.push_back(taken->chunked_array());
  }
  return out;
}

}  // namespace granary
