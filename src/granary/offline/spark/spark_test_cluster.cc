#include "granary/offline/spark/spark_test_cluster.h"

#include <gtest/gtest.h>

#include <memory>

#include "granary/testing/spark_cluster.h"

namespace granary {
namespace {

std::unique_ptr<testing::SparkCluster>& Cluster() {
  static std::unique_ptr<testing::SparkCluster> cluster;
  return cluster;
}

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto cluster = testing::SparkCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    Cluster() = std::move(*cluster);
  }
  void TearDown() override { Cluster().reset(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

}  // namespace

const std::string& SparkTestRemote() {
  static const std::string none = "sc://127.0.0.1:1";  // the cluster did not start
  return Cluster() ? Cluster()->url() : none;
}

}  // namespace granary
