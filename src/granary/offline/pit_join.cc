// PointInTimeJoin: the match pass (pit_match_pass.cc, or run ahead by MatchAhead) and the gather
// pass, its columns in groups within the budget.
#include "granary/offline/pit_join.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "granary/common/phase_timings.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/pit_gather.h"
#include "granary/offline/pit_match_pass.h"
#include "granary/types/arrow_convert.h"

namespace granary {

void MatchedViewDeleter::operator()(MatchedView* matched) const { delete matched; }

namespace {

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
                                                    &match.scan, &match.fingerprint,
                                                    /*declined=*/nullptr));
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
  // Row groups of Parquet files are read in gather mode: only the chosen rows' values decoded
  // (chosen_values.h), one compact batch a row group. Called from the scan's reader threads;
  // `chosen` does not change while the scan lives.
  if (!options.TEST_read_whole_row_groups) {
    scan_options.chosen_rows = [&chosen](int64_t begin, int64_t end, std::vector<int64_t>* rows) {
      rows->clear();
      auto it =
          std::lower_bound(chosen.begin(), chosen.end(), begin,
                           [](const ChosenRow& c, int64_t position) { return c.index < position; });
      for (; it != chosen.end() && it->index < end; ++it) {
        if (rows->empty() || rows->back() != it->index) rows->push_back(it->index);
      }
    };
  }
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
      // Rows chosen before this batch's first position were in a row group read in the match
      // pass and not now: the files changed.
      if (chosen[next].index < offset) changed = true;
      if (scan->positions().rows != nullptr && !changed) {
        // The chosen rows of a row group only (gather mode), each once, in read order.
        const int64_t picked = batch->num_rows();
        const int64_t* positions =
            static_cast<const arrow::Int64Array&>(*scan->positions().rows).raw_values();
        const size_t begin = next;
        int64_t k = 0;
        bool stray = positions[0] != chosen[next].index;
        for (; next < chosen.size() && chosen[next].index <= positions[picked - 1]; ++next) {
          if (positions[k] != chosen[next].index)
            stray = stray || positions[++k] != chosen[next].index;
        }
        if (stray || k != picked - 1) {
          return Status::Internal(fmt::format(
              "feature view '{}': the gather read rows that were not chosen", source.view->name));
        }
        for (int c = 0; c < count; ++c) {
          if (scattered[c] != nullptr) {
            scattered[c]->PutChosen(*batch->column(c)->data(), positions, picked,
                                    chosen.data() + begin, chosen.data() + next);
          } else {
            pieces[c].push_back(batch->column(c));
          }
        }
        continue;
      }
      const int64_t batch_end = offset + batch->num_rows();
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
    stats->row_groups_picked = scan->stats().row_groups_picked;
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
