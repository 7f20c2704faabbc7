// Timestamps and durations: UTC, microsecond precision, as used across Granary.
//
// A Timestamp is the number of microseconds since 1970-01-01T00:00:00Z (negative before it). A
// Duration is a signed number of microseconds. Both are plain values; thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "granary/common/result.h"

namespace granary {

struct Duration {
  int64_t micros = 0;

  static constexpr Duration Microseconds(int64_t n) { return Duration{n}; }
  static constexpr Duration Seconds(int64_t n) { return Duration{n * 1'000'000}; }
  static constexpr Duration Minutes(int64_t n) { return Seconds(n * 60); }
  static constexpr Duration Hours(int64_t n) { return Minutes(n * 60); }
  static constexpr Duration Days(int64_t n) { return Hours(n * 24); }

  bool is_zero() const { return micros == 0; }
  auto operator<=>(const Duration&) const = default;
};

struct Timestamp {
  int64_t micros = 0;  // since the Unix epoch, UTC

  static constexpr Timestamp FromMicros(int64_t n) { return Timestamp{n}; }
  static constexpr Timestamp FromSeconds(int64_t n) { return Timestamp{n * 1'000'000}; }

  auto operator<=>(const Timestamp&) const = default;
  Timestamp operator-(Duration d) const { return Timestamp{micros - d.micros}; }
  Timestamp operator+(Duration d) const { return Timestamp{micros + d.micros}; }
  Duration operator-(Timestamp t) const { return Duration{micros - t.micros}; }
};

// Parses ISO 8601 / RFC 3339 text into a UTC timestamp. Accepted forms:
//   2026-11-23            2026-11-23T02:00          2026-11-23T02:00:00.123456
//   2026-11-23 02:00:00   ...Z   ...+01:00   ...-0530   ...+01
// A value without an offset is taken as UTC. Fractions of more than six digits are truncated to
// microseconds. Errors say what is wrong and show the expected form.
Result<Timestamp> ParseTimestamp(std::string_view text);

// A time given by a user: ISO 8601 text as ParseTimestamp, or "now", which means the caller's
// Clock at the time of use (nullopt: the caller reads it). The one parser of the CLI's START and
// END, the SDK's times and POST /materialize-incremental's end. InvalidArgument saying both forms.
Result<std::optional<Timestamp>> ParseTimeOrNow(std::string_view text);

// Formats as RFC 3339 in UTC: "2026-11-23T02:00:00Z", with ".ffffff" when the fraction is not 0.
std::string FormatTimestamp(Timestamp ts);

// Parses a duration such as "90d", "36h", "15m", "30s", "2w", "1d12h", "500ms", "0". A bare number
// other than 0 is rejected (the unit would be a guess).
Result<Duration> ParseDuration(std::string_view text);

// Formats with the largest units that divide it exactly: "90d", "36h", "1d30m", "0s".
std::string FormatDuration(Duration d);

// Days since 1970-01-01 for a proleptic Gregorian date (no range checks).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);

// A proleptic Gregorian date.
struct CivilDate {
  int64_t year;
  unsigned month, day;  // 1-12, 1-31
};
// The date of a day since 1970-01-01 (the inverse of DaysFromCivil).
CivilDate CivilFromDays(int64_t days);

// a / b rounded towards negative infinity (b > 0): the day or second of a negative timestamp.
constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace granary
