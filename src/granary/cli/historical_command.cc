// get-historical-features: a point-in-time-correct training set from the offline store.
#include <arrow/api.h>
#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "granary/cli/cli.h"
#include "granary/cli/signals.h"
#include "granary/common/phase_timings.h"
#include "granary/common/progress.h"
#include "granary/common/strings.h"
#include "granary/common/time.h"
#include "granary/offline/engine_factory.h"
#include "granary/offline/entity_rows.h"
#include "granary/offline/table_io.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/types/arrow_convert.h"

namespace granary::cli {
namespace {

struct HistoricalArgs {
  std::string entities;
  std::string entities_sql;    // entity rows where the engine runs (Spark): a query
  std::string entities_table;  // ... or a table
  std::string features;
  std::string feature_service;
  bool full_feature_names = false;
  bool created_timestamp_cutoff = false;
  std::string output;
  std::string output_table;  // engines that keep the result (Spark): a table there
  std::string output_path;   // ... or a URI there
  std::string memory_budget = "2GiB";
  int threads = 0;
  std::string spill_dir;
  bool quiet = false;
  bool timings = false;
};

Result<Definitions> LoadApplied(const RepoConfig& config) {
  GRANARY_ASSIGN_OR_RAISE(auto store, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryVersion latest, LatestApplied(*store));
  return std::move(latest.definitions);
}

Status Run(const Context& ctx, const RepoConfig& config, const HistoricalArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  GRANARY_ASSIGN_OR_RAISE(Definitions defs, LoadApplied(config));
  HistoricalRequest request;
  if (args.features.empty() == args.feature_service.empty()) {
    return Status::InvalidArgument("give --features view:feature,... or --feature-service NAME");
  }
  if (!args.output.empty() + !args.output_table.empty() + !args.output_path.empty() != 1) {
    return Status::InvalidArgument(
        "give one of -o FILE (a local .parquet or .csv), --output-table NAME or --output-path URI "
        "(a Delta table the offline engine writes where it runs: offline_store type spark)");
  }
  if (!args.entities.empty() + !args.entities_sql.empty() + !args.entities_table.empty() != 1) {
    return Status::InvalidArgument(
        "give the entity rows one way: --entities FILE (a local .parquet or .csv), or, where the "
        "offline engine runs (offline_store type spark), --entities-sql QUERY or "
        "--entities-table NAME");
  }
  for (size_t pos = 0; pos <= args.features.size() && !args.features.empty();) {
    size_t comma = args.features.find(',', pos);
    if (comma == std::string::npos) comma = args.features.size();
    std::string item = args.features.substr(pos, comma - pos);
    if (!item.empty()) {
      GRANARY_ASSIGN_OR_RAISE(FeatureRef ref, FeatureRef::Parse(item));
      request.features.push_back(std::move(ref));
    }
    pos = comma + 1;
  }
  request.feature_service = args.feature_service;
  request.full_feature_names = args.full_feature_names;
  request.created_timestamp_cutoff = args.created_timestamp_cutoff;
  request.show_progress = !args.quiet;
  PhaseTimings timings;
  if (args.timings) request.timings = &timings;
  OfflineEngineOptions engine_options;
  GRANARY_ASSIGN_OR_RAISE(engine_options.embedded.memory_budget_bytes,
                          ParseByteSize(args.memory_budget, "--memory-budget"));
  engine_options.embedded.memory_budget_name = "--memory-budget " + args.memory_budget;
  engine_options.embedded.threads = args.threads;
  engine_options.embedded.spill_dir = args.spill_dir;
  RemoveStaleSpillFolders(args.spill_dir);
  GRANARY_ASSIGN_OR_RAISE(auto engine, OpenOfflineEngine(config, engine_options));
  // Resolve first, so a bad feature name fails before any data is read.
  GRANARY_ASSIGN_OR_RAISE(ResolvedFeatures resolved, ResolveFeatures(defs, request));
  GRANARY_RETURN_NOT_OK(CheckEngineSupports(*engine, resolved));
  if (!args.entities.empty()) {
    // CSV entity files: join keys typed as the entities declare them ("007" stays a string).
    std::map<std::string, std::shared_ptr<arrow::DataType>> csv_types;
    for (const auto& group : resolved.views) {
      for (const auto& entity_name : group.view->entities) {
        const Entity* entity = defs.FindEntity(entity_name);
        if (entity == nullptr) continue;
        for (size_t k = 0; k < entity->join_keys.size(); ++k) {
          csv_types[entity->join_keys[k]] = ToArrowType(entity->join_key_types[k]);
        }
      }
    }
    auto read_phase = PhaseTimings::Start(request.timings, "read entity rows");
    GRANARY_ASSIGN_OR_RAISE(auto entities, ReadTableFile(args.entities, csv_types));
    // One copy of each column, in the file's chunks: the retrieval takes the join keys and the
    // time whole from it without copying them again (CompactChunks).
    GRANARY_ASSIGN_OR_RAISE(request.entities, CompactChunks(std::move(entities)));
    request.entities_name = args.entities;
  } else {
    // The entity rows stay where the engine runs; only the engine can read them.
    if (!engine->capabilities().entity_sql) {
      return Status::NotImplemented(fmt::format(
          "{}: --entities-sql and --entities-table name entity rows where the offline engine "
          "runs, which {} cannot read; export them to a .parquet file and pass --entities, or "
          "use offline_store type spark",
          args.entities_sql.empty() ? "--entities-table" : "--entities-sql", engine->Describe()));
    }
    request.entity_sql = args.entities_sql;
    request.entity_table = args.entities_table;
    request.entities_name =
        args.entities_sql.empty() ? "table " + args.entities_table : "the --entities-sql query";
  }
  // Ctrl-C / SIGTERM: the engine stops (on Spark, the cluster's job is interrupted) and nothing
  // is written.
  CancelFlag cancel;
  request.cancel = &cancel;
  auto signals = SignalWatcher::Start([&cancel](int sig) {
    fmt::print(stderr, "{}: stopping the retrieval; nothing is written\n",
               sig == SIGINT ? "interrupted" : "terminated");
    cancel.Cancel();
  });
  if (!args.output_table.empty() || !args.output_path.empty()) {
    HistoricalOutput output;
    output.table = args.output_table;
    output.path = args.output_path;
    GRANARY_ASSIGN_OR_RAISE(auto stats, engine->WriteHistoricalFeatures(defs, request, output));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const OfflineReadStats& s : stats) {
      if (!args.quiet && !s.engine_detail.empty()) {
        fmt::print(stderr, "{}{}: {}\n", LogTimePrefix(stderr), s.view, s.engine_detail);
      }
    }
    const std::string rows = request.entities != nullptr
                                 ? fmt::format("{} training rows", request.entities->num_rows())
                                 : "the training set of " + request.entities_name;
    fmt::print(stderr, "{}wrote {} to {} in {} in {:.1f}s\n", LogTimePrefix(stderr), rows,
               output.table.empty() ? output.path : "table " + output.table, engine->Describe(),
               seconds);
    return Status::OK();
  }
  GRANARY_ASSIGN_OR_RAISE(auto stream, engine->GetHistoricalFeatures(defs, request));
  auto write_phase = PhaseTimings::Start(request.timings, "write " + args.output);
  // Each batch goes to disk as it arrives (the client holds one batch, not the training set),
  // into a temporary file renamed over the output only once the stream has ended well: a lost
  // cluster, an error or Ctrl-C midway leaves no output file.
  GRANARY_ASSIGN_OR_RAISE(auto writer, TableFileWriter::Open(args.output, stream->schema()));
  for (const auto& removed : writer->removed_abandoned()) {
    fmt::print(stderr, "{}removed {}: the unfinished output of a run that was killed\n",
               LogTimePrefix(stderr), removed.string());
  }
  for (;;) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, stream->Next());
    if (batch == nullptr) break;
    GRANARY_RETURN_NOT_OK(writer->Write(*batch));
  }
  GRANARY_RETURN_NOT_OK(writer->Commit());
  write_phase.End();
  for (const std::string& warning : stream->warnings()) {
    fmt::print(stderr, "warning: {}\n", warning);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!args.quiet) {
    for (const OfflineReadStats& s : stream->stats()) {
      // A plain view's rows match a feature row or not; an aggregation has a value at every row
      // (count 0 when the window is empty), so what is worth telling is how many rows had events
      // in their window.
      const std::string rows = Progress::HumanCount(writer->rows());
      std::string matched;
      if (s.plain_features || s.aggregation_window.micros == 0) {
        matched =
            fmt::format("{} of {} entity rows matched", Progress::HumanCount(s.rows_matched), rows);
      }
      if (s.aggregation_window.micros > 0) {
        const std::string window = FormatDuration(s.aggregation_window);
        matched += matched.empty()
                       ? fmt::format("{} of {} entity rows with events in their {} window",
                                     Progress::HumanCount(s.rows_with_events), rows, window)
                       : fmt::format(", {} with events in their {} window",
                                     Progress::HumanCount(s.rows_with_events), window);
      }
      // Row groups the time range kept but that hold no chosen row: the join's second read (the
      // features) did not decode them.
      if (s.row_groups_skipped > 0) {
        matched += fmt::format(", {} row group{} unread (none of {} rows chosen)",
                               s.row_groups_skipped, s.row_groups_skipped == 1 ? "" : "s",
                               s.row_groups_skipped == 1 ? "its" : "their");
      }
      // An engine that read several views in one query (Spark) knows only the query's scan
      // figures, which it puts in its detail: then no per-view figures, rather than zeros.
      const bool scan_known = s.files_total > 0 || s.rows_scanned > 0 || s.engine_detail.empty();
      fmt::print(stderr, "{}{}: {}{}{}{}\n", LogTimePrefix(stderr), s.view,
                 scan_known ? fmt::format("{} rows read of {} files ({} pruned), {} of {} row "
                                          "groups pruned, ",
                                          Progress::HumanCount(s.rows_scanned), s.files_total,
                                          s.files_pruned, s.row_groups_pruned, s.row_groups_total)
                            : "",
                 matched,
                 s.partitions > 1 ? fmt::format(", {} partitions, {} MiB spilled", s.partitions,
                                                s.bytes_spilled >> 20)
                                  : "",
                 s.engine_detail.empty() ? "" : ", " + s.engine_detail);
      if (!s.memory_plan.empty()) {
        fmt::print(stderr, "{}{}: {}\n", LogTimePrefix(stderr), s.view, s.memory_plan);
      }
      if (!s.output_plan.empty()) {
        fmt::print(stderr, "{}{}: {}\n", LogTimePrefix(stderr), s.view, s.output_plan);
      }
    }
  }
  // Said even with -q: a budget that changed how the result was held should not go unnoticed.
  int64_t output_spilled = 0;
  int spilled_views = 0;
  for (const OfflineReadStats& s : stream->stats()) {
    output_spilled += s.output_bytes_spilled;
    spilled_views += s.output_bytes_spilled > 0 ? 1 : 0;
  }
  fmt::print(stderr, "{}wrote {} rows x {} columns to {} in {:.1f}s (peak Arrow memory {} MiB{})\n",
             LogTimePrefix(stderr), writer->rows(), stream->schema()->num_fields(), args.output,
             seconds, arrow::default_memory_pool()->max_memory() >> 20,
             output_spilled > 0
                 ? fmt::format("; the output columns of {} view{} spilled to disk until written: "
                               "{} MiB",
                               spilled_views, spilled_views == 1 ? "" : "s", output_spilled >> 20)
                 : "");
  if (args.timings) {
    timings.Add({"total", seconds, PhaseTimings::ProcessCpuSeconds(),
                 PhaseTimings::ProcessSystemSeconds()});
    fmt::print(stderr, "timings (wall, CPU of the whole process meanwhile, cores busy):\n{}",
               timings.Report());
  }
  (void)ctx;
  return Status::OK();
}

}  // namespace

void RegisterHistoricalCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<HistoricalArgs>();
  auto* cmd = app.add_subcommand(
      "get-historical-features",
      "Build a point-in-time-correct training set: feature values as of each entity row's time");
  cmd->add_option("--entities", args->entities,
                  "Entity rows (.parquet or .csv; relative to the current folder): join keys and "
                  "event_timestamp");
  cmd->add_option("--entities-sql", args->entities_sql,
                  "Entity rows as a SQL query run where the offline engine runs (offline_store "
                  "type spark); they never pass through this process");
  cmd->add_option("--entities-table", args->entities_table,
                  "Entity rows as a table of the engine's catalog (offline_store type spark)");
  cmd->add_option("--features", args->features, "Features as view:feature,view:feature,...");
  cmd->add_option("--feature-service", args->feature_service, "A feature service's name");
  cmd->add_flag("--full-feature-names", args->full_feature_names,
                "Name feature columns view__feature");
  cmd->add_flag("--created-timestamp-cutoff", args->created_timestamp_cutoff,
                "Ignore feature rows created after the entity row's time (no backfill leakage)");
  cmd->add_option("-o,--output", args->output, "Output file (.parquet or .csv)");
  cmd->add_option("--output-table", args->output_table,
                  "Write the training set as this Delta table in the engine's catalog, without "
                  "passing through this process (offline_store type spark)");
  cmd->add_option("--output-path", args->output_path,
                  "Write the training set as a Delta table at this URI, where the engine runs "
                  "(offline_store type spark)");
  cmd->add_option("--memory-budget", args->memory_budget,
                  "Memory for the retrieval (entity rows, output, join state); past it the join "
                  "spills to disk (e.g. 512MiB, 2GiB)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Worker threads (0: every core)")
      ->capture_default_str();
  AddSpillDirOption(cmd, &args->spill_dir);
  cmd->add_flag("-q,--quiet", args->quiet, "No progress or per-view summary");
  cmd->add_flag("--timings", args->timings,
                "At the end, the wall and CPU time of each phase (reading the entity rows, each "
                "view's passes, writing the output) and the cores it kept busy");
  cmd->callback([&ctx, args] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = Run(ctx, config, *args);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
