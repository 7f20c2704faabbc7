// Progress: what a long-running job (data generation, training sets, materialization) shows while
// it works.
//
// On a terminal it redraws one line at most every 100 ms:
//   customer_risk [##########..........]  52%  1.3M/2.5M rows  412K rows/s  ETA 3s
// Elsewhere (a log file, CI, cron) it writes a plain line, stamped with the time in UTC, at most
// every `log_interval` (10 s by default) and one when it finishes, so logs stay short and say when:
//   2026-12-05T02:00:10.500000Z customer_risk: 1.3M/2.5M rows (52%), 412K rows/s, ETA 3s
// A total of 0 means "unknown": the bar, the percentage and the ETA are left out.
//
// Thread-safe: Add() may be called from many threads at once; it costs one atomic add unless a
// redraw is due.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "granary/common/clock.h"
#include "granary/common/mutex.h"

namespace granary {

struct ProgressOptions {
  std::FILE* out = stderr;
  // Whether `out` is a terminal; by default asks isatty() of `out`.
  enum class Mode { kDetect, kTerminal, kLog, kSilent } mode = Mode::kDetect;
  std::chrono::milliseconds redraw_interval{100};  // terminal
  std::chrono::milliseconds log_interval{10'000};  // log lines
  const Clock* clock = nullptr;                    // the time on log lines; null: the system's
};

// "2026-12-05T02:00:10.500000Z " (the time now, then a space) when `out` is not a terminal, else
// "": for the summary lines of long commands, which end up in a scheduler's or cron's log.
std::string LogTimePrefix(std::FILE* out, const Clock* clock = nullptr);

class Progress {
 public:
  // Starts reporting on `label`, counting `unit` ("rows", "entities", ...) towards `total`.
  Progress(std::string label, int64_t total, std::string unit = "rows",
           ProgressOptions options = {});
  ~Progress();  // Finish() if not done yet
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Counts `n` more units done.
  void Add(int64_t n);
  // Changes the total (when it becomes known late); 0 for unknown.
  void SetTotal(int64_t total);
  // Prints the final line ("... done in 2.1s") once; later calls do nothing.
  void Finish();

  int64_t done() const { return done_.load(std::memory_order_relaxed); }

  // "1.3M", "412K", "950": three significant digits at most; for messages too.
  static std::string HumanCount(double n);
  // "3s", "2m05s", "1h02m".
  static std::string HumanDuration(std::chrono::steady_clock::duration d);

 private:
  using Clock = std::chrono::steady_clock;
  void MaybeDraw(bool final);
  void DrawLocked(bool final) REQUIRES(draw_mu_);
  std::string Line(int64_t done, Clock::duration elapsed, bool final) const;

  const std::string label_;
  const std::string unit_;
  ProgressOptions options_;
  std::atomic<int64_t> total_;
  std::atomic<int64_t> done_{0};
  const Clock::time_point start_;
  std::atomic<int64_t> next_draw_ns_{0};  // steady-clock time of the next allowed redraw
  Mutex draw_mu_;                         // one writer at a time
  bool finished_ GUARDED_BY(draw_mu_) = false;
};

}  // namespace granary
