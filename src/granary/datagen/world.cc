#include "granary/datagen/world.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "granary/datagen/random.h"

namespace granary::datagen {
namespace {

// Arrivals per space per hour. Business and station bays fill in the morning rush and stay full
// all day; centre and shopping bays turn over quickly; residential bays fill in the evening and
// stay overnight; stadium bays are quiet until an event.
const DemandProfile kProfiles[kZoneKinds] = {
    // kCentre
    {{0.01, 0,    0,    0,    0,    0,    0.02, 0.06, 0.12, 0.18, 0.22, 0.24,
      0.25, 0.24, 0.22, 0.20, 0.20, 0.22, 0.25, 0.22, 0.15, 0.08, 0.04, 0.02},
     {0.02, 0.01, 0,    0,    0,    0,    0.01, 0.03, 0.08, 0.18, 0.28, 0.32,
      0.33, 0.32, 0.30, 0.28, 0.26, 0.26, 0.28, 0.26, 0.20, 0.12, 0.06, 0.03},
     1.5,
     0.6,
     1.1,
     2.5},
    // kBusiness
    {{0,    0,    0,    0,    0,    0.01, 0.06, 0.22, 0.30, 0.18, 0.06, 0.04,
      0.06, 0.05, 0.04, 0.03, 0.02, 0.02, 0.01, 0.01, 0.01, 0,    0,    0},
     {0,    0,    0,    0,    0,    0,    0, 0.01, 0.02, 0.03, 0.03, 0.03,
      0.03, 0.03, 0.02, 0.02, 0.01, 0.01, 0, 0,    0,    0,    0,    0},
     7.5,
     0.25,
     0.25,
     1.5},
    // kShopping
    {{0,    0,    0,    0,    0,    0,    0,    0.02, 0.06, 0.14, 0.20, 0.22,
      0.24, 0.22, 0.22, 0.22, 0.24, 0.26, 0.22, 0.14, 0.06, 0.02, 0,    0},
     {0,    0,    0,    0,    0,    0,    0,    0.02, 0.08, 0.22, 0.36, 0.42,
      0.44, 0.42, 0.40, 0.36, 0.30, 0.24, 0.16, 0.08, 0.03, 0.01, 0,    0},
     1.2,
     0.5,
     0.5,
     1.8},
    // kResidential
    {{0.02, 0.01, 0,    0,    0,    0.01, 0.02, 0.03, 0.03, 0.03, 0.03, 0.03,
      0.03, 0.03, 0.04, 0.06, 0.10, 0.14, 0.14, 0.11, 0.08, 0.05, 0.04, 0.03},
     {0.03, 0.02, 0.01, 0,    0,    0,    0.01, 0.02, 0.03, 0.05, 0.06, 0.06,
      0.06, 0.06, 0.06, 0.06, 0.07, 0.08, 0.09, 0.09, 0.08, 0.06, 0.05, 0.04},
     11.0,
     0.35,
     1.0,
     1.5},
    // kStation
    {{0,    0,    0,    0,    0.01, 0.08, 0.24, 0.30, 0.20, 0.08, 0.05, 0.04,
      0.04, 0.04, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02, 0.01, 0.01, 0,    0},
     {0,    0,    0,    0,    0,    0.01, 0.03, 0.06, 0.10, 0.10, 0.09, 0.07,
      0.06, 0.05, 0.04, 0.03, 0.03, 0.02, 0.02, 0.01, 0.01, 0,    0,    0},
     9.5,
     0.3,
     0.35,
     1.5},
    // kStadium
    {{0,    0,    0,    0,    0,    0,    0.01, 0.02, 0.03, 0.03, 0.03, 0.03,
      0.03, 0.03, 0.03, 0.03, 0.03, 0.03, 0.02, 0.02, 0.01, 0.01, 0,    0},
     {0,    0,    0,    0,    0,    0,    0,    0.01, 0.02, 0.03, 0.04, 0.04,
      0.04, 0.04, 0.04, 0.03, 0.03, 0.03, 0.02, 0.02, 0.01, 0.01, 0,    0},
     2.0,
     0.5,
     1.0,
     14.0},
    // kHospital
    {{0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.06, 0.12, 0.14, 0.14, 0.13, 0.12,
      0.12, 0.12, 0.13, 0.12, 0.10, 0.09, 0.10, 0.10, 0.07, 0.04, 0.03, 0.02},
     {0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.04, 0.08, 0.10, 0.11, 0.11, 0.10,
      0.10, 0.10, 0.11, 0.10, 0.09, 0.08, 0.09, 0.09, 0.06, 0.04, 0.03, 0.02},
     2.0,
     0.6,
     0.9,
     1.2},
    // kUniversity
    {{0,    0,    0,    0,    0,    0,    0.01, 0.06, 0.16, 0.18, 0.14, 0.12,
      0.12, 0.12, 0.08, 0.05, 0.03, 0.03, 0.04, 0.04, 0.02, 0.01, 0,    0},
     {0,    0,    0,    0,    0,    0,    0,    0.01, 0.01, 0.02, 0.02, 0.02,
      0.02, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01, 0,    0,    0,    0},
     4.0,
     0.4,
     0.2,
     2.0},
};

constexpr ZoneKind kFirstKinds[] = {
    ZoneKind::kCentre,  ZoneKind::kBusiness, ZoneKind::kShopping, ZoneKind::kResidential,
    ZoneKind::kStadium, ZoneKind::kStation,  ZoneKind::kHospital, ZoneKind::kUniversity};
// Weights of the kinds of zones past the first eight.
constexpr double kKindWeights[kZoneKinds] = {2, 2, 1.5, 3, 0.5, 0.3, 0.5, 0.5};
constexpr double kGarageShare[kZoneKinds] = {0.2, 0.15, 0.35, 0, 0.4, 0.5, 0.3, 0.2};
constexpr double kBasePrice[kZoneKinds] = {3.0, 2.5, 2.0, 1.2, 2.2, 2.5, 1.8, 1.5};
// Chance per day of a local event in the zone, on weekdays and weekends.
constexpr double kEventChance[kZoneKinds][2] = {{0.05, 0.10},   {0.03, 0},     {0.02, 0.06},
                                                {0.004, 0.01},  {0.005, 0.01}, {0.12, 0.45},
                                                {0.002, 0.002}, {0.04, 0}};

double RoundTo(double x, double step) { return std::round(x / step) * step; }

// Easter Sunday (Gregorian) as days since the epoch: the anonymous Gregorian algorithm
// (Meeus, Astronomical Algorithms, ch. 8).
int64_t EasterSunday(int64_t year) {
  const int64_t a = year % 19, b = year / 100, c = year % 100, d = b / 4, e = b % 4;
  const int64_t f = (b + 8) / 25, g = (b - f + 1) / 3;
  const int64_t h = (19 * a + b - d - g + 15) % 30;
  const int64_t i = c / 4, k = c % 4;
  const int64_t l = (32 + 2 * e + 2 * i - h - k) % 7;
  const int64_t m = (a + 11 * h + 22 * l) / 451;
  const int64_t month = (h + l - 7 * m + 114) / 31;
  const int64_t day = (h + l - 7 * m + 114) % 31 + 1;
  return DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
}

// The last Monday of a month.
int64_t LastMonday(int64_t year, unsigned month) {
  const int64_t next =
      month == 12 ? DaysFromCivil(year + 1, 1, 1) : DaysFromCivil(year, month + 1, 1);
  int64_t day = next - 1;
  while (Weekday(day) != 0) --day;
  return day;
}

int64_t YearOf(int64_t day) { return CivilFromDays(day).year; }

std::vector<LocalEvent> ZoneEvents(const DatagenOptions& options, const Zone& zone, int32_t z,
                                   int64_t first_day, int64_t last_day) {
  Rng rng(options.seed, Stream::kZoneEvents, static_cast<uint64_t>(z));
  const int kind = static_cast<int>(zone.kind);
  std::vector<LocalEvent> out;
  for (int64_t day = first_day; day <= last_day; ++day) {
    const bool weekend = Weekday(day) >= 5;
    if (!rng.Bernoulli(kEventChance[kind][weekend ? 1 : 0])) continue;
    LocalEvent e{0, z, {}, {}, "", 0};
    double start_h, hours;
    if (zone.kind == ZoneKind::kStadium && rng.Bernoulli(0.7)) {
      e.kind = "football";
      start_h = weekend ? 15.0 : 19.75;
      hours = 2.0;
      e.expected_attendance = 20'000 + static_cast<int64_t>(rng.Below(40'000));
    } else if (zone.kind == ZoneKind::kStadium ||
               (zone.kind == ZoneKind::kCentre && rng.Bernoulli(0.5))) {
      e.kind = "concert";
      start_h = 19.5;
      hours = 3.0;
      e.expected_attendance = 2'000 + static_cast<int64_t>(rng.Below(18'000));
    } else if (zone.kind == ZoneKind::kUniversity && rng.Bernoulli(0.5)) {
      e.kind = "graduation";
      start_h = 10.0;
      hours = 4.0;
      e.expected_attendance = 500 + static_cast<int64_t>(rng.Below(2'500));
    } else if (zone.kind == ZoneKind::kBusiness || zone.kind == ZoneKind::kUniversity) {
      e.kind = "conference";
      start_h = 9.0;
      hours = 8.0;
      e.expected_attendance = 300 + static_cast<int64_t>(rng.Below(2'700));
    } else {
      e.kind = "market";
      start_h = 9.0;
      hours = 8.0;
      e.expected_attendance = 1'000 + static_cast<int64_t>(rng.Below(7'000));
    }
    e.start = StartOfDay(day) + Duration::Minutes(static_cast<int64_t>(start_h * 60));
    e.end = e.start + Duration::Minutes(static_cast<int64_t>(hours * 60));
    if (e.end > options.end) continue;  // not over yet at the snapshot: not in the data
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

const char* ZoneKindName(ZoneKind kind) {
  static const char* const kNames[kZoneKinds] = {"centre",  "business", "shopping", "residential",
                                                 "station", "stadium",  "hospital", "university"};
  return kNames[static_cast<int>(kind)];
}

const DemandProfile& ProfileOf(ZoneKind kind) { return kProfiles[static_cast<int>(kind)]; }

double Bay::BasePriceAt(Timestamp t) const {
  double price = tariffs.front().base_price;
  for (const Tariff& tariff : tariffs) {
    if (tariff.from <= t) price = tariff.base_price;
  }
  return price;
}

bool World::IsHoliday(int64_t day) const {
  return std::binary_search(holidays.begin(), holidays.end(), Holiday{day, ""},
                            [](const Holiday& a, const Holiday& b) { return a.day < b.day; });
}

const LocalEvent* World::UpcomingEvent(int32_t zone, Timestamp t, Duration lead) const {
  // Events of one zone do not overlap (at most one a day, all end before midnight), so the first
  // event that has not ended is the only candidate.
  const auto& list = events_by_zone[zone];
  auto it = std::upper_bound(list.begin(), list.end(), t,
                             [this](Timestamp v, int32_t e) { return v < events[e].end; });
  if (it == list.end() || events[*it].start - lead > t) return nullptr;
  return &events[*it];
}

bool World::EventOn(int32_t zone, Timestamp t) const { return EventDemand(zone, t, Duration{}); }

double World::PriceAt(const Bay& bay, Timestamp t) const {
  const int64_t day = DayOf(t);
  const int hour = static_cast<int>((t.micros - StartOfDay(day).micros) / 3'600'000'000LL);
  const bool weekend = Weekday(day) >= 5 || IsHoliday(day);
  double factor;
  if (hour < 7 || hour >= 22) {
    factor = 0.3;
  } else if (hour >= 18) {
    factor = 0.7;
  } else {
    factor = weekend ? 0.9 : 1.0;
  }
  if (EventOn(bay.zone, t)) factor *= 1.5;
  return std::round(bay.BasePriceAt(t) * factor * 100.0) / 100.0;
}

std::vector<Holiday> HolidaysBetween(int64_t first_day, int64_t last_day) {
  std::vector<Holiday> out;
  for (int64_t year = YearOf(first_day); year <= YearOf(last_day); ++year) {
    const int64_t easter = EasterSunday(year);
    const Holiday year_days[] = {{DaysFromCivil(year, 1, 1), "New Year's Day"},
                                 {easter - 2, "Good Friday"},
                                 {easter + 1, "Easter Monday"},
                                 {DaysFromCivil(year, 5, 1), "Labour Day"},
                                 {LastMonday(year, 8), "Summer Bank Holiday"},
                                 {DaysFromCivil(year, 12, 25), "Christmas Day"},
                                 {DaysFromCivil(year, 12, 26), "Boxing Day"}};
    for (const Holiday& h : year_days) {
      if (h.day >= first_day && h.day <= last_day) out.push_back(h);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Holiday& a, const Holiday& b) { return a.day < b.day; });
  return out;
}

World MakeWorld(const DatagenOptions& options) {
  World w;
  w.end = options.end;
  w.start = PeriodStart(options);
  w.history_start = w.start - kCustomerHistory;
  const int64_t n_zones = std::max<int64_t>(1, options.scale.zones);

  int kind_counts[kZoneKinds] = {};
  for (int64_t z = 0; z < n_zones; ++z) {
    Rng rng(options.seed, Stream::kZoneLayout, static_cast<uint64_t>(z));
    ZoneKind kind = z < 8 ? kFirstKinds[z] : static_cast<ZoneKind>(rng.Choose(kKindWeights));
    const int n = ++kind_counts[static_cast<int>(kind)];
    // Around Birmingham's centre, within about 6 km.
    w.zones.push_back(Zone{fmt::format("{}-{:02d}", ZoneKindName(kind), n), kind,
                           52.4800 + rng.Uniform(-0.05, 0.05), -1.9025 + rng.Uniform(-0.08, 0.08)});
  }

  w.bays_by_zone.resize(w.zones.size());
  std::vector<double> zone_weights;
  for (const Zone& z : w.zones) zone_weights.push_back(z.kind == ZoneKind::kResidential ? 1.5 : 1);
  std::vector<int64_t> jan_firsts;
  for (int64_t y = YearOf(DayOf(w.history_start)); y <= YearOf(DayOf(w.end)); ++y) {
    const Timestamp t = StartOfDay(DaysFromCivil(y, 1, 1));
    if (t > w.history_start && t <= w.end) jan_firsts.push_back(t.micros);
  }
  for (int64_t i = 0; i < options.scale.bays; ++i) {
    Rng rng(options.seed, Stream::kBayAttributes, static_cast<uint64_t>(i + 1));
    Bay bay;
    bay.id = i + 1;
    bay.zone = static_cast<int32_t>(i < n_zones ? i : rng.Choose(zone_weights));
    const Zone& zone = w.zones[bay.zone];
    const int kind = static_cast<int>(zone.kind);
    bay.garage = rng.Bernoulli(kGarageShare[kind]);
    bay.capacity = bay.garage ? static_cast<int32_t>(std::min(600.0, 80 + rng.LogNormal(120, 0.5)))
                              : static_cast<int32_t>(6 + rng.Below(30));
    bay.popularity = rng.LogNormal(1.0, 0.3);
    bay.latitude = zone.latitude + rng.Uniform(-0.004, 0.004);
    bay.longitude = zone.longitude + rng.Uniform(-0.006, 0.006);
    double price =
        RoundTo(kBasePrice[kind] * rng.Uniform(0.85, 1.2) * (bay.garage ? 1.1 : 1.0), 0.05);
    bay.tariffs.push_back(Tariff{w.history_start - Duration::Days(30), price});
    for (int64_t t : jan_firsts) {
      price = RoundTo(price * rng.Uniform(1.03, 1.08), 0.05);
      bay.tariffs.push_back(Tariff{Timestamp::FromMicros(t), price});
    }
    w.bays_by_zone[bay.zone].push_back(static_cast<int32_t>(i));
    w.bays.push_back(std::move(bay));
  }

  const int64_t first_day = DayOf(w.history_start), last_day = DayOf(w.end);
  for (int32_t z = 0; z < static_cast<int32_t>(w.zones.size()); ++z) {
    auto events = ZoneEvents(options, w.zones[z], z, first_day, last_day);
    w.events.insert(w.events.end(), events.begin(), events.end());
  }
  std::sort(w.events.begin(), w.events.end(), [](const LocalEvent& a, const LocalEvent& b) {
    return a.start != b.start ? a.start < b.start : a.zone < b.zone;
  });
  w.events_by_zone.resize(w.zones.size());
  for (size_t i = 0; i < w.events.size(); ++i) {
    w.events[i].id = static_cast<int64_t>(i + 1);
    w.events_by_zone[w.events[i].zone].push_back(static_cast<int32_t>(i));
  }
  w.holidays = HolidaysBetween(first_day, last_day);
  for (int64_t day = first_day; day <= last_day; ++day) {
    const Timestamp t = StartOfDay(day);
    if (CivilFromDays(day).day == 1 && t > w.history_start && t <= w.end) {
      w.month_starts.push_back(t);
    }
  }
  return w;
}

}  // namespace granary::datagen
