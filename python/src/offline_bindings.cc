// FeatureStoreCore's training sets: entity rows in as an Arrow stream (no copy); the training set
// out whole (get_historical_features), batch by batch as the engine produces it
// (historical_features_stream), or written to a file batch by batch (write_historical_features).
// The work runs without the GIL and stops on Ctrl-C.
#include <arrow/api.h>
#include <fmt/format.h>

#include <filesystem>

#include "bindings.h"
#include "feature_store_core.h"
#include "granary/offline/engine_factory.h"
#include "granary/offline/table_io.h"

namespace granary::python {
namespace {

// One training-set call: the request, the engine's options and the definitions it borrows.
struct HistoricalCall {
  HistoricalRequest request;
  OfflineEngineOptions engine_options;
  FeatureStoreCore::Applied applied;
  CancelFlag cancel;
};

std::unique_ptr<HistoricalCall> MakeHistoricalCall(
    FeatureStoreCore& self, nb::handle entity_rows, const std::vector<std::string>& features,
    const std::string& feature_service, bool full_feature_names, bool created_timestamp_cutoff,
    int64_t memory_budget_bytes, int threads, const std::string& spill_dir, bool progress,
    const std::string& entity_sql, const std::string& entity_table) {
  auto call = std::make_unique<HistoricalCall>();
  HistoricalRequest& request = call->request;
  for (const std::string& text : features) {
    request.features.push_back(ValueOrThrow(FeatureRef::Parse(text)));
  }
  request.feature_service = feature_service;
  request.full_feature_names = full_feature_names;
  request.created_timestamp_cutoff = created_timestamp_cutoff;
  if (memory_budget_bytes <= 0) {
    ThrowIfError(Status::InvalidArgument(
        "memory_budget must be a positive number of bytes, e.g. 2 << 30 for 2 GiB"));
  }
  call->engine_options.embedded.memory_budget_bytes = memory_budget_bytes;
  call->engine_options.embedded.threads = threads;
  call->engine_options.embedded.spill_dir = spill_dir;
  request.show_progress = progress;
  // Entity rows here (imported without a copy), or where the engine runs (SQL or a table name:
  // they never come to this process).
  if (entity_sql.empty() && entity_table.empty()) {
    request.entities = ImportArrowTable(entity_rows, "entity_df");
  }
  request.entity_sql = entity_sql;
  request.entity_table = entity_table;
  if (!entity_table.empty()) request.entities_name = "entity table " + entity_table;
  {
    nb::gil_scoped_release release;
    call->applied = ValueOrThrow(self.Latest(/*check_for_newer=*/true));
    // A bad feature name fails before any data is read, without a worker thread.
    ThrowIfError(ResolveFeatures(*call->applied.definitions, request).status());
  }
  request.cancel = &call->cancel;
  return call;
}

// The engine of the call and its training set as a stream; the number of entity columns.
Status OpenHistoricalStream(FeatureStoreCore& self, HistoricalCall& call,
                            std::unique_ptr<OfflineEngine>* engine,
                            std::unique_ptr<OfflineBatchStream>* stream, int* entity_columns) {
  GRANARY_ASSIGN_OR_RAISE(*engine, OpenOfflineEngine(self.config(), call.engine_options));
  const Definitions& defs = *call.applied.definitions;
  GRANARY_ASSIGN_OR_RAISE(auto resolved, ResolveFeatures(defs, call.request));
  GRANARY_RETURN_NOT_OK(CheckEngineSupports(**engine, resolved));
  if (call.request.entities == nullptr && !(*engine)->capabilities().entity_sql) {
    return Status::NotImplemented(fmt::format(
        "entity rows given as SQL or a table name are read where the offline engine runs, which "
        "{} cannot do; pass a DataFrame or a pyarrow Table, or use offline_store type spark",
        (*engine)->Describe()));
  }
  GRANARY_ASSIGN_OR_RAISE(*stream, (*engine)->GetHistoricalFeatures(defs, call.request));
  int features = 0;
  for (const auto& group : resolved.views) features += static_cast<int>(group.features.size());
  *entity_columns = (*stream)->schema()->num_fields() - features;
  return Status::OK();
}

// A training set being read batch by batch (FeatureStore.stream_historical_features). Owns
// everything the engine's stream borrows; the stream goes first (on Spark, a job still running
// is interrupted), then the engine. One Python thread at a time (the GIL and Python's iterator
// protocol see to it); each read runs without the GIL and stops on Ctrl-C.
class HistoricalStream {
 public:
  HistoricalStream(std::unique_ptr<HistoricalCall> call, std::unique_ptr<OfflineEngine> engine,
                   std::unique_ptr<OfflineBatchStream> stream, int entity_columns)
      : call_(std::move(call)),
        engine_(std::move(engine)),
        stream_(std::move(stream)),
        schema_(stream_->schema()),
        entity_columns_(entity_columns) {}
  ~HistoricalStream() { Close(); }

  nb::object Schema() const {
    auto empty = arrow::Table::MakeEmpty(schema_);
    if (!empty.ok()) ThrowIfError(Status::Internal(empty.status().ToString()));
    return ExportArrowTable(*empty);
  }

  // The next batch as a one-batch table, or None at the end.
  nb::object ReadNext() {
    if (stream_ != nullptr && call_->cancel.cancelled()) {
      // A Ctrl-C stopped the read before this one (KeyboardInterrupt): the stream is done.
      failure_ = Status::Cancelled("the training set's stream was interrupted (Ctrl-C)");
      Close();
    }
    if (stream_ == nullptr) {
      if (!failure_.ok()) ThrowIfError(failure_);
      return nb::none();
    }
    std::shared_ptr<arrow::RecordBatch> batch;
    Status st = RunInterruptible(
        [&]() -> Status {
          GRANARY_ASSIGN_OR_RAISE(batch, stream_->Next());
          return Status::OK();
        },
        &call_->cancel);
    if (!st.ok() || batch == nullptr) {
      failure_ = st;
      Close();
      ThrowIfError(st);
      return nb::none();
    }
    rows_ += batch->num_rows();
    auto table = arrow::Table::FromRecordBatches(schema_, {batch});
    if (!table.ok()) ThrowIfError(Status::Internal(table.status().ToString()));
    return ExportArrowTable(*table);
  }

  // Stops the engine's work (interrupting a cluster job) and releases everything. Idempotent.
  void Close() {
    if (stream_ == nullptr && engine_ == nullptr) return;
    call_->cancel.Cancel();
    nb::gil_scoped_release release;
    stream_.reset();
    engine_.reset();
  }

  int entity_columns() const { return entity_columns_; }
  int64_t rows() const { return rows_; }

 private:
  std::unique_ptr<HistoricalCall> call_;
  std::unique_ptr<OfflineEngine> engine_;
  std::unique_ptr<OfflineBatchStream> stream_;  // borrows call_ and engine_
  std::shared_ptr<arrow::Schema> schema_;
  int entity_columns_ = 0;
  int64_t rows_ = 0;
  Status failure_;
};

}  // namespace

void BindOffline(nb::class_<FeatureStoreCore>& cls) {
  cls.attr("DEFAULT_MEMORY_BUDGET_BYTES") = kDefaultMemoryBudget;
  cls.def(
      "get_historical_features",
      [](FeatureStoreCore& self, nb::handle entity_rows, const std::vector<std::string>& features,
         const std::string& feature_service, bool full_feature_names, bool created_timestamp_cutoff,
         int64_t memory_budget_bytes, int threads, const std::string& spill_dir, bool progress,
         const std::string& entity_sql, const std::string& entity_table) {
        auto call =
            MakeHistoricalCall(self, entity_rows, features, feature_service, full_feature_names,
                               created_timestamp_cutoff, memory_budget_bytes, threads, spill_dir,
                               progress, entity_sql, entity_table);
        std::shared_ptr<arrow::Table> table;
        int entity_columns = 0;
        ThrowIfError(RunInterruptible(
            [&]() -> Status {
              std::unique_ptr<OfflineEngine> engine;
              std::unique_ptr<OfflineBatchStream> stream;
              GRANARY_RETURN_NOT_OK(
                  OpenHistoricalStream(self, *call, &engine, &stream, &entity_columns));
              GRANARY_ASSIGN_OR_RAISE(table, ReadAll(*stream));
              return Status::OK();
            },
            &call->cancel));
        return nb::make_tuple(ExportArrowTable(std::move(table)), entity_columns);
      },
      nb::arg("entity_rows").none(), nb::arg("features"), nb::arg("feature_service"),
      nb::arg("full_feature_names"), nb::arg("created_timestamp_cutoff"),
      nb::arg("memory_budget_bytes"), nb::arg("threads"), nb::arg("spill_dir"), nb::arg("progress"),
      nb::arg("entity_sql") = "", nb::arg("entity_table") = "",
      "The point-in-time-correct training set of the entity rows (docs/POINT_IN_TIME.md): "
      "(table, number of entity columns).");

  nb::class_<HistoricalStream>(cls, "HistoricalStream",
                               "A training set read batch by batch as the offline engine "
                               "produces it (FeatureStore.stream_historical_features).")
      .def("schema", &HistoricalStream::Schema,
           "An empty table of the training set's schema (Arrow stream).")
      .def("read_next", &HistoricalStream::ReadNext,
           "The next batch as a one-batch table (Arrow stream), or None at the end.")
      .def("close", &HistoricalStream::Close,
           "Stops the engine's work (a cluster job is interrupted) and releases it.")
      .def_prop_ro("entity_columns", &HistoricalStream::entity_columns)
      .def_prop_ro("rows", &HistoricalStream::rows);

  cls.def(
      "historical_features_stream",
      [](FeatureStoreCore& self, nb::handle entity_rows, const std::vector<std::string>& features,
         const std::string& feature_service, bool full_feature_names, bool created_timestamp_cutoff,
         int64_t memory_budget_bytes, int threads, const std::string& spill_dir, bool progress,
         const std::string& entity_sql, const std::string& entity_table) {
        auto call =
            MakeHistoricalCall(self, entity_rows, features, feature_service, full_feature_names,
                               created_timestamp_cutoff, memory_budget_bytes, threads, spill_dir,
                               progress, entity_sql, entity_table);
        std::unique_ptr<OfflineEngine> engine;
        std::unique_ptr<OfflineBatchStream> stream;
        int entity_columns = 0;
        ThrowIfError(RunInterruptible(
            [&]() -> Status {
              return OpenHistoricalStream(self, *call, &engine, &stream, &entity_columns);
            },
            &call->cancel));
        return std::make_unique<HistoricalStream>(std::move(call), std::move(engine),
                                                  std::move(stream), entity_columns);
      },
      nb::arg("entity_rows").none(), nb::arg("features"), nb::arg("feature_service"),
      nb::arg("full_feature_names"), nb::arg("created_timestamp_cutoff"),
      nb::arg("memory_budget_bytes"), nb::arg("threads"), nb::arg("spill_dir"), nb::arg("progress"),
      nb::arg("entity_sql") = "", nb::arg("entity_table") = "",
      "The training set of the entity rows as a HistoricalStream of batches.");

  cls.def(
      "write_historical_features",
      [](FeatureStoreCore& self, nb::handle entity_rows, const std::vector<std::string>& features,
         const std::string& feature_service, bool full_feature_names, bool created_timestamp_cutoff,
         int64_t memory_budget_bytes, int threads, const std::string& spill_dir, bool progress,
         const std::string& entity_sql, const std::string& entity_table, const std::string& path) {
        auto call =
            MakeHistoricalCall(self, entity_rows, features, feature_service, full_feature_names,
                               created_timestamp_cutoff, memory_budget_bytes, threads, spill_dir,
                               progress, entity_sql, entity_table);
        int64_t rows = 0;
        int columns = 0;
        ThrowIfError(RunInterruptible(
            [&]() -> Status {
              std::unique_ptr<OfflineEngine> engine;
              std::unique_ptr<OfflineBatchStream> stream;
              int entity_columns = 0;
              GRANARY_RETURN_NOT_OK(
                  OpenHistoricalStream(self, *call, &engine, &stream, &entity_columns));
              // As the CLI's -o: each batch to disk as it arrives, into a temporary file renamed
              // over `path` only once the stream has ended well.
              GRANARY_ASSIGN_OR_RAISE(auto writer, TableFileWriter::Open(path, stream->schema()));
              for (;;) {
                GRANARY_ASSIGN_OR_RAISE(auto batch, stream->Next());
                if (batch == nullptr) break;
                GRANARY_RETURN_NOT_OK(writer->Write(*batch));
              }
              GRANARY_RETURN_NOT_OK(writer->Commit());
              rows = writer->rows();
              columns = stream->schema()->num_fields();
              return Status::OK();
            },
            &call->cancel));
        return nb::make_tuple(rows, columns);
      },
      nb::arg("entity_rows").none(), nb::arg("features"), nb::arg("feature_service"),
      nb::arg("full_feature_names"), nb::arg("created_timestamp_cutoff"),
      nb::arg("memory_budget_bytes"), nb::arg("threads"), nb::arg("spill_dir"), nb::arg("progress"),
      nb::arg("entity_sql"), nb::arg("entity_table"), nb::arg("path"),
      "Writes the training set to `path` (.parquet or .csv) batch by batch: (rows, columns).");
}

}  // namespace granary::python
