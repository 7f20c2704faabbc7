#include "granary/registry/loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "granary/common/temp_dir.h"
#include "granary/registry/repo_config.h"
#include "granary/registry/serialize.h"
#include "granary/testing/registry_definitions.h"

namespace granary {
namespace {

using testing::kValidDefinitions;
using testing::LoadAndValidate;
using testing::OnlyError;

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

TEST(Loader, LoadsEveryKindWithTypesAndLocations) {
  Definitions defs;
  Diagnostics diag = LoadAndValidate(kValidDefinitions, &defs);
  ASSERT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  ASSERT_EQ(defs.entities.size(), 2u);
  EXPECT_EQ(defs.entities[0].join_key_types[0], ValueType::Scalar(ScalarType::kInt64));
  const FeatureView& v = defs.feature_views.at(0);
  EXPECT_EQ(v.ttl, Duration::Days(90));
  EXPECT_EQ(v.schema.at(2).type, ValueType::List(ScalarType::kFloat32));
  EXPECT_EQ(v.location.ToString(), "defs.yaml:13");
  EXPECT_EQ(defs.data_sources.at(0).SourceColumnFor("payment_failures_30d"), "fail_cnt");
  EXPECT_EQ(defs.data_sources.at(0).format, SourceFormat::kParquet);
  EXPECT_EQ(defs.feature_services.at(1).projections.at(0).features,
            std::vector<std::string>{"failure_rate_90d"});
}

TEST(Loader, UnreadableYamlNamesFileAndLine) {
  Diagnostics diag = LoadAndValidate("entities:\n  - {name: customer\n  - oops: [\n");
  EXPECT_EQ(diag.error_count(), 1);
  EXPECT_NE(OnlyError(diag).find("defs.yaml:"), std::string::npos);
  EXPECT_NE(OnlyError(diag).find("unreadable YAML"), std::string::npos);
}

TEST(Loader, BadTtlIsAnErrorAtItsLine) {
  Diagnostics diag = LoadAndValidate(Replace(kValidDefinitions, "ttl: 90d", "ttl: 90 days"));
  EXPECT_EQ(OnlyError(diag).substr(0, 12), "defs.yaml:16");
  EXPECT_NE(OnlyError(diag).find("feature view 'customer_risk': 'ttl' invalid duration '90 days'"),
            std::string::npos)
      << OnlyError(diag);
}

TEST(Loader, OnlineKeyTtlIsOptionalPositiveAndCanonical) {
  Definitions defs;
  ASSERT_FALSE(
      LoadAndValidate(
          Replace(kValidDefinitions, "online: true", "online: true\n    online_key_ttl: 7d"), &defs)
          .has_errors());
  EXPECT_EQ(defs.feature_views.at(0).online_key_ttl, Duration::Days(7));
  EXPECT_NE(DefinitionsToYaml(defs).find("online_key_ttl: 7d"), std::string::npos);
  Diagnostics diag = LoadAndValidate(
      Replace(kValidDefinitions, "online: true", "online: true\n    online_key_ttl: 0"));
  EXPECT_NE(OnlyError(diag).find("'online_key_ttl' must be positive"), std::string::npos)
      << OnlyError(diag);
}

TEST(Loader, MissingTimestampFieldIsAnError) {
  Diagnostics diag =
      LoadAndValidate(Replace(kValidDefinitions, "    timestamp_field: event_timestamp\n", ""));
  // The view that uses the source is reported as well: its source is not defined then.
  ASSERT_TRUE(diag.has_errors());
  EXPECT_NE(diag.ToStatus().message().find(
                "data source 'customer_payments': 'timestamp_field' is required"),
            std::string::npos)
      << diag.ToStatus().message();
}

TEST(Loader, UnknownKeysSuggestTheIntendedOne) {
  Diagnostics diag = LoadAndValidate(Replace(kValidDefinitions, "online: true", "onlin: true"));
  EXPECT_NE(OnlyError(diag).find("unknown key 'onlin', did you mean 'online'?"), std::string::npos)
      << OnlyError(diag);
}

TEST(Loader, RejectsUnknownFieldTypesAndListJoinKeys) {
  Diagnostics diag = LoadAndValidate(Replace(kValidDefinitions, "type: float64", "type: decimal"));
  EXPECT_NE(OnlyError(diag).find("field 'failure_rate_90d': 'type' unknown type 'decimal'"),
            std::string::npos)
      << OnlyError(diag);
}

TEST(Loader, FilesWithoutDefinitionsAreSkippedWithAWarning) {
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("ci.yaml", "steps: [build, test]\n", &defs, &diag);
  EXPECT_FALSE(diag.has_errors());
  ASSERT_EQ(diag.Warnings().size(), 1u);
  EXPECT_NE(diag.Warnings()[0].find("skipped"), std::string::npos);
}

TEST(Serialize, CanonicalYamlRoundTripsAndIsStable) {
  Definitions defs;
  ASSERT_FALSE(LoadAndValidate(kValidDefinitions, &defs).has_errors());
  defs.project = "parking";
  std::string text = DefinitionsToYaml(defs);
  auto back = DefinitionsFromYaml(text, "registry");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  back->project = "parking";
  EXPECT_EQ(DefinitionsToYaml(*back), text);
  EXPECT_EQ(DefinitionsFingerprint(*back), DefinitionsFingerprint(defs));
  // Order of definition in files does not change the fingerprint.
  std::reverse(defs.entities.begin(), defs.entities.end());
  EXPECT_EQ(DefinitionsFingerprint(*back), DefinitionsFingerprint(defs));
}

TEST(Serialize, PushSourceRoundTripsThroughTheCanonicalForm) {
  Definitions defs;
  ASSERT_FALSE(LoadAndValidate(Replace(kValidDefinitions, "feature_views:\n",
                                       "  - {name: payments_push, type: push, batch_source: "
                                       "customer_payments, description: live}\n"
                                       "feature_views:\n"),
                               &defs)
                   .has_errors());
  const std::string text = DefinitionsToYaml(defs);
  EXPECT_NE(text.find("name: payments_push\n    type: push\n    batch_source: customer_payments\n"
                      "    description: live"),
            std::string::npos)
      << text;
  auto back = DefinitionsFromYaml(text, "registry");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->FindDataSource("payments_push")->batch_source, "customer_payments");
  EXPECT_EQ(DefinitionsFingerprint(*back), DefinitionsFingerprint(defs));
}

TEST(Loader, SourcesSayWhereTheirDataIsByPathTableOrQueryAndRoundTrip) {
  for (const std::string form :
       {"table: main.parking.payments", "query: SELECT * FROM main.parking.payments"}) {
    SCOPED_TRACE(form);
    Definitions defs;
    ASSERT_FALSE(
        LoadAndValidate(Replace(kValidDefinitions, "path: data/customer_payments.parquet", form),
                        &defs)
            .has_errors());
    const DataSource& source = *defs.FindDataSource("customer_payments");
    EXPECT_TRUE(source.path.empty());
    EXPECT_EQ(source.table.empty() && source.query.empty(), false);
    const std::string text = DefinitionsToYaml(defs);
    EXPECT_EQ(text.find("path:"), std::string::npos) << text;
    auto back = DefinitionsFromYaml(text, "registry");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->FindDataSource("customer_payments")->table, source.table);
    EXPECT_EQ(back->FindDataSource("customer_payments")->query, source.query);
    EXPECT_EQ(DefinitionsFingerprint(*back), DefinitionsFingerprint(defs));
  }
  // Two forms, or none, are errors that say what to write.
  Diagnostics both =
      LoadAndValidate(Replace(kValidDefinitions, "path: data/customer_payments.parquet",
                              "path: data/customer_payments.parquet\n"
                              "    table: main.parking.payments"));
  EXPECT_NE(both.ToStatus().message().find("give only one of path, table and query"),
            std::string::npos)
      << both.ToStatus().message();
  Diagnostics none =
      LoadAndValidate(Replace(kValidDefinitions, "    path: data/customer_payments.parquet\n", ""));
  EXPECT_NE(none.ToStatus().message().find("table (a catalog table"), std::string::npos)
      << none.ToStatus().message();
}

class RepoConfigTest : public ::testing::Test {
 protected:
  void Write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
  }
  TempDir tmp_ = TempDir::Make("granary_cfg_").ValueOrDie();
  const std::filesystem::path dir_ = tmp_.path();
};

TEST_F(RepoConfigTest, DefaultsToEmbeddedStores) {
  Write("granary.yaml", "project: parking\n");
  auto config = LoadRepoConfig(dir_);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->online_store.type, "rocksdb");
  EXPECT_EQ(config->offline_store.type, "file");
  EXPECT_EQ(config->RegistryPath(), dir_ / "data/registry.db");
  EXPECT_EQ(config->online_store.key_ttl, Duration::Days(90));
  EXPECT_FALSE(config->online_store.read_from_replicas);
}

TEST_F(RepoConfigTest, SubstitutesEnvironmentVariablesInValues) {
  Write(
      "granary.yaml",
      "project: parking\nonline_store: {type: redis, connection_string: "
      "\"127.0.0.1:6379,password=${TEST_REDIS_PASSWORD}\", username: \"${TEST_USER:-default}\"}\n");
  auto lookup = [](const char* name) -> const char* {
    return std::string(name) == "TEST_REDIS_PASSWORD" ? "s3cr3t: {x}" : nullptr;
  };
  auto config = LoadRepoConfig(dir_, lookup);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->online_store.connection_string, "127.0.0.1:6379,password=s3cr3t: {x}");
  EXPECT_EQ(config->online_store.username, "default");
}

TEST_F(RepoConfigTest, SparkOfflineStoreTakesAConnectUrlWithATokenFromTheEnvironment) {
  Write("granary.yaml",
        "project: parking\noffline_store:\n  type: spark\n  remote: "
        "\"sc://adb-1.azuredatabricks.net:443/;token=${TEST_DBX_TOKEN};"
        "x-databricks-cluster-id=0123-456\"\n");
  auto lookup = [](const char* name) -> const char* {
    return std::string(name) == "TEST_DBX_TOKEN" ? "dapi123" : nullptr;
  };
  auto config = LoadRepoConfig(dir_, lookup);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->offline_store.type, "spark");
  EXPECT_EQ(config->offline_store.remote,
            "sc://adb-1.azuredatabricks.net:443/;token=dapi123;x-databricks-cluster-id=0123-456");

  Write("granary.yaml", "project: parking\noffline_store: {type: spark}\n");
  auto missing = LoadRepoConfig(dir_, lookup);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("needs remote"), std::string::npos)
      << missing.status().message();
}

TEST_F(RepoConfigTest, UnsetVariableIsAnErrorNamingIt) {
  Write("granary.yaml",
        "project: parking\nonline_store: {type: redis_cluster, nodes: [\"${NOPE_X}\"]}\n");
  auto config = LoadRepoConfig(dir_, [](const char*) -> const char* { return nullptr; });
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("granary.yaml:2"), std::string::npos);
  EXPECT_NE(config.status().message().find("NOPE_X is not set"), std::string::npos);
}

TEST_F(RepoConfigTest, RejectsUnknownStoreTypesAndMissingFile) {
  Write("granary.yaml", "project: parking\nonline_store: {type: dynamodb}\n");
  auto config = LoadRepoConfig(dir_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("use rocksdb, redis or redis_cluster"),
            std::string::npos);
  EXPECT_EQ(LoadRepoConfig(dir_ / "nowhere").status().code(), StatusCode::kNotFound);
}

TEST_F(RepoConfigTest, OfflineStoreIsFileOrSpark) {
  Write("granary.yaml",
        "project: parking\noffline_store: {type: spark, remote: \"sc://127.0.0.1:15002\"}\n");
  auto spark = LoadRepoConfig(dir_);
  ASSERT_TRUE(spark.ok()) << spark.status().ToString();
  EXPECT_EQ(spark->offline_store.type, "spark");
  Write("granary.yaml", "project: parking\noffline_store: {type: bigquery}\n");
  auto other = LoadRepoConfig(dir_);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("use file (the embedded engine) or spark"),
            std::string::npos)
      << other.status().message();
}

TEST_F(RepoConfigTest, RedisTimeoutsAreDurationsForRedisStoresOnly) {
  Write("granary.yaml",
        "project: p\nonline_store: {type: redis, connection_string: \"127.0.0.1:6379\", "
        "request_timeout: 30s, connect_timeout: 500ms}\n");
  auto set = LoadRepoConfig(dir_);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->online_store.request_timeout, Duration::Seconds(30));
  EXPECT_EQ(set->online_store.connect_timeout, Duration::Microseconds(500'000));
  Write("granary.yaml", "project: p\nonline_store: {type: redis_cluster, nodes: [\"h:1\"]}\n");
  auto unset = LoadRepoConfig(dir_);
  ASSERT_TRUE(unset.ok()) << unset.status().ToString();
  EXPECT_FALSE(unset->online_store.request_timeout.has_value());
  EXPECT_FALSE(unset->online_store.connect_timeout.has_value());

  // Every problem at once, each with its line and a fix: not a duration, zero (a frozen node
  // would hang every caller), past the 1 h bound.
  Write("granary.yaml",
        "project: p\nonline_store:\n  type: redis\n  connection_string: \"127.0.0.1:6379\"\n"
        "  request_timeout: soon\n  connect_timeout: 0s\n");
  auto bad = LoadRepoConfig(dir_);
  ASSERT_FALSE(bad.ok());
  const std::string message = bad.status().message();
  EXPECT_NE(message.find("granary.yaml:5"), std::string::npos) << message;
  EXPECT_NE(message.find("request_timeout 'soon' is not a duration from 1ms to 1h; write e.g. "
                         "2s, 500ms or 30s"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("granary.yaml:6"), std::string::npos) << message;
  EXPECT_NE(message.find("connect_timeout '0s' is not a duration from 1ms to 1h"),
            std::string::npos)
      << message;
  Write("granary.yaml",
        "project: p\nonline_store: {type: redis_cluster, nodes: [\"h:1\"], "
        "request_timeout: 61m, connect_timeout: 1h}\n");
  auto long_ones = LoadRepoConfig(dir_);
  ASSERT_FALSE(long_ones.ok());
  EXPECT_NE(long_ones.status().message().find("request_timeout '61m' is not a duration from 1ms "
                                              "to 1h"),
            std::string::npos)
      << long_ones.status().message();
  EXPECT_EQ(long_ones.status().message().find("connect_timeout"), std::string::npos)
      << long_ones.status().message();  // 1h itself is accepted
  Write("granary.yaml", "project: p\nonline_store: {type: rocksdb, request_timeout: 5s}\n");
  auto rocksdb = LoadRepoConfig(dir_);
  ASSERT_FALSE(rocksdb.ok());
  EXPECT_NE(rocksdb.status().message().find(
                "request_timeout is for redis and redis_cluster stores; remove it"),
            std::string::npos)
      << rocksdb.status().message();
}

TEST_F(RepoConfigTest, FindsDefinitionFilesButSkipsHiddenAndIgnored) {
  Write("granary.yaml", "project: p\n");
  Write("a.yaml", "entities: []\n");
  Write("sub/b.yml", "entities: []\n");
  Write(".hidden/c.yaml", "entities: []\n");
  Write("vendor/d.yaml", "entities: []\n");
  Write(".granaryignore", "# comment\nvendor/\n");
  auto config = LoadRepoConfig(dir_).ValueOrDie();
  auto files = FindDefinitionFiles(config).ValueOrDie();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], dir_ / "a.yaml");
  EXPECT_EQ(files[1], dir_ / "sub/b.yml");
}

}  // namespace
}  // namespace granary
