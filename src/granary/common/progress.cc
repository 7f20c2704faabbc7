#include "granary/common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace granary {
namespace {

int64_t Nanos(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace

std::string LogTimePrefix(std::FILE* out, const Clock* clock) {
  if (out == nullptr || isatty(fileno(out)) != 0) return "";
  const Clock& c = clock != nullptr ? *clock : SystemClock::Default();
  return FormatTimestamp(c.Now()) + " ";
}

Progress::Progress(std::string label, int64_t total, std::string unit, ProgressOptions options)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      options_(options),
      total_(total),
      start_(Clock::now()) {
  if (options_.mode == ProgressOptions::Mode::kDetect) {
    options_.mode = options_.out != nullptr && isatty(fileno(options_.out)) != 0
                        ? ProgressOptions::Mode::kTerminal
                        : ProgressOptions::Mode::kLog;
  }
  // A log line is due only after the first interval: short jobs print one line, at the end.
  const auto first = options_.mode == ProgressOptions::Mode::kTerminal ? options_.redraw_interval
                                                                       : options_.log_interval;
  next_draw_ns_.store(Nanos((start_ + first).time_since_epoch()));
}

Progress::~Progress() { Finish(); }

void Progress::Add(int64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (Nanos(Clock::now().time_since_epoch()) >= next_draw_ns_.load(std::memory_order_relaxed)) {
    MaybeDraw(false);
  }
}

void Progress::SetTotal(int64_t total) { total_.store(total); }

void Progress::Finish() { MaybeDraw(true); }

void Progress::MaybeDraw(bool final) {
  if (options_.mode == ProgressOptions::Mode::kSilent) return;
  if (final) {
    draw_mu_.Lock();
  } else if (!draw_mu_.TryLock()) {
    return;  // another thread is drawing
  }
  DrawLocked(final);
  draw_mu_.Unlock();
}

void Progress::DrawLocked(bool final) {
  if (finished_) return;
  const auto now = Clock::now();
  if (!final && Nanos(now.time_since_epoch()) < next_draw_ns_.load()) return;
  const auto interval = options_.mode == ProgressOptions::Mode::kTerminal ? options_.redraw_interval
                                                                          : options_.log_interval;
  next_draw_ns_.store(Nanos((now + interval).time_since_epoch()));
  const std::string line = Line(done_.load(), now - start_, final);
  if (options_.mode == ProgressOptions::Mode::kTerminal) {
    // \r and clear-to-end-of-line redraw in place; the final line ends with a newline.
    fmt::print(options_.out, "\r{}\x1b[K{}", line, final ? "\n" : "");
  } else {
    const granary::Clock& clock =
        options_.clock != nullptr ? *options_.clock : SystemClock::Default();
    fmt::print(options_.out, "{} {}\n", FormatTimestamp(clock.Now()), line);
  }
  std::fflush(options_.out);
  if (final) finished_ = true;
}

std::string Progress::Line(int64_t done, Clock::duration elapsed, bool final) const {
  const int64_t total = total_.load();
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const double rate = seconds > 0 ? done / seconds : 0;
  std::string counts = total > 0
                           ? fmt::format("{}/{} {}", HumanCount(done), HumanCount(total), unit_)
                           : fmt::format("{} {}", HumanCount(done), unit_);
  const int percent =
      total > 0 ? static_cast<int>(std::min<int64_t>(100, done * 100 / std::max<int64_t>(total, 1)))
                : -1;
  std::string eta;
  if (!final && total > 0 && rate > 0 && done < total) {
    eta = "ETA " + HumanDuration(std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>((total - done) / rate)));
  }
  const std::string speed = fmt::format("{} {}/s", HumanCount(rate), unit_);
  if (final) {
    return fmt::format("{}: {} in {}, {}", label_, counts, HumanDuration(elapsed), speed);
  }
  if (options_.mode == ProgressOptions::Mode::kTerminal) {
    std::string bar;
    if (percent >= 0) {
      constexpr int kWidth = 20;
      const int filled = percent * kWidth / 100;
      bar = " [" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " +
            fmt::format("{:3}%", percent);
    }
    return fmt::format("{}{}  {}  {}{}{}", label_, bar, counts, speed, eta.empty() ? "" : "  ",
                       eta);
  }
  return fmt::format("{}: {}{}, {}{}{}", label_, counts,
                     percent >= 0 ? fmt::format(" ({}%)", percent) : "", speed,
                     eta.empty() ? "" : ", ", eta);
}

std::string Progress::HumanCount(double n) {
  const char* suffix = "";
  if (std::fabs(n) >= 1e9) {
    n /= 1e9;
    suffix = "G";
  } else if (std::fabs(n) >= 1e6) {
    n /= 1e6;
    suffix = "M";
  } else if (std::fabs(n) >= 1e3) {
    n /= 1e3;
    suffix = "K";
  }
  if (*suffix == '\0') return fmt::format("{}", static_cast<int64_t>(std::llround(n)));
  if (std::fabs(n) >= 100) return fmt::format("{:.0f}{}", n, suffix);
  if (std::fabs(n) >= 10) return fmt::format("{:.1f}{}", n, suffix);
  return fmt::format("{:.2f}{}", n, suffix);
}

std::string Progress::HumanDuration(std::chrono::steady_clock::duration d) {
  const double seconds = std::chrono::duration<double>(d).count();
  if (seconds < 10) return fmt::format("{:.1f}s", seconds);
  const int64_t s = std::llround(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

}  // namespace granary
