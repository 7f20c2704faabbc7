// PointInTimeJoin: the match pass (in memory or partitioned with spill) and the gather pass.
#include "granary/offline/pit_join.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/bit_util.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#include "granary/common/phase_timings.h"
#include "granary/common/progress.h"
#include "granary/common/threads.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/pit_gather.h"
#include "granary/offline/pit_plan.h"
#include "granary/offline/pit_stream.h"
#include "granary/types/arrow_convert.h"

namespace granary {

struct MatchedView {
  const FeatureView* view = nullptr;  // the join it is for: this view over `rows` entity rows
  int64_t rows = 0;
  SourceSnapshot files;  // the listing both passes read
  std::vector<ChosenRow> chosen;
  SourceScanStats scan;  // the match pass's (last) read
  uint64_t fingerprint = 0;
  ViewJoinStats stats;  // how the match ran
  // `chosen` made the gather pass's list already (PutInReadOrder), on the thread that matched:
  // it is held beside the other work at its size, 16 bytes a matched entity row.
  bool in_read_order = false;
};

void MatchedViewDeleter::operator()(MatchedView* matched) const { delete matched; }

struct EntitySideCache::Entry {
  std::vector<std::shared_ptr<arrow::Array>> keys;  // the arrays it was built over
  std::shared_ptr<arrow::Array> ts;
  std::optional<KeyColumns> key_columns;  // over `keys`; the matcher points to it
  std::unique_ptr<StreamingMatcher> matcher;
};

namespace {

constexpr const char* kRowIndexColumn = "__granary_row";

Result<std::shared_ptr<arrow::Array>> Int64Array(const std::vector<int64_t>& values) {
  arrow::Int64Builder builder;
  if (!builder.AppendValues(values).ok()) return Status::Internal("out of memory");
  std::shared_ptr<arrow::Array> out;
  if (!builder.Finish(&out).ok()) return Status::Internal("out of memory");
  return out;
}

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

// Pass 1: each entity row's chosen feature row (by read position, FeatureSourceScan::
// positions). `fingerprint`: the files the (last) read planned, FilesFingerprint. With
// `declined` (MatchAhead), only a match that streams with the entity side options.entity_side
// holds runs; any other sets *declined and returns before reading a row.
Result<std::vector<ChosenRow>> MatchPass(const arrow::RecordBatch& entities,
                                         const ViewSource& source, const SourceSnapshot& files,
                                         const JoinOptions& options, ViewJoinStats* stats,
                                         SourceScanStats* scan_stats, uint64_t* fingerprint,
                                         bool* declined = nullptr) {
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

bool SamePlan(const SourceScanStats& a, const SourceScanStats& b) {
  return a.files_total == b.files_total && a.files_pruned == b.files_pruned &&
         a.row_groups_total == b.row_groups_total && a.row_groups_pruned == b.row_groups_pruned &&
         a.rows_estimated == b.rows_estimated;
}

// The features the join outputs, in order: the scan options' list, or every plain feature of
// the view.
std::vector<std::string> RequestedFeatures(const ViewSource& source) {
  if (!source.options.features.empty()) return source.options.features;
  std::vector<std::string> names;
  for (const Field& field : source.view->schema) names.push_back(field.name);
  return names;
}

// The match pass's list (a ChosenRow per entity row) made the gather pass's: only the matched
// entity rows, each with the entity row that chose it (EntityRowOf), in read order; compacted,
// then sorted into a list of its own size (16 bytes a matched entity row).
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

// Both passes; the gather in groups of consecutive columns when `in_groups` (each group's
// columns handed to `sink` once gathered), else in one read.
Status JoinPointInTime(const arrow::RecordBatch& entities, const ViewSource& source,
                       const JoinOptions& options, bool in_groups, const GatheredColumnsSink& sink,
                       ViewJoinStats* stats) {
  ViewJoinStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  const int64_t n = entities.num_rows();
  MatchedView match;
  if (options.matched != nullptr) {
    if (options.matched->view != source.view || options.matched->rows != n) {
      return Status::Internal(fmt::format(
          "feature view '{}': the join was given the match pass of another view or entity rows",
          source.view->name));
    }
    match = std::move(*options.matched);
    *stats = match.stats;
  } else {
    // Both passes read the files of one listing (one Delta version): files added or commits made
    // in between are not seen, so only a change to the files read can fail the join.
    GRANARY_ASSIGN_OR_RAISE(match.files,
                            SourceSnapshot::Read(source.repo_root, *source.defs, *source.view));
    GRANARY_ASSIGN_OR_RAISE(match.chosen, MatchPass(entities, source, match.files, options, stats,
                                                    &match.scan, &match.fingerprint));
  }
  const SourceSnapshot& files = match.files;
  std::vector<ChosenRow>& chosen = match.chosen;
  const SourceScanStats& match_stats = match.scan;
  const uint64_t match_fingerprint = match.fingerprint;
  stats->scan = match_stats;
  // What the match pass freed (its workers' partitions and arenas) goes back before the gather
  // sorts the list of chosen rows into a copy of its size: mimalloc would keep it for its purge
  // delay (5 s) beside that copy (at the seed's scale with 64 MiB, 421 MiB sampled for 2 s).
  ReleaseFreedMemory();

  if (options.TEST_after_match_pass) options.TEST_after_match_pass();
  std::optional<PhaseTimings::Scope> gather_phase;
  gather_phase.emplace(PhaseTimings::Start(options.timings, source.view->name + ": gather pass"));
  // The chosen rows in read order, with the entity rows that chose them (EntityRowOf): 16 bytes
  // a matched entity row. A match run ahead did it already.
  if (!match.in_read_order) PutInReadOrder(&chosen);
  const int64_t matched = static_cast<int64_t>(chosen.size());
  stats->rows_matched = matched;
  // Columns put in entity order by a Take gather each chosen row's value once, however many
  // entity rows chose it: a small view's few rows, not one value per entity row in read order.
  const int64_t distinct = DistinctChosenRows(chosen);
  const int64_t list_bytes =
      static_cast<int64_t>(chosen.capacity()) * static_cast<int64_t>(sizeof(ChosenRow));

  // The columns in groups: as many consecutive columns as fit beside the list of chosen rows
  // (and the order array, for columns put in entity order by a Take) in the budget, at least one.
  const std::vector<std::string> features = RequestedFeatures(source);
  const int feature_count = static_cast<int>(features.size());
  // A group may always be as large as the largest column: small columns (bools) join a group
  // rather than cost a read of their own once the list alone passes the budget.
  std::vector<std::shared_ptr<arrow::DataType>> types;
  int64_t largest = 0;
  for (const std::string& name : features) {
    // Not a feature of the view: the scan says so when it is opened.
    const Field* field = source.view->FindFeature(name);
    types.push_back(field != nullptr ? ToArrowType(field->type) : arrow::utf8());
    largest = std::max(largest, GatherBytesFor(*types.back(), n, distinct));
  }
  std::vector<int> group_ends;  // each group's end (a feature index), ascending
  {
    int64_t group_bytes = 0;
    bool group_takes = false;
    int group_size = 0;
    for (int c = 0; c < feature_count; ++c) {
      const auto& type = types[c];
      const int64_t bytes = GatherBytesFor(*type, n, distinct);
      const bool takes = !ScatteredColumn::Supports(*type);
      const int64_t state = list_bytes + (group_takes || takes ? EntityOrderBytes(n) : 0);
      if (in_groups && group_size > 0 &&
          group_bytes + bytes > std::max(options.memory_budget_bytes - state, largest)) {
        group_ends.push_back(c);
        group_bytes = 0;
        group_takes = false;
        group_size = 0;
      }
      group_bytes += bytes;
      group_takes = group_takes || takes;
      ++group_size;
    }
    group_ends.push_back(feature_count);
  }

  // Pass 2: the same files and row groups again, once per group, now only the group's features
  // (the read positions of the match pass find the rows: neither keys nor times are read
  // again); keep the chosen rows only, and leave row groups that hold none unread.
  SourceScanOptions scan_options = source.options;
  scan_options.with_join_keys = false;
  scan_options.with_created_timestamp = false;
  scan_options.with_event_timestamp = false;
  scan_options.wants_rows = [&chosen](int64_t begin, int64_t end) {
    auto it =
        std::lower_bound(chosen.begin(), chosen.end(), begin,
                         [](const ChosenRow& c, int64_t position) { return c.index < position; });
    return it != chosen.end() && it->index < end;
  };
  const std::string what = fmt::format("reading feature view '{}'", source.view->name);
  const std::string changed_message = fmt::format(
      "feature view '{}': its source changed while it was being read (files it read were "
      "rewritten between the two passes of the join); run the retrieval again",
      source.view->name);
  stats->gather_reads = 0;
  stats->gather_held_bytes = list_bytes;
  int first = 0;
  for (size_t g = 0; g < group_ends.size(); ++g) {
    const int end_column = group_ends[g];
    // Several groups: the first phase was the list's sort; then one phase a group.
    if (group_ends.size() > 1) {
      gather_phase.emplace(PhaseTimings::Start(
          options.timings, fmt::format("{}: gather pass, columns {} to {} of {}", source.view->name,
                                       first + 1, end_column, feature_count)));
    }
    scan_options.features.assign(features.begin() + first, features.begin() + end_column);
    GRANARY_ASSIGN_OR_RAISE(
        auto scan, FeatureSourceScan::Open(files, *source.defs, *source.view, scan_options));
    ++stats->gather_reads;
    const auto schema = scan->schema();
    const int count = schema->num_fields();
    // Fixed-width columns are written in entity order as they are gathered; the others are
    // gathered in read order (pieces), then put in entity order with one Take.
    std::vector<std::unique_ptr<ScatteredColumn>> scattered(count);
    int64_t held = list_bytes;
    bool any_taken = false;
    for (int c = 0; c < count; ++c) {
      const auto& type = schema->field(c)->type();
      held += GatherBytesFor(*type, n, distinct);
      if (ScatteredColumn::Supports(*type)) {
        GRANARY_ASSIGN_OR_RAISE(scattered[c],
                                ScatteredColumn::Make(type, n, options.output_chunk_rows));
      } else {
        any_taken = true;
      }
    }
    if (any_taken) held += EntityOrderBytes(n);
    stats->gather_held_bytes = std::max(stats->gather_held_bytes, held);
    std::vector<arrow::ArrayVector> pieces(count);
    size_t next = 0;
    // The files must be the ones the match pass planned to read (same row groups, same footers).
    bool changed =
        !SamePlan(scan->stats(), match_stats) || scan->FilesFingerprint() != match_fingerprint;
    std::vector<int64_t> local;
    while (!changed && next < chosen.size()) {
      GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
      GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
      if (batch == nullptr) break;
      const int64_t offset = scan->positions().first;
      const int64_t batch_end = offset + batch->num_rows();
      // Rows chosen before this batch's first position were in a row group read in the match
      // pass and not now: the files changed.
      if (chosen[next].index < offset) changed = true;
      const size_t begin = next;
      while (next < chosen.size() && chosen[next].index < batch_end) ++next;
      if (next == begin) continue;
      std::shared_ptr<arrow::Array> indices;
      for (int c = 0; c < count; ++c) {
        const arrow::Array& values = *batch->column(c);
        if (scattered[c] != nullptr) {
          scattered[c]->Put(*values.data(), offset, chosen.data() + begin, chosen.data() + next);
          continue;
        }
        if (indices == nullptr) {
          // Each chosen row once (EntityOrder's places): the list is sorted by read position.
          local.clear();
          for (size_t i = begin; i < next; ++i) {
            if (i == begin || chosen[i].index != chosen[i - 1].index) {
              local.push_back(chosen[i].index - offset);
            }
          }
          GRANARY_ASSIGN_OR_RAISE(indices, Int64Array(local));
        }
        auto taken = arrow::compute::Take(values, *indices);
        if (!taken.ok()) return Status::Internal(taken.status().ToString());
        pieces[c].push_back(*taken);
      }
    }
    if (changed || next < chosen.size()) return Status::FailedPrecondition(changed_message);
    // A file rewritten while the gather pass read it (after its footer was read).
    GRANARY_RETURN_NOT_OK(
        files.CheckUnchanged(fmt::format("feature view '{}'", source.view->name)));
    stats->row_groups_skipped = scan->stats().row_groups_skipped;
    scan.reset();
    local = {};
    std::vector<std::shared_ptr<arrow::ChunkedArray>> out(count);
    for (int c = 0; c < count; ++c) {
      if (scattered[c] != nullptr) {
        out[c] = scattered[c]->Finish();
        scattered[c].reset();
      }
    }
    gather_phase->End();
    if (any_taken) {
      auto order_phase = PhaseTimings::Start(options.timings, source.view->name + ": entity order");
      // Put the gathered values into entity order: entity row i takes gathered position p(i).
      GRANARY_ASSIGN_OR_RAISE(auto order, EntityOrder(chosen, n));
      for (int c = 0; c < count; ++c) {
        if (out[c] != nullptr) continue;
        const auto& type = schema->field(c)->type();
        if (pieces[c].empty()) {
          auto nulls = arrow::MakeArrayOfNull(type, n);
          if (!nulls.ok()) return Status::Internal(nulls.status().ToString());
          out[c] = std::make_shared<arrow::ChunkedArray>(*nulls);
          continue;
        }
        auto column = std::make_shared<arrow::ChunkedArray>(std::move(pieces[c]), type);
        auto taken = arrow::compute::Take(column, order);
        if (!taken.ok()) return Status::Internal(taken.status().ToString());
        out[c] = taken->chunked_array();
      }
    }
    GRANARY_RETURN_NOT_OK(sink(first, std::move(out)));
    first = end_column;
  }
  return Status::OK();
}

}  // namespace

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

Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> PointInTimeJoin(
    const arrow::RecordBatch& entities, const ViewSource& source, const JoinOptions& options,
    ViewJoinStats* stats) {
  std::vector<std::shared_ptr<arrow::ChunkedArray>> out;
  auto keep = [&out](int, std::vector<std::shared_ptr<arrow::ChunkedArray>> columns) {
    for (auto& column : columns) out.push_back(std::move(column));
    return Status::OK();
  };
  GRANARY_RETURN_NOT_OK(
      JoinPointInTime(entities, source, options, /*in_groups=*/false, keep, stats));
  return out;
}

Status PointInTimeJoinInto(const arrow::RecordBatch& entities, const ViewSource& source,
                           const JoinOptions& options, const GatheredColumnsSink& sink,
                           ViewJoinStats* stats) {
  return JoinPointInTime(entities, source, options, /*in_groups=*/true, sink, stats);
}

}  // namespace granary
