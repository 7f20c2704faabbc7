// FeatureStoreCore.get_historical_features: entity rows in and the training set out as Arrow
// streams (no copy either way); the point-in-time join runs without the GIL and stops on Ctrl-C.
#include <arrow/api.h>
#include <fmt/format.h>

#include "bindings.h"
#include "feature_store_core.h"
#include "granary/offline/engine_factory.h"

namespace granary::python {

void BindOffline(nb::class_<FeatureStoreCore>& cls) {
  cls.attr("DEFAULT_MEMORY_BUDGET_BYTES") = kDefaultMemoryBudget;
  cls.def(
      "get_historical_features",
      [](FeatureStoreCore& self, nb::handle entity_rows, const std::vector<std::string>& features,
         const std::string& feature_service, bool full_feature_names, bool created_timestamp_cutoff,
         int64_t memory_budget_bytes, int threads, const std::string& spill_dir, bool progress,
         const std::string& entity_sql, const std::string& entity_table) {
        HistoricalRequest request;
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
        OfflineEngineOptions engine_options;
        engine_options.embedded.memory_budget_bytes = memory_budget_bytes;
        engine_options.embedded.threads = threads;
        engine_options.embedded.spill_dir = spill_dir;
        request.show_progress = progress;
        // Entity rows here (imported without a copy), or where the engine runs (SQL or a table
        // name: they never come to this process).
        if (entity_sql.empty() && entity_table.empty()) {
          request.entities = ImportArrowTable(entity_rows, "entity_df");
        }
        request.entity_sql = entity_sql;
        request.entity_table = entity_table;
        if (!entity_table.empty()) request.entities_name = "entity table " + entity_table;
        FeatureStoreCore::Applied applied;
        {
          nb::gil_scoped_release release;
          applied = ValueOrThrow(self.Latest(/*check_for_newer=*/true));
          // A bad feature name fails before any data is read, without a worker thread.
          ThrowIfError(ResolveFeatures(*applied.definitions, request).status());
        }
        CancelFlag cancel;
        request.cancel = &cancel;
        std::shared_ptr<arrow::Table> table;
        int entity_columns = 0;
        ThrowIfError(RunInterruptible(
            [&]() -> Status {
              GRANARY_ASSIGN_OR_RAISE(auto engine,
                                      OpenOfflineEngine(self.config(), engine_options));
              GRANARY_ASSIGN_OR_RAISE(auto resolved,
                                      ResolveFeatures(*applied.definitions, request));
              GRANARY_RETURN_NOT_OK(CheckEngineSupports(*engine, resolved));
              if (request.entities == nullptr && !engine->capabilities().entity_sql) {
                return Status::NotImplemented(fmt::format(
                    "entity rows given as SQL or a table name are read where the offline engine "
                    "runs, which {} cannot do; pass a DataFrame or a pyarrow Table, or use "
                    "offline_store type spark",
                    engine->Describe()));
              }
              GRANARY_ASSIGN_OR_RAISE(auto stream,
                                      engine->GetHistoricalFeatures(*applied.definitions, request));
              GRANARY_ASSIGN_OR_RAISE(table, ReadAll(*stream));
              int features = 0;
              for (const auto& group : resolved.views) {
                features += static_cast<int>(group.features.size());
              }
              entity_columns = table->num_columns() - features;
              return Status::OK();
            },
            &cancel));
        return nb::make_tuple(ExportArrowTable(std::move(table)), entity_columns);
      },
      nb::arg("entity_rows").none(), nb::arg("features"), nb::arg("feature_service"),
      nb::arg("full_feature_names"), nb::arg("created_timestamp_cutoff"),
      nb::arg("memory_budget_bytes"), nb::arg("threads"), nb::arg("spill_dir"), nb::arg("progress"),
      nb::arg("entity_sql") = "", nb::arg("entity_table") = "",
      "The point-in-time-correct training set of the entity rows (docs/POINT_IN_TIME.md): "
      "(table, number of entity columns).");
}

}  // namespace granary::python
