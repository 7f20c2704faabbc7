#include "granary/datagen/tables.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include "granary/datagen/random.h"
#include "granary/types/arrow_convert.h"

namespace granary::datagen {
namespace {

using arrow::field;

std::shared_ptr<arrow::DataType> Ts() {
  return ToArrowType(ValueType::Scalar(ScalarType::kTimestamp));
}
std::shared_ptr<arrow::DataType> I64() {
  return ToArrowType(ValueType::Scalar(ScalarType::kInt64));
}
std::shared_ptr<arrow::DataType> I32() {
  return ToArrowType(ValueType::Scalar(ScalarType::kInt32));
}
std::shared_ptr<arrow::DataType> F64() {
  return ToArrowType(ValueType::Scalar(ScalarType::kFloat64));
}
std::shared_ptr<arrow::DataType> Str() {
  return ToArrowType(ValueType::Scalar(ScalarType::kString));
}
std::shared_ptr<arrow::DataType> Bool() {
  return ToArrowType(ValueType::Scalar(ScalarType::kBool));
}

// Fills a batch column by column with typed appends; the first failure is kept and returned by
// Finish (appends after it are skipped).
class Filler {
 public:
  Filler(std::shared_ptr<arrow::Schema> schema, int64_t rows) : schema_(std::move(schema)) {
    auto made = arrow::RecordBatchBuilder::Make(schema_, arrow::default_memory_pool(), rows);
    if (made.ok()) {
      builder_ = std::move(*made);
    } else {
      status_ = made.status();
    }
  }

  template <typename Builder>
  Builder* Col(int i) {
    return builder_ ? builder_->GetFieldAs<Builder>(i) : nullptr;
  }
  void Check(const arrow::Status& st) {
    if (status_.ok() && !st.ok()) status_ = st;
  }
  void I64(int i, int64_t v) { Check(Col<arrow::Int64Builder>(i)->Append(v)); }
  void I32(int i, int32_t v) { Check(Col<arrow::Int32Builder>(i)->Append(v)); }
  void F64(int i, double v) { Check(Col<arrow::DoubleBuilder>(i)->Append(v)); }
  void F64OrNull(int i, bool valid, double v) {
    Check(valid ? Col<arrow::DoubleBuilder>(i)->Append(v)
                : Col<arrow::DoubleBuilder>(i)->AppendNull());
  }
  void Ts(int i, Timestamp t) { Check(Col<arrow::TimestampBuilder>(i)->Append(t.micros)); }
  void TsOrNull(int i, int64_t micros) {
    Check(micros == INT64_MIN ? Col<arrow::TimestampBuilder>(i)->AppendNull()
                              : Col<arrow::TimestampBuilder>(i)->Append(micros));
  }
  void Str(int i, std::string_view v) { Check(Col<arrow::StringBuilder>(i)->Append(v)); }
  void StrOrNull(int i, const char* v) {
    Check(v ? Col<arrow::StringBuilder>(i)->Append(v) : Col<arrow::StringBuilder>(i)->AppendNull());
  }
  void Bool(int i, bool v) { Check(Col<arrow::BooleanBuilder>(i)->Append(v)); }
  void Date(int i, int32_t days) { Check(Col<arrow::Date32Builder>(i)->Append(days)); }

  Result<std::shared_ptr<arrow::RecordBatch>> Finish() {
    if (!status_.ok()) return Status::Internal("building a generated batch: " + status_.ToString());
    auto batch = builder_->Flush();
    if (!batch.ok()) {
      return Status::Internal("building a generated batch: " + batch.status().ToString());
    }
    return *batch;
  }

 private:
  std::shared_ptr<arrow::Schema> schema_;
  std::unique_ptr<arrow::RecordBatchBuilder> builder_;
  arrow::Status status_;
};

int64_t Rows(size_t n) { return static_cast<int64_t>(n); }

}  // namespace

std::shared_ptr<arrow::Schema> CustomersSchema() {
  return arrow::schema({field("customer_id", I64(), false), field("signup_timestamp", Ts(), false),
                        field("behaviour_profile", Str(), false),
                        field("is_business", Bool(), false), field("home_zone", Str(), false),
                        field("payment_method", Str(), false), field("churn_timestamp", Ts())});
}

std::shared_ptr<arrow::Schema> SessionsSchema() {
  return arrow::schema(
      {field("session_id", I64(), false), field("customer_id", I64(), false),
       field("parking_bay_id", I64(), false), field("start_timestamp", Ts(), false),
       field("event_timestamp", Ts(), false), field("duration_minutes", F64(), false),
       field("amount", F64(), false), field("ingested_at", Ts(), false)});
}

std::shared_ptr<arrow::Schema> PaymentsSchema() {
  return arrow::schema({field("payment_id", I64(), false), field("session_id", I64(), false),
                        field("customer_id", I64(), false), field("event_timestamp", Ts(), false),
                        field("amount", F64(), false), field("payment_method", Str(), false),
                        field("status", Str(), false), field("failure_reason", Str()),
                        field("attempt", I32(), false), field("ingested_at", Ts(), false),
                        field("failed", Bool(), false)});
}

std::shared_ptr<arrow::Schema> DisputesSchema() {
  return arrow::schema({field("dispute_id", I64(), false), field("payment_id", I64(), false),
                        field("customer_id", I64(), false), field("event_timestamp", Ts(), false),
                        field("kind", Str(), false), field("amount", F64(), false),
                        field("ingested_at", Ts(), false)});
}

std::shared_ptr<arrow::Schema> ViolationsSchema() {
  return arrow::schema({field("violation_id", I64(), false), field("customer_id", I64(), false),
                        field("parking_bay_id", I64(), false),
                        field("event_timestamp", Ts(), false), field("kind", Str(), false),
                        field("fine_amount", F64(), false), field("ingested_at", Ts(), false)});
}

std::shared_ptr<arrow::Schema> CustomerProfilesSchema() {
  return arrow::schema({field("customer_id", I64(), false), field("event_timestamp", Ts(), false),
                        field("tenure_days", I64(), false), field("payment_method", Str(), false),
                        field("is_business", Bool(), false)});
}

std::shared_ptr<arrow::Schema> CustomerPaymentsSchema() {
  return arrow::schema(
      {field("customer_id", I64(), false), field("event_timestamp", Ts(), false),
       field("created", Ts(), false), field("payments_30d", I64(), false),
       field("payment_failures_30d", I64(), false), field("failure_rate_30d", F64()),
       field("payments_90d", I64(), false), field("payment_failures_90d", I64(), false),
       field("failure_rate_90d", F64()), field("chargebacks_90d", I64(), false),
       field("disputes_90d", I64(), false), field("violations_90d", I64(), false),
       field("sessions_90d", I64(), false), field("avg_session_minutes_90d", F64())});
}

std::shared_ptr<arrow::Schema> CustomerRiskLabelsSchema() {
  return arrow::schema({field("customer_id", I64(), false), field("event_timestamp", Ts(), false),
                        field("payment_problem_next_30d", Bool(), false)});
}

std::shared_ptr<arrow::Schema> BayDemandLabelsSchema() {
  return arrow::schema({field("parking_bay_id", I64(), false),
                        field("event_timestamp", Ts(), false),
                        field("occupancy_next_1h", F64(), false)});
}

std::shared_ptr<arrow::Schema> BaysSchema() {
  return arrow::schema({field("parking_bay_id", I64(), false),
                        field("event_timestamp", Ts(), false), field("zone", Str(), false),
                        field("zone_kind", Str(), false), field("bay_type", Str(), false),
                        field("capacity", I32(), false), field("base_price", F64(), false),
                        field("latitude", F64(), false), field("longitude", F64(), false)});
}

std::shared_ptr<arrow::Schema> LocalEventsSchema() {
  return arrow::schema({field("event_id", I64(), false), field("zone", Str(), false),
                        field("kind", Str(), false), field("event_timestamp", Ts(), false),
                        field("end_timestamp", Ts(), false),
                        field("expected_attendance", I64(), false)});
}

std::shared_ptr<arrow::Schema> HolidaysSchema() {
  return arrow::schema({field("date", arrow::date32(), false), field("name", Str(), false)});
}

std::shared_ptr<arrow::Schema> BayOccupancySchema(bool with_event_date) {
  arrow::FieldVector fields = {
      field("parking_bay_id", I64(), false), field("event_timestamp", Ts(), false),
      field("occupied", I32(), false),       field("occupancy", F64(), false),
      field("arrivals", I32(), false),       field("departures", I32(), false),
      field("turned_away", I32(), false),    field("occupancy_1h", F64(), false),
      field("occupancy_24h", F64(), false),  field("occupancy_7d", F64(), false),
      field("arrivals_1h", I64(), false),    field("arrivals_per_hour_24h", F64(), false),
      field("avg_dwell_minutes_24h", F64()), field("price", F64(), false),
      field("event_nearby", Bool(), false),  field("is_holiday", Bool(), false)};
  if (with_event_date) fields.push_back(field("event_date", arrow::date32(), false));
  return arrow::schema(fields);
}

Result<std::shared_ptr<arrow::RecordBatch>> CustomersBatch(const CustomerBatch& b, const World& w) {
  Filler f(CustomersSchema(), Rows(b.customers.size()));
  for (const CustomerRow& c : b.customers) {
    f.I64(0, c.customer_id);
    f.Ts(1, c.signup);
    f.Str(2, BehaviourName(c.behaviour));
    f.Bool(3, c.is_business);
    f.Str(4, w.zones[c.home_zone].name);
    f.Str(5, PaymentMethodName(c.payment_method));
    f.TsOrNull(6, c.churn);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> SessionsBatch(const CustomerBatch& b) {
  Filler f(SessionsSchema(), Rows(b.sessions.size()));
  for (const SessionRow& s : b.sessions) {
    f.I64(0, s.session_id);
    f.I64(1, s.customer_id);
    f.I64(2, s.bay_id);
    f.Ts(3, s.start);
    f.Ts(4, s.end);
    f.F64(5, static_cast<double>(s.end.micros - s.start.micros) / 60e6);
    f.F64(6, s.amount);
    f.Ts(7, s.ingested_at);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> PaymentsBatch(const CustomerBatch& b) {
  Filler f(PaymentsSchema(), Rows(b.payments.size()));
  for (const PaymentRow& p : b.payments) {
    f.I64(0, p.payment_id);
    f.I64(1, p.session_id);
    f.I64(2, p.customer_id);
    f.Ts(3, p.ts);
    f.F64(4, p.amount);
    f.Str(5, PaymentMethodName(p.method));
    f.Str(6, p.succeeded ? "succeeded" : "failed");
    f.StrOrNull(7, p.succeeded ? nullptr : FailureReasonName(p.failure_reason));
    f.I32(8, p.attempt);
    f.Ts(9, p.ingested_at);
    f.Bool(10, !p.succeeded);  // status == "failed", for `where:` of window aggregations
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> DisputesBatch(const CustomerBatch& b) {
  Filler f(DisputesSchema(), Rows(b.disputes.size()));
  for (const DisputeRow& d : b.disputes) {
    f.I64(0, d.dispute_id);
    f.I64(1, d.payment_id);
    f.I64(2, d.customer_id);
    f.Ts(3, d.ts);
    f.Str(4, d.chargeback ? "chargeback" : "dispute");
    f.F64(5, d.amount);
    f.Ts(6, d.ingested_at);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> ViolationsBatch(const CustomerBatch& b) {
  Filler f(ViolationsSchema(), Rows(b.violations.size()));
  for (const ViolationRow& v : b.violations) {
    f.I64(0, v.violation_id);
    f.I64(1, v.customer_id);
    f.I64(2, v.bay_id);
    f.Ts(3, v.ts);
    f.Str(4, ViolationKindName(v.kind));
    f.F64(5, v.fine);
    f.Ts(6, v.ingested_at);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> CustomerProfilesBatch(const CustomerBatch& b) {
  Filler f(CustomerProfilesSchema(), Rows(b.profiles.size()));
  for (const ProfileRow& p : b.profiles) {
    f.I64(0, p.customer_id);
    f.Ts(1, p.ts);
    f.I64(2, p.tenure_days);
    f.Str(3, PaymentMethodName(p.payment_method));
    f.Bool(4, p.is_business);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> CustomerPaymentsBatch(const CustomerBatch& b) {
  Filler f(CustomerPaymentsSchema(), Rows(b.payment_stats.size()));
  for (const PaymentStatsRow& r : b.payment_stats) {
    const PaymentStats& s = r.stats;
    f.I64(0, r.customer_id);
    f.Ts(1, r.ts);
    f.Ts(2, r.created);
    f.I64(3, s.payments_30d);
    f.I64(4, s.failures_30d);
    f.F64OrNull(5, s.payments_30d > 0,
                static_cast<double>(s.failures_30d) / static_cast<double>(s.payments_30d));
    f.I64(6, s.payments_90d);
    f.I64(7, s.failures_90d);
    f.F64OrNull(8, s.payments_90d > 0,
                static_cast<double>(s.failures_90d) / static_cast<double>(s.payments_90d));
    f.I64(9, s.chargebacks_90d);
    f.I64(10, s.disputes_90d);
    f.I64(11, s.violations_90d);
    f.I64(12, s.sessions_90d);
    f.F64OrNull(
        13, s.sessions_90d > 0,
        static_cast<double>(s.session_micros_90d) / static_cast<double>(s.sessions_90d) / 60e6);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> CustomerRiskLabelsBatch(const CustomerBatch& b) {
  Filler f(CustomerRiskLabelsSchema(), Rows(b.risk_labels.size()));
  for (const RiskLabelRow& r : b.risk_labels) {
    f.I64(0, r.customer_id);
    f.Ts(1, r.ts);
    f.Bool(2, r.payment_problem_next_30d);
  }
  return f.Finish();
}

void AppendBayDemandLabels(const World& w, uint64_t seed, const TelemetryBatch& day,
                           BayDemandLabels* out) {
  for (size_t first = 0; first + kTicksPerDay <= day.size(); first += kTicksPerDay) {
    const int64_t bay_id = day.bay_id[first];
    const int64_t day_number = DayOf(Timestamp{day.event_timestamp[first]});
    Rng rng(seed, Stream::kLabels,
            (static_cast<uint64_t>(bay_id) << 32) ^ static_cast<uint64_t>(day_number));
    const size_t at = first + rng.Below(kTicksPerDay - 4);  // the next 4 ticks are in this day
    int64_t occupied = 0;
    for (size_t k = at + 1; k <= at + 4; ++k) occupied += day.occupied[k];
    out->bay_id.push_back(bay_id);
    out->event_timestamp.push_back(day.event_timestamp[at]);
    out->occupancy_next_1h.push_back(static_cast<double>(occupied) /
                                     (4.0 * w.bays[bay_id - 1].capacity));
  }
}

Result<std::shared_ptr<arrow::RecordBatch>> BayDemandLabelsBatch(const BayDemandLabels& b) {
  const auto n = Rows(b.bay_id.size());
  Filler f(BayDemandLabelsSchema(), n);
  f.Check(f.Col<arrow::Int64Builder>(0)->AppendValues(b.bay_id.data(), n));
  f.Check(f.Col<arrow::TimestampBuilder>(1)->AppendValues(b.event_timestamp.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(2)->AppendValues(b.occupancy_next_1h.data(), n));
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> BaysBatch(const World& w) {
  int64_t rows = 0;
  for (const Bay& bay : w.bays) rows += Rows(bay.tariffs.size());
  Filler f(BaysSchema(), rows);
  for (const Bay& bay : w.bays) {
    const Zone& zone = w.zones[bay.zone];
    for (const Tariff& tariff : bay.tariffs) {
      f.I64(0, bay.id);
      f.Ts(1, tariff.from);
      f.Str(2, zone.name);
      f.Str(3, ZoneKindName(zone.kind));
      f.Str(4, bay.garage ? "garage" : "street");
      f.I32(5, bay.capacity);
      f.F64(6, tariff.base_price);
      f.F64(7, bay.latitude);
      f.F64(8, bay.longitude);
    }
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> LocalEventsBatch(const World& w) {
  Filler f(LocalEventsSchema(), Rows(w.events.size()));
  for (const LocalEvent& e : w.events) {
    f.I64(0, e.id);
    f.Str(1, w.zones[e.zone].name);
    f.Str(2, e.kind);
    f.Ts(3, e.start);
    f.Ts(4, e.end);
    f.I64(5, e.expected_attendance);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> HolidaysBatch(const World& w) {
  Filler f(HolidaysSchema(), Rows(w.holidays.size()));
  for (const Holiday& h : w.holidays) {
    f.Date(0, static_cast<int32_t>(h.day));
    f.Str(1, h.name);
  }
  return f.Finish();
}

Result<std::shared_ptr<arrow::RecordBatch>> BayOccupancyBatch(const TelemetryBatch& b,
                                                              bool with_event_date) {
  const auto n = Rows(b.size());
  Filler f(BayOccupancySchema(with_event_date), n);
  f.Check(f.Col<arrow::Int64Builder>(0)->AppendValues(b.bay_id.data(), n));
  f.Check(f.Col<arrow::TimestampBuilder>(1)->AppendValues(b.event_timestamp.data(), n));
  f.Check(f.Col<arrow::Int32Builder>(2)->AppendValues(b.occupied.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(3)->AppendValues(b.occupancy.data(), n));
  f.Check(f.Col<arrow::Int32Builder>(4)->AppendValues(b.arrivals.data(), n));
  f.Check(f.Col<arrow::Int32Builder>(5)->AppendValues(b.departures.data(), n));
  f.Check(f.Col<arrow::Int32Builder>(6)->AppendValues(b.turned_away.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(7)->AppendValues(b.occupancy_1h.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(8)->AppendValues(b.occupancy_24h.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(9)->AppendValues(b.occupancy_7d.data(), n));
  f.Check(f.Col<arrow::Int64Builder>(10)->AppendValues(b.arrivals_1h.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(11)->AppendValues(b.arrivals_per_hour_24h.data(), n));
  f.Check(f.Col<arrow::DoubleBuilder>(12)->AppendValues(b.avg_dwell_minutes_24h.data(), n,
                                                        b.avg_dwell_valid.data()));
  f.Check(f.Col<arrow::DoubleBuilder>(13)->AppendValues(b.price.data(), n));
  f.Check(f.Col<arrow::BooleanBuilder>(14)->AppendValues(b.event_nearby.data(), n));
  f.Check(f.Col<arrow::BooleanBuilder>(15)->AppendValues(b.is_holiday.data(), n));
  if (with_event_date) {
    auto* dates = f.Col<arrow::Date32Builder>(16);
    for (int64_t t : b.event_timestamp) {
      f.Check(dates->Append(static_cast<int32_t>(DayOf(Timestamp{t}))));
    }
  }
  return f.Finish();
}

}  // namespace granary::datagen
