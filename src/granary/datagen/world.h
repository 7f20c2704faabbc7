// The city the synthetic parking operator works in: zones, bays with their tariffs, public
// holidays and local events. Small (thousands of objects at most), made once per run before the
// customers and the telemetry, and read-only afterwards (safe to share between threads).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "granary/common/time.h"
#include "granary/datagen/options.h"

namespace granary::datagen {

// What a zone is for; it sets the demand pattern of its bays (see DemandProfile).
enum class ZoneKind {
  kCentre,
  kBusiness,
  kShopping,
  kResidential,
  kStation,
  kStadium,
  kHospital,
  kUniversity
};
inline constexpr int kZoneKinds = 8;
const char* ZoneKindName(ZoneKind kind);

// Arrivals per space per hour by hour of day, for weekdays and weekends, and the typical stay.
struct DemandProfile {
  std::array<double, 24> weekday;
  std::array<double, 24> weekend;
  double dwell_median_hours;
  double dwell_sigma;     // log-space
  double holiday_factor;  // multiplies arrivals on public holidays
  double event_factor;    // multiplies arrivals while a local event is on (and 2 h before)
};
const DemandProfile& ProfileOf(ZoneKind kind);

struct Zone {
  std::string name;  // "centre-01"
  ZoneKind kind;
  double latitude, longitude;
};

// A tariff in force from `from` (inclusive) on.
struct Tariff {
  Timestamp from;
  double base_price;  // per hour, in the operator's currency
};

struct Bay {
  int64_t id;         // parking_bay_id, 1..bays
  int32_t zone;       // index into World::zones
  int32_t capacity;   // spaces
  bool garage;        // a multi-storey car park rather than a street segment
  double popularity;  // multiplies the zone's demand
  double latitude, longitude;
  std::vector<Tariff> tariffs;  // ascending by `from`; the first is in force before the period

  double BasePriceAt(Timestamp t) const;
};

struct LocalEvent {
  int64_t id;
  int32_t zone;
  Timestamp start, end;
  std::string kind;  // "football", "concert", "market", "conference", "graduation"
  int64_t expected_attendance;
};

struct Holiday {
  int64_t day;  // days since the epoch
  std::string name;
};

struct World {
  Timestamp start;          // first instant of the period (exclusive lower bound of telemetry)
  Timestamp end;            // the snapshot instant
  Timestamp history_start;  // earliest generated timestamp (warm-up and history before start)
  std::vector<Zone> zones;
  std::vector<Bay> bays;                             // bays[i].id == i + 1
  std::vector<std::vector<int32_t>> bays_by_zone;    // indexes into bays
  std::vector<LocalEvent> events;                    // ascending by (start, zone)
  std::vector<std::vector<int32_t>> events_by_zone;  // indexes into events, by start
  std::vector<Holiday> holidays;                     // ascending by day
  std::vector<Timestamp> month_starts;  // midnight of each 1st of a month in (history_start, end]

  bool IsHoliday(int64_t day) const;
  // Whether a local event in `zone` is on at `t` (start <= t < end).
  bool EventOn(int32_t zone, Timestamp t) const;
  // Whether an event in `zone` is on at `t` or starts within the next `lead` (arrivals rise
  // before kick-off); used by the demand model, not published as a feature.
  bool EventDemand(int32_t zone, Timestamp t, Duration lead) const {
    return UpcomingEvent(zone, t, lead) != nullptr;
  }
  // The event behind EventDemand, or null.
  const LocalEvent* UpcomingEvent(int32_t zone, Timestamp t, Duration lead) const;
  // The hourly price at `t`: base price times the time-of-day multiplier, times 1.5 during an
  // event in the bay's zone; rounded to cents.
  double PriceAt(const Bay& bay, Timestamp t) const;
};

// Builds the world for a run. Deterministic in (seed, scale, end).
World MakeWorld(const DatagenOptions& options);

// Public holidays between two days since the epoch (inclusive): New Year's Day, Good Friday,
// Easter Monday, Labour Day (1 May), the Summer Bank Holiday (last Monday of August), Christmas
// Day, Boxing Day.
std::vector<Holiday> HolidaysBetween(int64_t first_day, int64_t last_day);

// Day of the week of a day since the epoch: 0 = Monday ... 6 = Sunday.
inline int Weekday(int64_t day) { return static_cast<int>(((day % 7) + 7 + 3) % 7); }

inline int64_t DayOf(Timestamp t) {
  constexpr int64_t kDay = 86'400'000'000LL;
  return t.micros >= 0 ? t.micros / kDay : -((-t.micros + kDay - 1) / kDay);
}
inline Timestamp StartOfDay(int64_t day) { return Timestamp::FromSeconds(day * 86'400); }

}  // namespace granary::datagen
