#include "granary/datagen/bay_simulator.h"

#include <algorithm>
#include <cmath>

namespace granary::datagen {
namespace {

constexpr int kRing7d = 672;
constexpr int kRing24h = 96;
constexpr int64_t kMicrosPerHour = 3'600'000'000LL;
constexpr double kMicrosPerMinute = 60'000'000.0;
constexpr Duration kEventLead = Duration::Hours(2);

// Demand is a little lower in high summer (holidays) and higher in winter.
double Season(int64_t day) {
  return 1.0 - 0.08 * std::cos(2.0 * M_PI * (static_cast<double>(day) - 200.0) / 365.2425);
}

}  // namespace

void TelemetryBatch::clear() {
  for (auto* v : {&bay_id, &event_timestamp, &arrivals_1h}) v->clear();
  for (auto* v : {&occupied, &arrivals, &departures, &turned_away}) v->clear();
  for (auto* v : {&occupancy, &occupancy_1h, &occupancy_24h, &occupancy_7d, &arrivals_per_hour_24h,
                  &avg_dwell_minutes_24h, &price})
    v->clear();
  for (auto* v : {&avg_dwell_valid, &event_nearby, &is_holiday}) v->clear();
}

BaySimulator::BaySimulator(const World& world, const Bay& bay, uint64_t seed)
    : world_(world),
      bay_(bay),
      profile_(ProfileOf(world.zones[bay.zone].kind)),
      rng_(seed, Stream::kBayTelemetry, static_cast<uint64_t>(bay.id)),
      tick_(world.start - kTelemetryWarmup),
      occupied_ring_(kRing7d, 0),
      arrivals_ring_(kRing24h, 0),
      departures_ring_(kRing24h, 0),
      dwell_ring_(kRing24h, 0) {}

double BaySimulator::ArrivalsPerHour(Timestamp t, bool holiday) const {
  const int64_t day = DayOf(t);
  const int hour = static_cast<int>((t.micros - StartOfDay(day).micros) / kMicrosPerHour);
  const bool weekend = Weekday(day) >= 5;
  double rate = (weekend ? profile_.weekend : profile_.weekday)[hour];
  if (holiday) rate *= profile_.holiday_factor;
  if (world_.EventDemand(bay_.zone, t, kEventLead)) rate *= profile_.event_factor;
  return rate * bay_.capacity * bay_.popularity * Season(day);
}

void BaySimulator::Run(Timestamp until, Timestamp emit_from, TelemetryBatch* out) {
  int64_t holiday_day = INT64_MIN;
  bool holiday = false;
  while (tick_ + kTick <= until) {
    const Timestamp from = tick_;
    tick_ = tick_ + kTick;
    const int64_t day = DayOf(from);
    if (day != holiday_day) {
      holiday_day = day;
      holiday = world_.IsHoliday(day);
    }
    int32_t arrivals = 0, departures = 0, turned_away = 0;
    int64_t dwell_sum = 0;
    auto depart_until = [&](int64_t t) {
      while (!parked_.empty() && parked_.top().first <= t) {
        ++departures;
        dwell_sum += parked_.top().first - parked_.top().second;
        parked_.pop();
      }
    };

    const Timestamp mid = from + Duration::Microseconds(kTick.micros / 2);
    const int64_t n = rng_.Poisson(ArrivalsPerHour(mid, holiday) * 0.25);
    arrival_scratch_.clear();
    for (int64_t i = 0; i < n; ++i) arrival_scratch_.push_back(rng_.Uniform());
    std::sort(arrival_scratch_.begin(), arrival_scratch_.end());
    for (double u : arrival_scratch_) {
      // Arrival instants fall in (from, tick_]: whole seconds, never exactly at `from`.
      const int64_t offset_s = 1 + static_cast<int64_t>(u * (kTick.micros / 1'000'000 - 1));
      const int64_t arrival = from.micros + offset_s * 1'000'000;
      depart_until(arrival);
      if (static_cast<int32_t>(parked_.size()) >= bay_.capacity) {
        ++turned_away;
        continue;
      }
      int64_t stay;
      const LocalEvent* event = world_.UpcomingEvent(bay_.zone, Timestamp{arrival}, kEventLead);
      if (event != nullptr && rng_.Bernoulli(0.7)) {
        stay = (event->end.micros - arrival) +
               static_cast<int64_t>(rng_.Exponential(20.0) * kMicrosPerMinute);
      } else {
        const double hours = rng_.LogNormal(profile_.dwell_median_hours, profile_.dwell_sigma);
        stay = std::max<int64_t>(300, static_cast<int64_t>(hours * 3600.0)) * 1'000'000;
      }
      stay = stay / 1'000'000 * 1'000'000;  // whole seconds
      parked_.emplace(arrival + stay, arrival);
      ++arrivals;
      if (visit_hook_) visit_hook_(Visit{Timestamp{arrival}, Timestamp{arrival + stay}});
    }
    depart_until(tick_.micros);
    const int32_t occupied = static_cast<int32_t>(parked_.size());

    // Windows: add this tick, drop the one that falls out of each window.
    const int64_t t = ticks_++;
    auto slot7 = [](int64_t k) { return static_cast<size_t>(k % kRing7d); };
    auto slot24 = [](int64_t k) { return static_cast<size_t>(k % kRing24h); };
    if (t >= 4) occ_sum_4_ -= occupied_ring_[slot7(t - 4)];
    if (t >= kRing24h) occ_sum_96_ -= occupied_ring_[slot7(t - kRing24h)];
    if (t >= kRing7d) occ_sum_672_ -= occupied_ring_[slot7(t - kRing7d)];
    if (t >= 4) arr_sum_4_ -= arrivals_ring_[slot24(t - 4)];
    if (t >= kRing24h) {
      arr_sum_96_ -= arrivals_ring_[slot24(t)];
      dep_sum_96_ -= departures_ring_[slot24(t)];
      dwell_sum_96_ -= dwell_ring_[slot24(t)];
    }
    occupied_ring_[slot7(t)] = occupied;
    arrivals_ring_[slot24(t)] = arrivals;
    departures_ring_[slot24(t)] = departures;
    dwell_ring_[slot24(t)] = dwell_sum;
    occ_sum_4_ += occupied;
    occ_sum_96_ += occupied;
    occ_sum_672_ += occupied;
    arr_sum_4_ += arrivals;
    arr_sum_96_ += arrivals;
    dep_sum_96_ += departures;
    dwell_sum_96_ += dwell_sum;

    if (out == nullptr || tick_ < emit_from) continue;
    const double cap = bay_.capacity;
    const int64_t n_all = t + 1;
    auto mean_occupancy = [&](int64_t sum, int64_t window) {
      return static_cast<double>(sum) / (static_cast<double>(std::min(n_all, window)) * cap);
    };
    out->bay_id.push_back(bay_.id);
    out->event_timestamp.push_back(tick_.micros);
    out->occupied.push_back(occupied);
    out->occupancy.push_back(occupied / cap);
    out->arrivals.push_back(arrivals);
    out->departures.push_back(departures);
    out->turned_away.push_back(turned_away);
    out->occupancy_1h.push_back(mean_occupancy(occ_sum_4_, 4));
    out->occupancy_24h.push_back(mean_occupancy(occ_sum_96_, kRing24h));
    out->occupancy_7d.push_back(mean_occupancy(occ_sum_672_, kRing7d));
    out->arrivals_1h.push_back(arr_sum_4_);
    out->arrivals_per_hour_24h.push_back(static_cast<double>(arr_sum_96_) / 24.0);
    out->avg_dwell_valid.push_back(dep_sum_96_ > 0);
    out->avg_dwell_minutes_24h.push_back(dep_sum_96_ > 0 ? static_cast<double>(dwell_sum_96_) /
                                                               static_cast<double>(dep_sum_96_) /
                                                               kMicrosPerMinute
                                                         : 0.0);
    out->price.push_back(world_.PriceAt(bay_, tick_));
    out->event_nearby.push_back(world_.EventOn(bay_.zone, tick_));
    out->is_holiday.push_back(world_.IsHoliday(DayOf(tick_)));
  }
}

}  // namespace granary::datagen
