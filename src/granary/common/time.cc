#include "granary/common/time.h"

#include <fmt/format.h>

#include <array>
#include <limits>

namespace granary {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;

// Reads exactly `n` decimal digits at `pos`; false if they are not there.
bool ReadDigits(std::string_view s, size_t& pos, int n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

Status BadTimestamp(std::string_view text, std::string_view why) {
  return Status::InvalidArgument(
      fmt::format("invalid timestamp '{}': {}; expected ISO 8601 such as 2026-11-23T02:00:00Z, "
                  "2026-11-23 02:00:00+01:00 or 2026-11-23",
                  text, why));
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil algorithm (public domain description).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

Result<Timestamp> ParseTimestamp(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty()) return BadTimestamp(text, "it is empty");

  size_t pos = 0;
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(s, pos, 4, year) || pos >= s.size() || s[pos++] != '-' ||
      !ReadDigits(s, pos, 2, month) || pos >= s.size() || s[pos++] != '-' ||
      !ReadDigits(s, pos, 2, day)) {
    return BadTimestamp(text, "the date part is not YYYY-MM-DD");
  }
  if (month < 1 || month > 12) return BadTimestamp(text, "month out of range");
  if (day < 1 || day > DaysInMonth(year, month)) return BadTimestamp(text, "day out of range");

  int64_t fraction_micros = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == 't' || s[pos] == ' ')) {
    ++pos;
    if (!ReadDigits(s, pos, 2, hour)) return BadTimestamp(text, "the time part is not HH:MM");
    if (pos >= s.size() || s[pos] != ':') return BadTimestamp(text, "the time part is not HH:MM");
    ++pos;
    if (!ReadDigits(s, pos, 2, minute)) return BadTimestamp(text, "the time part is not HH:MM");
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!ReadDigits(s, pos, 2, second)) return BadTimestamp(text, "seconds are not two digits");
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        int digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (digits < 6) fraction_micros = fraction_micros * 10 + (s[pos] - '0');
          ++digits;
          ++pos;
        }
        if (digits == 0) return BadTimestamp(text, "a fraction needs at least one digit");
        for (int i = digits; i < 6; ++i) fraction_micros *= 10;
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return BadTimestamp(text, "time out of range");
    if (second == 60) second = 59;  // a leap second is clamped: Unix time has none
  }

  int64_t offset_seconds = 0;
  if (pos < s.size()) {
    char c = s[pos];
    if ((c == 'Z' || c == 'z') && pos + 1 == s.size()) {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      int oh = 0, om = 0;
      if (!ReadDigits(s, pos, 2, oh)) return BadTimestamp(text, "the UTC offset is not +HH:MM");
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (pos < s.size() && !ReadDigits(s, pos, 2, om)) {
        return BadTimestamp(text, "the UTC offset is not +HH:MM");
      }
      if (oh > 23 || om > 59) return BadTimestamp(text, "UTC offset out of range");
      offset_seconds = (oh * 3600 + om * 60) * (c == '-' ? -1 : 1);
    }
    if (pos != s.size()) {
      return BadTimestamp(text, fmt::format("unexpected '{}' at position {}", s.substr(pos), pos));
    }
  }

  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t seconds =
      days * kSecondsPerDay + hour * 3600 + minute * 60 + second - offset_seconds;
  return Timestamp::FromMicros(seconds * kMicrosPerSecond + fraction_micros);
}

CivilDate CivilFromDays(int64_t days) {
  // Howard Hinnant's civil_from_days algorithm (public domain description).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return CivilDate{static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

Result<std::optional<Timestamp>> ParseTimeOrNow(std::string_view text) {
  if (text == "now") return std::optional<Timestamp>();
  auto ts = ParseTimestamp(text);
  if (!ts.ok()) return Status::InvalidArgument(ts.status().message() + "; or write 'now'");
  return std::optional<Timestamp>(*ts);
}

std::string FormatTimestamp(Timestamp ts) {
  const int64_t secs = FloorDiv(ts.micros, kMicrosPerSecond);
  const int64_t frac = ts.micros - secs * kMicrosPerSecond;
  const int64_t days = FloorDiv(secs, kSecondsPerDay);
  const int64_t sod = secs - days * kSecondsPerDay;
  const CivilDate date = CivilFromDays(days);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", date.year, date.month,
                                date.day, sod / 3600, (sod / 60) % 60, sod % 60);
  if (frac != 0) out += fmt::format(".{:06}", frac);
  out += 'Z';
  return out;
}

Result<Duration> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format(
        "invalid duration '{}': {}; write a number with a unit (w, d, h, m, s, ms, us) such as "
        "90d, 36h or 1d12h, or 0 for no limit",
        text, why));
  };
  auto too_large = [&] {
    return Status::InvalidArgument(fmt::format(
        "duration too large: '{}' is more than the largest duration Granary can hold "
        "(106751991d, about 292,000 years, in int64 microseconds); use a smaller value such as "
        "3650d, "
        "or 0 for no limit",
        text));
  };
  std::string_view s = text;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return bad("it is empty");
  if (s == "0") return Duration{};
  int64_t total = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s[pos] < '0' || s[pos] > '9') return bad("expected a number");
    int64_t n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      const int digit = s[pos++] - '0';
      if (n > (std::numeric_limits<int64_t>::max() - digit) / 10) return too_large();
      n = n * 10 + digit;
    }
    size_t unit_start = pos;
    while (pos < s.size() &&
           ((s[pos] >= 'a' && s[pos] <= 'z') || (s[pos] >= 'A' && s[pos] <= 'Z'))) {
      ++pos;
    }
    std::string_view unit = s.substr(unit_start, pos - unit_start);
    int64_t scale;
    if (unit == "w")
      scale = Duration::Days(7).micros;
    else if (unit == "d")
      scale = Duration::Days(1).micros;
    else if (unit == "h")
      scale = Duration::Hours(1).micros;
    else if (unit == "m")
      scale = Duration::Minutes(1).micros;
    else if (unit == "s")
      scale = Duration::Seconds(1).micros;
    else if (unit == "ms")
      scale = 1000;
    else if (unit == "us")
      scale = 1;
    else if (unit.empty())
      return bad("a number has no unit");
    else
      return bad(fmt::format("unknown unit '{}'", unit));
    // total + n * scale must stay within int64 microseconds; checked before computing either
    // so that no signed arithmetic overflows.
    if (n > std::numeric_limits<int64_t>::max() / scale) return too_large();
    const int64_t part = n * scale;
    if (part > std::numeric_limits<int64_t>::max() - total) return too_large();
    total += part;
  }
  return Duration{total};
}

std::string FormatDuration(Duration d) {
  if (d.micros == 0) return "0s";
  std::string out;
  int64_t v = d.micros;
  if (v < 0) {
    out += '-';
    v = -v;
  }
  struct Unit {
    int64_t micros;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{Duration::Days(1).micros, "d"},
                                    {Duration::Hours(1).micros, "h"},
                                    {Duration::Minutes(1).micros, "m"},
                                    {Duration::Seconds(1).micros, "s"},
                                    {1000, "ms"},
                                    {1, "us"}};
  for (const Unit& u : kUnits) {
    if (v >= u.micros) {
      out += fmt::format("{}{}", v / u.micros, u.name);
      v %= u.micros;
    }
  }
  return out;
}

}  // namespace granary
