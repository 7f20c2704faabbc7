// SparkEngine: the offline engine on Apache Spark (offline_store type: spark), through Spark
// Connect (spark_connect/). docs/SPARK.md is the user's guide.
//
//   offline_store:
//     type: spark
//     remote: "sc://127.0.0.1:15002"     # or sc://<workspace>:443/;token=${DATABRICKS_TOKEN};
//                                        #    x-databricks-cluster-id=...
//
// Every join and every scan runs in the cluster as Spark SQL (offline/spark/spark_sql.h); this
// process only uploads the entity rows' keys and times (Arrow, in chunks), streams results back a
// batch at a time and puts the entity columns it holds beside them, so its memory is the entity
// rows plus one batch, however large the history. Sources are read by Spark: Parquet and Delta by
// path (any URI the cluster's file systems accept; relative paths resolve against the repository
// root, which the cluster must see, as a local cluster does) and CSV (read as text, cast by the
// definitions). The session's time zone is set to UTC.
//
// Semantics are offline_engine.h's. Full ties (equal event and created timestamps) are broken by
// read position as the embedded engine does: file path, then row index in the file (Parquet and
// Delta; for CSV the order Spark reads the file, which is file order for files of one split).
//
// Thread-safe: one Spark Connect session per engine, shared; every call names its temporary
// views uniquely. Cancellation interrupts the Spark job (SparkConnectClient).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"

namespace granary {

struct SparkEngineOptions {
  std::string remote;                    // sc://... (spark_connect/connect_url.h)
  std::filesystem::path repo_root;       // relative source paths resolve here
  int64_t upload_chunk_bytes = 8 << 20;  // entity rows are uploaded in Arrow chunks of this size
};

// Connects to the Spark Connect server; Unavailable naming it when it cannot be reached.
Result<std::unique_ptr<OfflineEngine>> OpenSparkEngine(const SparkEngineOptions& options);

}  // namespace granary
