// The Spark cluster of a test binary (testing/spark_cluster.h), started once by a global test
// environment (spark_test_cluster.cc) before any test runs and stopped after the last.
#pragma once

#include <string>

namespace granary {

// sc://127.0.0.1:PORT of the binary's cluster.
const std::string& SparkTestRemote();

}  // namespace granary
