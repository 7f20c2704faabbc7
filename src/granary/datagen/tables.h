// The generated tables as Arrow: one schema per table and the conversion of generated rows into
// record batches. Timestamps are timestamp[us, tz=UTC] (granary::ToArrowType), dates date32.
// Docs: docs/DATAGEN.md lists every column. Stateless; thread-safe.
#pragma once

#include <memory>

#include "granary/common/result.h"
#include "granary/datagen/bay_simulator.h"
#include "granary/datagen/customer_simulator.h"
#include "granary/datagen/world.h"

namespace arrow {
class RecordBatch;
class Schema;
}  // namespace arrow

namespace granary::datagen {

std::shared_ptr<arrow::Schema> CustomersSchema();
std::shared_ptr<arrow::Schema> SessionsSchema();
std::shared_ptr<arrow::Schema> PaymentsSchema();
std::shared_ptr<arrow::Schema> DisputesSchema();
std::shared_ptr<arrow::Schema> ViolationsSchema();
std::shared_ptr<arrow::Schema> CustomerProfilesSchema();
std::shared_ptr<arrow::Schema> CustomerPaymentsSchema();
std::shared_ptr<arrow::Schema> CustomerRiskLabelsSchema();
std::shared_ptr<arrow::Schema> BayDemandLabelsSchema();
std::shared_ptr<arrow::Schema> BaysSchema();
std::shared_ptr<arrow::Schema> LocalEventsSchema();
std::shared_ptr<arrow::Schema> HolidaysSchema();
// Telemetry; with the event_date (date32) column last, or without it (Delta data files keep the
// partition column in the log only).
std::shared_ptr<arrow::Schema> BayOccupancySchema(bool with_event_date);

Result<std::shared_ptr<arrow::RecordBatch>> CustomersBatch(const CustomerBatch& b, const World& w);
Result<std::shared_ptr<arrow::RecordBatch>> SessionsBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> PaymentsBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> DisputesBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> ViolationsBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> CustomerProfilesBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> CustomerPaymentsBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> CustomerRiskLabelsBatch(const CustomerBatch& b);
Result<std::shared_ptr<arrow::RecordBatch>> BaysBatch(const World& w);
Result<std::shared_ptr<arrow::RecordBatch>> LocalEventsBatch(const World& w);
Result<std::shared_ptr<arrow::RecordBatch>> HolidaysBatch(const World& w);
Result<std::shared_ptr<arrow::RecordBatch>> BayOccupancyBatch(const TelemetryBatch& b,
                                                              bool with_event_date);

// Training examples for the demand model, one per bay and day: at a tick t (00:00 to 22:45), the
// mean occupancy over the next hour's 4 ticks (t, t + 1 h].
struct BayDemandLabels {
  std::vector<int64_t> bay_id, event_timestamp;
  std::vector<double> occupancy_next_1h;
};
// Picks the examples of one day from a day of telemetry (rows grouped by bay, 96 ticks each).
void AppendBayDemandLabels(const World& w, uint64_t seed, const TelemetryBatch& day,
                           BayDemandLabels* out);
Result<std::shared_ptr<arrow::RecordBatch>> BayDemandLabelsBatch(const BayDemandLabels& b);

}  // namespace granary::datagen
