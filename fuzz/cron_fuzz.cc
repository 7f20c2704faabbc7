// Fuzzes cron expressions. Property: an accepted schedule's next time is strictly later, on a
// whole minute.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "granary/materialize/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto schedule = granary::CronSchedule::Parse(text);
  if (!schedule.ok()) return 0;
  const granary::Timestamp start = granary::Timestamp::FromSeconds(1'764'036'000);  // 2025-11-25
  const granary::Timestamp next = schedule->Next(start);
  if (next <= start || next.micros % 60'000'000 != 0) {
    std::fprintf(stderr, "bad next time for '%.*s'\n", static_cast<int>(size),
                 reinterpret_cast<const char*>(data));
    std::abort();
  }
  return 0;
}
