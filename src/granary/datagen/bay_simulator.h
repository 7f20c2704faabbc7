// BaySimulator: the occupancy telemetry of one parking bay, tick by tick (every 15 minutes).
//
// Cars arrive as a Poisson process whose rate follows the zone's demand profile (hour of day,
// weekday or weekend, public holidays, season, local events) times the bay's capacity and
// popularity; a car that finds the bay full goes away (counted in turned_away). Each parked car
// stays for a log-normal time (event-goers stay until the event ends). The simulation starts
// empty a week before the period (a warm-up that is not written) so that every window feature of
// the first written tick is complete.
//
// Window features of the tick at t use only ticks in (t - window, t]: occupancy_1h, _24h and _7d
// are the mean of `occupied / capacity` over the last 4, 96 and 672 ticks; arrivals_1h is the sum
// of the last 4 ticks' arrivals; arrivals_per_hour_24h is the last 96 ticks' arrivals / 24;
// avg_dwell_minutes_24h is the mean stay of the cars that left in (t - 24h, t] (null if none).
// Sums are kept as integers, so the features are exact and reproducible.
//
// One per bay; not thread-safe. Simulators of different bays are independent.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "granary/common/time.h"
#include "granary/datagen/random.h"
#include "granary/datagen/world.h"

namespace granary::datagen {

inline constexpr Duration kTick = Duration::Minutes(15);
inline constexpr int kTicksPerDay = 96;
inline constexpr Duration kTelemetryWarmup = Duration::Days(7);

// Telemetry rows in columns (one entry per row in each vector).
struct TelemetryBatch {
  std::vector<int64_t> bay_id;
  std::vector<int64_t> event_timestamp;  // microseconds since the epoch, UTC
  std::vector<int32_t> occupied;         // cars in the bay at the tick
  std::vector<double> occupancy;         // occupied / capacity
  std::vector<int32_t> arrivals;         // cars that parked in (t - 15 min, t]
  std::vector<int32_t> departures;       // cars that left in (t - 15 min, t]
  std::vector<int32_t> turned_away;      // cars that found the bay full in (t - 15 min, t]
  std::vector<double> occupancy_1h, occupancy_24h, occupancy_7d;
  std::vector<int64_t> arrivals_1h;
  std::vector<double> arrivals_per_hour_24h;
  std::vector<double> avg_dwell_minutes_24h;
  std::vector<uint8_t> avg_dwell_valid;  // 0 where avg_dwell_minutes_24h is null
  std::vector<double> price;             // hourly price in force at t
  std::vector<uint8_t> event_nearby;     // a local event in the bay's zone is on at t
  std::vector<uint8_t> is_holiday;       // t falls on a public holiday

  size_t size() const { return event_timestamp.size(); }
  void clear();
};

// One parked car (for tests that recompute the features from the raw visits).
struct Visit {
  Timestamp arrival, departure;
};

class BaySimulator {
 public:
  // Starts empty at world.start - kTelemetryWarmup.
  BaySimulator(const World& world, const Bay& bay, uint64_t seed);

  // Simulates every tick up to and including `until`, appending the rows of ticks at or after
  // `emit_from` to `out` (when not null).
  void Run(Timestamp until, Timestamp emit_from, TelemetryBatch* out);

  // Called for every car that parks, with its planned departure (tests only).
  void set_visit_hook(std::function<void(const Visit&)> hook) { visit_hook_ = std::move(hook); }

  Timestamp last_tick() const { return tick_; }

 private:
  double ArrivalsPerHour(Timestamp t, bool holiday) const;

  const World& world_;
  const Bay& bay_;
  const DemandProfile& profile_;
  Rng rng_;
  Timestamp tick_;  // the last simulated tick
  // Cars in the bay: (departure, arrival), earliest departure on top.
  std::priority_queue<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>,
                      std::greater<>>
      parked_;
  // Ring buffers of the last 672 ticks (occupied) and 96 ticks (the rest), with running sums.
  std::vector<int32_t> occupied_ring_;
  std::vector<int32_t> arrivals_ring_, departures_ring_;
  std::vector<int64_t> dwell_ring_;
  int64_t ticks_ = 0;
  int64_t occ_sum_4_ = 0, occ_sum_96_ = 0, occ_sum_672_ = 0;
  int64_t arr_sum_4_ = 0, arr_sum_96_ = 0, dep_sum_96_ = 0, dwell_sum_96_ = 0;
  std::vector<double> arrival_scratch_;
  std::function<void(const Visit&)> visit_hook_;
};

}  // namespace granary::datagen
