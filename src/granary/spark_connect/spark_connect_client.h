// SparkConnectClient: a session on a Spark Connect server (Apache Spark 3.5+/4.x, Databricks
// Connect), the transport of the Spark offline engine (docs/SPARK.md). It knows SQL, Arrow and
// the protocol, no Granary domain: the engine builds the SQL.
//
// What it does:
//   - A session: a random session id (or the URL's session_id), the user context (user_id) and
//     the URL's headers (token as `authorization: Bearer`, x-databricks-cluster-id, ...) on
//     every call. Plans run as SQL text or as DataFrame relations the client builds (reads of
//     files by format and path, catalog tables, uploaded Arrow data).
//   - Results come back as Arrow IPC batches, one gRPC message at a time (ResultStream): the
//     client holds one batch (Spark's are at most spark.connect.grpc.arrow.maxBatchSize, 4 MiB by
//     default) plus what gRPC buffers, however large the result.
//   - Uploads (UploadAsView): an Arrow table is cut into IPC streams of about `chunk_bytes`,
//     each sent as a cached-local-relation artifact (`cache/<sha256>`, in 1 MiB chunks with
//     CRC-32), then registered as a temporary view of the session from those hashes
//     (ChunkedCachedLocalRelation). Client memory: one chunk at a time.
//   - Cancellation: a CancelFlag set while a stream runs makes the client send Interrupt for the
//     operation and cancel the call; Next() then returns kCancelled.
//   - Errors: Spark's error class and message (without the JVM stack), prefixed with the server
//     ("spark at sc://h:15002") and mapped to codes: a missing table, view or path -> kNotFound;
//     analysis and parse errors -> kInvalidArgument; a server that cannot be reached or went away
//     -> kUnavailable; an interrupted operation -> kCancelled; anything else -> kIOError.
//
// Thread safety: a SparkConnectClient may be used from several threads at once (gRPC stubs are
// thread-safe; the session is the server's). A ResultStream is used by one thread at a time and
// must be destroyed before its client. The destructor releases the session on the server.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/result.h"
#include "granary/spark_connect/connect_url.h"

namespace arrow {
class RecordBatch;
class Schema;
class Table;
}  // namespace arrow

namespace granary::spark_connect {

class ResultStream {
 public:
  virtual ~ResultStream() = default;
  // The schema of the result (Spark sends it with the first batch, even for an empty result).
  virtual const std::shared_ptr<arrow::Schema>& schema() const = 0;
  // The next non-empty batch, or nullptr at the end. After an error, do not call again.
  virtual Result<std::shared_ptr<arrow::RecordBatch>> Next() = 0;
  // Rows returned so far.
  virtual int64_t rows() const = 0;
  // What the server measured, once the stream has ended (Spark sends its plan's metrics last):
  // per metric key (Spark's: "numFiles", "numPartitions", "numOutputRows", "filesSize", ...),
  // the sum over the plan's file scans (nodes named "Scan parquet", "Scan csv", ...). Empty
  // before the end, or when the server sent none.
  virtual const std::map<std::string, int64_t>& scan_metrics() const = 0;
};

class SparkConnectClient {
 public:
  // Opens a channel and checks that the server answers (asks for its Spark version).
  // Unavailable (naming the server and how to start one) when it cannot be reached.
  static Result<std::unique_ptr<SparkConnectClient>> Open(const ConnectOptions& options);
  static Result<std::unique_ptr<SparkConnectClient>> Open(std::string_view url);

  ~SparkConnectClient();
  SparkConnectClient(const SparkConnectClient&) = delete;
  SparkConnectClient& operator=(const SparkConnectClient&) = delete;

  // "spark at sc://host:port" (never the token).
  std::string Describe() const;
  const std::string& session_id() const;
  // The server's Spark version, e.g. "4.1.1".
  const std::string& spark_version() const;

  // Runs `sql` (a query or a command such as CREATE TABLE ... AS, INSERT) and streams its result.
  Result<std::unique_ptr<ResultStream>> ExecuteSql(const std::string& sql,
                                                   const CancelFlag* cancel = nullptr);
  // Runs `sql` to its end, dropping any result rows.
  Status RunSql(const std::string& sql, const CancelFlag* cancel = nullptr);
  // The schema of `sql`'s result, from the server's analysis (AnalyzePlan); reads no data.
  Result<std::shared_ptr<arrow::Schema>> AnalyzeSql(const std::string& sql);

  // Registers temporary views of the session (replacing a view of the same name):
  // `table` uploaded from this process (see above); files read by Spark (format "parquet",
  // "delta", ...; paths are any URI the cluster's file systems accept); a catalog table.
  Status UploadAsView(const arrow::Table& table, const std::string& view_name,
                      int64_t chunk_bytes = 8 << 20, const CancelFlag* cancel = nullptr);
  Status ReadFilesAsView(const std::string& format, const std::vector<std::string>& paths,
                         const std::string& view_name);
  Status ReadTableAsView(const std::string& table_name, const std::string& view_name);

  // Runs `sql` once and keeps its rows in the cluster (a local checkpoint: on the executors'
  // memory and disk, its lineage cut), registered as the session's temporary view `view_name`.
  // Later queries read those rows as they were, however often they refer to the view (a query
  // with monotonically_increasing_id() or an ORDER BY is not run again). Returns the server's id
  // of the checkpoint, for ReleaseCheckpoint. Needs Spark Connect 4.0 or later.
  Result<std::string> CheckpointSqlAsView(const std::string& sql, const std::string& view_name,
                                          const CancelFlag* cancel = nullptr);
  // Frees the cluster's copy of a checkpoint (best effort after a failure; the session's end
  // frees it too).
  Status ReleaseCheckpoint(const std::string& relation_id);

  // Appends the rows of the session's view `view_name` to the data at `path` in `format`
  // ("delta": one Delta commit, which Delta retries on a conflicting concurrent commit;
  // "parquet": new part files in the folder), as DataFrameWriter's mode("append").save(path)
  // does; `partition_by` names hive partition columns for file formats.
  Status AppendViewToPath(const std::string& view_name, const std::string& format,
                          const std::string& path, const std::vector<std::string>& partition_by,
                          const CancelFlag* cancel = nullptr);

  // Interrupts every running operation of this session (best effort; OK when none runs).
  Status InterruptAll();

  class Impl;

 private:
  explicit SparkConnectClient(std::unique_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// A SQL identifier quoted with backticks (a backtick inside doubled): `my view`.
std::string QuoteIdentifier(std::string_view name);
// A SQL string literal in single quotes (quotes and backslashes escaped).
std::string QuoteString(std::string_view text);

}  // namespace granary::spark_connect
