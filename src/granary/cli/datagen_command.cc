// datagen: writes the synthetic parking data set (docs/DATAGEN.md) into a folder.
#include <fmt/format.h>

#include <chrono>
#include <string>

#include "granary/cli/cli.h"
#include "granary/common/progress.h"
#include "granary/common/time.h"
#include "granary/datagen/generator.h"

namespace granary::cli {
namespace {

struct DatagenArgs {
  std::string scale = "tiny";
  std::string out;
  uint64_t seed = 42;
  std::string end;  // a date; empty: today (UTC)
  int threads = 0;
  bool quiet = false;
};

Result<Timestamp> ParseEnd(const std::string& text) {
  if (text.empty()) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const int64_t days = std::chrono::duration_cast<std::chrono::hours>(now).count() / 24;
    return Timestamp::FromSeconds(days * 86'400);
  }
  auto ts = ParseTimestamp(text);
  if (!ts.ok()) return Status::InvalidArgument("--end: " + ts.status().message());
  if (ts->micros % 86'400'000'000LL != 0) {
    return Status::InvalidArgument(fmt::format(
        "--end {}: give a date (the data is a snapshot at midnight UTC), e.g. 2026-11-01", text));
  }
  return *ts;
}

void RunDatagen(const DatagenArgs& args, Context& ctx) {
  auto scale = datagen::NamedScale(args.scale);
  if (!scale.ok()) return ctx.Fail(scale.status());
  auto end = ParseEnd(args.end);
  if (!end.ok()) return ctx.Fail(end.status());
  datagen::DatagenOptions options;
  options.scale = *scale;
  options.seed = args.seed;
  options.end = *end;
  options.out = args.out;
  options.threads = args.threads;
  if (args.quiet) options.progress.mode = ProgressOptions::Mode::kSilent;

  fmt::print(stderr, "datagen: scale {} ({} customers, {} bays, {} days to {}), seed {}, into {}\n",
             scale->name, scale->customers, scale->bays, scale->days, FormatTimestamp(*end),
             args.seed, args.out);
  const auto started = std::chrono::steady_clock::now();
  auto summary = datagen::Generate(options);
  if (!summary.ok()) return ctx.Fail(summary.status());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  fmt::print("{:<22} {:>14} {:>7} {:>10}  {}\n", "table", "rows", "files", "MiB", "path");
  for (const auto& t : summary->tables) {
    fmt::print("{:<22} {:>14} {:>7} {:>10.1f}  {}\n", t.name, t.rows, t.files,
               static_cast<double>(t.bytes) / (1 << 20), t.path);
  }
  const int64_t rows = summary->total_rows();
  fmt::print("wrote {} rows in {:.1f}s ({} rows/s); data from {} to {}\n", rows, seconds,
             Progress::HumanCount(static_cast<double>(rows) / std::max(seconds, 1e-9)),
             FormatTimestamp(summary->start), FormatTimestamp(summary->end));
  if (args.end.empty()) {
    fmt::print("to reproduce these bytes: --seed {} --end {}\n", args.seed,
               FormatTimestamp(*end).substr(0, 10));
  }
}

}  // namespace

void RegisterDatagenCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<DatagenArgs>();
  CLI::App* cmd = app.add_subcommand(
      "datagen",
      "Write the synthetic parking data set (customers, payments, bays, occupancy telemetry as "
      "Parquet and Delta Lake) into a folder");
  cmd->add_option("--scale", args->scale,
                  "tiny (2K customers, 50 bays, 60 days), small (50K, 500, 182 days) or seed "
                  "(500K, 5K, 2 years)")
      ->check(CLI::IsMember({"tiny", "small", "seed"}));
  cmd->add_option("--out", args->out, "Output folder (created if missing)")->required();
  cmd->add_option("--seed", args->seed,
                  "Random seed: the same seed, scale and --end give "
                  "byte-identical files");
  cmd->add_option("--end", args->end,
                  "Snapshot date (midnight UTC): no generated timestamp is later. Default: today")
      ->default_str("today");
  cmd->add_option("--threads", args->threads, "Worker threads (0: one per core)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress bar");
  cmd->callback([args, &ctx] { RunDatagen(*args, ctx); });
}

}  // namespace granary::cli
