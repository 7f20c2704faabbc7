// CronSchedule: when `granary schedule --cron EXPR` runs materialization.
//
// Five fields, as in crontab(5): minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
// JAN-DEC), day of week (0-7 or SUN-SAT; 0 and 7 are Sunday). Each field is `*`, a value, a range
// `a-b`, a step `*/n` or `a-b/n` or `a/n` (from a to the field's maximum), or a comma-separated
// list of those. Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
// As in Vixie cron, when both day fields are restricted (neither is `*`), a day matches if either
// matches; otherwise both must.
//
// Times are evaluated in UTC, or in the process's local time zone (the TZ variable) when asked.
// In a local zone with daylight saving time, a wall-clock time that does not exist on a day is
// skipped that day, and one that exists twice fires once (at its first occurrence).
//
// Plain value; thread-safe.
#pragma once

#include <bitset>
#include <string>
#include <string_view>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace granary {

class CronSchedule {
 public:
  enum class Zone { kUtc, kLocal };

  // Parses EXPR; errors name the field, show the bad part and the accepted form.
  static Result<CronSchedule> Parse(std::string_view expr, Zone zone = Zone::kUtc);

  // The first time strictly after `after` that matches, at a whole minute. Unmatchable schedules
  // (e.g. "0 0 30 2 *") are rejected by Parse, so this always finds one within 8 years.
  Timestamp Next(Timestamp after) const;

  const std::string& expression() const { return expression_; }

 private:
  CronSchedule() = default;
  bool DayMatches(int mday, int month, int wday) const;

  std::string expression_;
  Zone zone_ = Zone::kUtc;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0..6, Sunday = 0
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
};

}  // namespace granary
