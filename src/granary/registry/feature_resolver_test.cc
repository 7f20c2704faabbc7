// The one set of rules that maps requested features to views (training sets and online reads),
// and the definitions of window aggregations: loading, the canonical form, outputs.
#include "granary/registry/feature_resolver.h"

#include <gtest/gtest.h>

#include "granary/registry/document.h"
#include "granary/registry/loader.h"
#include "granary/registry/serialize.h"
#include "granary/registry/validator.h"

namespace granary {
namespace {

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: bay, join_keys: [bay_id], value_type: string}
data_sources:
  - {name: payments, path: payments.parquet, timestamp_field: event_timestamp}
  - {name: bays, path: bays.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    schema:
      - {name: score, type: float64}
      - {name: tier, type: string}
    aggregations:
      - {name: failures_30d, function: count, where: failed, window: 30d}
      - {name: spend_30d, function: sum, column: amount, window: 30d, type: float64}
    granularity: 1h
  - name: bay_stats
    entities: [bay]
    source: bays
    schema:
      - {name: score, type: float64}
  - name: archive
    entities: [customer]
    source: payments
    online: false
    schema:
      - {name: old_score, type: float64}
feature_services:
  - name: risk_v1
    features: [risk, "bay_stats:score"]
  - name: risk_only
    features: [risk]
)yaml";

Definitions Load() {
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("defs.yaml", kDefinitions, &defs, &diag);
  ValidateDefinitions(defs, nullptr, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  return defs;
}

std::string Message(const Result<FeatureResolution>& r) {
  return r.ok() ? "ok" : r.status().message();
}

TEST(FeatureView, OutputsAreTheSchemaThenTheAggregationsWithInferredTypes) {
  Definitions defs = Load();
  const FeatureView& risk = *defs.FindFeatureView("risk");
  std::vector<std::string> names;
  for (const Field& f : risk.Outputs()) names.push_back(f.name + ":" + f.type.ToString());
  EXPECT_EQ(names, (std::vector<std::string>{"score:float64", "tier:string", "failures_30d:int64",
                                             "spend_30d:float64"}));
  EXPECT_EQ(risk.granularity, Duration::Hours(1));
  EXPECT_EQ(risk.aggregations[0].location.ToString(), "defs.yaml:16");
}

TEST(FeatureView, AggregationsSurviveTheCanonicalFormAndItsFingerprint) {
  Definitions defs = Load();
  const std::string yaml = DefinitionsToYaml(defs);
  EXPECT_NE(yaml.find("{name: failures_30d, function: count, where: failed, window: 30d, type: "
                      "int64}"),
            std::string::npos)
      << yaml;
  auto back = DefinitionsFromYaml(yaml, "stored");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  back->project = defs.project;
  EXPECT_EQ(DefinitionsToYaml(*back), yaml);
  EXPECT_EQ(DefinitionsFingerprint(*back), DefinitionsFingerprint(defs));
}

TEST(FeatureView, PlainViewsKeepTheirCanonicalForm) {
  // The canonical text of a view without aggregations is what earlier versions stored, so
  // registries keep their fingerprints.
  Definitions defs = Load();
  EXPECT_EQ(ObjectToYaml(FieldsOf(*defs.FindFeatureView("bay_stats"))),
            "name: bay_stats\nentities: [bay]\nsource: bays\nttl: 0\nonline: true\nschema:\n  - "
            "{name: score, type: float64}");
}

TEST(FeatureResolver, TrainingSetsAndOnlineReadsFollowOneSetOfRules) {
  Definitions defs = Load();
  const FeatureResolver offline(defs, FeatureResolver::Scope::kOffline);
  const FeatureResolver online(defs, FeatureResolver::Scope::kOnline);
  for (const FeatureResolver* resolver : {&offline, &online}) {
    FeatureRequest twice;
    twice.features = {"risk:score", "risk:score"};
    EXPECT_EQ(Message(resolver->Resolve(twice)),
              "feature 'risk:score' is requested twice; request each feature once");

    FeatureRequest shared;
    shared.features = {"risk:score", "bay_stats:score"};
    EXPECT_NE(Message(resolver->Resolve(shared)).find("would both be named 'score'"),
              std::string::npos);
    shared.full_feature_names = true;
    auto full = resolver->Resolve(shared);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    EXPECT_EQ(full->features[1].output_name, "bay_stats__score");

    FeatureRequest key_named;
    key_named.features = {"risk:tier"};
    key_named.entity_columns = {"customer_id", "tier"};
    EXPECT_NE(
        Message(resolver->Resolve(key_named)).find("has the name of the entity column 'tier'"),
        std::string::npos);

    FeatureRequest service;
    service.feature_service = "risk_v1";
    EXPECT_NE(Message(resolver->Resolve(service)).find("would both be named 'score'"),
              std::string::npos);
    service.feature_service = "risk_only";
    auto whole = resolver->Resolve(service);
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    ASSERT_EQ(whole->features.size(), 4u);  // a whole view: its schema and its aggregations
    EXPECT_EQ(whole->features[3].output_name, "spend_30d");
    EXPECT_NE(whole->features[3].entry->aggregation, nullptr);
    EXPECT_EQ(whole->views.size(), 1u);

    FeatureRequest unknown;
    unknown.features = {"risk:spend_3d"};
    EXPECT_NE(Message(resolver->Resolve(unknown))
                  .find("feature view 'risk' has no feature 'spend_3d', did you mean 'spend_30d'?"),
              std::string::npos);
    FeatureRequest both;
    both.features = {"risk:score"};
    both.feature_service = "risk_only";
    EXPECT_NE(Message(resolver->Resolve(both)).find("not both"), std::string::npos);
    EXPECT_NE(Message(resolver->Resolve(FeatureRequest{})).find("names no features"),
              std::string::npos);
  }
  FeatureRequest archived;
  archived.features = {"archive:old_score"};
  EXPECT_TRUE(offline.Resolve(archived).ok());
  EXPECT_NE(Message(online.Resolve(archived)).find("feature view 'archive' is not online"),
            std::string::npos);
}

TEST(Aggregations, LoaderAndValidatorReportEveryProblemWithItsLine) {
  const std::string yaml = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: payments.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: v
    entities: [customer]
    source: payments
    granularity: 7h
    aggregations:
      - {name: a, function: average, column: amount, window: 30d}
      - {name: b, function: sum, window: 30d, type: float64}
      - {name: c, function: max, column: amount, window: 30d}
      - {name: d, function: count, window: 0s}
      - {name: d, function: count, window: 1h}
)yaml";
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("defs.yaml", yaml, &defs, &diag);
  ValidateDefinitions(defs, nullptr, &diag);
  const std::string all = diag.ToStatus().message();
  EXPECT_NE(all.find("defs.yaml:12: feature view 'v': aggregation 'a': 'function' is not an "
                     "aggregation function ('average'); use one of count, sum, mean"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("defs.yaml:13: feature view 'v': aggregation 'b': sum needs a column"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("defs.yaml:14: feature view 'v': aggregation 'c': the type of max depends on "
                     "column 'amount'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("defs.yaml:15:"), std::string::npos) << all;
  EXPECT_NE(all.find("defs.yaml:16: feature view 'v': aggregation 'd': listed twice"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("window 1h is shorter than the view's granularity 7h"), std::string::npos)
      << all;
  EXPECT_NE(all.find("granularity 7h does not divide a day"), std::string::npos) << all;
}

}  // namespace
}  // namespace granary
