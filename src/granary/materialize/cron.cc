#include "granary/materialize/cron.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <ctime>
#include <vector>

#include "granary/common/strings.h"

namespace granary {
namespace {

constexpr std::string_view kForm =
    "expected 5 fields 'minute hour day-of-month month day-of-week', e.g. '0 2 * * *' (02:00 "
    "every day) or '*/15 * * * MON-FRI'; each field is *, N, A-B, */N, A-B/N or a list of them";

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  std::vector<std::string_view> names;  // names[i] is value min + i (months, days of week)
};

const FieldSpec kFields[5] = {
    {"minute", 0, 59, {}},
    {"hour", 0, 23, {}},
    {"day of month", 1, 31, {}},
    {"month",
     1,
     12,
     {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
    // 7 is accepted as Sunday too (folded to 0 after parsing).
    {"day of week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
};

Result<int> ParseValue(std::string_view text, const FieldSpec& spec, std::string_view expr) {
  if (!text.empty() && std::isalpha(static_cast<unsigned char>(text[0]))) {
    std::string upper;
    for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (size_t i = 0; i < spec.names.size(); ++i) {
      if (spec.names[i] == upper) return spec.min + static_cast<int>(i);
    }
    return Status::InvalidArgument(fmt::format(
        "cron '{}': {} field: unknown name '{}'{}", expr, spec.name, text,
        spec.names.empty()
            ? "; this field takes numbers only"
            : fmt::format("; use one of {}", Join({spec.names.begin(), spec.names.end()}, ", "))));
  }
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::InvalidArgument(
        fmt::format("cron '{}': {} field: '{}' is not a number; {}", expr, spec.name, text, kForm));
  }
  if (value < spec.min || value > spec.max) {
    return Status::InvalidArgument(fmt::format("cron '{}': {} field: {} is out of range {}-{}",
                                               expr, spec.name, value, spec.min, spec.max));
  }
  return value;
}

// Sets the bits of one field; `star` tells whether it was a bare '*'.
Status ParseField(std::string_view field, const FieldSpec& spec, std::string_view expr,
                  std::bitset<64>* bits, bool* star) {
  *star = field == "*";
  size_t start = 0;
  while (start <= field.size()) {
    size_t comma = field.find(',', start);
    if (comma == std::string_view::npos) comma = field.size();
    const std::string_view part = field.substr(start, comma - start);
    if (part.empty()) {
      return Status::InvalidArgument(
          fmt::format("cron '{}': {} field: empty item in '{}'", expr, spec.name, field));
    }
    std::string_view range = part;
    int step = 1;
    if (size_t slash = part.find('/'); slash != std::string_view::npos) {
      range = part.substr(0, slash);
      const std::string_view step_text = part.substr(slash + 1);
      auto [ptr, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || ec != std::errc() || ptr != step_text.data() + step_text.size() ||
          step < 1) {
        return Status::InvalidArgument(
            fmt::format("cron '{}': {} field: step '{}' must be a positive number", expr, spec.name,
                        step_text));
      }
    }
    int lo = spec.min;
    int hi = spec.max;
    if (range != "*") {
      size_t dash = range.find('-');
      GRANARY_ASSIGN_OR_RAISE(lo, ParseValue(range.substr(0, dash), spec, expr));
      if (dash != std::string_view::npos) {
        GRANARY_ASSIGN_OR_RAISE(hi, ParseValue(range.substr(dash + 1), spec, expr));
        if (hi < lo) {
          return Status::InvalidArgument(
              fmt::format("cron '{}': {} field: range '{}' goes backwards; write it low-high", expr,
                          spec.name, range));
        }
      } else if (part.find('/') == std::string_view::npos) {
        hi = lo;  // a single value
      }           // "a/n" runs from a to the maximum
    }
    for (int v = lo; v <= hi; v += step) bits->set(v);
    start = comma + 1;
  }
  return Status::OK();
}

template <size_t N>
std::bitset<N> Narrow(const std::bitset<64>& wide) {
  std::bitset<N> out;
  for (size_t i = 0; i < N; ++i) out[i] = wide[i];
  return out;
}

std::string_view Macro(std::string_view expr) {
  if (expr == "@yearly" || expr == "@annually") return "0 0 1 1 *";
  if (expr == "@monthly") return "0 0 1 * *";
  if (expr == "@weekly") return "0 0 * * 0";
  if (expr == "@daily" || expr == "@midnight") return "0 0 * * *";
  if (expr == "@hourly") return "0 * * * *";
  return {};
}

int DaysInMonth(int month) {  // the most a month can have (February: 29)
  static constexpr int kDays[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month];
}

// Whether the wall-clock minute of `tm` (at `t`) was already shown an hour earlier.
template <typename ToTm>
bool RepeatsEarlierWallTime(time_t t, const std::tm& tm, const ToTm& to_tm) {
  const std::tm earlier = to_tm(t - 3600);
  return earlier.tm_mday == tm.tm_mday && earlier.tm_hour == tm.tm_hour &&
         earlier.tm_min == tm.tm_min;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expr, Zone zone) {
  std::string_view trimmed = expr;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) {
    trimmed.remove_prefix(1);
  }
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) {
    trimmed.remove_suffix(1);
  }
  std::string_view body = trimmed;
  if (!trimmed.empty() && trimmed[0] == '@') {
    body = Macro(trimmed);
    if (body.empty()) {
      return Status::InvalidArgument(fmt::format(
          "cron '{}': unknown macro; use @yearly, @monthly, @weekly, @daily or @hourly", expr));
    }
  }
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < body.size()) {
    while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
    size_t j = i;
    while (j < body.size() && !std::isspace(static_cast<unsigned char>(body[j]))) ++j;
    if (j > i) fields.push_back(body.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) {
    return Status::InvalidArgument(
        fmt::format("cron '{}': has {} fields; {}", expr, fields.size(), kForm));
  }
  CronSchedule s;
  s.expression_ = std::string(trimmed);
  s.zone_ = zone;
  std::bitset<64> bits[5];
  bool star[5];
  for (int f = 0; f < 5; ++f) {
    GRANARY_RETURN_NOT_OK(ParseField(fields[f], kFields[f], expr, &bits[f], &star[f]));
  }
  if (bits[4][7]) bits[4].set(0);  // 7 is Sunday
  s.minutes_ = Narrow<60>(bits[0]);
  s.hours_ = Narrow<24>(bits[1]);
  s.days_of_month_ = Narrow<32>(bits[2]);
  s.months_ = Narrow<13>(bits[3]);
  s.days_of_week_ = Narrow<7>(bits[4]);
  s.day_of_month_star_ = star[2];
  s.day_of_week_star_ = star[4];
  if (s.day_of_week_star_ && !s.day_of_month_star_) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      for (int d = 1; d <= DaysInMonth(m) && !possible; ++d) {
        possible = s.months_[m] && s.days_of_month_[d];
      }
    }
    if (!possible) {
      return Status::InvalidArgument(fmt::format(
          "cron '{}': no month has that day, so it would never run; check the day and month "
          "fields",
          expr));
    }
  }
  return s;
}

bool CronSchedule::DayMatches(int mday, int month, int wday) const {
  (void)month;
  const bool dom = days_of_month_[mday];
  const bool dow = days_of_week_[wday];
  if (!day_of_month_star_ && !day_of_week_star_) return dom || dow;
  return dom && dow;
}

Timestamp CronSchedule::Next(Timestamp after) const {
  // Walks forward through wall-clock time, skipping whole months, days and hours that cannot
  // match. Broken-down time comes from gmtime_r/timegm (UTC) or localtime_r/mktime (local).
  auto to_tm = [this](time_t t) {
    std::tm tm{};
    if (zone_ == Zone::kUtc) {
      gmtime_r(&t, &tm);
    } else {
      localtime_r(&t, &tm);
    }
    return tm;
  };
  auto from_tm = [this](std::tm tm) {
    tm.tm_isdst = -1;
    return zone_ == Zone::kUtc ? timegm(&tm) : mktime(&tm);
  };
  time_t t = static_cast<time_t>(after.micros >= 0 ? after.micros / 1'000'000
                                                   : (after.micros - 999'999) / 1'000'000);
  t = t - (t % 60 + 60) % 60 + 60;  // the next whole minute, strictly after
  const time_t limit = t + 8LL * 366 * 24 * 3600;
  while (t < limit) {
    std::tm tm = to_tm(t);
    time_t next = 0;
    if (!months_[tm.tm_mon + 1]) {
      tm.tm_mon += 1;
      tm.tm_mday = 1;
      tm.tm_hour = 0;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      next = from_tm(tm);
    } else if (!DayMatches(tm.tm_mday, tm.tm_mon + 1, tm.tm_wday)) {
      tm.tm_mday += 1;
      tm.tm_hour = 0;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      next = from_tm(tm);
    } else if (!hours_[tm.tm_hour]) {
      tm.tm_hour += 1;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      next = from_tm(tm);
    } else if (!minutes_[tm.tm_min]) {
      next = t + 60;
    } else if (zone_ == Zone::kLocal && RepeatsEarlierWallTime(t, tm, to_tm)) {
      next = t + 60;  // the second pass through a repeated hour (DST ends): fired already
    } else {
      return Timestamp::FromSeconds(t);
    }
    // Around a daylight-saving change mktime may step back; never go backwards.
    t = next > t ? next : t + 60;
  }
  return Timestamp::FromSeconds(limit);  // unreachable for schedules Parse accepts
}

}  // namespace granary
