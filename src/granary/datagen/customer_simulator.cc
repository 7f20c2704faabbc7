#include "granary/datagen/customer_simulator.h"

#include <algorithm>
#include <cmath>

#include "granary/datagen/random.h"

namespace granary::datagen {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kHour = 3'600 * kSecond;
constexpr int64_t kDay = 24 * kHour;
// Sessions are simulated from this long before the raw history so that chargebacks and disputes
// of earlier payments show up at its start.
constexpr Duration kLeadIn = Duration::Days(60);

struct BehaviourParams {
  double share;                       // of all customers, in percent
  double weekday_rate, weekend_rate;  // sessions per day
  double start_hour, start_sd;        // session start, hours after midnight
  double hours_median, hours_sigma;   // session length
  double failure_factor;              // multiplies the payment method's failure rate
  double dispute_p, chargeback_p;     // per successful payment
  double overstay_p;                  // per session
  double unpaid_per_day;              // parking without a session
  double method_change_p;
  double churn_p;
};

constexpr BehaviourParams kBehaviours[] = {
    // commuter: weekday mornings, all day, rarely a problem
    {20.0, 0.75, 0.08, 8.2, 0.6, 8.5, 0.15, 0.6, 0.001, 0.0005, 0.02, 0.0003, 0.10, 0.10},
    // shopper: weekend afternoons, short stays
    {25.0, 0.07, 0.35, 13.5, 2.5, 1.5, 0.5, 1.0, 0.002, 0.0008, 0.03, 0.0005, 0.15, 0.15},
    // occasional
    {45.5, 0.05, 0.06, 13.0, 3.5, 2.0, 0.7, 1.2, 0.002, 0.0008, 0.04, 0.0005, 0.15, 0.20},
    // risky: frequent declines, disputes, overstays and unpaid parking
    {8.0, 0.20, 0.25, 16.0, 4.5, 2.5, 0.8, 7.0, 0.02, 0.006, 0.15, 0.01, 0.40, 0.25},
    // fraudster: stolen cards, many chargebacks, gone after a few weeks
    {1.5, 0.60, 0.60, 14.0, 4.0, 3.0, 0.8, 5.0, 0.03, 0.30, 0.10, 0.02, 0.0, 1.0},
};

constexpr double kMethodWeights[kPaymentMethods] = {0.55, 0.15, 0.10, 0.10, 0.07, 0.0};
constexpr double kMethodFailure[kPaymentMethods] = {0.03, 0.012, 0.012, 0.04, 0.015, 0.02};
constexpr double kReasonWeights[] = {0.5, 0.2, 0.15, 0.15};
constexpr double kOverstayFine = 35.0, kUnpaidFine = 60.0;

int64_t CeilDay(int64_t t) { return t >= 0 ? (t + kDay - 1) / kDay * kDay : t / kDay * kDay; }

// Ingestion delay: seconds to minutes, except a share that arrives 1 to 4 days late.
int64_t IngestionLag(Rng& rng, double late_p) {
  if (rng.Bernoulli(late_p))
    return static_cast<int64_t>(rng.Uniform(1.0, 4.0) * kDay) / kSecond * kSecond;
  return (5 + static_cast<int64_t>(rng.Exponential(90.0))) * kSecond;
}

int64_t WholeSeconds(double micros) { return static_cast<int64_t>(micros) / kSecond * kSecond; }

// One raw event as the statistics see it.
struct StatEvent {
  int64_t ts, ingested;
  enum Kind : uint8_t { kPayment, kFailure, kDispute, kChargeback, kViolation, kSession } kind;
  int64_t session_micros;
};

void Apply(const StatEvent& e, bool in30, int sign, PaymentStats* s) {
  switch (e.kind) {
    case StatEvent::kFailure:
      s->failures_90d += sign;
      if (in30) s->failures_30d += sign;
      [[fallthrough]];
    case StatEvent::kPayment:
      s->payments_90d += sign;
      if (in30) s->payments_30d += sign;
      break;
    case StatEvent::kDispute:
      s->disputes_90d += sign;
      break;
    case StatEvent::kChargeback:
      s->chargebacks_90d += sign;
      break;
    case StatEvent::kViolation:
      s->violations_90d += sign;
      break;
    case StatEvent::kSession:
      s->sessions_90d += sign;
      s->session_micros_90d += sign * e.session_micros;
      break;
  }
}

}  // namespace

const char* BehaviourName(Behaviour b) {
  static const char* const kNames[] = {"commuter", "shopper", "occasional", "risky", "fraudster"};
  return kNames[static_cast<int>(b)];
}
const char* PaymentMethodName(int method) {
  static const char* const kNames[] = {"card",       "apple_pay", "google_pay",
                                       "sepa_debit", "paypal",    "invoice"};
  return kNames[method];
}
const char* FailureReasonName(int reason) {
  static const char* const kNames[] = {"insufficient_funds", "do_not_honor", "expired_card",
                                       "processing_error"};
  return kNames[reason];
}
const char* ViolationKindName(int kind) {
  static const char* const kNames[] = {"overstay", "unpaid_parking"};
  return kNames[kind];
}

void CustomerBatch::clear() {
  customers.clear();
  sessions.clear();
  payments.clear();
  disputes.clear();
  violations.clear();
  profiles.clear();
  payment_stats.clear();
  risk_labels.clear();
}

void AppendPaymentStats(const World& world, uint64_t seed, int64_t customer_id, Timestamp signup,
                        const CustomerBatch& ev, size_t first_session, size_t first_payment,
                        size_t first_dispute, size_t first_violation,
                        std::vector<PaymentStatsRow>* out) {
  std::vector<StatEvent> events;
  for (size_t i = first_session; i < ev.sessions.size(); ++i) {
    const SessionRow& s = ev.sessions[i];
    events.push_back(
        {s.end.micros, s.ingested_at.micros, StatEvent::kSession, s.end.micros - s.start.micros});
  }
  for (size_t i = first_payment; i < ev.payments.size(); ++i) {
    const PaymentRow& p = ev.payments[i];
    events.push_back({p.ts.micros, p.ingested_at.micros,
                      p.succeeded ? StatEvent::kPayment : StatEvent::kFailure, 0});
  }
  for (size_t i = first_dispute; i < ev.disputes.size(); ++i) {
    const DisputeRow& d = ev.disputes[i];
    events.push_back({d.ts.micros, d.ingested_at.micros,
                      d.chargeback ? StatEvent::kChargeback : StatEvent::kDispute, 0});
  }
  for (size_t i = first_violation; i < ev.violations.size(); ++i) {
    const ViolationRow& v = ev.violations[i];
    events.push_back({v.ts.micros, v.ingested_at.micros, StatEvent::kViolation, 0});
  }
  std::sort(events.begin(), events.end(),
            [](const StatEvent& a, const StatEvent& b) { return a.ts < b.ts; });

  const int64_t start = world.start.micros, end = world.end.micros;
  std::vector<int64_t> days;
  if (signup.micros < start) days.push_back(start);
  for (const StatEvent& e : events) {
    const int64_t enter = CeilDay(e.ts);
    for (int64_t t : {enter, enter + 30 * kDay, enter + 90 * kDay}) {
      if (t >= start && t <= end) days.push_back(t);
    }
  }
  std::sort(days.begin(), days.end());
  days.erase(std::unique(days.begin(), days.end()), days.end());

  // Full window counts from prefix sums; events that had not arrived when a row was made are
  // subtracted afterwards. Only events ingested more than 2 hours after they happened can be
  // missing from a row (rows are made at T + 2 h or later), so those are listed apart.
  std::vector<PaymentStats> prefix(events.size() + 1);
  std::vector<const StatEvent*> laggy;
  for (size_t i = 0; i < events.size(); ++i) {
    prefix[i + 1] = prefix[i];
    Apply(events[i], true, +1, &prefix[i + 1]);
    if (events[i].ingested - events[i].ts > 2 * kHour) laggy.push_back(&events[i]);
  }
  auto index_after = [&](int64_t t) {  // first event with ts > t
    return static_cast<size_t>(
        std::upper_bound(events.begin(), events.end(), t,
                         [](int64_t v, const StatEvent& e) { return v < e.ts; }) -
        events.begin());
  };
  auto stats_at = [&](int64_t t, int64_t created) {
    const size_t hi = index_after(t), lo30 = index_after(t - 30 * kDay),
                 lo90 = index_after(t - 90 * kDay);
    PaymentStats s;
    const PaymentStats &h = prefix[hi], &l30 = prefix[lo30], &l90 = prefix[lo90];
    s.payments_30d = h.payments_30d - l30.payments_30d;
    s.failures_30d = h.failures_30d - l30.failures_30d;
    s.payments_90d = h.payments_90d - l90.payments_90d;
    s.failures_90d = h.failures_90d - l90.failures_90d;
    s.chargebacks_90d = h.chargebacks_90d - l90.chargebacks_90d;
    s.disputes_90d = h.disputes_90d - l90.disputes_90d;
    s.violations_90d = h.violations_90d - l90.violations_90d;
    s.sessions_90d = h.sessions_90d - l90.sessions_90d;
    s.session_micros_90d = h.session_micros_90d - l90.session_micros_90d;
    for (const StatEvent* e : laggy) {
      if (e->ts > t - 90 * kDay && e->ts <= t && e->ingested > created) {
        Apply(*e, e->ts > t - 30 * kDay, -1, &s);
      }
    }
    return s;
  };

  // The nightly job's start jitter comes from a stream of its own so that it does not depend on
  // how many events the customer had.
  Rng rng(seed ^ 0x5bd1e995ULL, Stream::kCustomer, static_cast<uint64_t>(customer_id));
  std::vector<int64_t> backfills;
  for (int64_t t : days) {
    const int64_t created = t + 2 * kHour + static_cast<int64_t>(rng.Below(1200)) * kSecond;
    if (created > end) break;
    out->push_back({customer_id, Timestamp{t}, Timestamp{created}, stats_at(t, created)});
    backfills.clear();
    for (const StatEvent* e : laggy) {
      if (e->ts > t - 90 * kDay && e->ts <= t && e->ingested > created) {
        const int64_t b = e->ingested / kHour * kHour + kHour;
        if (b <= end) backfills.push_back(b);
      }
    }
    std::sort(backfills.begin(), backfills.end());
    backfills.erase(std::unique(backfills.begin(), backfills.end()), backfills.end());
    for (int64_t b : backfills) {
      out->push_back({customer_id, Timestamp{t}, Timestamp{b}, stats_at(t, b)});
    }
  }
}

void GenerateCustomer(const World& world, uint64_t seed, int64_t id, CustomerBatch* out) {
  Rng rng(seed, Stream::kCustomer, static_cast<uint64_t>(id));
  const int64_t hist = world.history_start.micros, end = world.end.micros;

  double shares[std::size(kBehaviours)];
  for (size_t i = 0; i < std::size(kBehaviours); ++i) shares[i] = kBehaviours[i].share;
  const auto behaviour = static_cast<Behaviour>(rng.Choose(shares));
  const BehaviourParams& bp = kBehaviours[static_cast<int>(behaviour)];

  CustomerRow c;
  c.customer_id = id;
  c.behaviour = behaviour;
  c.is_business = behaviour != Behaviour::kFraudster &&
                  rng.Bernoulli(behaviour == Behaviour::kCommuter ? 0.2 : 0.05);
  int64_t signup;
  if (behaviour != Behaviour::kFraudster && rng.Bernoulli(0.6)) {
    signup = hist - static_cast<int64_t>(rng.Uniform() * 3 * 365 * kDay);
  } else {
    signup = hist + static_cast<int64_t>(rng.Uniform() * static_cast<double>(end - hist));
  }
  signup = signup / kSecond * kSecond;
  c.signup = Timestamp{signup};
  if (behaviour == Behaviour::kFraudster) {
    c.churn = signup + static_cast<int64_t>(rng.Uniform(14, 60) * kDay) / kSecond * kSecond;
  } else if (rng.Bernoulli(bp.churn_p)) {
    c.churn = signup + WholeSeconds(rng.Exponential(300.0) * kDay);
  }
  if (c.churn != INT64_MIN && c.churn > end) c.churn = INT64_MIN;

  if (c.is_business && rng.Bernoulli(0.6)) {
    c.payment_method = 5;  // invoice
  } else if (behaviour == Behaviour::kRisky) {
    c.payment_method = rng.Bernoulli(0.7) ? 0 : 3;
  } else {
    c.payment_method = static_cast<int>(rng.Choose(kMethodWeights));
  }
  int64_t method_change = INT64_MAX;
  int new_method = c.payment_method;
  if (rng.Bernoulli(bp.method_change_p)) {
    const int64_t from = std::max(signup, hist);
    if (from < end) {
      method_change = from + static_cast<int64_t>(rng.Uniform() * static_cast<double>(end - from)) /
                                 kSecond * kSecond;
      new_method = (c.payment_method + 1 + static_cast<int>(rng.Below(4))) % 5;
    }
  }
  auto method_at = [&](int64_t t) { return t >= method_change ? new_method : c.payment_method; };

  // Home zone, by what the customer parks for; then three favourite bays there.
  std::vector<double> zone_weights(world.zones.size());
  for (size_t z = 0; z < world.zones.size(); ++z) {
    const ZoneKind kind = world.zones[z].kind;
    double w = 1.0;
    if (behaviour == Behaviour::kCommuter) {
      w = (kind == ZoneKind::kBusiness || kind == ZoneKind::kStation) ? 5.0 : 0.5;
    } else if (behaviour == Behaviour::kShopper) {
      w = (kind == ZoneKind::kShopping || kind == ZoneKind::kCentre) ? 5.0 : 0.5;
    }
    zone_weights[z] = world.bays_by_zone[z].empty() ? 0.0 : w;
  }
  c.home_zone = static_cast<int32_t>(rng.Choose(zone_weights));
  const auto& home_bays = world.bays_by_zone[c.home_zone];
  int32_t favourites[3];
  for (int32_t& f : favourites) f = home_bays[rng.Below(home_bays.size())];

  const double activity = rng.LogNormal(1.0, 0.4);
  const double failure_p = std::min(
      0.85, kMethodFailure[c.payment_method] * bp.failure_factor * rng.LogNormal(1.0, 0.5));
  const double method_failure_ratio = kMethodFailure[new_method] / kMethodFailure[c.payment_method];

  const size_t first_session = out->sessions.size(), first_payment = out->payments.size(),
               first_dispute = out->disputes.size(), first_violation = out->violations.size();
  const int64_t active_from = std::max(signup, hist - kLeadIn.micros);
  const int64_t active_to = c.churn == INT64_MIN ? end : c.churn;
  int64_t session_seq = 0, payment_seq = 0, dispute_seq = 0, violation_seq = 0;
  auto in_history = [&](int64_t ts, int64_t ingested) {
    return ts > hist && ts <= end && ingested <= end;
  };

  // Sessions: candidate days from a Poisson process at the highest daily rate, thinned by the
  // day's rate (weekday, weekend, holiday).
  const double max_rate = std::max(bp.weekday_rate, bp.weekend_rate) * activity;
  int64_t previous_end = INT64_MIN;
  double day_cursor = static_cast<double>(active_from) / kDay;
  while (max_rate > 0) {
    day_cursor += rng.Exponential(1.0 / max_rate);
    const auto day = static_cast<int64_t>(std::floor(day_cursor));
    if (StartOfDay(day).micros > active_to) break;
    double rate = (Weekday(day) >= 5 ? bp.weekend_rate : bp.weekday_rate) * activity;
    if (behaviour == Behaviour::kCommuter && world.IsHoliday(day)) rate *= 0.2;
    if (!rng.Bernoulli(rate / max_rate)) continue;
    const double start_h = std::clamp(rng.Normal(bp.start_hour, bp.start_sd), 0.0, 23.9);
    const int64_t start = StartOfDay(day).micros + WholeSeconds(start_h * kHour);
    const double hours = std::max(1.0 / 6.0, rng.LogNormal(bp.hours_median, bp.hours_sigma));
    const int64_t stop = start + WholeSeconds(hours * kHour);
    const int64_t seq = session_seq++;
    const int32_t bay_index = rng.Bernoulli(0.85)
                                  ? favourites[rng.Below(3)]
                                  : static_cast<int32_t>(rng.Below(world.bays.size()));
    const Bay& bay = world.bays[bay_index];
    const double price = world.PriceAt(bay, Timestamp{start});
    const double amount = std::max(0.5, std::round(hours * price * 100.0) / 100.0);
    const int64_t session_ingested = stop + IngestionLag(rng, 0.0);
    const double overstay_u = rng.Uniform(), overstay_at = rng.Uniform(0.5, 1.0);
    const int64_t overstay_ingested_lag = IngestionLag(rng, 0.05);
    if (start < active_from || start < previous_end || start > active_to || stop > end) continue;
    previous_end = stop;
    const int64_t session_id = id * 1'000'000 + seq;
    if (in_history(stop, session_ingested)) {
      out->sessions.push_back({session_id, id, bay.id, Timestamp{start}, Timestamp{stop},
                               Timestamp{session_ingested}, amount});
    }
    // Payment attempts at the end of the session; a declined one is retried up to twice.
    int64_t at = stop + (5 + static_cast<int64_t>(rng.Below(55))) * kSecond;
    for (int32_t attempt = 1; attempt <= 3; ++attempt) {
      const int method = method_at(at);
      const double p =
          std::min(0.9, failure_p * (method == c.payment_method ? 1.0 : method_failure_ratio));
      const bool ok = !rng.Bernoulli(p);
      const int reason = ok ? -1 : static_cast<int>(rng.Choose(kReasonWeights));
      const int64_t ingested = at + IngestionLag(rng, 0.01);
      const int64_t payment_id = id * 1'000'000 + payment_seq++;
      if (in_history(at, ingested)) {
        out->payments.push_back({payment_id, session_id, id, Timestamp{at}, Timestamp{ingested},
                                 amount, method, ok, reason, attempt});
      }
      if (ok) {
        // Disputes (with the operator) and chargebacks (through the bank) of this payment.
        for (bool chargeback : {false, true}) {
          const double pr = chargeback ? bp.chargeback_p : bp.dispute_p;
          const bool happens = rng.Bernoulli(pr);
          const double delay_days = chargeback ? rng.Uniform(10, 60) : rng.Uniform(1, 20);
          const int64_t lag = IngestionLag(rng, 0.0);
          if (!happens) continue;
          const int64_t ts = at + WholeSeconds(delay_days * kDay);
          const int64_t dispute_id = id * 1'000'000 + dispute_seq++;
          if (in_history(ts, ts + lag)) {
            out->disputes.push_back({dispute_id, payment_id, id, Timestamp{ts}, Timestamp{ts + lag},
                                     chargeback, amount});
          }
        }
        break;
      }
      at += WholeSeconds((10.0 * 60.0 + rng.Exponential(8.0 * 3600.0)) * kSecond);
    }
    if (overstay_u < bp.overstay_p) {
      const int64_t ts = start + WholeSeconds(overstay_at * static_cast<double>(stop - start));
      const int64_t violation_id = id * 1'000'000 + violation_seq++;
      if (in_history(ts, ts + overstay_ingested_lag)) {
        out->violations.push_back({violation_id, id, bay.id, Timestamp{ts},
                                   Timestamp{ts + overstay_ingested_lag}, 0, kOverstayFine});
      }
    }
  }
  // Parking without a session, caught by a warden.
  const double unpaid_rate = bp.unpaid_per_day * activity;
  for (double t = static_cast<double>(active_from); unpaid_rate > 0;) {
    t += rng.Exponential(1.0 / unpaid_rate) * kDay;
    if (t > static_cast<double>(active_to)) break;
    const int64_t ts = WholeSeconds(t);
    const int32_t bay_index = favourites[rng.Below(3)];
    const int64_t lag = IngestionLag(rng, 0.05);
    const int64_t violation_id = id * 1'000'000 + violation_seq++;
    if (in_history(ts, ts + lag)) {
      out->violations.push_back({violation_id, id, world.bays[bay_index].id, Timestamp{ts},
                                 Timestamp{ts + lag}, 1, kUnpaidFine});
    }
  }
  auto by_ts = [](const auto& a, const auto& b) { return a.ts < b.ts; };
  std::sort(out->payments.begin() + static_cast<ptrdiff_t>(first_payment), out->payments.end(),
            by_ts);
  std::sort(out->disputes.begin() + static_cast<ptrdiff_t>(first_dispute), out->disputes.end(),
            by_ts);
  std::sort(out->violations.begin() + static_cast<ptrdiff_t>(first_violation),
            out->violations.end(), by_ts);

  // Profile snapshots: at sign-up, at a change of payment method, and on the 1st of each month.
  const size_t first_profile = out->profiles.size();
  auto add_profile = [&](int64_t t) {
    out->profiles.push_back({id, Timestamp{t}, (t - signup) / kDay, method_at(t), c.is_business});
  };
  if (signup > hist) add_profile(signup);
  if (method_change > hist && method_change <= end) add_profile(method_change);
  for (Timestamp month : world.month_starts) {
    const int64_t t = month.micros;
    if (t < signup || t == signup || t == method_change) continue;
    add_profile(t);
  }
  std::sort(out->profiles.begin() + static_cast<ptrdiff_t>(first_profile), out->profiles.end(),
            by_ts);

  AppendPaymentStats(world, seed, id, c.signup, *out, first_session, first_payment, first_dispute,
                     first_violation, &out->payment_stats);

  // Two training examples at whole hours in [start, end - 30 days], once signed up; the label
  // looks forward, as labels do, over the events in the data.
  Rng label_rng(seed, Stream::kLabels, static_cast<uint64_t>(id));
  const int64_t label_hours = (end - 30 * kDay - world.start.micros) / kHour;
  int64_t label_at[2] = {0, 0};
  for (int64_t& t : label_at) {
    t = label_hours > 0
            ? world.start.micros + static_cast<int64_t>(label_rng.Below(label_hours + 1)) * kHour
            : INT64_MIN;
  }
  std::sort(std::begin(label_at), std::end(label_at));
  for (int64_t t : label_at) {
    if (t == INT64_MIN || t < signup) continue;
    bool problem = false;
    for (size_t i = first_payment; i < out->payments.size() && !problem; ++i) {
      const PaymentRow& p = out->payments[i];
      problem = !p.succeeded && p.ts.micros > t && p.ts.micros <= t + 30 * kDay;
    }
    for (size_t i = first_dispute; i < out->disputes.size() && !problem; ++i) {
      const int64_t ts = out->disputes[i].ts.micros;
      problem = ts > t && ts <= t + 30 * kDay;
    }
    out->risk_labels.push_back({id, Timestamp{t}, problem});
  }
  out->customers.push_back(c);
}

}  // namespace granary::datagen
