// materialize, materialize-incremental: the latest feature values from the offline sources into
// the online store (materialize/materializer.h; docs/OPERATIONS.md).
#include <arrow/memory_pool.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <atomic>
#include <csignal>

#include "granary/cli/cli.h"
#include "granary/cli/materialize_args.h"
#include "granary/cli/signals.h"
#include "granary/common/progress.h"
#include "granary/materialize/interval.h"
#include "granary/materialize/materializer.h"
#include "granary/serving/materialize_handoff.h"

namespace granary::cli {

void AddMaterializeOptions(CLI::App* cmd, MaterializeArgs* args) {
  cmd->add_option("--views", args->views,
                  "Feature views to materialize, comma-separated (default: every online view)");
  cmd->add_option("--memory-budget", args->memory_budget,
                  "Memory for picking each entity's latest row, the batches in flight and the "
                  "tiles of window aggregations; past it they are partitioned by entity and "
                  "spilled to disk (e.g. 512MiB, 2GiB). An embedded RocksDB store this run "
                  "opens sizes its block cache (a quarter) and write buffers (an eighth each) "
                  "from it too")
      ->capture_default_str();
  cmd->add_option("--write-threads", args->write_threads,
                  "Parallel writers to the online store (0: two per core)")
      ->capture_default_str();
  cmd->add_option("--write-batch-rows", args->write_batch_rows, "Rows per online store write")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30, "1 to 2^30"));
  AddSpillDirOption(cmd, &args->spill_dir);
  cmd->add_flag("-q,--quiet", args->quiet, "No progress bars");
}

std::vector<std::string> SplitViews(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

Result<MaterializeOptions> MakeMaterializeOptions(const MaterializeArgs& args) {
  MaterializeOptions options;
  GRANARY_ASSIGN_OR_RAISE(int64_t budget, ParseByteSize(args.memory_budget, "--memory-budget"));
  SetMemoryBudget(&options, budget, args.spill_dir);
  options.write_threads = args.write_threads;
  options.write_batch_rows = args.write_batch_rows;
  options.progress.mode =
      args.quiet ? ProgressOptions::Mode::kSilent : ProgressOptions::Mode::kDetect;
  return options;
}

std::string DescribeView(const ViewMaterialization& v) {
  if (v.up_to_date) return fmt::format("{}: up to date ({})", v.view, v.watermark_note);
  std::string line =
      fmt::format("{}: {} .. {}", v.view, FormatIntervalStart(v.start), FormatTimestamp(v.end));
  if (v.started_over)
    line += " (the schema or the online store changed since the watermark: started over)";
  if (!v.reload_reason.empty()) line += fmt::format(" (reloaded: {})", v.reload_reason);
  const auto& s = v.scan;
  line += fmt::format(
      ": {} rows read ({} of {} files and {} of {} row groups pruned), {} entities: {} written, "
      "{} skipped (online row newer)",
      Progress::HumanCount(static_cast<double>(s.rows_scanned)), s.files_pruned, s.files_total,
      s.row_groups_pruned, s.row_groups_total,
      Progress::HumanCount(static_cast<double>(v.entities)),
      Progress::HumanCount(static_cast<double>(v.entities_written)),
      Progress::HumanCount(static_cast<double>(v.entities_skipped)));
  if (v.tiles_from) {
    line += fmt::format(", tiles: {} events read from {} (incremental)",
                        Progress::HumanCount(static_cast<double>(v.tile_events)),
                        FormatTimestamp(*v.tiles_from));
  }
  if (v.tile_partitions > 0) {
    line += fmt::format(
        ", tiles: {} events in {} partitions ({} MiB spilled), built in {} groups of entities "
        "(the tiles outgrew a quarter of the memory budget after {} events, read again)",
        Progress::HumanCount(static_cast<double>(v.tile_events)), v.tile_partitions,
        v.tile_bytes_spilled >> 20, v.tile_groups,
        Progress::HumanCount(static_cast<double>(v.tile_events_read_twice)));
  }
  if (v.null_key_rows > 0)
    line += fmt::format(", {} rows with a null join key ignored", v.null_key_rows);
  if (v.partitions > 0) {
    line += fmt::format(", {} partitions ({} MiB spilled", v.partitions, v.bytes_spilled >> 20);
    if (v.scan.rows_read_twice > 0) {
      line += fmt::format("; the entities outgrew the memory budget after {} rows, read again",
                          Progress::HumanCount(static_cast<double>(v.scan.rows_read_twice)));
    }
    line += ")";
  }
  const double rate = v.seconds > 0 ? static_cast<double>(v.entities) / v.seconds : 0;
  line += fmt::format(", in {:.1f}s ({} entities/s)", v.seconds, Progress::HumanCount(rate));
  // Where the engine did the work, when not here ("spark at sc://...: 2 files read, ...").
  if (!s.engine_detail.empty()) line += fmt::format(" [{}]", s.engine_detail);
  if (!v.status.ok()) return line + fmt::format("\n  FAILED: {}", v.status.message());
  if (!v.watermark_note.empty()) {
    line += "; " + v.watermark_note;
  } else if (v.watermark_after) {
    line += fmt::format("; watermark {}", FormatTimestamp(*v.watermark_after));
  }
  return line;
}

namespace {

struct IntervalArgs {
  std::string start;
  std::string end;
  std::string token;  // a running server's bearer token (GRANARY_SERVE_TOKEN)
};

// The options a run handed to a server does not use (it runs with the server's).
std::vector<std::string> OptionsTheServerIgnores(const MaterializeArgs& args) {
  const MaterializeArgs defaults;
  std::vector<std::string> out;
  if (args.memory_budget != defaults.memory_budget) out.push_back("--memory-budget");
  if (args.write_threads != defaults.write_threads) out.push_back("--write-threads");
  if (args.write_batch_rows != defaults.write_batch_rows) out.push_back("--write-batch-rows");
  if (args.spill_dir != defaults.spill_dir) out.push_back("--spill-dir");
  return out;
}

void RunMaterialize(Context& ctx, MaterializeRequest::Kind kind, const IntervalArgs& times,
                    const MaterializeArgs& args) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  auto options = MakeMaterializeOptions(args);
  if (!options.ok()) return ctx.Fail(options.status());
  RemoveStaleSpillFolders(args.spill_dir);
  const Timestamp now = options->clock->Now();
  MaterializeRequest request;
  request.kind = kind;
  request.views = SplitViews(args.views);
  request.trigger =
      kind == MaterializeRequest::Kind::kIncremental ? "materialize-incremental" : "materialize";
  auto end = ParseTimeArgument(times.end, "END", now);
  if (!end.ok()) return ctx.Fail(end.status());
  request.end = *end;
  if (kind == MaterializeRequest::Kind::kInterval) {
    auto start = ParseTimeArgument(times.start, "START", now);
    if (!start.ok()) return ctx.Fail(start.status());
    request.start = *start;
  }
  options->after_view = [](const ViewMaterialization& v) {
    fmt::print("{}{}\n", LogTimePrefix(stdout), DescribeView(v));
    std::fflush(stdout);
  };
  std::atomic<bool> cancelled{false};
  // Where the run is: 0 here, 1 handed to the server, 2 shed by it and waiting to be resent.
  std::atomic<int> handed_off{0};
  auto signals = SignalWatcher::Start([&cancelled, &handed_off](int sig) {
    const char* what = sig == SIGINT ? "interrupted" : "terminated";
    if (handed_off.load() == 1) {
      fmt::print(stderr, "{}: no longer waiting; the run goes on in the server\n", what);
    } else if (handed_off.load() == 2) {
      fmt::print(stderr, "{}: not sending the run again; it was not started\n", what);
    } else {
      fmt::print(stderr,
                 "{}: stopping; the view in progress is recorded as failed and its "
                 "watermark stays (press again to quit at once)\n",
                 what);
    }
    cancelled.store(true);
  });
  // While a server holds the embedded store, the run is the server's (materialize_handoff.h).
  HandoffOptions handoff;
  handoff.token = times.token;
  handoff.cancelled = &cancelled;
  bool announced = false;
  handoff.on_handoff = [&](const RunningServer& server) {
    handed_off.store(1);
    if (announced) return;  // sent again after a 503: said already
    announced = true;
    fmt::print(stderr, "the feature server at {} (pid {}) holds the online store: running there\n",
               server.url, server.pid);
    const std::vector<std::string> ignored = OptionsTheServerIgnores(args);
    if (!ignored.empty()) {
      fmt::print(stderr, "note: {} not used: the server's run uses its own settings\n",
                 fmt::join(ignored, ", "));
    }
    std::fflush(stderr);
  };
  handoff.on_retry = [&](const RunningServer& server, const HandoffRetry& retry) {
    handed_off.store(2);
    fmt::print(stderr,
               "{}the feature server at {} (pid {}) is overloaded and did not start the run "
               "(503: {}); sending it again in {} s (retry {} of {})\n",
               LogTimePrefix(stderr), server.url, server.pid, retry.message, retry.wait.count(),
               retry.retry, retry.retries);
    std::fflush(stderr);
  };
  auto report = [&]() -> Result<MaterializeReport> {
    GRANARY_ASSIGN_OR_RAISE(std::optional<MaterializeReport> handed,
                            MaterializeThroughServer(config, request, handoff));
    if (!handed) {
      auto local = Materialize(config, request, *options, nullptr, &cancelled);
      // What the run's Arrow allocations peaked at (the scans' buffers and batches, the
      // partitions): the part of the memory that --memory-budget governs (docs/PERFORMANCE.md).
      // And what the online store holds beside it, when sized from the budget.
      const std::string store_memory = DescribeOnlineStoreMemory(config, options->store_options);
      fmt::print(stderr, "{}peak Arrow memory {} MiB (memory budget {}{})\n", LogTimePrefix(stderr),
                 arrow::default_memory_pool()->max_memory() >> 20, args.memory_budget,
                 store_memory.empty() ? "" : "; " + store_memory);
      return local;
    }
    for (const ViewMaterialization& v : handed->views) options->after_view(v);
    return std::move(*handed);
  }();
  const int sig = signals->received();
  signals.reset();
  if (!report.ok()) {
    ctx.Fail(report.status());
    if (sig != 0) ctx.exit_code = 128 + sig;
    return;
  }
  if (!report->status.ok()) {
    ctx.Fail(report->status);
    if (sig != 0) ctx.exit_code = 128 + sig;
  }
}

void AddTokenOption(CLI::App* cmd, IntervalArgs* times) {
  cmd->add_option("--token", times->token,
                  "The bearer token of a running 'granary serve' of this repository, which runs "
                  "the materialization while it holds the embedded online store (prefer the "
                  "environment variable)")
      ->envname("GRANARY_SERVE_TOKEN")
      ->default_str("");
}

}  // namespace

void RegisterMaterializeCommands(CLI::App& app, Context& ctx) {
  {
    auto times = std::make_shared<IntervalArgs>();
    auto args = std::make_shared<MaterializeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "materialize",
        "Write the latest feature values with event times in [START, END] to the online store");
    cmd->add_option("START", times->start, "Interval start, inclusive (ISO 8601)")->required();
    cmd->add_option("END", times->end, "Interval end, inclusive (ISO 8601 or 'now')")->required();
    AddMaterializeOptions(cmd, args.get());
    AddTokenOption(cmd, times.get());
    cmd->callback([&ctx, times, args] {
      RunMaterialize(ctx, MaterializeRequest::Kind::kInterval, *times, *args);
    });
  }
  {
    auto times = std::make_shared<IntervalArgs>();
    auto args = std::make_shared<MaterializeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "materialize-incremental",
        "Write the feature values that arrived since each view's watermark, up to END");
    cmd->add_option("END", times->end, "Interval end, inclusive (ISO 8601 or 'now')")->required();
    AddMaterializeOptions(cmd, args.get());
    AddTokenOption(cmd, times.get());
    cmd->callback([&ctx, times, args] {
      RunMaterialize(ctx, MaterializeRequest::Kind::kIncremental, *times, *args);
    });
  }
}

}  // namespace granary::cli
