// Helpers for registry tests: load definitions from inline YAML.
#pragma once

#include <string>

#include "granary/registry/loader.h"
#include "granary/registry/validator.h"

namespace granary::testing {

// A repository in one document, valid as is; tests append or replace parts.
inline constexpr const char* kValidDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64, description: "A customer"}
  - {name: parking_bay, join_keys: [parking_bay_id], value_type: string}
data_sources:
  - name: customer_payments
    type: file
    path: data/customer_payments.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
    field_mapping: {fail_cnt: payment_failures_30d}
feature_views:
  - name: customer_risk
    entities: [customer]
    source: customer_payments
    ttl: 90d
    online: true
    schema:
      - {name: payment_failures_30d, type: int64}
      - {name: failure_rate_90d, type: float64}
      - {name: embedding, type: "list<float32>"}
    tags: {team: risk}
feature_services:
  - name: customer_risk_v1
    features:
      - customer_risk
  - name: risk_subset
    features:
      - {view: customer_risk, features: [failure_rate_90d]}
)yaml";

// Loads and validates (without source inspection) one document named "defs.yaml".
inline Diagnostics LoadAndValidate(const std::string& text, Definitions* out = nullptr) {
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml", text, &defs, &diag);
  if (!diag.has_errors()) ValidateDefinitions(defs, nullptr, &diag);
  if (out != nullptr) *out = std::move(defs);
  return diag;
}

// The only error's text; "" when there is none, "<n errors>" when there are several.
inline std::string OnlyError(const Diagnostics& diag) {
  if (diag.error_count() != 1)
    return "<" + std::to_string(diag.error_count()) + " errors: " + diag.ToStatus().message() + ">";
  return diag.ToStatus().message();
}

}  // namespace granary::testing
