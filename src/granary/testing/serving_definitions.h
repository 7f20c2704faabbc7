// Helpers for the feature server's tests: a repository in a temporary folder with push sources,
// its definitions applied to a real SQLite registry.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "granary/common/temp_dir.h"
#include "granary/registry/loader.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/validator.h"

namespace granary::testing {

// A folder source behind a push source read by two views, and a single-file source behind
// another.
inline constexpr const char* kPushDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp,
     created_timestamp_column: created}
  - {name: payments_push, type: push, batch_source: payments}
  - {name: single, path: data/single.parquet, timestamp_field: event_timestamp}
  - {name: single_push, type: push, batch_source: single}
feature_views:
  - name: risk
    entities: [customer]
    source: payments_push
    ttl: 1d
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
      - {name: labels, type: list<string>}
  - name: risk_counts
    entities: [customer]
    source: payments_push
    schema:
      - {name: failures, type: int64}
  - name: single_view
    entities: [customer]
    source: single_push
    schema:
      - {name: score, type: float64}
feature_services:
  - name: risk_v1
    features: [risk]
)yaml";

inline Definitions LoadValid(const std::string& text, const std::string& project = "shop") {
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("defs.yaml", text, &defs, &diag);
  if (!diag.has_errors()) ValidateDefinitions(defs, nullptr, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  defs.project = project;
  return defs;
}

// A repository root with a registry holding `text` as its first version.
class TestRepo {
 public:
  explicit TestRepo(const std::string& text) {
    registry_ = OpenSqliteRegistry(registry_path(), OpenMode::kCreateIfMissing).ValueOrDie();
    Apply(text);
  }
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path registry_path() const { return root_ / "data/registry.db"; }
  // Commits `text` as a new version (as granary apply does).
  void Apply(const std::string& text) {
    auto info = registry_->Commit(LoadValid(text), Timestamp::FromSeconds(1'800'000'000));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
  }

 private:
  TempDir dir_ = TempDir::Make("granary_server_").ValueOrDie();
  std::filesystem::path root_ = dir_.path();
  std::unique_ptr<RegistryStore> registry_;
};

}  // namespace granary::testing
