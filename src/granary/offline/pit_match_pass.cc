// The point-in-time join's match pass (pit_match_pass.h): the entity side, the read of keys and
// times, and the match streamed, in memory or partitioned with spill; MatchAhead.
#include "granary/offline/pit_match_pass.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "granary/common/phase_timings.h"
#include "granary/common/progress.h"
#include "granary/common/threads.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/pit_gather.h"
#include "granary/offline/pit_plan.h"
#include "granary/offline/pit_stream.h"

namespace granary {

struct EntitySideCache::Entry {
  std::vector<std::shared_ptr<arrow::Array>> keys;  // the arrays it was built over
  std::shared_ptr<arrow::Array> ts;
  std::optional<KeyColumns> key_columns;  // over `keys`; the matcher points to it
  std::unique_ptr<StreamingMatcher> matcher;
};

namespace {

constexpr const char* kRowIndexColumn = "__granary_row";

// Columns of a match-pass batch: keys, event time, created time (or -1), row index (or -1).
struct MatchLayout {
  int key_count = 0;
  int ts_index = 0;
  int created_index = -1;
  int row_index = -1;
};

// Matches entity rows against match-pass batches held in memory: the chosen row of each. Rows'
// read positions come from `positions` (one per batch) when given, else from the batches' row
// index column (layout.row_index).
Result<std::vector<ChosenRow>> MatchBatches(
    const arrow::RecordBatch& entities, const std::vector<std::string>& join_keys,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
    const std::vector<ReadPositions>* positions, const MatchLayout& layout, Duration ttl,
    const JoinOptions& options) {
  std::vector<std::shared_ptr<arrow::Array>> entity_key_arrays;
  for (const auto& k : join_keys) entity_key_arrays.push_back(entities.GetColumnByName(k));
  GRANARY_ASSIGN_OR_RAISE(KeyColumns entity_keys, KeyColumns::Make(entity_key_arrays));
  std::vector<KeyColumns> feature_keys;
  feature_keys.reserve(batches.size());
  for (const auto& batch : batches) {
    std::vector<std::shared_ptr<arrow::Array>> keys(batch->columns().begin(),
                                                    batch->columns().begin() + layout.key_count);
    GRANARY_ASSIGN_OR_RAISE(KeyColumns kc, KeyColumns::Make(std::move(keys)));
    feature_keys.push_back(std::move(kc));
  }
  std::vector<FeatureRowsView> views;
  for (size_t i = 0; i < batches.size(); ++i) {
    const auto& batch = *batches[i];
    FeatureRowsView view;
    view.keys = &feature_keys[i];
    view.event_ts = batch.column(layout.ts_index).get();
    view.created_ts =
        layout.created_index >= 0 ? batch.column(layout.created_index).get() : nullptr;
    if (positions != nullptr) {
      view.index_offset = (*positions)[i].first;
      view.row_index = (*positions)[i].rows.get();
    } else {
      view.row_index = batch.column(layout.row_index).get();
    }
    views.push_back(view);
  }
  return MatchPointInTime(entity_keys, *entities.GetColumnByName(kEventTimestampColumn), views, ttl,
                          options.created_timestamp_cutoff, options.threads);
}

// The entity rows' join keys, as KeyColumns over `entities`' arrays.
Result<KeyColumns> EntityKeys(const arrow::RecordBatch& entities,
                              const std::vector<std::string>& join_keys) {
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  for (const auto& k : join_keys) arrays.push_back(entities.GetColumnByName(k));
  return KeyColumns::Make(std::move(arrays));
}

// Calls fn(row, group) for every entity row in order, its group one of `ways` by key hash
// (EntityPartitioner::PartitionOf); rows with a null key are in group 0. Rows are hashed a block
// at a time.
template <typename Fn>
void ForEachRowGroup(const KeyColumns& keys, int ways, Fn&& fn) {
  constexpr int64_t kBlockRows = 64 * 1024;
  const int64_t n = keys.length();
  std::vector<uint64_t> hashes(static_cast<size_t>(std::min(n, kBlockRows)));
  for (int64_t begin = 0; begin < n; begin += kBlockRows) {
    const int64_t end = std::min(n, begin + kBlockRows);
    keys.HashRows(begin, end, hashes.data());
    for (int64_t i = begin; i < end; ++i) {
      fn(i, keys.IsNull(i) ? 0 : EntityPartitioner::PartitionOf(hashes[i - begin], ways));
    }
  }
}

// The entity rows of each of `ways` groups by key hash (ForEachRowGroup).
std::vector<int64_t> GroupSizes(const KeyColumns& keys, int ways) {
  std::vector<int64_t> sizes(ways, 0);
  ForEachRowGroup(keys, ways, [&sizes](int64_t, int group) { ++sizes[group]; });
  return sizes;
}

// Entity rows split `ways` ways by key hash (ForEachRowGroup), in input order within each. Each
// group's list is sized exactly, counted first: grown by push_back, thousands of groups held up
// to twice their rows' 8 bytes (at the seed's scale 56 MiB for 28, through the whole match of
// its 3,426 partitions).
std::vector<std::vector<int64_t>> SplitByKey(const KeyColumns& keys, int ways) {
  const std::vector<int64_t> sizes = GroupSizes(keys, ways);
  std::vector<std::vector<int64_t>> rows_of(ways);
  for (int g = 0; g < ways; ++g) rows_of[g].reserve(sizes[g]);
  ForEachRowGroup(keys, ways,
                  [&rows_of](int64_t row, int group) { rows_of[group].push_back(row); });
  return rows_of;
}

// Streams every batch of `scan` through a StreamingMatcher over `entities`: the chosen row of
// each entity row. The matcher comes from `cache` when it holds one built over the same entity
// arrays, and goes back to it after (may be null).
Result<std::vector<ChosenRow>> StreamMatch(const arrow::RecordBatch& entities,
                                           FeatureSourceScan* scan, const MatchLayout& layout,
                                           Duration ttl, int threads, const JoinOptions& options,
                                           EntitySideCache* cache, const std::string& what,
                                           const std::string& view_name,
                                           const std::function<void()>& report) {
  auto entity_phase = PhaseTimings::Start(options.timings, view_name + ": entity side");
  std::vector<std::shared_ptr<arrow::Array>> key_arrays;
  for (const auto& k : scan->join_keys()) key_arrays.push_back(entities.GetColumnByName(k));
  auto entity_ts = entities.GetColumnByName(kEventTimestampColumn);
  std::unique_ptr<EntitySideCache::Entry> side;
  if (cache != nullptr) side = cache->Take(key_arrays, entity_ts);
  if (side != nullptr) {
    side->matcher->Restart(ttl, options.created_timestamp_cutoff);
  } else {
    side = std::make_unique<EntitySideCache::Entry>();
    GRANARY_ASSIGN_OR_RAISE(KeyColumns key_columns, KeyColumns::Make(key_arrays));
    side->key_columns.emplace(std::move(key_columns));
    side->keys = std::move(key_arrays);
    side->ts = entity_ts;
    GRANARY_ASSIGN_OR_RAISE(side->matcher,
                            StreamingMatcher::Make(&*side->key_columns, side->ts.get(), ttl,
                                                   options.created_timestamp_cutoff, threads));
  }
  entity_phase.End();
  auto match_phase = PhaseTimings::Start(options.timings, view_name + ": match pass");
  while (true) {
    GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
    GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
    report();
    if (batch == nullptr) break;
    std::vector<std::shared_ptr<arrow::Array>> keys(batch->columns().begin(),
                                                    batch->columns().begin() + layout.key_count);
    GRANARY_ASSIGN_OR_RAISE(KeyColumns feature_keys, KeyColumns::Make(std::move(keys)));
    const ReadPositions& at = scan->positions();
    GRANARY_RETURN_NOT_OK(side->matcher->Offer(
        feature_keys, *batch->column(layout.ts_index),
        layout.created_index >= 0 ? batch->column(layout.created_index).get() : nullptr, at.first,
        at.rows.get()));
  }
  std::vector<ChosenRow> winners = side->matcher->Finish();
  if (cache != nullptr) cache->Return(std::move(side));
  return winners;
}

}  // namespace

Result<std::vector<ChosenRow>> MatchPass(const arrow::RecordBatch& entities,
                                         const ViewSource& source, const SourceSnapshot& files,
                                         const JoinOptions& options, ViewJoinStats* stats,
                                         SourceScanStats* scan_stats, uint64_t* fingerprint,
                                         bool* declined) {
  SourceScanOptions scan_options = source.options;
  scan_options.with_features = false;
  GRANARY_ASSIGN_OR_RAISE(auto scan,
                          FeatureSourceScan::Open(files, *source.defs, *source.view, scan_options));
  const std::vector<std::string> join_keys = scan->join_keys();
  *fingerprint = scan->FilesFingerprint();
  MatchLayout layout;
  layout.key_count = static_cast<int>(join_keys.size());
  layout.ts_index = scan->event_timestamp_index();
  layout.created_index = scan->has_created_timestamp() ? layout.ts_index + 1 : -1;
  const Duration ttl = source.view->ttl;
  const std::string what = fmt::format("reading feature view '{}'", source.view->name);
  const int64_t budget = std::max<int64_t>(options.memory_budget_bytes, 1);
  const int64_t n = entities.num_rows();
  const int threads = ThreadCount(options.threads);
  int64_t reported = 0;  // rows read from files, as told to the progress reporter
  auto report = [&] {
    if (options.progress == nullptr) return;
    options.progress->Add(scan->stats().rows_scanned - reported);
    reported = scan->stats().rows_scanned;
  };

  // Decide by what each way must hold (pit_plan.h).
  GRANARY_ASSIGN_OR_RAISE(KeyColumns all_keys, EntityKeys(entities, join_keys));
  MatchPlanInputs inputs;
  inputs.entity_rows = n;
  inputs.threads = threads;
  inputs.budget_bytes = budget;
  inputs.source_rows = scan->stats().rows_estimated;
  inputs.source_bytes = scan->stats().bytes_estimated;
  inputs.largest_group_rows = [&](int ways) {
    const std::vector<int64_t> sizes = GroupSizes(all_keys, ways);
    return sizes.empty() ? int64_t{0} : *std::max_element(sizes.begin(), sizes.end());
  };
  MatchPlan plan = options.TEST_force_plan ? *options.TEST_force_plan : PlanMatch(inputs);
  if (declined != nullptr) {
    std::vector<std::shared_ptr<arrow::Array>> key_arrays;
    for (const auto& k : join_keys) key_arrays.push_back(entities.GetColumnByName(k));
    *declined =
        plan.strategy != MatchStrategy::kStream || options.entity_side == nullptr ||
        !options.entity_side->Holds(key_arrays, entities.GetColumnByName(kEventTimestampColumn));
    if (*declined) return std::vector<ChosenRow>();
  }
  // The entity side of an earlier view is kept only for a streaming match: any other needs the
  // memory.
  if (plan.strategy != MatchStrategy::kStream && options.entity_side != nullptr) {
    options.entity_side->Clear();
  }
  stats->strategy = plan.strategy;
  stats->plan = plan.Describe(inputs);

  if (plan.strategy == MatchStrategy::kStream) {
    GRANARY_ASSIGN_OR_RAISE(auto winners,
                            StreamMatch(entities, scan.get(), layout, ttl, threads, options,
                                        options.entity_side, what, source.view->name, report));
    *scan_stats = scan->stats();
    stats->partitions = 0;
    return winners;
  }

  if (plan.strategy == MatchStrategy::kPasses) {
    // One read of the keys and times per group of entity rows; rows of other groups' keys find
    // no group in the matcher and are dropped.
    const int ways = std::max(1, plan.ways);
    if (options.progress != nullptr) {
      options.progress->SetTotal(scan->stats().rows_estimated * ways);
    }
    std::vector<std::vector<int64_t>> rows_of = SplitByKey(all_keys, ways);
    std::vector<ChosenRow> winners(n);
    auto all_entities = arrow::RecordBatch::Make(entities.schema(), n, entities.columns());
    *scan_stats = scan->stats();
    scan_stats->rows_scanned = scan_stats->rows_returned = 0;
    bool scan_used = false;
    for (int p = 0; p < ways; ++p) {
      GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
      if (rows_of[p].empty()) continue;
      if (scan_used) {
        GRANARY_ASSIGN_OR_RAISE(
            scan, FeatureSourceScan::Open(files, *source.defs, *source.view, scan_options));
        *fingerprint = scan->FilesFingerprint();
        reported = 0;
      }
      scan_used = true;
      GRANARY_ASSIGN_OR_RAISE(auto entity_rows, Int64Array(rows_of[p]));
      auto part_entities = arrow::compute::Take(all_entities, entity_rows);
      if (!part_entities.ok()) return Status::Internal(part_entities.status().ToString());
      GRANARY_ASSIGN_OR_RAISE(
          auto part_winners,
          StreamMatch(*part_entities->record_batch(), scan.get(), layout, ttl, threads, options,
                      /*cache=*/nullptr, what, source.view->name, report));
      for (size_t i = 0; i < rows_of[p].size(); ++i) winners[rows_of[p][i]] = part_winners[i];
      rows_of[p] = {};
      // The plan of every read is the same; the rows are counted over all of them.
      const int64_t scanned = scan_stats->rows_scanned, returned = scan_stats->rows_returned;
      *scan_stats = scan->stats();
      scan_stats->rows_scanned += scanned;
      scan_stats->rows_returned += returned;
    }
    stats->partitions = 0;
    stats->passes = ways;
    return winners;
  }

  auto sort_phase = PhaseTimings::Start(options.timings, source.view->name + ": match pass");
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::vector<ReadPositions> batch_positions;  // of each of `batches`
  int64_t bytes = 0, rows = 0;
  std::unique_ptr<EntityPartitioner> partitioner;
  std::shared_ptr<arrow::Schema> indexed_schema;
  // Past the budget, rows carry their read position into the partitions.
  auto with_index = [&](const std::shared_ptr<arrow::RecordBatch>& batch,
                        const ReadPositions& at) -> Result<std::shared_ptr<arrow::RecordBatch>> {
    std::shared_ptr<arrow::Array> array = at.rows;
    if (array == nullptr) {
      std::vector<int64_t> index(batch->num_rows());
      for (int64_t i = 0; i < batch->num_rows(); ++i) index[i] = at.first + i;
      GRANARY_ASSIGN_OR_RAISE(array, Int64Array(index));
    }
    auto added = batch->AddColumn(batch->num_columns(), kRowIndexColumn, array);
    if (!added.ok()) return Status::Internal(added.status().ToString());
    return *added;
  };
  while (true) {
    GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
    GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
    report();
    if (batch == nullptr) break;
    rows += batch->num_rows();
    if (partitioner != nullptr) {
      GRANARY_ASSIGN_OR_RAISE(auto indexed, with_index(batch, scan->positions()));
      GRANARY_RETURN_NOT_OK(partitioner->Append(indexed));
      continue;
    }
    bytes += BatchBytes(*batch);
    batches.push_back(std::move(batch));
    batch_positions.push_back(scan->positions());
    // Planned (kPartition), or the source's keys and times outgrew the budget after all (their
    // estimate was low, or unknown for CSV).
    if (plan.strategy == MatchStrategy::kPartition ||
        bytes + rows * kMatchStateBytesPerRow > budget) {
      // Each partition's rows and matching state take about a quarter of the budget.
      const int64_t per_row = bytes / rows + kMatchStateBytesPerRow + 8;
      const int64_t estimate = std::max(scan->stats().rows_estimated, rows) * per_row;
      const int64_t parts =
          plan.strategy == MatchStrategy::kPartition
              ? plan.ways
              : std::clamp<int64_t>((estimate * 4 + budget - 1) / budget, 2, 4096);
      PartitionerOptions popts;
      popts.num_partitions = static_cast<int>(parts);
      popts.memory_budget_bytes = budget / 2;
      popts.spill_parent = options.spill_dir;
      indexed_schema = batches.front()->schema();
      auto added = indexed_schema->AddField(indexed_schema->num_fields(),
                                            arrow::field(kRowIndexColumn, arrow::int64()));
      if (!added.ok()) return Status::Internal(added.status().ToString());
      indexed_schema = *added;
      GRANARY_ASSIGN_OR_RAISE(partitioner,
                              EntityPartitioner::Make(indexed_schema, join_keys, popts));
      for (size_t b = 0; b < batches.size(); ++b) {
        GRANARY_ASSIGN_OR_RAISE(auto indexed, with_index(batches[b], batch_positions[b]));
        batches[b].reset();
        GRANARY_RETURN_NOT_OK(partitioner->Append(indexed));
      }
      batches.clear();
      batch_positions.clear();
    }
  }
  *scan_stats = scan->stats();
  if (partitioner == nullptr) {
    stats->partitions = 1;
    return MatchBatches(entities, join_keys, batches, &batch_positions, layout, ttl, options);
  }
  GRANARY_RETURN_NOT_OK(partitioner->Finish());
  layout.row_index = indexed_schema->num_fields() - 1;
  const int parts = partitioner->num_partitions();
  if (plan.strategy != MatchStrategy::kPartition) {
    stats->strategy = MatchStrategy::kPartition;
    stats->plan += fmt::format(
        "; the keys and times then outgrew the estimate: split into {} partitions", parts);
  }
  // Entity rows by partition, in input order within each.
  std::vector<std::vector<int64_t>> rows_of = SplitByKey(all_keys, parts);
  std::vector<ChosenRow> winners(n);
  auto all_entities = arrow::RecordBatch::Make(entities.schema(), n, entities.columns());
  for (int p = 0; p < parts; ++p) {
    GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
    if (rows_of[p].empty()) {
      partitioner->Release(p);
      continue;
    }
    GRANARY_ASSIGN_OR_RAISE(auto table, partitioner->ReadPartition(p));
    partitioner->Release(p);
    GRANARY_ASSIGN_OR_RAISE(auto entity_rows, Int64Array(rows_of[p]));
    auto part_entities = arrow::compute::Take(all_entities, entity_rows);
    if (!part_entities.ok()) return Status::Internal(part_entities.status().ToString());
    arrow::TableBatchReader reader(*table);
    auto part_batches = reader.ToRecordBatches();
    if (!part_batches.ok()) {
      return Status::Internal(
          fmt::format("feature view '{}': splitting partition {} of {} into "
                      "batches failed: {}",
                      source.view->name, p, parts, part_batches.status().message()));
    }
    GRANARY_ASSIGN_OR_RAISE(auto part_winners,
                            MatchBatches(*part_entities->record_batch(), join_keys, *part_batches,
                                         nullptr, layout, ttl, options));
    for (size_t i = 0; i < rows_of[p].size(); ++i) winners[rows_of[p][i]] = part_winners[i];
    rows_of[p] = {};
  }
  stats->partitions = parts;
  stats->bytes_spilled = partitioner->stats().bytes_spilled;
  return winners;
}

void PutInReadOrder(std::vector<ChosenRow>* chosen) {
  const int64_t n = static_cast<int64_t>(chosen->size());
  int64_t matched = 0;
  int64_t last_position = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = (*chosen)[i].index;
    if (index < 0) continue;
    last_position = std::max(last_position, index);
    (*chosen)[matched++] = ChosenRow{index, i};
  }
  chosen->resize(matched);
  SortByReadPosition(chosen, last_position);
}

Result<std::shared_ptr<arrow::Array>> Int64Array(const std::vector<int64_t>& values) {
  arrow::Int64Builder builder;
  if (!builder.AppendValues(values).ok()) return Status::Internal("out of memory");
  std::shared_ptr<arrow::Array> out;
  if (!builder.Finish(&out).ok()) return Status::Internal("out of memory");
  return out;
}

EntitySideCache::EntitySideCache() = default;
EntitySideCache::~EntitySideCache() = default;

void EntitySideCache::Clear() { entry_.reset(); }

namespace {

// The same array: the same buffers at the same offset and length (so the same values, whatever
// the shared_ptr holding them).
bool SameArray(const arrow::Array& a, const arrow::Array& b) {
  const arrow::ArrayData& x = *a.data();
  const arrow::ArrayData& y = *b.data();
  if (x.type->id() != y.type->id() || !x.type->Equals(*y.type) || x.length != y.length ||
      x.offset != y.offset || x.buffers.size() != y.buffers.size() ||
      x.child_data.size() != y.child_data.size() || x.dictionary != nullptr ||
      y.dictionary != nullptr) {
    return false;
  }
  for (size_t i = 0; i < x.buffers.size(); ++i) {
    if ((x.buffers[i] == nullptr) != (y.buffers[i] == nullptr)) return false;
    if (x.buffers[i] != nullptr && (x.buffers[i]->data() != y.buffers[i]->data() ||
                                    x.buffers[i]->size() != y.buffers[i]->size())) {
      return false;
    }
  }
  for (size_t i = 0; i < x.child_data.size(); ++i) {
    if (!SameArray(*arrow::MakeArray(x.child_data[i]), *arrow::MakeArray(y.child_data[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool EntitySideCache::Holds(const std::vector<std::shared_ptr<arrow::Array>>& keys,
                            const std::shared_ptr<arrow::Array>& ts) const {
  if (entry_ == nullptr || entry_->keys.size() != keys.size() || !SameArray(*entry_->ts, *ts)) {
    return false;
  }
  for (size_t k = 0; k < keys.size(); ++k) {
    if (!SameArray(*entry_->keys[k], *keys[k])) return false;
  }
  return true;
}

std::unique_ptr<EntitySideCache::Entry> EntitySideCache::Take(
    const std::vector<std::shared_ptr<arrow::Array>>& keys,
    const std::shared_ptr<arrow::Array>& ts) {
  const bool same = Holds(keys, ts);
  std::unique_ptr<Entry> entry = std::move(entry_);
  return same ? std::move(entry) : nullptr;
}

void EntitySideCache::Return(std::unique_ptr<Entry> entry) {
  if (keep_) entry_ = std::move(entry);
}

Result<MatchedViewPtr> MatchAhead(const arrow::RecordBatch& entities, const ViewSource& source,
                                  const JoinOptions& options, MatchAheadIf run_if) {
  MatchedViewPtr matched(new MatchedView);
  matched->view = source.view;
  matched->rows = entities.num_rows();
  GRANARY_ASSIGN_OR_RAISE(matched->files,
                          SourceSnapshot::Read(source.repo_root, *source.defs, *source.view));
  bool declined = false;
  GRANARY_ASSIGN_OR_RAISE(
      matched->chosen,
      MatchPass(entities, source, matched->files, options, &matched->stats, &matched->scan,
                &matched->fingerprint, run_if == MatchAheadIf::kAlways ? nullptr : &declined));
  if (declined) return MatchedViewPtr();
  PutInReadOrder(&matched->chosen);
  matched->in_read_order = true;
  return matched;
}

}  // namespace granary
