#include "granary/spark_connect/spark_connect_client.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <random>
#include <thread>

#include "granary/common/mutex.h"
#include "granary/spark_connect/spark_answers.h"
#include "spark/connect/base.grpc.pb.h"

namespace granary::spark_connect {

namespace proto = ::spark::connect;

namespace {

constexpr int kMaxMessageBytes = 128 << 20;  // Spark's spark.connect.grpc.maxInboundMessageSize
constexpr int64_t kArtifactChunkBytes = 1 << 20;
// The inline LocalRelation limit: larger uploads go as cached artifacts in chunks.
constexpr int64_t kInlineUploadBytes = 4 << 20;

std::string NewUuid() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t hi = gen(), lo = gen();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  std::string h = fmt::format("{:016x}{:016x}", hi, lo);
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4),
                     h.substr(16, 4), h.substr(20));
}

std::string Sha256Hex(const uint8_t* data, size_t size) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(data, size, digest);
  std::string out;
  for (unsigned char c : digest) out += fmt::format("{:02x}", c);
  return out;
}

Status FromArrow(const arrow::Status& st, std::string_view what) {
  if (st.ok()) return Status::OK();
  return Status::IOError(fmt::format("{}: {}", what, st.ToString()));
}

// Spark's message without the JVM stack trace that some servers append.
std::string SparkMessage(const grpc::Status& status) {
  std::string msg = status.error_message();
  for (std::string_view cut : {"\n\nJVM stacktrace:", "\nJVM stacktrace:"}) {
    size_t at = msg.find(cut);
    if (at != std::string::npos) msg.resize(at);
  }
  if (msg.size() > 4000) msg = msg.substr(0, 4000) + " ...";
  return msg;
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

class SparkConnectClient::Impl : public std::enable_shared_from_this<SparkConnectClient::Impl> {
 public:
  ConnectOptions options;
  std::string describe;
  std::string session_id;
  std::string spark_version;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<proto::SparkConnectService::Stub> stub;

  std::unique_ptr<grpc::ClientContext> NewContext() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!options.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options.token);
    for (const auto& [name, value] : options.headers) ctx->AddMetadata(name, value);
    return ctx;
  }

  template <typename Request>
  void Fill(Request* request) const {
    request->set_session_id(session_id);
    request->mutable_user_context()->set_user_id(options.user_id);
    request->set_client_type(options.user_agent);
  }

  // A gRPC status as a Granary Status naming the server and what was being done.
  Status FromGrpc(const grpc::Status& status, std::string_view what) const {
    std::string msg = SparkMessage(status);
    std::string text = fmt::format("{}: {}: {}", describe, what, msg);
    switch (status.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return Status::Unavailable(fmt::format(
            "{}: {}: the server cannot be reached or went away ({}); check that the cluster is "
            "running (scripts/spark-cluster start for a local one) and offline_store.remote in "
            "granary.yaml",
            describe, what, msg));
      case grpc::StatusCode::CANCELLED:
        return Status::Cancelled(fmt::format("{}: {} was cancelled", describe, what));
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
        return Status::InvalidArgument(
            text + " (check the token= of offline_store.remote; a token is only sent over TLS)");
      default:
        break;
    }
    if (Contains(msg, "OPERATION_CANCELED") || Contains(msg, "was cancelled") ||
        Contains(msg, "INTERRUPTED")) {
      return Status::Cancelled(text);
    }
    for (std::string_view cls :
         {"TABLE_OR_VIEW_NOT_FOUND", "PATH_NOT_FOUND", "DELTA_TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND",
          "DELTA_PATH_DOES_NOT_EXIST", "is not a Delta table", "Path does not exist"}) {
      if (Contains(msg, cls)) return Status::NotFound(text);
    }
    for (std::string_view cls :
         {"UNRESOLVED_", "PARSE_SYNTAX_ERROR", "DATATYPE_MISMATCH", "AnalysisException", "INVALID_",
          "AMBIGUOUS_", "CAST_", "SQLSTATE: 42"}) {  // class 42: syntax and analysis errors
      if (Contains(msg, cls)) return Status::InvalidArgument(text);
    }
    return Status::IOError(text);
  }

  Status Interrupt(proto::InterruptRequest_InterruptType type, const std::string& operation_id) {
    proto::InterruptRequest request;
    Fill(&request);
    request.set_interrupt_type(type);
    if (!operation_id.empty()) request.set_operation_id(operation_id);
    proto::InterruptResponse response;
    auto ctx = NewContext();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status st = stub->Interrupt(ctx.get(), request, &response);
    return st.ok() ? Status::OK() : FromGrpc(st, "interrupt");
  }

  Status RunPlanToEnd(const proto::Plan& plan, std::string_view what, const CancelFlag* cancel);
  Status CreateView(const proto::Relation& input, const std::string& view_name,
                    std::string_view what);
  Status UploadArtifact(const std::string& name, const std::shared_ptr<arrow::Buffer>& data);
};

namespace {

// One ExecutePlan call. A watcher thread turns a CancelFlag into Interrupt + TryCancel.
class ExecuteStream final : public ResultStream {
 public:
  ExecuteStream(std::shared_ptr<SparkConnectClient::Impl> client, std::string what,
                const CancelFlag* cancel)
      : client_(std::move(client)),
        what_(std::move(what)),
        cancel_(cancel),
        answers_(fmt::format("{}: {}", client_->describe, what_)) {}

  ~ExecuteStream() override {
    StopWatcher();
    if (reader_ && !finished_) {
      // Stops the Spark job too: a stream dropped halfway leaves no work running.
      (void)client_->Interrupt(proto::InterruptRequest_InterruptType_INTERRUPT_TYPE_OPERATION_ID,
                               operation_id_);
      ctx_->TryCancel();
      (void)reader_->Finish();
    }
  }

  Status Start(const proto::Plan& plan) {
    proto::ExecutePlanRequest request;
    client_->Fill(&request);
    operation_id_ = NewUuid();
    request.set_operation_id(operation_id_);
    *request.mutable_plan() = plan;
    ctx_ = client_->NewContext();
    reader_ = client_->stub->ExecutePlan(ctx_.get(), request);
    if (cancel_ != nullptr) watcher_ = std::thread([this] { Watch(); });
    // The schema comes with the first batch; read until one arrives (or the end).
    while (schema_ == nullptr) {
      GRANARY_ASSIGN_OR_RAISE(bool more, ReadMessage());
      if (!more) break;
    }
    if (schema_ == nullptr) schema_ = arrow::schema({});
    return Status::OK();
  }

  const std::shared_ptr<arrow::Schema>& schema() const override { return schema_; }
  int64_t rows() const override { return rows_; }
  const std::map<std::string, int64_t>& scan_metrics() const override {
    return answers_.scan_metrics();
  }
  const std::string& checkpoint_id() const { return answers_.checkpoint_id(); }

  Result<std::shared_ptr<arrow::RecordBatch>> Next() override {
    auto& pending = answers_.pending();
    while (pending.empty()) {
      GRANARY_ASSIGN_OR_RAISE(bool more, ReadMessage());
      if (!more) return std::shared_ptr<arrow::RecordBatch>();
    }
    auto batch = std::move(pending.front());
    pending.pop_front();
    rows_ += batch->num_rows();
    return batch;
  }

 private:
  // Reads one response; false at the end of the stream.
  Result<bool> ReadMessage() {
    if (finished_) return false;
    proto::ExecutePlanResponse response;
    if (!reader_->Read(&response)) {
      finished_ = true;
      grpc::Status st = reader_->Finish();
      StopWatcher();
      if (interrupted_) {
        return Status::Cancelled(fmt::format("{}: {} was cancelled (the Spark job was interrupted)",
                                             client_->describe, what_));
      }
      if (!st.ok()) return client_->FromGrpc(st, what_);
      GRANARY_RETURN_NOT_OK(answers_.End());
      return false;
    }
    GRANARY_RETURN_NOT_OK(answers_.Add(&response));
    if (schema_ == nullptr) schema_ = answers_.schema();
    return true;
  }

  void Watch() {
    MutexLock lock(&mu_);
    while (!stop_) {
      cv_.WaitFor(&mu_, std::chrono::milliseconds(100));
      if (stop_) return;
      if (cancel_->cancelled()) {
        interrupted_ = true;
        lock.Unlock();
        (void)client_->Interrupt(proto::InterruptRequest_InterruptType_INTERRUPT_TYPE_OPERATION_ID,
                                 operation_id_);
        ctx_->TryCancel();
        return;
      }
    }
  }

  void StopWatcher() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    if (watcher_.joinable()) watcher_.join();
  }

  std::shared_ptr<SparkConnectClient::Impl> client_;
  std::string what_;
  const CancelFlag* cancel_;
  std::string operation_id_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderInterface<proto::ExecutePlanResponse>> reader_;
  bool finished_ = false;
  std::shared_ptr<arrow::Schema> schema_;
  ExecuteAnswers answers_;  // the responses read so far: batches, metrics, checkpoint
  int64_t rows_ = 0;

  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::atomic<bool> interrupted_{false};
  std::thread watcher_;
};

proto::Plan SqlPlan(const std::string& sql) {
  proto::Plan plan;
  plan.mutable_root()->mutable_sql()->set_query(sql);
  return plan;
}

// "the query 'SELECT ...'" shortened for messages.
std::string QueryForMessage(const std::string& sql) {
  std::string one_line = sql;
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  if (one_line.size() > 300) one_line = one_line.substr(0, 300) + " ...";
  return fmt::format("query '{}'", one_line);
}

}  // namespace

Status SparkConnectClient::Impl::RunPlanToEnd(const proto::Plan& plan, std::string_view what,
                                              const CancelFlag* cancel) {
  auto stream = std::make_unique<ExecuteStream>(shared_from_this(), std::string(what), cancel);
  GRANARY_RETURN_NOT_OK(stream->Start(plan));
  while (true) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, stream->Next());
    if (batch == nullptr) return Status::OK();
  }
}

Status SparkConnectClient::Impl::CreateView(const proto::Relation& input,
                                            const std::string& view_name, std::string_view what) {
  proto::Plan plan;
  auto* view = plan.mutable_command()->mutable_create_dataframe_view();
  *view->mutable_input() = input;
  view->set_name(view_name);
  view->set_is_global(false);
  view->set_replace(true);
  return RunPlanToEnd(plan, what, nullptr);
}

Status SparkConnectClient::Impl::UploadArtifact(const std::string& name,
                                                const std::shared_ptr<arrow::Buffer>& data) {
  proto::AddArtifactsResponse response;
  auto ctx = NewContext();
  auto writer = stub->AddArtifacts(ctx.get(), &response);
  const int64_t size = data->size();
  const int64_t chunks =
      std::max<int64_t>(1, (size + kArtifactChunkBytes - 1) / kArtifactChunkBytes);
  for (int64_t i = 0; i < chunks; ++i) {
    int64_t begin = i * kArtifactChunkBytes;
    int64_t len = std::min(kArtifactChunkBytes, size - begin);
    proto::AddArtifactsRequest request;
    Fill(&request);
    proto::AddArtifactsRequest_ArtifactChunk* chunk;
    if (chunks == 1) {
      // One chunk goes as a batch: the server only closes a chunked artifact on a later chunk.
      auto* single = request.mutable_batch()->add_artifacts();
      single->set_name(name);
      chunk = single->mutable_data();
    } else if (i == 0) {
      auto* start = request.mutable_begin_chunk();
      start->set_name(name);
      start->set_total_bytes(size);
      start->set_num_chunks(chunks);
      chunk = start->mutable_initial_chunk();
    } else {
      chunk = request.mutable_chunk();
    }
    chunk->set_data(reinterpret_cast<const char*>(data->data()) + begin, len);
    chunk->set_crc(static_cast<int64_t>(crc32(0L, data->data() + begin, static_cast<uInt>(len))));
    if (!writer->Write(request)) break;  // the server ended the call: Finish says why
  }
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return FromGrpc(st, fmt::format("uploading artifact {}", name));
  for (const auto& summary : response.artifacts()) {
    if (!summary.is_crc_successful()) {
      return Status::IOError(fmt::format("{}: uploading artifact {}: the server's CRC check failed",
                                         describe, summary.name()));
    }
  }
  return Status::OK();
}

SparkConnectClient::SparkConnectClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SparkConnectClient::~SparkConnectClient() {
  if (impl_ == nullptr || impl_->stub == nullptr) return;
  proto::ReleaseSessionRequest request;
  impl_->Fill(&request);
  proto::ReleaseSessionResponse response;
  auto ctx = impl_->NewContext();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  (void)impl_->stub->ReleaseSession(ctx.get(), request, &response);
}

Result<std::unique_ptr<SparkConnectClient>> SparkConnectClient::Open(std::string_view url) {
  GRANARY_ASSIGN_OR_RAISE(ConnectOptions options, ParseConnectUrl(url));
  return Open(options);
}

Result<std::unique_ptr<SparkConnectClient>> SparkConnectClient::Open(
    const ConnectOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.user_id.empty()) {
    const char* user = std::getenv("USER");
    impl->options.user_id = user != nullptr && *user != '\0' ? user : "granary";
  }
  impl->describe = "spark at " + options.Describe();
  impl->session_id = options.session_id.empty() ? NewUuid() : options.session_id;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetUserAgentPrefix("granary");
  std::shared_ptr<grpc::ChannelCredentials> creds =
      options.use_ssl ? grpc::SslCredentials(grpc::SslCredentialsOptions())
                      : grpc::InsecureChannelCredentials();
  impl->channel =
      grpc::CreateCustomChannel(fmt::format("{}:{}", options.host, options.port), creds, args);
  impl->stub = proto::SparkConnectService::NewStub(impl->channel);

  // The first call checks the server: its Spark version.
  proto::AnalyzePlanRequest request;
  impl->Fill(&request);
  request.mutable_spark_version();
  proto::AnalyzePlanResponse response;
  auto ctx = impl->NewContext();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status st = impl->stub->AnalyzePlan(ctx.get(), request, &response);
  if (!st.ok()) return impl->FromGrpc(st, "connecting");
  impl->spark_version = response.spark_version().version();
  return std::unique_ptr<SparkConnectClient>(new SparkConnectClient(std::move(impl)));
}

std::string SparkConnectClient::Describe() const { return impl_->describe; }
const std::string& SparkConnectClient::session_id() const { return impl_->session_id; }
const std::string& SparkConnectClient::spark_version() const { return impl_->spark_version; }

Result<std::unique_ptr<ResultStream>> SparkConnectClient::ExecuteSql(const std::string& sql,
                                                                     const CancelFlag* cancel) {
  auto stream = std::make_unique<ExecuteStream>(impl_, QueryForMessage(sql), cancel);
  GRANARY_RETURN_NOT_OK(stream->Start(SqlPlan(sql)));
  return std::unique_ptr<ResultStream>(std::move(stream));
}

Result<std::string> SparkConnectClient::CheckpointSqlAsView(const std::string& sql,
                                                            const std::string& view_name,
                                                            const CancelFlag* cancel) {
  const std::string what = QueryForMessage(sql);
  proto::Plan plan;
  auto* checkpoint = plan.mutable_command()->mutable_checkpoint_command();
  checkpoint->mutable_relation()->mutable_sql()->set_query(sql);
  checkpoint->set_local(true);
  checkpoint->set_eager(true);
  auto stream = std::make_unique<ExecuteStream>(impl_, what, cancel);
  GRANARY_RETURN_NOT_OK(stream->Start(plan));
  while (true) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, stream->Next());
    if (batch == nullptr) break;
  }
  std::string id = stream->checkpoint_id();
  if (id.empty()) {
    return Status::IOError(
        fmt::format("{}: {}: the server did not return the checkpoint (Spark "
                    "Connect 4.0 or later is needed for entity rows given as "
                    "SQL or a table)",
                    impl_->describe, what));
  }
  proto::Relation relation;
  relation.mutable_cached_remote_relation()->set_relation_id(id);
  Status st = impl_->CreateView(relation, view_name,
                                fmt::format("registering the checkpoint as view {}", view_name));
  if (!st.ok()) {
    (void)ReleaseCheckpoint(id);
    return st;
  }
  return id;
}

Status SparkConnectClient::ReleaseCheckpoint(const std::string& relation_id) {
  proto::Plan plan;
  plan.mutable_command()
      ->mutable_remove_cached_remote_relation_command()
      ->mutable_relation()
      ->set_relation_id(relation_id);
  return impl_->RunPlanToEnd(plan, "releasing checkpoint " + relation_id, nullptr);
}

Status SparkConnectClient::RunSql(const std::string& sql, const CancelFlag* cancel) {
  return impl_->RunPlanToEnd(SqlPlan(sql), QueryForMessage(sql), cancel);
}

Result<std::shared_ptr<arrow::Schema>> SparkConnectClient::AnalyzeSql(const std::string& sql) {
  proto::AnalyzePlanRequest request;
  impl_->Fill(&request);
  *request.mutable_schema()->mutable_plan() = SqlPlan(sql);
  proto::AnalyzePlanResponse response;
  auto ctx = impl_->NewContext();
  grpc::Status st = impl_->stub->AnalyzePlan(ctx.get(), request, &response);
  std::string what = "analyzing the " + QueryForMessage(sql);
  if (!st.ok()) return impl_->FromGrpc(st, what);
  return ArrowSchemaOfSpark(response.schema().schema(),
                            fmt::format("{}: {}", impl_->describe, what));
}

Status SparkConnectClient::UploadAsView(const arrow::Table& table, const std::string& view_name,
                                        int64_t chunk_bytes, const CancelFlag* cancel) {
  std::string what = fmt::format("uploading {} rows as view {}", table.num_rows(), view_name);
  chunk_bytes = std::max<int64_t>(chunk_bytes, 1024);
  // Rows per IPC batch: about a sixteenth of a chunk, from the table's average row size.
  int64_t table_bytes = 0;
  for (const auto& column : table.columns()) {
    for (const auto& chunk : column->chunks()) {
      for (const auto& buffer : chunk->data()->buffers) {
        if (buffer) table_bytes += buffer->size();
      }
    }
  }
  int64_t row_bytes =
      table.num_rows() > 0 ? std::max<int64_t>(1, table_bytes / table.num_rows()) : 1;
  int64_t batch_rows = std::max<int64_t>(1, chunk_bytes / 16 / row_bytes);

  std::vector<std::string> hashes;
  std::shared_ptr<arrow::io::BufferOutputStream> sink;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
  auto open = [&]() -> Status {
    auto s = arrow::io::BufferOutputStream::Create();
    if (!s.ok()) return FromArrow(s.status(), what);
    sink = *s;
    auto w = arrow::ipc::MakeStreamWriter(sink, table.schema());
    if (!w.ok()) return FromArrow(w.status(), what);
    writer = *w;
    return Status::OK();
  };
  auto finish = [&]() -> Result<std::shared_ptr<arrow::Buffer>> {
    GRANARY_RETURN_NOT_OK(FromArrow(writer->Close(), what));
    auto buffer = sink->Finish();
    if (!buffer.ok()) return FromArrow(buffer.status(), what);
    writer.reset();
    sink.reset();
    return *buffer;
  };
  auto upload = [&](const std::shared_ptr<arrow::Buffer>& buffer) -> Status {
    GRANARY_RETURN_NOT_OK(CheckCancelled(cancel, what));
    std::string hash = Sha256Hex(buffer->data(), buffer->size());
    GRANARY_RETURN_NOT_OK(impl_->UploadArtifact("cache/" + hash, buffer));
    hashes.push_back(std::move(hash));
    return Status::OK();
  };

  GRANARY_RETURN_NOT_OK(open());
  arrow::TableBatchReader reader(table);
  reader.set_chunksize(batch_rows);
  int64_t rows_in_chunk = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    GRANARY_RETURN_NOT_OK(FromArrow(reader.ReadNext(&batch), what));
    if (batch == nullptr) break;
    GRANARY_RETURN_NOT_OK(FromArrow(writer->WriteRecordBatch(*batch), what));
    rows_in_chunk += batch->num_rows();
    auto position = sink->Tell();
    if (position.ok() && *position >= chunk_bytes) {
      GRANARY_ASSIGN_OR_RAISE(auto buffer, finish());
      GRANARY_RETURN_NOT_OK(upload(buffer));
      GRANARY_RETURN_NOT_OK(open());
      rows_in_chunk = 0;
    }
  }
  GRANARY_ASSIGN_OR_RAISE(auto last, finish());
  proto::Relation relation;
  if (hashes.empty() && last->size() <= kInlineUploadBytes) {
    // Small (or empty) tables go inline, in the plan itself.
    relation.mutable_local_relation()->set_data(last->data(), last->size());
  } else {
    if (rows_in_chunk > 0) GRANARY_RETURN_NOT_OK(upload(last));
    auto* cached = relation.mutable_chunked_cached_local_relation();
    for (const auto& h : hashes) cached->add_datahashes(h);
  }
  return impl_->CreateView(relation, view_name, what);
}

Status SparkConnectClient::ReadFilesAsView(const std::string& format,
                                           const std::vector<std::string>& paths,
                                           const std::string& view_name) {
  proto::Relation relation;
  auto* source = relation.mutable_read()->mutable_data_source();
  source->set_format(format);
  for (const auto& p : paths) source->add_paths(p);
  return impl_->CreateView(relation, view_name,
                           fmt::format("reading {} files {} as view {}", format,
                                       paths.empty() ? std::string() : paths.front(), view_name));
}

Status SparkConnectClient::ReadTableAsView(const std::string& table_name,
                                           const std::string& view_name) {
  proto::Relation relation;
  relation.mutable_read()->mutable_named_table()->set_unparsed_identifier(table_name);
  return impl_->CreateView(relation, view_name,
                           fmt::format("reading table {} as view {}", table_name, view_name));
}

Status SparkConnectClient::AppendViewToPath(const std::string& view_name, const std::string& format,
                                            const std::string& path,
                                            const std::vector<std::string>& partition_by,
                                            const CancelFlag* cancel) {
  proto::Plan plan;
  auto* write = plan.mutable_command()->mutable_write_operation();
  write->mutable_input()->mutable_read()->mutable_named_table()->set_unparsed_identifier(
      QuoteIdentifier(view_name));
  write->set_source(format);
  write->set_path(path);
  write->set_mode(proto::WriteOperation_SaveMode_SAVE_MODE_APPEND);
  for (const auto& column : partition_by) write->add_partitioning_columns(column);
  return impl_->RunPlanToEnd(
      plan, fmt::format("appending view {} to {} at {}", view_name, format, path), cancel);
}

Status SparkConnectClient::InterruptAll() {
  return impl_->Interrupt(proto::InterruptRequest_InterruptType_INTERRUPT_TYPE_ALL, "");
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

std::string QuoteString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace granary::spark_connect
