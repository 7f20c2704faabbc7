#include "granary/offline/historical.h"

#include <arrow/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <thread>

#include "granary/common/phase_timings.h"
#include "granary/common/progress.h"
#include "granary/common/strings.h"
#include "granary/offline/entity_rows.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/scan_buffer_pool.h"
#include "granary/offline/window_join.h"
#include "granary/registry/feature_resolver.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

// Rows per batch of the joins' scans when memory is not short. Parquet's record reader reserves
// room for the batch's values rounded up to a power of two, then may decode up to a page of
// levels (writers cap a page at 20,000 rows) past the batch, and grows (copies) its buffers when
// that passes the reservation: with 64 Ki rows nearly every batch grew and was then shrunk to
// fit, about 5 GB of copies on bench/pit_join's 4 GiB case. 96 Ki rows leave 32 Ki rows of room
// (and fewer batches).
constexpr int64_t kRoomyBatchRows = 96 * 1024;

// Bytes per value of a column in memory, for budgeting (strings and lists: a guess).
int64_t ValueWidth(ValueType type) {
  if (type.is_list) return 32;
  switch (type.scalar) {
    case ScalarType::kBool:
      return 1;
    case ScalarType::kInt32:
    case ScalarType::kFloat32:
      return 4;
    case ScalarType::kString:
    case ScalarType::kBytes:
      return 16;
    default:
      return 8;
  }
}

// Bytes in MiB for messages, with one decimal below 10 MiB.
std::string MiB(int64_t bytes) {
  const double mib = static_cast<double>(bytes) / (1 << 20);
  return mib < 10 ? fmt::format("{:.1f} MiB", mib) : fmt::format("{:.0f} MiB", mib);
}

// Says in `report` where a view's `count` output columns (`bytes` in all) went: held, or
// spilled (in `groups` groups of columns gathered one read of the source each) because with
// the `held_before` bytes held they would pass half the budget.
void ReportViewOutput(const TrainingSetOutput& output, size_t count, int64_t bytes, bool spilled,
                      int64_t held_before, int groups, int64_t budget,
                      HistoricalStats::View* report) {
  report->output_bytes = bytes;
  report->output_spilled = spilled;
  const std::string what =
      fmt::format("{} output column{} ({})", count, count == 1 ? "" : "s", MiB(bytes));
  if (spilled) {
    report->output_plan = fmt::format(
        "{} spilled to disk until the training set is written (with the {} of entity rows and "
        "columns held they would pass half the {} memory budget), then read back one row group "
        "at a time",
        what, MiB(held_before), MiB(budget));
    if (groups > 1) {
      report->output_plan += fmt::format(
          "; gathered and spilled in {} groups of columns, one read of the source's features "
          "each, so that the join held one group at a time",
          groups);
    }
  } else {
    report->output_plan = fmt::format(
        "{} held in memory until the training set is written ({} held in all, within half the {} "
        "memory budget)",
        what, MiB(output.held_bytes()), MiB(budget));
  }
}

// Hands a view's output columns to `output` (held or spilled, TrainingSetOutput decides by its
// half of the budget) and says which and why in `report`.
Status PlaceViewOutput(TrainingSetOutput* output, arrow::FieldVector fields,
                       arrow::ChunkedArrayVector columns, int64_t budget,
                       HistoricalStats::View* report) {
  const size_t count = columns.size();
  const int64_t held_before = output->held_bytes();
  GRANARY_ASSIGN_OR_RAISE(OutputPlacement placed,
                          output->Add(std::move(fields), std::move(columns)));
  ReportViewOutput(*output, count, placed.bytes, placed.spilled, held_before, 1, budget, report);
  return Status::OK();
}

// The least bytes TrainingSetOutput::BytesOf can find in a column of `rows` values of `type`,
// whatever they are: its values (fixed width), its bits (bool) or its offsets (4 bytes a row at
// least: strings, bytes, lists).
int64_t LeastColumnBytes(ValueType type, int64_t rows) {
  const auto arrow_type = ToArrowType(type);
  if (arrow_type->id() == arrow::Type::BOOL) return rows / 8;
  const int width = arrow_type->byte_width();
  return rows * (width > 0 ? width : 4);
}

// The longest window of a view's aggregations `names`.
Duration LongestWindow(const FeatureView& view, const std::vector<std::string>& names) {
  Duration longest;
  for (const auto& name : names) longest = std::max(longest, view.FindAggregation(name)->window);
  return longest;
}

// What a window join of `view` reads: events from the earliest window start any entity row
// (times `min_t` to `max_t`) can have, its `longest` window and the granularity before the
// first row, to the latest row.
SourceScanOptions WindowScanOptions(const FeatureView& view, Duration longest, Timestamp min_t,
                                    Timestamp max_t) {
  SourceScanOptions options;
  options.end = max_t;
  options.start = min_t - longest - view.granularity;
  return options;
}

}  // namespace

Result<std::unique_ptr<TrainingSetOutput>> BuildHistoricalFeatures(
    const std::filesystem::path& repo_root, const Definitions& defs,
    const HistoricalRequest& request, const HistoricalJoinOptions& options,
    HistoricalStats* stats) {
  if (request.entities == nullptr) return Status::InvalidArgument("no entity rows given");
  GRANARY_ASSIGN_OR_RAISE(ResolvedFeatures resolved, ResolveFeatures(defs, request));
  const auto& entity_table = request.entities;
  const auto& entity_schema = *entity_table->schema();
  GRANARY_ASSIGN_OR_RAISE(EntityRows rows,
                          NormalizeEntityRows(*entity_table, request.entities_name));
  const std::shared_ptr<arrow::Array>& entity_time = rows.time;
  const int64_t n = entity_table->num_rows();
  const std::optional<Timestamp>& min_t = rows.min_time;  // for pruning
  const std::optional<Timestamp>& max_t = rows.max_time;

  // The output: the entity rows' columns (held: the request holds them anyway), then each view's
  // columns, held while the entity rows and the columns held with them stay within half the
  // budget, else spilled until written (the other half is the joins').
  TrainingSetOutputOptions output_options;
  output_options.rows = n;
  output_options.slice_rows = options.output_slice_rows;
  output_options.hold_bytes = options.memory_budget_bytes / 2;
  const int64_t hold_bytes = output_options.hold_bytes;
  output_options.spill_parent = options.spill_dir;
  output_options.cancel = request.cancel;
  GRANARY_ASSIGN_OR_RAISE(auto output, TrainingSetOutput::Make(std::move(output_options)));
  GRANARY_RETURN_NOT_OK(
      output->Add(std::move(rows.fields), std::move(rows.columns), OutputHold::kHold).status());

  // The memory budget covers the whole retrieval: the entity rows and the output columns held
  // are subtracted from what a view's join may use, as is twice the view's own output (its
  // columns are gathered, then put back into input order).
  int64_t held = 0;
  for (const auto& column : entity_table->columns()) {
    held += arrow::util::TotalBufferSize(*column);  // a buffer its chunks share counts once
  }
  int64_t largest_view = 0;
  int64_t all_views = 0;
  for (const auto& group : resolved.views) {
    int64_t view_output = 0;
    for (const auto& f : group.features) {
      view_output += n * ValueWidth(group.view->FindOutput(f)->type);
    }
    largest_view = std::max(largest_view, view_output);
    all_views += view_output;
  }
  if (stats != nullptr) {
    stats->entity_bytes = held;
    stats->resident_bytes = held + largest_view;
  }
  // When every view's columns are expected to be held (memory is not short), the point-in-time
  // joins' scans allocate from ScanBufferPool, which keeps their large buffers (read buffers,
  // pages, decoded batches) from one pass to the next while the views are joined, so that the
  // memory handed back between passes (ReleaseFreedMemory) is not these, faulted again by the
  // next pass: at most an eighth of the budget, and no more than the scans had in use at
  // once. They go back to the allocator before the write (below). When columns will be spilled
  // (the budget is tight) nothing is kept.
  const bool keep_scan_buffers = held + all_views <= hold_bytes;
  ScanBufferPool::Retention scan_buffers;
  if (keep_scan_buffers) {
    scan_buffers = ScanBufferPool::Get()->Retain(options.memory_budget_bytes / 8);
  }
  // Views with the same entities (so the same join keys) share the streaming match's entity
  // side: built by the first one's join, kept while a later view may use it. And the same entity
  // key arrays, which it is recognised by (EntitySideCache).
  EntitySideCache entity_side;
  std::map<std::string, std::shared_ptr<arrow::Array>> entity_key_arrays;  // by key and type
  auto has_plain_features = [](const ResolvedFeatures::ViewFeatures& group) {
    for (const auto& f : group.features) {
      if (group.view->FindFeature(f) != nullptr) return true;
    }
    return false;
  };
  // Whether a later view than `v` shares its entities (so its join keys) and joins plain
  // features: then v's match pass keeps the entity side for it.
  auto later_view_shares_keys = [&](size_t v) {
    for (size_t w = v + 1; w < resolved.views.size(); ++w) {
      const auto& later = resolved.views[w];
      if (later.view->entities == resolved.views[v].view->entities && has_plain_features(later)) {
        return true;
      }
    }
    return false;
  };
  // What a view's join is given, made before it runs (for the next view while one is gathered,
  // when its match pass runs ahead: below).
  struct ViewInputs {
    std::vector<std::string> plain, aggregated;
    SourceScanOptions scan_options;
    std::shared_ptr<arrow::RecordBatch> entity_batch;
    int64_t view_output = 0;     // the estimate of its output columns' bytes (ValueWidth)
    int64_t least_output = 0;    // the least they can be (LeastColumnBytes)
    int64_t rows_estimated = 0;  // the source's rows, as planned
  };
  auto prepare = [&](size_t v) -> Result<ViewInputs> {
    const auto& group = resolved.views[v];
    const FeatureView& view = *group.view;
    ViewInputs in;
    for (const auto& f : group.features) {
      const ValueType type = view.FindOutput(f)->type;
      in.view_output += n * ValueWidth(type);
      in.least_output += LeastColumnBytes(type, n);
    }
    // Plain features are joined point in time; aggregations are computed over windows
    // (offline/window_join.h). Both keep the requested order in the output.
    for (const auto& f : group.features) {
      (view.FindFeature(f) != nullptr ? in.plain : in.aggregated).push_back(f);
    }
    in.scan_options.features = in.plain;
    if (keep_scan_buffers) {
      in.scan_options.pool = ScanBufferPool::Get();
      in.scan_options.batch_rows = kRoomyBatchRows;
    }
    if (max_t) {
      in.scan_options.end = *max_t;
      // No lower bound when the earliest entity time minus the ttl is before the earliest int64
      // microsecond (an entity time from anyone's file or upload).
      int64_t start = 0;
      if (view.ttl.micros > 0 && !__builtin_sub_overflow(min_t->micros, view.ttl.micros, &start)) {
        in.scan_options.start = Timestamp::FromMicros(start);
      }
    }
    // Planning only (key types, the row estimate); the join reads the source itself.
    SourceScanOptions plan_options = in.scan_options;
    plan_options.with_features = false;
    GRANARY_ASSIGN_OR_RAISE(auto scan,
                            FeatureSourceScan::Open(repo_root, defs, view, plan_options));
    in.rows_estimated = scan->stats().rows_estimated;
    // The entity side: the view's join keys cast to the entity's declared types, and the time.
    arrow::FieldVector fields;
    arrow::ArrayVector arrays;
    for (size_t k = 0; k < scan->join_keys().size(); ++k) {
      const std::string& key = scan->join_keys()[k];
      int index = entity_schema.GetFieldIndex(key);
      if (index < 0) {
        return Status::InvalidArgument(fmt::format(
            "the entity rows have no column '{}', a join key of feature view '{}' (columns: {})",
            key, view.name, Join(entity_schema.field_names(), ", ")));
      }
      const auto& key_field = scan->schema()->field(static_cast<int>(k));
      GRANARY_ASSIGN_OR_RAISE(ValueType type, FromArrowType(*key_field->type()));
      std::shared_ptr<arrow::Array>& array =
          entity_key_arrays[key + '\0' + key_field->type()->ToString()];
      if (array == nullptr) {
        // Without a copy when the entity rows' chunks are slices of one array (CompactChunks).
        GRANARY_ASSIGN_OR_RAISE(auto raw, CombinedChunks(*entity_table->column(index)));
        auto cast = CastToValueType(raw, type, key);
        if (!cast.ok()) return cast.status().WithContext(request.entities_name);
        array = *cast;
      }
      fields.push_back(key_field);
      arrays.push_back(array);
    }
    fields.push_back(arrow::field(kEventTimestampColumn, entity_time->type()));
    arrays.push_back(entity_time);
    in.entity_batch = arrow::RecordBatch::Make(arrow::schema(fields), n, arrays);
    return in;
  };
  auto make_join_options = [&](int64_t join_budget) {
    JoinOptions join_options;
    join_options.memory_budget_bytes = join_budget;
    join_options.threads = options.threads;
    join_options.created_timestamp_cutoff = request.created_timestamp_cutoff;
    join_options.spill_dir = options.spill_dir;
    join_options.cancel = request.cancel;
    join_options.timings = request.timings;
    // In the output's row groups: TrainingSetOutput frees each once written.
    join_options.output_chunk_rows = options.output_slice_rows;
    join_options.TEST_force_plan = options.TEST_force_plan;
    join_options.TEST_read_whole_row_groups = options.TEST_read_whole_row_groups;
    return join_options;
  };
  // A progress line only for work long enough to watch (a million rows or an unknown count).
  auto make_progress = [&](const FeatureView& view, int64_t estimate) {
    std::unique_ptr<Progress> progress;
    if (request.show_progress && (estimate == 0 || estimate >= 1'000'000)) {
      progress = std::make_unique<Progress>(view.name, estimate, "rows");
    }
    return progress;
  };
  // The next view's match pass, run on a thread of its own while a view's gather pass runs (the
  // two passes each keep 1.5-1.7 of 2 cores busy: together they fill them). Only for views of
  // plain features whose columns are held, when the next view's match streams with the entity
  // side the view before kept (MatchAheadIf::kSharedEntitySide): it then holds, beyond what the
  // views one after the other hold, its list of chosen rows (16 bytes a matched entity row,
  // sorted in read order on its thread) and its read's buffers.
  struct Ahead {
    size_t view = 0;
    ViewInputs inputs;
    std::unique_ptr<Progress> progress;
    Status status;
    MatchedViewPtr matched;  // null: not run (the join matches itself)
  };
  std::optional<Ahead> ahead;
  for (size_t v = 0; v < resolved.views.size(); ++v) {
    const auto& group = resolved.views[v];
    const FeatureView& view = *group.view;
    GRANARY_RETURN_NOT_OK(
        CheckCancelled(request.cancel, fmt::format("reading feature view '{}'", view.name)));
    // The previous view's join is over and its worker threads gone: what they freed goes back to
    // the system now, not under the next join (at the seed's scale with 64 MiB, RSS stayed about
    // 400 MiB through phases that held far less after bay_demand's 3,426 partitions).
    if (v > 0) ReleaseFreedMemory();
    // This view's match pass, when it ran ahead beside the previous view's gather.
    std::optional<Ahead> mine;
    if (ahead && ahead->view == v) {
      mine = std::move(ahead);
      GRANARY_RETURN_NOT_OK(mine->status);
    }
    ahead.reset();
    entity_side.set_keep(later_view_shares_keys(v));
    ViewInputs in;
    if (mine) {
      in = std::move(mine->inputs);
    } else {
      GRANARY_ASSIGN_OR_RAISE(in, prepare(v));
    }
    const std::vector<std::string>& plain = in.plain;
    const std::vector<std::string>& aggregated = in.aggregated;
    const SourceScanOptions& scan_options = in.scan_options;
    const std::shared_ptr<arrow::RecordBatch>& entity_batch = in.entity_batch;
    const int64_t view_output = in.view_output;
    const int64_t least_output = in.least_output;
    const int64_t join_budget = std::max(options.memory_budget_bytes - held - 2 * view_output,
                                         options.memory_budget_bytes / 4);

    if (!max_t) {
      // No entity row has a time: nothing to look up, every value is null (the source was still
      // opened by prepare, so a missing or unreadable source is reported all the same).
      arrow::FieldVector out_fields;
      arrow::ChunkedArrayVector out_columns;
      for (size_t f = 0; f < group.features.size(); ++f) {
        auto type = ToArrowType(view.FindOutput(group.features[f])->type);
        auto nulls = arrow::MakeArrayOfNull(type, n);
        if (!nulls.ok()) return Status::Internal(nulls.status().ToString());
        out_fields.push_back(arrow::field(group.output_names[f], type));
        out_columns.push_back(std::make_shared<arrow::ChunkedArray>(*nulls));
      }
      HistoricalStats::View empty;
      empty.name = view.name;
      empty.plain_features = !plain.empty();
      empty.window = LongestWindow(view, aggregated);
      GRANARY_RETURN_NOT_OK(PlaceViewOutput(output.get(), std::move(out_fields),
                                            std::move(out_columns), options.memory_budget_bytes,
                                            &empty));
      if (!empty.output_spilled) held += view_output;
      if (stats != nullptr) stats->views.push_back(std::move(empty));
      continue;
    }
    JoinOptions join_options = make_join_options(join_budget);
    std::unique_ptr<Progress> progress =
        mine ? std::move(mine->progress) : make_progress(view, in.rows_estimated);
    join_options.progress = progress.get();
    // The match pass run ahead, if it ran (else the join matches itself).
    MatchedViewPtr matched = mine ? std::move(mine->matched) : nullptr;
    mine.reset();
    const bool matched_ahead = matched != nullptr;
    HistoricalStats::View view_report;
    view_report.name = view.name;
    view_report.plain_features = !plain.empty();
    ViewJoinStats view_stats;
    // A view of plain features only whose columns cannot be held, whatever their exact size
    // (the least it can be already passes the output's half of the budget), has them spilled
    // as the join gathers them, in groups of columns that fit the join's share: the join never
    // holds them all.
    if (aggregated.empty() && n > 0 && output->held_bytes() + least_output > hold_bytes) {
      entity_side.Clear();  // memory is short: the entity side is not kept for this join
      ViewSource source{repo_root, &defs, &view, scan_options};
      const int64_t held_before = output->held_bytes();
      int64_t bytes = 0;
      int groups = 0;
      auto spill = [&](int first, arrow::ChunkedArrayVector columns) -> Status {
        arrow::FieldVector fields;
        for (size_t c = 0; c < columns.size(); ++c) {
          fields.push_back(arrow::field(group.output_names[first + c], columns[c]->type()));
        }
        GRANARY_ASSIGN_OR_RAISE(
            OutputPlacement placed,
            output->Add(std::move(fields), std::move(columns), OutputHold::kSpill));
        bytes += placed.bytes;
        ++groups;
        // The group's columns, spilled, go back now: mimalloc would keep their pages for its
        // purge delay (5 s), several groups' worth when groups take a second or two each.
        ReleaseFreedMemory();
        return Status::OK();
      };
      join_options.matched = matched.get();
      GRANARY_RETURN_NOT_OK(
          PointInTimeJoinInto(*entity_batch, source, join_options, spill, &view_stats));
      view_stats.matched_ahead = matched_ahead;
      if (progress) progress->Finish();
      ReportViewOutput(*output, group.features.size(), bytes, /*spilled=*/true, held_before, groups,
                       options.memory_budget_bytes, &view_report);
      if (stats != nullptr) {
        view_report.join = view_stats;
        stats->output_spilled_bytes += bytes;
        stats->views.push_back(std::move(view_report));
      }
      continue;
    }
    // Likewise a view of aggregations only: its columns go to the output as the window join
    // hands them out, which, when they are more than its share of the budget too, never holds
    // them all (WindowAggregationJoinInto).
    if (plain.empty() && n > 0 && output->held_bytes() + least_output > hold_bytes) {
      entity_side.Clear();  // the window join needs the memory
      const Duration longest = LongestWindow(view, aggregated);
      ViewSource source{repo_root, &defs, &view, WindowScanOptions(view, longest, *min_t, *max_t)};
      const int64_t held_before = output->held_bytes();
      arrow::FieldVector fields;
      for (size_t f = 0; f < group.features.size(); ++f) {
        fields.push_back(arrow::field(group.output_names[f],
                                      ToArrowType(*view.FindAggregation(group.features[f])->type)));
      }
      GRANARY_RETURN_NOT_OK(output->BeginSpilledGroup(std::move(fields)));
      WindowJoinStats window_stats;
      // group.features are the aggregations, in their order.
      GRANARY_RETURN_NOT_OK(WindowAggregationJoinInto(
          *entity_batch, source, group.features, join_options,
          [&](std::vector<std::shared_ptr<arrow::Array>> columns) {
            return output->AppendToSpilledGroup(std::move(columns));
          },
          &window_stats));
      GRANARY_ASSIGN_OR_RAISE(OutputPlacement placed, output->EndSpilledGroup());
      if (progress) progress->Finish();
      ReportViewOutput(*output, group.features.size(), placed.bytes, /*spilled=*/true, held_before,
                       1, options.memory_budget_bytes, &view_report);
      view_stats.partitions = window_stats.partitions;
      view_stats.bytes_spilled = window_stats.bytes_spilled;
      view_stats.scan = window_stats.scan;
      if (!window_stats.plan.empty()) view_stats.plan = "aggregations: " + window_stats.plan;
      view_report.window = longest;
      view_report.rows_with_events = window_stats.rows_with_events;
      view_report.time_slices = window_stats.slices;
      if (stats != nullptr) {
        view_report.join = view_stats;
        stats->output_spilled_bytes += placed.bytes;
        stats->views.push_back(std::move(view_report));
      }
      continue;
    }
    std::map<std::string, std::shared_ptr<arrow::ChunkedArray>> by_name;
    if (!plain.empty()) {
      ViewSource source{repo_root, &defs, &view, scan_options};
      join_options.entity_side = &entity_side;
      // The next view's match pass beside this view's gather (Ahead), when this view's columns
      // are held and the next view joins plain features only, of the same entities, into
      // columns that will be held too.
      // Stops the match ahead when this view's join fails (the retrieval returns that error and
      // the ahead work is lost), or when the retrieval is cancelled. Outlives `beside`.
      CancelFlag ahead_cancel(request.cancel);
      std::jthread beside;
      const size_t w = v + 1;
      if (aggregated.empty() && w < resolved.views.size() && n > 0 &&
          resolved.views[w].view->entities == view.entities && entity_side.keep()) {
        // An error preparing the next view is reported in its turn, after this view's join.
        Result<ViewInputs> next = prepare(w);
        const int64_t held_after = held + view_output;
        const bool next_held =
            next.ok() && next->aggregated.empty() && !next->plain.empty() &&
            output->held_bytes() + view_output + next->least_output <= hold_bytes;
        if (next_held) {
          if (matched == nullptr) {
            // This view's match now, so that the next one's can run beside its gather.
            GRANARY_ASSIGN_OR_RAISE(
                matched, MatchAhead(*entity_batch, source, join_options, MatchAheadIf::kAlways));
          }
          if (progress) progress->Finish();  // it counts the match pass's rows
          ahead.emplace();
          ahead->view = w;
          ahead->inputs = std::move(*next);
          const FeatureView& next_view = *resolved.views[w].view;
          ahead->progress = make_progress(next_view, ahead->inputs.rows_estimated);
          // Its budget as it would be in its turn, with this view's columns held.
          JoinOptions next_options = make_join_options(
              std::max(options.memory_budget_bytes - held_after - 2 * ahead->inputs.view_output,
                       options.memory_budget_bytes / 4));
          next_options.progress = ahead->progress.get();
          next_options.entity_side = &entity_side;
          next_options.cancel = &ahead_cancel;
          entity_side.set_keep(later_view_shares_keys(w));
          Ahead* job = &*ahead;
          ViewSource next_source{repo_root, &defs, &next_view, job->inputs.scan_options};
          const auto* hook = &options.TEST_before_match_ahead;
          beside = std::jthread([job, next_source, next_options, hook] {
            if (*hook) (*hook)(*next_options.cancel);
            auto ran = MatchAhead(*job->inputs.entity_batch, next_source, next_options,
                                  MatchAheadIf::kSharedEntitySide);
            if (ran.ok()) {
              job->matched = std::move(*ran);
            } else {
              job->status = ran.status();
            }
          });
        }
      }
      join_options.matched = matched.get();
      auto columns = PointInTimeJoin(*entity_batch, source, join_options, &view_stats);
      if (!columns.ok()) ahead_cancel.Cancel();  // not waiting for work the error makes moot
      if (beside.joinable()) beside.join();
      if (!columns.ok()) return columns.status();
      view_stats.matched_ahead = matched_ahead;
      join_options.entity_side = nullptr;
      for (size_t f = 0; f < columns->size(); ++f) by_name[plain[f]] = (*columns)[f];
    }
    if (!aggregated.empty()) {
      entity_side.Clear();  // the window join needs the memory
      const Duration longest = LongestWindow(view, aggregated);
      ViewSource source{repo_root, &defs, &view, WindowScanOptions(view, longest, *min_t, *max_t)};
      WindowJoinStats window_stats;
      GRANARY_ASSIGN_OR_RAISE(auto columns, WindowAggregationJoin(*entity_batch, source, aggregated,
                                                                  join_options, &window_stats));
      for (size_t f = 0; f < columns.size(); ++f) by_name[aggregated[f]] = columns[f];
      view_stats.partitions = std::max(view_stats.partitions, window_stats.partitions);
      view_stats.bytes_spilled += window_stats.bytes_spilled;
      if (plain.empty()) view_stats.scan = window_stats.scan;
      if (!window_stats.plan.empty()) {
        const std::string said = "aggregations: " + window_stats.plan;
        view_stats.plan = view_stats.plan.empty() ? said : view_stats.plan + "; " + said;
      }
      view_report.window = longest;
      view_report.rows_with_events = window_stats.rows_with_events;
      view_report.time_slices = window_stats.slices;
    }
    if (progress) progress->Finish();
    arrow::FieldVector out_fields;
    arrow::ChunkedArrayVector out_columns;
    for (size_t f = 0; f < group.features.size(); ++f) {
      auto& column = by_name.at(group.features[f]);
      out_fields.push_back(arrow::field(group.output_names[f], column->type()));
      out_columns.push_back(std::move(column));
    }
    by_name.clear();
    GRANARY_RETURN_NOT_OK(PlaceViewOutput(output.get(), std::move(out_fields),
                                          std::move(out_columns), options.memory_budget_bytes,
                                          &view_report));
    // What the next views' joins may use: less the estimate of the columns held.
    if (!view_report.output_spilled) held += view_output;
    if (stats != nullptr) {
      view_report.join = view_stats;
      stats->output_spilled_bytes += view_report.output_spilled ? view_report.output_bytes : 0;
      stats->views.push_back(std::move(view_report));
    }
  }
  // The scans' kept buffers go back now, and to the system, before the write: kept blocks of
  // classes the last pass did not use (the last match pass's) would otherwise still be resident
  // at the write's start, its peak.
  if (keep_scan_buffers) {
    scan_buffers = ScanBufferPool::Retention();
    ReleaseFreedMemory();
  }
  return output;
}

Result<std::shared_ptr<arrow::Table>> JoinHistoricalFeatures(const std::filesystem::path& repo_root,
                                                             const Definitions& defs,
                                                             const HistoricalRequest& request,
                                                             const HistoricalJoinOptions& options,
                                                             HistoricalStats* stats) {
  GRANARY_ASSIGN_OR_RAISE(auto output,
                          BuildHistoricalFeatures(repo_root, defs, request, options, stats));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, output->Next());
    if (batch == nullptr) break;
    batches.push_back(std::move(batch));
  }
  // No entity rows: columns of one empty chunk each, as ReadAll gives (callers concatenate a
  // column's chunks, which needs at least one).
  auto table = batches.empty() ? arrow::Table::MakeEmpty(output->schema())
                               : arrow::Table::FromRecordBatches(output->schema(), batches);
  if (!table.ok()) return Status::Internal(table.status().ToString());
  return *table;
}

}  // namespace granary
