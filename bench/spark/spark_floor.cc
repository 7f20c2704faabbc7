// The floor of bench/spark: the same Spark Connect server reads the columns a training set
// needs (every view's key, time and features, and the entity rows) and returns one row of
// counts and sums, so that the figure is Spark's scan of the data alone, without a join, a sort
// or a result to ship. Usage: spark_floor sc://host:port 'SQL' (prints the rows and seconds).
#include <arrow/api.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "granary/spark_connect/spark_connect_client.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: spark_floor sc://host:port 'SQL'\n");
    return 2;
  }
  auto client = granary::spark_connect::SparkConnectClient::Open(argv[1]);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  auto stream = (*client)->ExecuteSql(argv[2]);
  if (!stream.ok()) {
    std::fprintf(stderr, "%s\n", stream.status().ToString().c_str());
    return 1;
  }
  int64_t rows = 0;
  for (;;) {
    auto batch = (*stream)->Next();
    if (!batch.ok()) {
      std::fprintf(stderr, "%s\n", batch.status().ToString().c_str());
      return 1;
    }
    if (*batch == nullptr) break;
    rows += (*batch)->num_rows();
    if (rows <= 1) std::fputs((*batch)->ToString().c_str(), stdout);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} rows in {:.2f}s\n", rows, seconds);
  return 0;
}
