// What the Spark Connect client reads out of a server's answers, apart from the transport
// (spark_connect_client.cc makes the gRPC calls): Spark's data types as Arrow's (AnalyzePlan's
// schema), and the responses of one ExecutePlan call (Arrow IPC batches, whole or in chunks; the
// plan's metrics; a checkpoint's relation id).
//
// An answer is data from the network, checked before anything trusts it: Arrow's IPC reader
// checks a message's layout but not the values in it (offsets, dictionary indices, UTF-8), so
// every batch is validated in full, and must have the result's schema; chunks must come in
// order; a decimal must have a precision Arrow holds. A server that sends what Spark never sends
// gets an IOError naming the server and the call, never a crash.
//
// Thread-compatible: one ExecuteAnswers per ExecutePlan call.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "granary/common/result.h"

namespace arrow {
class DataType;
class RecordBatch;
class Schema;
}  // namespace arrow

namespace spark::connect {
class DataType;
class ExecutePlanResponse;
}  // namespace spark::connect

namespace granary::spark_connect {

// Spark's DataType as Arrow's. InvalidArgument for a type with no Arrow equivalent here; IOError
// for a decimal whose precision Arrow cannot hold (outside 1..38, which Spark never sends).
Result<std::shared_ptr<arrow::DataType>> ArrowTypeOfSpark(const ::spark::connect::DataType& type);

// AnalyzePlan's schema, a struct, as an Arrow schema. `what` ("spark at sc://h:15002: analyzing
// the query '...'") prefixes errors, which name the column.
Result<std::shared_ptr<arrow::Schema>> ArrowSchemaOfSpark(const ::spark::connect::DataType& type,
                                                          std::string_view what);

// The responses of one ExecutePlan call, fed in order.
class ExecuteAnswers {
 public:
  // `what` prefixes errors ("spark at sc://h:15002: query '...'").
  explicit ExecuteAnswers(std::string what) : what_(std::move(what)) {}

  // Takes one response: its Arrow batch (moved out of it), metrics and checkpoint result.
  Status Add(::spark::connect::ExecutePlanResponse* response);
  // At the end of the stream: IOError when it ended inside a chunked batch.
  Status End() const;

  // The result's schema: the first batch's (null until one came).
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  // Non-empty batches not yet taken, in order.
  std::deque<std::shared_ptr<arrow::RecordBatch>>& pending() { return pending_; }
  // Per metric key, the sum over the plan's file scans (saturating at int64's bounds).
  const std::map<std::string, int64_t>& scan_metrics() const { return scan_metrics_; }
  // A CheckpointCommand's result: the server's relation id; empty when none came.
  const std::string& checkpoint_id() const { return checkpoint_id_; }

 private:
  Status Decode(std::string data);

  std::string what_;
  std::shared_ptr<arrow::Schema> schema_;
  std::deque<std::shared_ptr<arrow::RecordBatch>> pending_;
  std::string chunk_buffer_;
  int64_t chunks_ = 0;  // chunks of the current batch received
  std::map<std::string, int64_t> scan_metrics_;
  std::string checkpoint_id_;
};

}  // namespace granary::spark_connect
