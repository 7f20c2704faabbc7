// The customers of the parking operator and everything they do: sign-up, parking sessions,
// payment attempts (with failures and retries), disputes, chargebacks and parking violations,
// plus the two feature tables derived from them (profile snapshots and the daily payment
// statistics with 30- and 90-day windows).
//
// Each customer has its own random stream, so customers can be generated in any order and on
// any number of threads. Raw events are those with a timestamp in (history_start, end] whose
// ingestion into the warehouse (ingested_at) is not later than `end`: the output is what the
// operator's warehouse holds at the snapshot instant.
//
// Payment statistics (customer_payments): a daily batch job stamps its row with the day boundary
// T (midnight UTC) and counts the events with T - window < ts <= T that had been ingested when
// the job ran (`created`, 02:00 to 02:20 the same night). An event ingested later (a late
// webhook, a warden's handheld syncing days later) triggers a backfill: another row with the same
// T and a later `created` (the hour after the event arrived) with the corrected counts. A row is
// written for T = period start (customers who signed up before it) and for every T at which an
// event enters or leaves a window, so the latest row at or before any instant holds the windows
// as of the last midnight. Rows with `created` after `end` are not written.
// Thread-safe: the functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "granary/common/time.h"
#include "granary/datagen/options.h"
#include "granary/datagen/world.h"

namespace granary::datagen {

enum class Behaviour { kCommuter, kShopper, kOccasional, kRisky, kFraudster };
const char* BehaviourName(Behaviour b);

inline constexpr int kPaymentMethods = 6;
const char* PaymentMethodName(
    int method);  // card, apple_pay, google_pay, sepa_debit, paypal, invoice
const char* FailureReasonName(int reason);  // insufficient_funds, do_not_honor, expired_card, ...
const char* ViolationKindName(int kind);    // overstay, unpaid_parking

struct CustomerRow {
  int64_t customer_id;
  Timestamp signup;
  Behaviour behaviour;
  bool is_business;
  int32_t home_zone;
  int payment_method;         // at sign-up
  int64_t churn = INT64_MIN;  // microseconds; INT64_MIN: still active at `end`
};

struct SessionRow {
  int64_t session_id, customer_id, bay_id;
  Timestamp start, end, ingested_at;
  double amount;
};

struct PaymentRow {
  int64_t payment_id, session_id, customer_id;
  Timestamp ts, ingested_at;
  double amount;
  int method;
  bool succeeded;
  int failure_reason;  // -1 when succeeded
  int32_t attempt;     // 1, 2, 3
};

struct DisputeRow {
  int64_t dispute_id, payment_id, customer_id;
  Timestamp ts, ingested_at;
  bool chargeback;  // else a dispute opened with the operator
  double amount;
};

struct ViolationRow {
  int64_t violation_id, customer_id, bay_id;
  Timestamp ts, ingested_at;
  int kind;
  double fine;
};

struct ProfileRow {
  int64_t customer_id;
  Timestamp ts;
  int64_t tenure_days;
  int payment_method;
  bool is_business;
};

// Window counts of one customer_payments row. Rates and the average are null (has_* false) when
// their denominator is 0.
struct PaymentStats {
  int64_t payments_30d = 0, failures_30d = 0, payments_90d = 0, failures_90d = 0;
  int64_t chargebacks_90d = 0, disputes_90d = 0, violations_90d = 0, sessions_90d = 0;
  int64_t session_micros_90d = 0;  // total length of those sessions

  bool operator==(const PaymentStats&) const = default;
};

struct PaymentStatsRow {
  int64_t customer_id;
  Timestamp ts, created;
  PaymentStats stats;
};

// A training example for the risk model: at `ts`, will the customer have a payment problem (a
// failed payment attempt, a dispute or a chargeback) in (ts, ts + 30 days]?
struct RiskLabelRow {
  int64_t customer_id;
  Timestamp ts;
  bool payment_problem_next_30d;
};

// Everything generated for a set of customers, in customer order.
struct CustomerBatch {
  std::vector<CustomerRow> customers;
  std::vector<SessionRow> sessions;
  std::vector<PaymentRow> payments;
  std::vector<DisputeRow> disputes;
  std::vector<ViolationRow> violations;
  std::vector<ProfileRow> profiles;
  std::vector<PaymentStatsRow> payment_stats;
  std::vector<RiskLabelRow> risk_labels;

  void clear();
};

// Generates customer `customer_id` (1-based) and appends its rows to `out`.
void GenerateCustomer(const World& world, uint64_t seed, int64_t customer_id, CustomerBatch* out);

// The payment statistics rows of one customer from its raw events (already in `out` from index
// `first_*` on); exposed for tests.
void AppendPaymentStats(const World& world, uint64_t seed, int64_t customer_id, Timestamp signup,
                        const CustomerBatch& events, size_t first_session, size_t first_payment,
                        size_t first_dispute, size_t first_violation,
                        std::vector<PaymentStatsRow>* out);

}  // namespace granary::datagen
