// Tests of the generator's building blocks: random streams, the city, and the bay simulation
// checked against a brute-force recomputation from the simulated visits.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "granary/datagen/bay_simulator.h"
#include "granary/datagen/random.h"
#include "granary/datagen/world.h"

namespace granary::datagen {
namespace {

DatagenOptions SmallOptions(int64_t days = 21) {
  DatagenOptions o;
  o.scale = ScaleParams{"test", 300, 16, 8, days, 100, 8};
  o.seed = 7;
  o.end = ParseTimestamp("2026-04-20").ValueOrDie();
  return o;
}

TEST(Random, SplitMix64MatchesTheReferenceSequence) {
  // The first outputs of the reference implementation from state 0.
  uint64_t state = 0;
  EXPECT_EQ(SplitMix64(state), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(SplitMix64(state), 0x6e789e6aa1b965f4ULL);
}

TEST(Random, StreamsDependOnSeedDomainAndIdOnly) {
  Rng a(1, Stream::kCustomer, 5), b(1, Stream::kCustomer, 5);
  Rng other_id(1, Stream::kCustomer, 6), other_stream(1, Stream::kBayTelemetry, 5),
      other_seed(2, Stream::kCustomer, 5);
  const uint64_t first = a.Next();
  EXPECT_EQ(first, b.Next());
  EXPECT_NE(first, other_id.Next());
  EXPECT_NE(first, other_stream.Next());
  EXPECT_NE(first, other_seed.Next());
}

TEST(Random, DistributionsHaveTheirMeans) {
  Rng rng(3, Stream::kCustomer, 1);
  const int n = 200'000;
  double u = 0, e = 0, norm = 0, pois = 0, pois_big = 0;
  for (int i = 0; i < n; ++i) {
    u += rng.Uniform();
    e += rng.Exponential(4.0);
    norm += rng.Normal(10.0, 2.0);
    pois += static_cast<double>(rng.Poisson(0.7));
    pois_big += static_cast<double>(rng.Poisson(75.0));
  }
  EXPECT_NEAR(u / n, 0.5, 0.01);
  EXPECT_NEAR(e / n, 4.0, 0.05);
  EXPECT_NEAR(norm / n, 10.0, 0.02);
  EXPECT_NEAR(pois / n, 0.7, 0.01);
  EXPECT_NEAR(pois_big / n, 75.0, 0.2);
}

TEST(World, CalendarHelpers) {
  EXPECT_EQ(Weekday(0), 3);  // 1970-01-01 was a Thursday
  const int64_t d = DaysFromCivil(2026, 4, 6);
  EXPECT_EQ(Weekday(d), 0);  // a Monday
  const CivilDate c = CivilFromDays(d);
  EXPECT_EQ(c.year, 2026);
  EXPECT_EQ(c.month, 4u);
  EXPECT_EQ(c.day, 6u);
  std::map<std::string, int64_t> by_name;
  for (const Holiday& h : HolidaysBetween(DaysFromCivil(2026, 1, 1), DaysFromCivil(2026, 12, 31)))
    by_name[h.name] = h.day;
  // Easter Sunday 2026 is 5 April.
  EXPECT_EQ(by_name["Good Friday"], DaysFromCivil(2026, 4, 3));
  EXPECT_EQ(by_name["Easter Monday"], DaysFromCivil(2026, 4, 6));
  EXPECT_EQ(by_name["Summer Bank Holiday"], DaysFromCivil(2026, 8, 31));
  EXPECT_EQ(by_name.size(), 7u);
}

TEST(World, EveryZoneHasBaysAndEventsNeverOverlapOrOutliveTheSnapshot) {
  const DatagenOptions o = SmallOptions(60);
  const World w = MakeWorld(o);
  ASSERT_EQ(w.zones.size(), 8u);
  ASSERT_EQ(w.bays.size(), 16u);
  for (const auto& bays : w.bays_by_zone) EXPECT_FALSE(bays.empty());
  EXPECT_FALSE(w.events.empty());
  for (size_t z = 0; z < w.zones.size(); ++z) {
    const auto& list = w.events_by_zone[z];
    for (size_t i = 0; i < list.size(); ++i) {
      const LocalEvent& e = w.events[list[i]];
      EXPECT_LE(e.end, w.end);
      EXPECT_LT(e.start, e.end);
      if (i > 0) {
        EXPECT_LE(w.events[list[i - 1]].end, e.start);
      }
      EXPECT_TRUE(w.EventOn(e.zone, e.start));
      EXPECT_FALSE(w.EventOn(e.zone, e.end));
    }
  }
  for (const Bay& b : w.bays) {
    EXPECT_GT(b.capacity, 0);
    EXPECT_LT(b.tariffs.front().from, w.history_start);
  }
}

// Recomputes every telemetry column of a bay from its visits and compares exactly.
TEST(BaySimulator, WindowFeaturesEqualABruteForceRecomputationFromTheVisits) {
  const DatagenOptions o = SmallOptions();
  const World w = MakeWorld(o);
  for (int b : {0, 2, 5}) {
    const Bay& bay = w.bays[b];
    BaySimulator sim(w, bay, o.seed);
    std::vector<Visit> visits;
    sim.set_visit_hook([&](const Visit& v) { visits.push_back(v); });
    TelemetryBatch batch;
    const Timestamp first_tick = w.start - kTelemetryWarmup + kTick;
    sim.Run(w.end - kTick, first_tick, &batch);
    // Every tick from the first after the (empty) start of the warm-up to the last before `end`.
    ASSERT_EQ(batch.size(), static_cast<size_t>((o.scale.days + 7) * kTicksPerDay - 1));
    ASSERT_FALSE(visits.empty());

    const size_t n = batch.size();
    std::vector<int64_t> occupied(n), arrivals(n), departures(n), dwell(n);
    for (size_t k = 0; k < n; ++k) {
      const int64_t t = batch.event_timestamp[k];
      ASSERT_EQ(t, first_tick.micros + static_cast<int64_t>(k) * kTick.micros);
      for (const Visit& v : visits) {
        if (v.arrival.micros <= t && t < v.departure.micros) ++occupied[k];
        if (v.arrival.micros > t - kTick.micros && v.arrival.micros <= t) ++arrivals[k];
        if (v.departure.micros > t - kTick.micros && v.departure.micros <= t) {
          ++departures[k];
          dwell[k] += v.departure.micros - v.arrival.micros;
        }
      }
    }
    auto window_sum = [&](const std::vector<int64_t>& v, size_t k, size_t len) {
      int64_t s = 0;
      for (size_t j = k + 1 >= len ? k + 1 - len : 0; j <= k; ++j) s += v[j];
      return s;
    };
    const double cap = bay.capacity;
    for (size_t k = 0; k < n; ++k) {
      SCOPED_TRACE(testing::Message() << "bay " << bay.id << " tick " << k);
      ASSERT_EQ(batch.occupied[k], occupied[k]);
      ASSERT_LE(batch.occupied[k], bay.capacity);
      ASSERT_EQ(batch.arrivals[k], arrivals[k]);
      ASSERT_EQ(batch.departures[k], departures[k]);
      ASSERT_EQ(batch.occupancy[k], occupied[k] / cap);
      auto mean_occ = [&](size_t len) {
        return static_cast<double>(window_sum(occupied, k, len)) /
               (static_cast<double>(std::min(k + 1, len)) * cap);
      };
      ASSERT_EQ(batch.occupancy_1h[k], mean_occ(4));
      ASSERT_EQ(batch.occupancy_24h[k], mean_occ(96));
      ASSERT_EQ(batch.occupancy_7d[k], mean_occ(672));
      ASSERT_EQ(batch.arrivals_1h[k], window_sum(arrivals, k, 4));
      ASSERT_EQ(batch.arrivals_per_hour_24h[k], window_sum(arrivals, k, 96) / 24.0);
      const int64_t dep = window_sum(departures, k, 96);
      ASSERT_EQ(batch.avg_dwell_valid[k], dep > 0);
      if (dep > 0) {
        ASSERT_EQ(batch.avg_dwell_minutes_24h[k],
                  static_cast<double>(window_sum(dwell, k, 96)) / static_cast<double>(dep) / 60e6);
      }
      const Timestamp t{batch.event_timestamp[k]};
      ASSERT_EQ(batch.event_nearby[k], w.EventOn(bay.zone, t));
      ASSERT_EQ(batch.price[k], w.PriceAt(bay, t));
    }
  }
}

TEST(BaySimulator, RunningInDailyStepsGivesTheSameRowsAsOneRun) {
  const DatagenOptions o = SmallOptions();
  const World w = MakeWorld(o);
  BaySimulator whole(w, w.bays[1], o.seed), stepped(w, w.bays[1], o.seed);
  TelemetryBatch a, b;
  whole.Run(w.end - kTick, w.start, &a);
  for (int64_t day = DayOf(w.start); day < DayOf(w.end); ++day) {
    stepped.Run(StartOfDay(day + 1) - kTick, w.start, &b);
  }
  ASSERT_EQ(a.size(), static_cast<size_t>(o.scale.days * kTicksPerDay));
  EXPECT_EQ(a.event_timestamp, b.event_timestamp);
  EXPECT_EQ(a.occupied, b.occupied);
  EXPECT_EQ(a.occupancy_7d, b.occupancy_7d);
  EXPECT_EQ(a.avg_dwell_minutes_24h, b.avg_dwell_minutes_24h);
}

}  // namespace
}  // namespace granary::datagen
